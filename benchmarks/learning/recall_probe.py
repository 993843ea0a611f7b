"""
Can the memory carry VisualMatch's colour across the distractor phase? A supervised probe, no RL.

Episodes of ``VisualMatch-{N}-v0`` under uniformly random actions; at every step of the final phase the target is the
colour shown in the explore phase (3 classes). Each model reads the observations step by step and a linear head
classifies the colour; the table gives the held-out accuracy (1/3 = chance) after a number of Adam steps. This
separates the memory (can it keep the cue?) from reinforcement learning (does PPO find the policy that uses it?).

    python benchmarks/learning/recall_probe.py              # the table in docs/results.md (about 4 minutes)
    python benchmarks/learning/recall_probe.py --steps 100  # quicker

Writes ``benchmarks/results/recall_probe.md``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch as th
from torch import nn

from sb3_shm.common.memory.shm import ShmCell
from sb3_shm.envs.visual_match import VisualMatchEnv

RESULTS = Path(__file__).resolve().parents[1] / "results"

# name -> ShmCell keyword arguments (None: an LSTM of hidden size 128, RecurrentPPO's size in the benchmark)
MODELS = {
    "LSTM 128": None,
    "SHM, random calibration (the paper)": dict(calibration="random"),
    "SHM, fixed calibration": dict(calibration="fixed"),
    "SHM, no calibration (C = 1)": dict(calibration="none"),
}
FINAL_LENGTH = 10  # VisualMatch's final phase


def make_batches(distractor_length: int, n_batches: int, batch: int, seed: int = 0) -> list[tuple[th.Tensor, th.Tensor]]:
    """:return: (observations (B, T, 75), target colour (B,)) per batch, random actions."""
    env, rng = VisualMatchEnv(distractor_length=distractor_length), np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        observations, colours = [], []
        for _ in range(batch):
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            episode, terminated = [obs], False
            while not terminated:
                obs, _, terminated, _, _ = env.step(int(rng.integers(4)))
                episode.append(obs)
            observations.append(np.array(episode[:-1]))  # the observations the agent acts on
            colours.append(env.target_colour)
        batches.append((th.tensor(np.array(observations)), th.tensor(colours)))
    return batches


class Probe(nn.Module):
    """A memory (SHM cell or LSTM) and a linear head: (B, T, 75) observations -> (B, T, 3) colour logits."""

    def __init__(self, cell_kwargs: dict | None):
        super().__init__()
        if cell_kwargs is None:
            self.memory, size = nn.LSTM(75, 128, batch_first=True), 128
        else:
            # the policies' set-up: ReLU(Linear(75, 64)) embedding, 32 x 32 memory
            self.memory = ShmCell(75, memory_size=32, embed_dim=64, **cell_kwargs)
            size = self.memory.output_dim
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(size, 3))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        if isinstance(self.memory, nn.LSTM):
            return self.head(self.memory(obs)[0])  # every sequence is one episode
        cell, (batch, length) = self.memory, obs.shape[:2]
        starts = th.zeros(batch, length)
        starts[:, 0] = 1.0
        idx = cell.sample_theta_indices(batch, length)
        return self.head(cell(obs, cell.initial_state(batch), starts, idx)[0])


def accuracy(model: Probe, obs: th.Tensor, colours: th.Tensor) -> float:
    """:return: share of final-phase steps whose colour is classified right"""
    with th.no_grad():
        guess = model(obs)[:, -FINAL_LENGTH:].argmax(-1)
    return float((guess == colours[:, None]).float().mean())


def train(cell_kwargs: dict | None, batches, checkpoints: list[int], seed: int) -> list[float]:
    """:return: held-out accuracy (the last batch is held out) after each number of Adam steps in ``checkpoints``."""
    th.manual_seed(seed)
    model = Probe(cell_kwargs)
    optimizer = th.optim.Adam(model.parameters(), lr=1e-3)
    train_batches, (test_obs, test_colours) = batches[:-1], batches[-1]
    scores = []
    for step in range(1, max(checkpoints) + 1):
        obs, colours = train_batches[step % len(train_batches)]
        logits = model(obs)[:, -FINAL_LENGTH:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, 3), colours.repeat_interleave(FINAL_LENGTH))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in checkpoints:
            scores.append(accuracy(model, test_obs, test_colours))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400, help="Adam steps per model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--distractor-lengths", type=int, nargs="+", default=[15, 60])
    args = parser.parse_args()
    th.set_num_threads(1)
    checkpoints = sorted({max(args.steps // 8, 1), max(args.steps // 4, 1), max(args.steps // 2, 1), args.steps})
    rows = []
    for length in args.distractor_lengths:
        batches = make_batches(length, n_batches=9, batch=64)
        for name, kwargs in MODELS.items():
            start = time.perf_counter()
            scores = np.array([train(kwargs, batches, checkpoints, seed) for seed in args.seeds])  # (seeds, checkpoints)
            rows.append((length, name, scores.mean(0), scores.std(0)))
            cells = "  ".join(f"{m:.2f} +- {s:.2f}" for m, s in zip(scores.mean(0), scores.std(0), strict=True))
            print(f"N={length:3d} {name:40s} {cells}  ({time.perf_counter() - start:.0f} s)", flush=True)
    lines = [
        f"Held-out accuracy of VisualMatch's target colour over the final phase, read from memory after the explore "
        f"phase and N distractor steps (random actions), after each number of Adam steps (lr 1e-3, batch 64 "
        f"episodes), mean +- std over seeds {args.seeds}. Chance 0.33.",
        "",
        "| N | model | " + " | ".join(f"{c} steps" for c in checkpoints) + " |",
        "|---|---|" + "---|" * len(checkpoints),
        *[
            f"| {length} | {name} | " + " | ".join(f"{m:.2f} +- {s:.2f}" for m, s in zip(mean, std, strict=True)) + " |"
            for length, name, mean, std in rows
        ],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recall_probe.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
