"""
Does ``torch.compile`` help the torch forms of the SHM recurrence on CPU? Forward + backward time of ``loop`` and
``scan`` (:mod:`sb3_shm.common.memory.scan`), eager and compiled (inductor, ``dynamic=False``), beside the fused
numba kernel, at one size (default batch 64, T 128, H 32, clamp 100).

    python benchmarks/torch_compile.py            # several minutes: inductor compiles C++ for each form
    python benchmarks/torch_compile.py --size 16 64 32
    NUMBA_NUM_THREADS=1 python benchmarks/torch_compile.py --threads 1   # steadier on a loaded machine

Prints a markdown table (with the compile times) and writes ``benchmarks/results/torch_compile.md``.
"""

import argparse
import platform
import time
from pathlib import Path

import torch as th

from sb3_shm.common.memory import scan

RESULTS = Path(__file__).resolve().parent / "results"


def make_inputs(batch: int, n_steps: int, size: int) -> tuple[th.Tensor, ...]:
    generator = th.Generator().manual_seed(0)
    vectors = [th.randn(batch, n_steps, size, generator=generator, requires_grad=True) for _ in range(5)]
    keep = (th.rand(batch, n_steps, generator=generator) > 0.05).float()
    memory = th.zeros(batch, size, size, requires_grad=True)
    return (*vectors, keep, memory)


def forward_backward(fn, inputs) -> None:
    y, memory = fn(*inputs, 100.0)
    (y.sum() + memory.sum()).backward()


def median_time(fn, inputs, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward_backward(fn, inputs)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=3, default=[64, 128, 32], metavar=("BATCH", "T", "H"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (numba: set NUMBA_NUM_THREADS)")
    args = parser.parse_args()
    if args.threads:
        th.set_num_threads(args.threads)
    inputs = make_inputs(*args.size)
    forms = {"loop": scan._loop, "scan": scan._scan}
    rows = []
    for name, fn in forms.items():
        compiled = th.compile(fn, dynamic=False)
        start = time.perf_counter()
        forward_backward(compiled, inputs)  # compiles forward and backward
        compile_s = time.perf_counter() - start
        forward_backward(fn, inputs)  # warm-up
        eager, fast = median_time(fn, inputs, args.repeats), median_time(compiled, inputs, args.repeats)
        rows.append((name, eager, fast, compile_s))
        print(f"{name}: eager {eager * 1e3:.0f} ms, compiled {fast * 1e3:.0f} ms (compile {compile_s:.0f} s)", flush=True)
    fused = None
    if scan.fused_available():
        forward_backward(scan._fused, inputs)
        fused = median_time(scan._fused, inputs, args.repeats)
    batch, n_steps, size = args.size
    lines = [
        f"Forward + backward, batch {batch}, T {n_steps}, H {size}, clamp 100, median of {args.repeats}. "
        f"torch {th.__version__} ({th.get_num_threads()} threads), {platform.processor() or platform.machine()}.",
        "",
        "| form | eager | torch.compile | speed-up | compile time | fused numba kernel |",
        "|---|---|---|---|---|---|",
    ]
    for name, eager, fast, compile_s in rows:
        fused_cell = f"{fused * 1e3:.0f} ms ({fast / fused:.0f}x faster than compiled)" if fused else "n/a"
        lines.append(
            f"| {name} | {eager * 1e3:.0f} ms | {fast * 1e3:.0f} ms | {eager / fast:.2f}x | {compile_s:.0f} s | {fused_cell} |"
        )
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "torch_compile.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
