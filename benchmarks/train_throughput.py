"""
End-to-end training throughput: ShmPPO vs sb3-contrib RecurrentPPO (LSTM) vs PPO (no memory), env-steps per
second on CartPoleNoVel-v1 (rl_zoo3's CartPole without velocities; ``--env`` for another), split into rollout and
update time.

    python benchmarks/train_throughput.py                 # 3 repeats, median
    python benchmarks/train_throughput.py --repeats 5 --iterations 4
    python benchmarks/train_throughput.py --device cuda --env CartPole-v1   # on a GPU, ShmPPO (triton) added
    python benchmarks/train_throughput.py --env VisualMatch-v0 --output train_throughput_visualmatch

Same settings for all: n_envs 8, n_steps 128, batch 256, n_epochs 4, default policy sizes (ShmPPO memory_size 32,
RecurrentPPO LSTM 256, and LSTM 64 of about the memory's parameter count). Runs are interleaved (one repeat of every
model, then the next). Writes ``benchmarks/results/train_throughput.{md,png}`` (``train_throughput_cuda`` on the GPU,
``--output`` for another name).
"""

import argparse
import statistics
import time
from pathlib import Path

from _common import machine, markdown_table
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from sb3_shm import ShmPPO

RESULTS = Path(__file__).parent / "results"
SETTINGS = dict(n_steps=128, batch_size=256, n_epochs=4, seed=0)
MODELS = {
    "ShmPPO (auto)": (ShmPPO, "MlpShmPolicy", {}),
    "ShmPPO (sequential)": (ShmPPO, "MlpShmPolicy", {"scan_impl": "sequential"}),
    "ShmPPO (triton)": (ShmPPO, "MlpShmPolicy", {"scan_impl": "triton"}),  # CUDA only
    "RecurrentPPO (LSTM 256)": (RecurrentPPO, "MlpLstmPolicy", {}),
    # About ShmPPO's parameter count per memory on CartPoleNoVel (2 inputs): ~17k for the cell, ~17k for LSTM 64
    "RecurrentPPO (LSTM 64)": (RecurrentPPO, "MlpLstmPolicy", {"lstm_hidden_size": 64}),
    "PPO (no memory)": (PPO, "MlpPolicy", {}),
}


def measure(name: str, env_id: str, n_envs: int, iterations: int, device: str = "cpu") -> dict:
    """:return: rollout seconds, update seconds and env-steps/s of ``iterations`` PPO iterations (after one warm-up)"""
    algo, policy, policy_kwargs = MODELS[name]
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    model = algo(policy, env, policy_kwargs=policy_kwargs, device=device, **SETTINGS)
    spent = {"rollout": 0.0, "update": 0.0}

    def timed(method, key):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = method(*args, **kwargs)
            spent[key] += time.perf_counter() - start
            return result

        return wrapper

    model.learn(n_envs * SETTINGS["n_steps"])  # warm-up: numba kernels load, allocations settle
    model.collect_rollouts = timed(model.collect_rollouts, "rollout")
    model.train = timed(model.train, "update")
    model.learn(iterations * n_envs * SETTINGS["n_steps"], reset_num_timesteps=False)
    env.close()
    total = spent["rollout"] + spent["update"]
    return {**spent, "steps_per_s": iterations * n_envs * SETTINGS["n_steps"] / total}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPoleNoVel-v1")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=2, help="timed PPO iterations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", help="default: all that run on the device")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output", help="file name stem under benchmarks/results (default: train_throughput[_cuda])")
    args = parser.parse_args()
    if "NoVel" in args.env:
        import rl_zoo3.import_envs  # noqa: F401  registers CartPoleNoVel-v1
    cuda = args.device == "cuda"
    args.models = args.models or [name for name in MODELS if cuda or "triton" not in name]
    runs = {name: [] for name in args.models}
    for repeat in range(args.repeats):
        for name in args.models:
            runs[name].append(measure(name, args.env, args.n_envs, args.iterations, args.device))
            print(f"repeat {repeat} {name}: {runs[name][-1]}", flush=True)
    median = {name: {key: statistics.median(run[key] for run in values) for key in values[0]} for name, values in runs.items()}
    reference = median.get("RecurrentPPO (LSTM 256)")
    steps = args.iterations * args.n_envs * SETTINGS["n_steps"]
    rows = []
    for name, values in median.items():
        ratio = f"{values['steps_per_s'] / reference['steps_per_s']:.2f}" if reference else "-"
        rows.append(
            [
                name,
                f"{values['steps_per_s']:.0f}",
                ratio,
                f"{values['rollout'] / steps * 1e3:.2f}",
                f"{values['update'] / steps * 1e3:.2f}",
            ]
        )
    header = ["model", "env-steps/s", "vs RecurrentPPO", "rollout ms / env-step", "update ms / env-step"]
    table = markdown_table(header, rows)
    note = (
        f"{args.env}, n_envs {args.n_envs}, n_steps 128, batch 256, n_epochs 4; median of {args.repeats} interleaved "
        f"repeats of {args.iterations} PPO iterations after a warm-up iteration. Device {args.device}. "
        f"Machine: {machine(args.device)}."
    )
    print(table)
    print(note)
    RESULTS.mkdir(exist_ok=True)
    stem = args.output or ("train_throughput_cuda" if cuda else "train_throughput")
    (RESULTS / f"{stem}.md").write_text(table + "\n\n" + note + "\n")
    plot(median, steps, RESULTS / f"{stem}.png")


def plot(median, steps, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(median)
    rollout = [median[name]["rollout"] / steps * 1e3 for name in names]
    update = [median[name]["update"] / steps * 1e3 for name in names]
    fig, axis = plt.subplots(figsize=(8, 4))
    axis.barh(names, rollout, label="rollout")
    axis.barh(names, update, left=rollout, label="update")
    axis.set_xlabel("ms per env-step (lower is faster)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
