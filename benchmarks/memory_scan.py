"""
Forward + backward time and peak memory of the SHM memory (``ShmCell``, whole sequences) for each scan
implementation, beside ``nn.LSTM`` and ``nn.GRU`` with a comparable parameter count.

    python benchmarks/memory_scan.py --quick      # a subset (a few minutes on 2 cores)
    python benchmarks/memory_scan.py              # batch {16, 64, 256} x T {32, 128, 512, 1024} x H {32, 64, 128}
    python benchmarks/memory_scan.py --targets    # the target points, loop included: ratios only, no files
    python benchmarks/memory_scan.py --device cuda  # on a GPU: the full grid with the Triton kernel, *_cuda files

Prints a markdown table and writes ``benchmarks/results/memory_scan.{md,png}``. Slow implementations are skipped
above a size budget (``BUDGET``, in B*T*H*H memory-entry updates) rather than run for minutes; ``--targets`` runs
the step loop anyway at batch 64, T 128, H {32, 64}.
"""

import argparse
import itertools
import math
import os
import sys
from pathlib import Path

import torch as th
from _common import PeakMemory, interleaved_median, machine, markdown_table
from torch import nn

from sb3_shm.common.memory.scan import fused_available
from sb3_shm.common.memory.shm import ShmCell

RESULTS = Path(__file__).parent / "results"
# B*T*H*H above which an implementation is not run (the fused kernels have no limit)
BUDGET = {"loop": 3e6, "sequential": 3e6, "scan": 3e6, "chunked": 3e7, "fused": math.inf}
# on a GPU the step-wise forms cost launches per step, not per entry; "scan" holds several (B, T, H, H) tensors
CUDA_BUDGET = {"loop": 3e8, "scan": 3e8, "sequential": 1e9}


def matched_hidden(size: int, gates: int) -> int:
    """Hidden size of an LSTM (gates=4) / GRU (gates=3) with input ``size`` and about ShmCell(size, size)'s parameters."""
    target = sum(p.numel() for p in ShmCell(size, size).parameters())
    # gates * (size*h + h*h + 2h) = target
    b = gates * (size + 2)
    return max(1, round((-b + math.sqrt(b * b + 4 * gates * target)) / (2 * gates)))


def make_case(name: str, batch: int, n_steps: int, size: int, device: str = "cpu"):
    """:return: a function running forward + backward once (and waiting for the GPU)"""
    th.manual_seed(0)
    x = th.randn(batch, n_steps, size, device=device, requires_grad=True)
    if name in ("lstm", "gru", "lstm256"):
        hidden = 256 if name == "lstm256" else matched_hidden(size, 4 if name == "lstm" else 3)
        rnn = (nn.GRU if name == "gru" else nn.LSTM)(size, hidden, batch_first=True).to(device)

        def run_once():
            out, _ = rnn(x)
            out.sum().backward()

    else:
        cell = ShmCell(size, size, scan_impl=name).to(device)
        memory = cell.initial_state(batch, device=device)
        episode_starts = (th.rand(batch, n_steps, device=device) < 0.02).float()
        theta_idx = cell.sample_theta_indices(batch, n_steps, device=device)

        def run_once():
            out, last = cell(x, memory, episode_starts, theta_idx)
            (out.sum() + last.sum()).backward()

    if device == "cpu":
        return run_once

    def run_synchronized():
        run_once()
        th.cuda.synchronize()

    return run_synchronized


