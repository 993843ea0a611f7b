"""
ShmSAC speed by memory type: gradient updates per second at the same window length and batch (the issue's speed
target: SHM within 3x of the same agent with a GRU memory), and rollout steps per second, with the share of a rollout
step spent copying the transition it holds until the rollout ends (exact resume, ``_HeldTransitions``).

    python benchmarks/shm_sac_updates.py                       # windows of 64 steps, 32 per batch, 1 thread
    python benchmarks/shm_sac_updates.py --sequence-length 128 --updates 10 --threads 2

The buffer is filled with random-policy episodes of RecallFirstEnv (delay ``sequence_length - 1``, so every window is
one whole episode); then ``train`` runs ``--updates`` gradient steps per model and a rollout collects
``--rollout-steps`` steps with the policy (no training), the time spent copying the held transitions added up; each
timed ``--repeats`` times, interleaved over the models (median).
Prints a markdown table and writes ``benchmarks/results/shm_sac_updates.{md,png}``.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch as th
from _common import machine, markdown_table

from sb3_shm import ShmSAC
from sb3_shm.common.recall_env import RecallFirstEnv
from sb3_shm.shm_sac import shm_sac

RESULTS = Path(__file__).parent / "results"
MEMORIES = {
    "SHM actor, SHM critic (default)": dict(actor_memory_type="shm", critic_memory_type="shm"),
    "GRU actor, SHM critic (the authors')": dict(actor_memory_type="gru", critic_memory_type="shm"),
    "GRU actor, GRU critic": dict(actor_memory_type="gru", critic_memory_type="gru"),
    "LSTM actor, LSTM critic": dict(actor_memory_type="lstm", critic_memory_type="lstm"),
}
REFERENCE = "GRU actor, GRU critic"


class _TimedHeld(shm_sac._HeldTransitions):
    """ShmSAC's held transitions, with the time spent copying them added up (class attribute: one per rollout)."""

    seconds = 0.0

    def add(self, *args) -> None:
        start = time.perf_counter()
        super().add(*args)
        _TimedHeld.seconds += time.perf_counter() - start


def collect(model: ShmSAC, steps: int) -> tuple[float, float]:
    """:return: seconds for ``steps`` rollout steps (no training), and of them the seconds spent copying transitions"""
    original, shm_sac._HeldTransitions = shm_sac._HeldTransitions, _TimedHeld  # type: ignore[misc]
    _TimedHeld.seconds = 0.0
    try:
        start = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        return time.perf_counter() - start, _TimedHeld.seconds
    finally:
        shm_sac._HeldTransitions = original  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--rollout-steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "shm_sac_updates"), help="results path without suffix")
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
            device="cpu",
        )
        model.learn(learning_starts)
        model.train(gradient_steps=1, batch_size=args.batch_size)  # warm-up, untimed: numba compiles its kernels here
        models[name] = model
    # kind -> name -> seconds per update / per rollout step / copying per rollout step, one value per repeat
    timed: dict[str, dict[str, list[float]]] = {kind: {name: [] for name in models} for kind in ("update", "step", "copy")}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.train(gradient_steps=args.updates, batch_size=args.batch_size)
            timed["update"][name].append((time.perf_counter() - start) / args.updates)
            rollout, copying = collect(model, args.rollout_steps)
            timed["step"][name].append(rollout / args.rollout_steps)
            timed["copy"][name].append(copying / args.rollout_steps)
    seconds = {kind: {name: statistics.median(values) for name, values in by_name.items()} for kind, by_name in timed.items()}

    rows = []
    for name in models:
        update, step, copying = (seconds[kind][name] for kind in ("update", "step", "copy"))
        rows.append(
            [
                name,
                f"{1 / update:.1f}",
                f"{1000 * update:.0f}",
                f"{update / seconds['update'][REFERENCE]:.2f}x",
                f"{1 / step:.0f}",
                f"{1e6 * copying:.0f} us ({100 * copying / step:.1f}%)",
            ]
        )
    header = ["memories", "updates/s", "ms / update", f"update time vs {REFERENCE}", "rollout steps/s", "held copy / step"]
    table = markdown_table(header, rows)
    note = (
        f"Batch of {args.batch_size} windows of {args.sequence_length} steps (RecallFirstEnv, one env, hidden 128 for "
        f"GRU / LSTM), median of {args.repeats} interleaved repeats of {args.updates} updates and {args.rollout_steps} "
        "rollout steps. 'held copy / step': the time a rollout step spends copying the transition ShmSAC holds until the "
        f"rollout ends (exact resume), and its share of the step. Machine: {machine()}."
    )
    print(table)
    print(note)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n\n" + note + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(models)
    labels = [name.replace(", ", ",\n").replace(" (", "\n(") for name in names]
    axes[0].barh(labels, [1 / seconds["update"][name] for name in names])
    axes[0].set_xlabel(f"updates/s (batch {args.batch_size} x {args.sequence_length} steps)")
    axes[1].barh(labels, [1 / seconds["step"][name] for name in names])
    axes[1].set_xlabel("rollout steps/s (one env)")
    for axis in axes[1:]:
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
