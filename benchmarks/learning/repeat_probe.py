"""
Can the memory learn POPGym's RepeatPrevious? A supervised probe, no RL (issue 21).

RepeatPreviousEasy deals one card per step from a shuffled deck (52 cards, 4 suits) and asks, from the 4th card on,
for the suit of the card dealt 3 steps before the current one (``k=4`` counting the current card). Here the same
sequences are classified directly: each model reads the one-hot suits step by step and a linear head predicts that
suit at every step from the 4th; the table gives the held-out accuracy (chance 0.25) after a number of Adam steps.
RecurrentPPO solves the RL task at 300k steps and ShmPPO stays at chance (docs/results.md): this tells whether the
SHM cell can represent and learn the lookup at all, separately from PPO.

    python benchmarks/learning/repeat_probe.py              # about 5 minutes on one core
    python benchmarks/learning/repeat_probe.py --steps 200  # quicker

Writes ``benchmarks/results/repeat_probe.md`` (``--out``).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

from sb3_shm.common.memory.shm import ShmCell
from sb3_shm.common.torch_layers import TimeEncodingExtractor
from sb3_shm.envs.wrappers import sine_positional_encoding

RESULTS = Path(__file__).resolve().parents[1] / "results"
DECK, SUITS, LAG = 52, 4, 3  # RepeatPreviousEasy: one deck, the suit dealt LAG steps before the current card
LENGTH = DECK - 1  # popgym's max_episode_length
ENCODING = 128  # the authors' sine encoding of the step (SinePositionalEncoding(size=128, max_period=1024))

# name -> model options: "lstm" an LSTM 128 (RecurrentPPO's); otherwise ShmCell options, "time" adds the authors'
# input layer (TimeEncodingExtractor on the one-hot suit + the step's sine encoding)
MODELS = {
    "LSTM 128": dict(lstm=True),
    "SHM 32, random calibration, clamp 100 (MLP policy)": dict(memory_size=32, calibration="random"),
    "SHM 32, fixed calibration, decay 0.7": dict(memory_size=32, calibration="fixed", decay=0.7),
    "SHM 128, fixed, no clamp (authors' cell), no time encoding": dict(memory_size=128, calibration="fixed", clamp=None),
    "SHM 128, fixed, no clamp + time encoding (authors' POPGym model)": dict(
        memory_size=128, calibration="fixed", clamp=None, time=True
    ),
}


def make_batches(n_batches: int, batch: int, seed: int = 0) -> list[tuple[th.Tensor, th.Tensor]]:
    """:return: (inputs (B, T, 4 + ENCODING): one-hot suit then the step encoding, suits (B, T)) per batch"""
    rng = np.random.default_rng(seed)
    encoding = np.stack([sine_positional_encoding(t, ENCODING) for t in range(LENGTH)])  # (T, ENCODING)
    batches = []
    for _ in range(n_batches):
        suits = np.stack([rng.permutation(DECK)[:LENGTH] // (DECK // SUITS) for _ in range(batch)])  # (B, T)
        one_hot = np.eye(SUITS, dtype=np.float32)[suits]  # (B, T, 4)
        inputs = np.concatenate([one_hot, np.broadcast_to(encoding, (batch, LENGTH, ENCODING))], axis=-1)
        batches.append((th.tensor(inputs), th.tensor(suits)))
    return batches


class Probe(nn.Module):
    """A memory and a linear head: (B, T, 4 + ENCODING) inputs -> (B, T, 4) suit logits."""

    def __init__(self, options: dict):
        super().__init__()
        options = dict(options)
        self.lstm = options.pop("lstm", False)
        self.time = options.pop("time", False)
        if self.lstm:
            self.memory, size = nn.LSTM(SUITS, 128, batch_first=True), 128
        else:
            # the authors' POPGym model: Linear(obs, 128) + LayerNorm + encoding, then ReLU(Linear(128, 64)) into the
            # cell; the MLP policy: ReLU(Linear(obs, 64)) (the cell's own embedding)
            if self.time:
                box = spaces.Box(-1.0, 1.0, (SUITS + ENCODING,))
                self.extractor = TimeEncodingExtractor(box, features_dim=128, encoding_size=ENCODING)
            input_dim = 128 if self.time else SUITS
            self.memory = ShmCell(input_dim, embed_dim=64, **options)
            size = self.memory.output_dim
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(size, SUITS))

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        if self.lstm:
            return self.head(self.memory(inputs[..., :SUITS])[0])  # every sequence is one episode
        x = self.extractor(inputs) if self.time else inputs[..., :SUITS]
        cell, (batch, length) = self.memory, inputs.shape[:2]
        starts = th.zeros(batch, length)
        starts[:, 0] = 1.0
        idx = cell.sample_theta_indices(batch, length)
        return self.head(cell(x, cell.initial_state(batch), starts, idx)[0])


def loss_and_accuracy(model: Probe, inputs: th.Tensor, suits: th.Tensor) -> tuple[th.Tensor, float]:
    """Cross-entropy and accuracy of the suit LAG steps back, at every step that has one."""
    logits = model(inputs)[:, LAG:]  # (B, T - LAG, 4)
    targets = suits[:, :-LAG]  # (B, T - LAG)
    loss = nn.functional.cross_entropy(logits.reshape(-1, SUITS), targets.reshape(-1))
    return loss, float((logits.argmax(-1) == targets).float().mean())


def train(options: dict, batches, checkpoints: list[int], seed: int, lr: float) -> list[float]:
    """:return: held-out accuracy (the last batch is held out) after each number of Adam steps in ``checkpoints``."""
    th.manual_seed(seed)
    model = Probe(options)
    optimizer = th.optim.Adam(model.parameters(), lr=lr)
    train_batches, test_batch = batches[:-1], batches[-1]
    scores = []
    for step in range(1, max(checkpoints) + 1):
        loss, _ = loss_and_accuracy(model, *train_batches[step % len(train_batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in checkpoints:
            with th.no_grad():
                scores.append(loss_and_accuracy(model, *test_batch)[1])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps per model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", default=None, help="run only the models whose name contains one of these")
    parser.add_argument("--out", type=Path, default=RESULTS / "repeat_probe.md")
    args = parser.parse_args()
    th.set_num_threads(1)
    checkpoints = sorted({max(args.steps // 10, 1), max(args.steps // 4, 1), max(args.steps // 2, 1), args.steps})
    batches = make_batches(n_batches=17, batch=32)
    rows = []
    models = {name: options for name, options in MODELS.items() if args.models is None or any(m in name for m in args.models)}
    for name, options in models.items():
        start = time.perf_counter()
        scores = np.array([train(options, batches, checkpoints, seed, args.lr) for seed in args.seeds])  # (seeds, ckpts)
        rows.append((name, scores.mean(0), scores.std(0)))
        cells = "  ".join(f"{m:.2f} +- {s:.2f}" for m, s in zip(scores.mean(0), scores.std(0), strict=True))
        print(f"{name:66s} {cells}  ({time.perf_counter() - start:.0f} s)", flush=True)
    lines = [
        f"Held-out accuracy of the suit dealt {LAG} steps before the current card (RepeatPreviousEasy's question; "
        f"shuffled 52-card decks, {LENGTH} steps), after each number of Adam steps (lr {args.lr}, batch 32 decks), "
        f"mean +- std over seeds {args.seeds}. Chance 0.25.",
        "",
        "| model | " + " | ".join(f"{c} steps" for c in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
        *[
            f"| {name} | " + " | ".join(f"{m:.2f} +- {s:.2f}" for m, s in zip(mean, std, strict=True)) + " |"
            for name, mean, std in rows
        ],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