class CudaPeakMemory:
    """Peak GPU memory allocated by torch above the amount allocated at entry."""

    def __enter__(self):
        th.cuda.synchronize()
        th.cuda.reset_peak_memory_stats()
        self.start = th.cuda.memory_allocated()
        return self

    def __exit__(self, *exc):
        th.cuda.synchronize()
        self.bytes = th.cuda.max_memory_allocated() - self.start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 64, T {32, 128, 512}, H {32, 64}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impls", nargs="+", help="default: loop scan sequential chunked fused (cpu) / triton (cuda)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--targets", action="store_true", help="batch 64, T 128, H {32, 64}: loop, fused, lstm, lstm256 and their ratios"
    )
    args = parser.parse_args()
    if args.targets:
        # timing only, default allocator: the mmap threshold below makes every large tensor a fresh mmap (page faults),
        # which slowed the many-small-op loop about 4x in one run
        targets(args.repeats)
        return
    cuda = args.device == "cuda"
    if not cuda and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # glibc: large blocks always mmap'ed and returned on free, so the sampled RSS follows live tensors
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    batches, steps, sizes = (
        ([64], [32, 128, 512], [32, 64]) if args.quick else ([16, 64, 256], [32, 128, 512, 1024], [32, 64, 128])
    )
    impls = args.impls or ["loop", "scan", "sequential", "chunked", "triton" if cuda else "fused"]
    impls = [impl for impl in impls if impl != "fused" or fused_available()]
    budget = {**BUDGET, "chunked": math.inf, **CUDA_BUDGET} if cuda else BUDGET
    suffix = ("_quick" if args.quick else "") + ("_cuda" if cuda else "")
    names = [*impls, "lstm", "gru", "lstm256"]
    rows, results = [], {}
    for batch, n_steps, size in itertools.product(batches, steps, sizes):
        work = batch * n_steps * size * size
        cases = {
            name: make_case(name, batch, n_steps, size, args.device) for name in names if work <= budget.get(name, math.inf)
        }
        times = interleaved_median(cases, args.repeats)
        for name, case in cases.items():
            with CudaPeakMemory() if cuda else PeakMemory() as peak:
                case()
            results[(name, batch, n_steps, size)] = (times[name], peak.bytes)
        row = [batch, n_steps, size]
        for name in names:
            if name in times:
                row.append(f"{times[name] * 1e3:.1f} ms / {results[(name, batch, n_steps, size)][1] / 2**20:.0f} MiB")
            else:
                row.append("skipped")
        rows.append(row)
        print(" | ".join(str(cell) for cell in row), flush=True)
    header = ["batch", "T", "H", *[f"{name} (fwd+bwd / peak)" for name in names]]
    table = markdown_table(header, rows)
    note = (
        f"Machine: {machine(args.device)}. Median of {args.repeats} interleaved runs; peak = "
        + ("torch's peak GPU allocation during one run" if cuda else "RSS growth during one run (sampled every ms, coarse)")
        + ". LSTM / GRU hidden sizes matched to ShmCell(H, H)'s parameter count: "
        + ", ".join(f"H={size}: LSTM {matched_hidden(size, 4)}, GRU {matched_hidden(size, 3)}" for size in sizes)
        + "; lstm256: nn.LSTM(H, 256), RecurrentPPO's default hidden size"
    )
    print(table)
    print(note)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"memory_scan{suffix}.md").write_text(table + "\n\n" + note + "\n")
    plot(results, names, batches, steps, sizes, RESULTS / f"memory_scan{suffix}.png", "GPU" if cuda else "")


def targets(repeats: int):
    """One interleaved run per point of the step loop, the fused kernels and the LSTMs; prints the target ratios."""
    names = ["loop", "fused", "lstm", "lstm256"]
    for size in (32, 64):
        times = interleaved_median({name: make_case(name, 64, 128, size) for name in names}, repeats)
        print(
            f"B=64 T=128 H={size}: "
            + ", ".join(f"{name} {times[name] * 1e3:.0f} ms" for name in names)
            + f"; loop/fused {times['loop'] / times['fused']:.1f}x, lstm/fused {times['lstm'] / times['fused']:.2f}, "
            f"lstm256/fused {times['lstm256'] / times['fused']:.2f}",
            flush=True,
        )


def plot(results, names, batches, steps, sizes, path, where=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = 64 if 64 in batches else batches[0]
    fig, axes = plt.subplots(2, len(sizes), figsize=(5 * len(sizes), 8), squeeze=False)
    for column, size in enumerate(sizes):
        for name in names:
            points = [(t, *results[(name, batch, t, size)]) for t in steps if (name, batch, t, size) in results]
            if not points:
                continue
            ts, times, peaks = zip(*points, strict=True)
            axes[0, column].plot(ts, [s * 1e3 for s in times], marker="o", label=name)
            axes[1, column].plot(ts, [max(p, 2**16) / 2**20 for p in peaks], marker="o", label=name)
        axes[0, column].set_title(f"{where} batch {batch}, H = {size}".strip())
        axes[0, column].set_ylabel("forward + backward (ms)")
        axes[1, column].set_ylabel(f"peak {where} memory growth (MiB)".replace("  ", " "))
        for row in range(2):
            axes[row, column].set_xscale("log", base=2)
            axes[row, column].set_yscale("log")
            axes[row, column].set_xlabel("T (steps)")
            axes[row, column].grid(True, which="both", alpha=0.3)
        axes[0, column].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
