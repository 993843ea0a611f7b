"""Shared helpers of the benchmark scripts: machine description, interleaved timing, markdown tables."""

import os
import platform
import statistics
import threading
import time

import torch as th


def machine(device: str = "cpu") -> str:
    """:return: one line describing the CPU (or GPU), threads and library versions"""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = "not installed"
    if device == "cuda":
        import triton

        cpu = f"{th.cuda.get_device_name()} (CUDA {th.version.cuda}, triton {triton.__version__}) with {cpu}"
    return (
        f"{cpu}, {os.cpu_count()} CPUs, torch {th.__version__} ({th.get_num_threads()} threads), "
        f"numba {numba_version}, Python {platform.python_version()}"
    )


def rss_bytes() -> int:
    """:return: resident set size of this process (Linux)"""
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Samples the RSS every millisecond in a thread: the peak above the RSS at entry (coarse, allocator-dependent)."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.bytes = self.peak - self.start


def interleaved_median(functions: dict, repeats: int) -> dict:
    """
    Time each function ``repeats`` times, alternating between them so that load changes on a shared machine hit
    all of them alike. One untimed warm-up call each.

    :return: name -> median seconds
    """
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def markdown_table(header: list, rows: list) -> str:
    """:return: a markdown table"""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
