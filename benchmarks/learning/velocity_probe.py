"""
Why ShmPPO trails RecurrentPPO on CartPoleNoVel-v1: can the memory compute a velocity from positions?

A supervised probe, no RL: sequences of CartPole positions ``(x, angle)`` under random actions; the target at each
step is the last change, ``p_t - p_{t-1}`` (0 at episode starts), which is what CartPoleNoVel hides. Each model reads
the positions step by step and a small MLP head predicts the target; the table gives the held-out mean squared error,
normalised by the target's variance (1 = predicting the mean, 0 = exact), after a fixed number of Adam steps.

    python benchmarks/learning/velocity_probe.py              # the table in docs/results.md (about 3 minutes)
    python benchmarks/learning/velocity_probe.py --steps 200  # quicker

Writes ``benchmarks/results/velocity_probe.md``.
"""

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from torch import nn

from sb3_shm.common.memory.shm import ShmCell

RESULTS = Path(__file__).resolve().parents[1] / "results"

# name -> ShmCell keyword arguments (None: an LSTM of hidden size 64, RecurrentPPO's size in the zoo entry)
MODELS = {
    "LSTM 64": None,
    "SHM, random calibration (the paper)": dict(calibration="random"),
    "SHM, random calibration, memory_decay 0.9": dict(calibration="random", decay=0.9),
    "SHM, fixed calibration, memory_decay 0.7": dict(calibration="fixed", decay=0.7),
    "SHM, no calibration (C = 1)": dict(calibration="none"),
    "SHM, no calibration, memory_decay 0.7": dict(calibration="none", decay=0.7),
}


def make_batches(n_batches: int, batch: int, length: int, seed: int = 0) -> list[tuple[th.Tensor, ...]]:
    """:return: (positions (B, T, 2), target (B, T, 2), episode starts (B, T)) per batch, positions standardised."""
    env, rng = gym.make("CartPole-v1"), np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        pos = np.zeros((batch, length, 2), np.float32)
        starts = np.zeros((batch, length), np.float32)
        for b in range(batch):
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            starts[b, 0] = 1.0
            for t in range(length):
                pos[b, t] = obs[[0, 2]]
                obs, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
                if (terminated or truncated) and t + 1 < length:
                    obs, _ = env.reset()
                    starts[b, t + 1] = 1.0
        previous = np.concatenate([pos[:, :1], pos[:, :-1]], axis=1)
        target = np.where(starts[..., None] > 0, 0.0, pos - previous).astype(np.float32)
        batches.append((th.tensor(pos), th.tensor(target), th.tensor(starts)))
    pos_std = th.cat([b[0] for b in batches]).reshape(-1, 2).std(0)
    target_std = th.cat([b[1] for b in batches]).reshape(-1, 2).std(0)
    return [(p / pos_std, y / target_std, s) for p, y, s in batches]


class Probe(nn.Module):
    """A memory (SHM cell or LSTM) and an MLP head: (B, T, 2) positions -> (B, T, 2) predicted changes."""

    def __init__(self, cell_kwargs: dict | None):
        super().__init__()
        if cell_kwargs is None:
            self.memory, size = nn.LSTM(2, 64, batch_first=True), 64
        else:
            self.memory = ShmCell(2, memory_size=32, embed_dim=64, **cell_kwargs)
            size = self.memory.output_dim
        self.head = nn.Sequential(nn.Linear(size, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, pos: th.Tensor, starts: th.Tensor) -> th.Tensor:
        if isinstance(self.memory, nn.LSTM):
            # Probe sequences start at an episode start; resets inside a sequence are ignored by the LSTM, which can
            # only make its score worse (it is the stronger model anyway)
            return self.head(self.memory(pos)[0])
        cell = self.memory
        idx = cell.sample_theta_indices(*pos.shape[:2])
        return self.head(cell(pos, cell.initial_state(pos.shape[0]), starts, idx)[0])


def train(cell_kwargs: dict | None, batches, steps: int, seed: int) -> float:
    """:return: normalised held-out MSE (the last batch is held out) after ``steps`` Adam steps."""
    th.manual_seed(seed)
    model = Probe(cell_kwargs)
    optimizer = th.optim.Adam(model.parameters(), lr=1e-3)
    train_batches, (test_pos, test_target, test_starts) = batches[:-1], batches[-1]
    for step in range(steps):
        pos, target, starts = train_batches[step % len(train_batches)]
        loss = ((model(pos, starts) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with th.no_grad():
        return float(((model(test_pos, test_starts) - test_target) ** 2).mean() / test_target.var())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="Adam steps per model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    th.set_num_threads(1)
    batches = make_batches(n_batches=8, batch=64, length=64)
    rows = []
    for name, kwargs in MODELS.items():
        start = time.perf_counter()
        scores = [train(kwargs, batches, args.steps, seed) for seed in args.seeds]
        rows.append((name, np.mean(scores), np.std(scores)))
        print(f"{name:45s} {np.mean(scores):.3f} +- {np.std(scores):.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    lines = [
        f"Normalised held-out MSE of p_t - p_(t-1) from positions, after {args.steps} Adam steps (lr 1e-3, batch 64 x 64 "
        f"steps), mean +- std over seeds {args.seeds}. 0 = exact, 1 = no better than the mean.",
        "",
        "| model | normalised MSE |",
        "|---|---|",
        *[f"| {name} | {mean:.3f} +- {std:.3f} |" for name, mean, std in rows],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "velocity_probe.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
