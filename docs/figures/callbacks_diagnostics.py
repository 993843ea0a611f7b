"""
Draw ``docs/_static/img/callbacks_diagnostics.png``: what :class:`~sb3_shm.MemoryDiagnosticsCallback` logs while
ShmPPO trains CartPoleNoVel-v1 (the hyperparameters of ``hyperparams/shm_ppo.yml``, seed 0, 30,000 steps, a log every
rollout), read back from the csv logger output.

Run from the repository root: ``python docs/figures/callbacks_diagnostics.py`` (about a minute or two on 2 cores).
"""

import argparse
import csv
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import rl_zoo3.import_envs  # noqa: F401  (registers CartPoleNoVel-v1)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from torch import nn

from sb3_shm import MemoryDiagnosticsCallback, ShmPPO

OUT = Path(__file__).resolve().parent.parent / "_static" / "img" / "callbacks_diagnostics.png"


def train(steps: int, folder: str) -> list[dict[str, float]]:
    model = ShmPPO(
        "MlpShmPolicy",
        make_vec_env("CartPoleNoVel-v1", n_envs=8, seed=0),
        n_steps=32,
        batch_size=256,
        n_epochs=10,
        gae_lambda=0.8,
        gamma=0.98,
        learning_rate=1e-3,
        seed=0,
        policy_kwargs=dict(ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[64], vf=[64]), memory_size=32),
    )
    model.set_logger(configure(folder, ["csv"]))
    model.learn(steps, callback=MemoryDiagnosticsCallback(log_freq=32))
    with open(Path(folder) / "progress.csv") as file:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = train(args.steps, folder)

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(row["time/total_timesteps"], row[key]) for row in rows if key in row]
        return [x for x, _ in points], [y for _, y in points]

    panels = [
        ("memory |M|", ["shm/actor/memory_abs_max", "shm/actor/memory_abs_mean", "shm/critic/memory_abs_max"]),
        ("calibration C saturated (share)", ["shm/actor/calib_near_0", "shm/actor/calib_near_2", "shm/actor/clamp_hit"]),
        ("write strength eta", ["shm/actor/eta_mean", "shm/critic/eta_mean"]),
        ("memory gradient", ["shm/actor/grad_norm", "shm/actor/grad_share", "shm/critic/grad_share"]),
        ("calibration bank usage", ["shm/theta_evenness", "shm/theta_rows_used"]),
        ("episode return", ["rollout/ep_rew_mean"]),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True)
    for axis, (title, keys) in zip(axes.flat, panels, strict=True):
        for key in keys:
            x, y = series(key)
            axis.plot(x, y, label=key.removeprefix("shm/"))
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("environment steps")
    figure.suptitle("MemoryDiagnosticsCallback, ShmPPO on CartPoleNoVel-v1 (yml hyperparameters, seed 0)", fontsize=11)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
