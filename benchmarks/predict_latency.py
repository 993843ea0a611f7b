"""
Per-step ``predict`` latency (rollout / deployment path) for 1 and 16 environments: ShmPPO vs RecurrentPPO (and
PPO without memory), on CartPoleNoVel-v1, state and ``episode_start`` passed every step.

    python benchmarks/predict_latency.py

Writes ``benchmarks/results/predict_latency.{md,png}``.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import rl_zoo3.import_envs  # noqa: F401  registers CartPoleNoVel-v1
from _common import machine, markdown_table
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_shm import ShmPPO

RESULTS = Path(__file__).parent / "results"
MODELS = {
    "ShmPPO": (ShmPPO, "MlpShmPolicy"),
    "RecurrentPPO (LSTM 256)": (RecurrentPPO, "MlpLstmPolicy"),
    "PPO (no memory)": (PPO, "MlpPolicy"),
}


def latency(name: str, env_id: str, n_envs: int, n_calls: int) -> float:
    """:return: median seconds of one ``predict`` call for ``n_envs`` observations"""
    algo, policy = MODELS[name]
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    model = algo(policy, env, device="cpu", seed=0)
    observations = env.reset()
    state, episode_start = None, np.ones(n_envs, dtype=bool)
    times = []
    for _ in range(n_calls + 10):
        start = time.perf_counter()
        actions, state = model.predict(observations, state=state, episode_start=episode_start, deterministic=True)
        times.append(time.perf_counter() - start)
        observations, _, dones, _ = env.step(actions)
        episode_start = dones
    env.close()
    return statistics.median(times[10:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPoleNoVel-v1")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    results = {(name, n_envs): latency(name, args.env, n_envs, args.calls) for n_envs in (1, 16) for name in MODELS}
    rows = []
    for name in MODELS:
        row = [name]
        for n_envs in (1, 16):
            ratio = results[(name, n_envs)] / results[("RecurrentPPO (LSTM 256)", n_envs)]
            row.append(f"{results[(name, n_envs)] * 1e6:.0f} us ({ratio:.2f}x)")
        rows.append(row)
    table = markdown_table(["model", "1 env (vs RecurrentPPO)", "16 envs (vs RecurrentPPO)"], rows)
    note = f"{args.env}, default policies, median of {args.calls} calls. Machine: {machine()}."
    print(table)
    print(note)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict_latency.md").write_text(table + "\n\n" + note + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4))
    for offset, n_envs in enumerate((1, 16)):
        positions = np.arange(len(MODELS)) + 0.4 * offset
        axis.bar(positions, [results[(name, n_envs)] * 1e6 for name in MODELS], width=0.4, label=f"{n_envs} envs")
    axis.set_xticks(np.arange(len(MODELS)) + 0.2, list(MODELS))
    axis.set_ylabel("us per predict call")
    axis.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "predict_latency.png", dpi=100)
    print(f"wrote {RESULTS / 'predict_latency.png'}")


if __name__ == "__main__":
    main()
