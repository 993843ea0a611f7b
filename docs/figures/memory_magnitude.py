"""
Draw ``docs/_static/img/memory_magnitude.png``: how large the SHM memory gets over a long episode, per calibration mode.

An untrained :class:`~sb3_shm.ShmCell` (seed 0, H = 32) reads 1,000 steps of random inputs; the plot shows the
Frobenius norm of ``M_t`` divided by H, for ``calibration="random"``, ``"fixed"`` and ``"none"``, without the clamp.
This is an illustration of the recurrence at initialisation, not a trained agent.

Run from the repository root: ``python docs/figures/memory_magnitude.py``.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch as th

from sb3_shm import ShmCell

OUT = Path(__file__).resolve().parent.parent / "_static" / "img" / "memory_magnitude.png"


def memory_norms(calibration: str, steps: int, memory_size: int, input_dim: int = 16, seed: int = 0) -> list[float]:
    """
    :return: ||M_t||_F / H for t = 1..steps, one environment, no clamp
    """
    th.manual_seed(seed)
    cell = ShmCell(input_dim, memory_size=memory_size, calibration=calibration, clamp=None)
    inputs = th.randn(steps, 1, input_dim, generator=th.Generator().manual_seed(seed))  # same inputs for every mode
    memory = cell.initial_state(1)
    no_reset = th.zeros(1)
    norms = []
    with th.no_grad():
        for x in inputs:
            _, memory = cell.step(x, memory, no_reset, cell.sample_theta_indices(1))
            norms.append(memory.norm().item() / memory_size)
    return norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--memory-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    for calibration, style in (("random", "-"), ("fixed", "--"), ("none", ":")):
        ax.plot(memory_norms(calibration, args.steps, args.memory_size), style, label=f'calibration="{calibration}"')
    ax.set_xlabel("step t")
    ax.set_ylabel(r"$\|M_t\|_F \,/\, H$")
    ax.set_yscale("log")
    ax.set_title(f"SHM memory magnitude, untrained cell, H = {args.memory_size}, no clamp")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
