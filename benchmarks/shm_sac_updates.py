"""
ShmSAC gradient updates per second by memory type, at the same window length and batch (the issue's speed target:
SHM within 3x of the same agent with a GRU memory).

    python benchmarks/shm_sac_updates.py                       # windows of 64 steps, 32 per batch, 1 thread
    python benchmarks/shm_sac_updates.py --sequence-length 128 --updates 10 --threads 2

The buffer is filled with random-policy episodes of RecallFirstEnv (delay ``sequence_length - 1``, so every window is
one whole episode); then ``train`` runs ``--updates`` gradient steps per model, interleaved over ``--repeats``
(median). Prints a markdown table.
"""

import argparse
import statistics
import time

import torch as th
from _common import machine

from sb3_shm import ShmSAC
from sb3_shm.common.recall_env import RecallFirstEnv

MEMORIES = {
    "SHM actor, SHM critic (default)": dict(actor_memory_type="shm", critic_memory_type="shm"),
    "GRU actor, SHM critic (the authors')": dict(actor_memory_type="gru", critic_memory_type="shm"),
    "GRU actor, GRU critic": dict(actor_memory_type="gru", critic_memory_type="gru"),
    "LSTM actor, LSTM critic": dict(actor_memory_type="lstm", critic_memory_type="lstm"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    models = {}
    for name, policy_kwargs in MEMORIES.items():
        env = RecallFirstEnv(delay=args.sequence_length - 1)
        learning_starts = 4 * args.sequence_length
        model = ShmSAC(
            "MlpShmPolicy",
            env,
            learning_starts=learning_starts,
            sequence_length=args.sequence_length,
            batch_size=args.batch_size,
            gradient_steps=0,  # only collect: train() is timed below
            policy_kwargs=policy_kwargs,
            seed=0,
        )
        model.learn(learning_starts)
        models[name] = model
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.train(gradient_steps=args.updates, batch_size=args.batch_size)
            times[name].append(time.perf_counter() - start)

    print(f"{machine()}; {args.threads} thread(s)")
    print(f"\nShmSAC updates/s, batch {args.batch_size} windows of {args.sequence_length} steps, median of {args.repeats}\n")
    print("| memories | updates/s | ms / update |\n|---|---|---|")
    for name, values in times.items():
        seconds = statistics.median(values) / args.updates
        print(f"| {name} | {1 / seconds:.1f} | {1000 * seconds:.0f} |")


if __name__ == "__main__":
    main()
