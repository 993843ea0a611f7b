"""
The Triton kernels (``impl="triton"``) equal the step-wise reference ("loop"), forward and gradients.

Without a GPU they run on CPU tensors in Triton's interpreter. ``TRITON_INTERPRET=1`` must be set before triton is
imported (``tl.sum`` and the other ``triton.language`` helpers are jitted at import), so the ``test_interp_*`` tests
run only in a process started with it: :func:`test_interpreter_subprocess` starts one (``pytest -k test_interp_``).
To run them directly: ``TRITON_INTERPRET=1 python -m pytest tests/test_triton.py``.
"""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_shm.common.memory import scan
from sb3_shm.common.memory.scan import select_impl, shm_sequence

needs_triton = pytest.mark.skipif(not scan.triton_available(), reason="triton is not installed (pip install triton)")
needs_cuda = pytest.mark.skipif(not th.cuda.is_available(), reason="no CUDA GPU")
# this process was started with the interpreter on (so triton was imported with it)
INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at process start: run by test_interpreter_subprocess"
)


def make_inputs(batch, n_steps, size, reset, scale=1.0, dtype=th.float32, seed=0, device="cpu"):
    generator = th.Generator().manual_seed(seed)
    vectors = [scale * th.randn(batch, n_steps, size, generator=generator, dtype=th.float64) for _ in range(5)]
    if reset == "every":
        keep = th.zeros(batch, n_steps, dtype=th.float64)
    else:  # resets anywhere (always at t = 0 for the first sequence) and fractional keep factors
        keep = th.rand(batch, n_steps, generator=generator, dtype=th.float64)
        keep = th.where(keep < 0.25, 0.0, th.where(keep > 0.6, 1.0, keep))
        keep[0, 0] = 0.0
    memory = scale * th.randn(batch, size, size, generator=generator, dtype=th.float64)
    vectors = [vector.to(device, dtype).requires_grad_() for vector in vectors]
    return vectors, keep.to(device, dtype), memory.to(device, dtype).requires_grad_()


def run(function, vectors, keep, memory, use_last=True):
    y, last = function(*vectors, keep, memory)
    loss = (y.sin() * th.linspace(0.5, 1.5, y.shape[1], dtype=y.dtype, device=y.device)[None, :, None]).sum()
    if use_last:
        loss = loss + last.cos().sum()
    grads = th.autograd.grad(loss, [*vectors, memory])
    return y.detach(), last.detach(), grads


def impl(name, clamp):
    return lambda *args: shm_sequence(*args, clamp=clamp, impl=name)


def assert_same(result, reference, rtol, atol):
    for value, expected in zip((*result[:2], *result[2]), (*reference[:2], *reference[2]), strict=True):
        th.testing.assert_close(value, expected, rtol=rtol, atol=atol)


def scaled_error(value, reference):
    """max |value - reference| / max |reference|"""
    return ((value.double() - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


def assert_matches_loop(function, vectors, keep, memory, clamp, use_last=True):
    """
    float64: equal to "loop" to 1e-9. float32: errors against the float64 "loop" on the same (float32) inputs, scaled
    by the largest value, within 4x those of the float32 "loop" or 1e-5 (the largest seen is about 3e-6; the kernel's
    tanh and summation order differ from torch's).
    """
    result = run(function, vectors, keep, memory, use_last)
    assert result[0].dtype == vectors[0].dtype
    if vectors[0].dtype == th.float64:
        assert_same(result, run(impl("loop", clamp), vectors, keep, memory, use_last), 1e-9, 1e-9)
        return
    vectors64 = [vector.detach().double().requires_grad_() for vector in vectors]
    memory64 = memory.detach().double().requires_grad_()
    reference = run(impl("loop", clamp), vectors64, keep.double(), memory64, use_last)
    loop32 = run(impl("loop", clamp), vectors, keep, memory, use_last)
    names = ["y", "last", "theta", "v_c", "w", "k", "q", "memory"]
    for name, value, loop, expected in zip(
        names, (*result[:2], *result[2]), (*loop32[:2], *loop32[2]), (*reference[:2], *reference[2]), strict=True
    ):
        error, loop_error = scaled_error(value, expected), scaled_error(loop, expected)
        assert error <= max(4 * loop_error, 1e-5), f"{name}: {error:.2e} vs float32 loop {loop_error:.2e}"


@needs_interpreter
@needs_triton
@pytest.mark.parametrize("n_steps", [1, 5, 17])
@pytest.mark.parametrize("size", [1, 4, 8])
@pytest.mark.parametrize("clamp", [None, 2.0])
@pytest.mark.parametrize("reset", ["random", "every"])
def test_interp_equals_loop(n_steps, size, clamp, reset):
    vectors, keep, memory = make_inputs(2, n_steps, size, reset, scale=3.0 if clamp else 1.0)
    if clamp is not None and n_steps > 1:
        assert (run(impl("loop", None), vectors, keep, memory)[1].abs() > clamp).any()  # the clamp binds
    assert_matches_loop(impl("triton", clamp), vectors, keep, memory, clamp)


@needs_interpreter
@needs_triton
@pytest.mark.parametrize("dtype", [th.float32, th.float64])
@pytest.mark.parametrize(("batch", "n_steps", "size", "chunk"), [(2, 17, 20, 4), (1, 9, 5, 3), (3, 6, 33, 6)])
@pytest.mark.parametrize("clamp", [None, 2.0])
def test_interp_chunks_and_row_blocks(dtype, batch, n_steps, size, chunk, clamp):
    # several checkpoints (a partial last chunk) and several row blocks (column-sum partials); "loop" in float64
    from sb3_shm.common.memory.fused_triton import TritonShm

    vectors, keep, memory = make_inputs(batch, n_steps, size, "random", scale=3.0 if clamp else 1.0, dtype=dtype, seed=1)
    assert_matches_loop(lambda *args: TritonShm.apply(*args, clamp, chunk), vectors, keep, memory, clamp)


@needs_interpreter
@needs_triton
def test_interp_only_outputs_used():
    # the gradient of the last memory is None in backward
    vectors, keep, memory = make_inputs(2, 9, 8, "random", seed=2)
    assert_matches_loop(impl("triton", 100.0), vectors, keep, memory, 100.0, use_last=False)


def assert_reset_clears_non_finite_memory(device):
    """
    An episode start drops whatever the memory held (NaN here): at t = 0 (the initial memory) and after a NaN write
    mid-sequence (batch 0: before a chunk checkpoint, batch 1: across one). Outputs from the reset on, and their
    gradients with respect to the inputs from the reset on (the memory's gradient: everywhere), equal "loop"'s.
    """
    vectors, keep, memory = make_inputs(2, 40, 6, "random", dtype=th.float64, device=device)
    keep = th.ones_like(keep)
    keep[:, 0] = keep[0, 20] = keep[1, 35] = 0.0
    poisoned = th.full_like(memory, float("nan")).requires_grad_()
    with th.no_grad():
        vectors[2][0, 10] = vectors[2][1, 25] = float("nan")  # w = eta * v
    after = th.ones(2, 40, 1, dtype=th.float64, device=device)
    after[0, 10:20] = after[1, 25:35] = 0.0

    def masked(function):
        y, last = function(*vectors, keep, poisoned)
        loss = (th.where(after > 0, y, 0.0).sin() * after).sum() + last.cos().sum()
        grads = th.autograd.grad(loss, [*vectors, poisoned])
        return [th.where(after > 0, y, 0.0), last, *(th.where(after > 0, grad, 0.0) for grad in grads[:5]), grads[5]]

    for value, expected in zip(masked(impl("triton", None)), masked(impl("loop", None)), strict=True):
        th.testing.assert_close(value, expected, rtol=1e-9, atol=1e-9)


@needs_interpreter
@needs_triton
@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(
    batch=st.integers(1, 3),
    n_steps=st.integers(1, 40),
    size=st.integers(1, 20),
    dtype=st.sampled_from([th.float32, th.float64]),
    clamp=st.sampled_from([None, 2.0, 100.0]),
    reset=st.sampled_from(["random", "every"]),
    seed=st.integers(0, 2**16),
)
def test_interp_matches_loop_property(batch, n_steps, size, dtype, clamp, reset, seed):
    """The property of ``tests/test_memory_properties.py`` for the Triton kernels (in the interpreter: fewer examples)."""
    scale = 3.0 if clamp == 2.0 else 1.0  # a clamp of 2 binds
    vectors, keep, memory = make_inputs(batch, n_steps, size, reset, scale=scale, dtype=dtype, seed=seed)
    assert_matches_loop(impl("triton", clamp), vectors, keep, memory, clamp)


@needs_interpreter
@needs_triton
def test_interp_reset_clears_non_finite_memory():
    assert_reset_clears_non_finite_memory("cpu")


@pytest.mark.skipif(INTERPRETER, reason="CUDA kernels, not the interpreter")
@needs_cuda
@needs_triton
def test_reset_clears_non_finite_memory_cuda(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert_reset_clears_non_finite_memory("cuda")


@pytest.mark.skipif(INTERPRETER, reason="CUDA kernels, not the interpreter")
@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [th.float32, th.float64])
@pytest.mark.parametrize("clamp", [None, 2.0])
@pytest.mark.parametrize(("n_steps", "size"), [(1, 4), (17, 8), (70, 33)])
def test_equals_loop_cuda(monkeypatch, dtype, clamp, n_steps, size):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    vectors, keep, memory = make_inputs(3, n_steps, size, "random", 3.0 if clamp else 1.0, dtype, device="cuda")
    assert select_impl(vectors[0]) == "triton"
    assert_matches_loop(impl("triton", clamp), vectors, keep, memory, clamp)


@pytest.mark.skipif(INTERPRETER, reason="already in the interpreter's process")
@needs_triton
def test_interpreter_subprocess():
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "test_interp_"]
    result = subprocess.run(
        command, cwd=root, env={**os.environ, "TRITON_INTERPRET": "1"}, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


@pytest.mark.skipif(INTERPRETER, reason="compiles the kernels, not the interpreter")
@needs_triton
def test_compiles_for_cuda(monkeypatch, tmp_path):
    # Ahead-of-time compilation to a CUDA binary (sm_80) needs no GPU: it catches what the interpreter accepts
    # but the compiler does not (types of loop-carried values, tensor loop bounds, fp64 math).
    import inspect

    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as error:
        pytest.skip(f"this triton has no ahead-of-time API: {error}")
    if "nvidia" not in getattr(triton.backends, "backends", {}):
        pytest.skip("this triton has no CUDA backend")
    from sb3_shm.common.memory.fused_triton import _kernels

    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9 warns when it is unset
    integers = ("n_steps", "size", "n_chunks", "n_batch")
    for dtype in ("fp32", "fp64"):
        for use_clamp in (True, False):
            constants = {"CHUNK": 32, "BLOCK_I": 16, "BLOCK_J": 64, "USE_CLAMP": use_clamp, "LIBDEVICE_TANH": True}
            for kernel in _kernels(False):
                signature = {
                    name: "constexpr" if name in constants else "i32" if name in integers else f"*{dtype}"
                    for name in inspect.signature(kernel.fn).parameters
                }
                compiled = triton.compile(ASTSource(kernel, signature, constants), target=GPUTarget("cuda", 80, 32))
                assert compiled.asm["cubin"]


@pytest.mark.skipif(INTERPRETER, reason="needs triton imported without the interpreter")
@needs_triton
def test_interpreter_switched_on_late(monkeypatch):
    import triton  # noqa: F401 (imported without the interpreter)

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    vectors, keep, memory = make_inputs(1, 3, 2, "random")
    with pytest.raises(RuntimeError, match="after triton was imported"):
        shm_sequence(*vectors, keep, memory, impl="triton")


@needs_triton
def test_cpu_without_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    vectors, keep, memory = make_inputs(1, 3, 2, "random")
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        shm_sequence(*vectors, keep, memory, impl="triton")


def test_without_triton(monkeypatch):
    monkeypatch.setattr(scan, "_triton_module", lambda: None)
    vectors, keep, memory = make_inputs(1, 3, 2, "random")
    with pytest.raises(ValueError, match="pip install"):
        shm_sequence(*vectors, keep, memory, impl="triton")
    cuda_like = types.SimpleNamespace(device=th.device("cuda"), dtype=th.float32)
    assert select_impl(cuda_like) == "sequential"


def test_auto_selection(monkeypatch):
    monkeypatch.setattr(scan, "triton_available", lambda: True)
    assert select_impl(types.SimpleNamespace(device=th.device("cuda"), dtype=th.float32)) == "triton"
    assert select_impl(types.SimpleNamespace(device=th.device("cuda"), dtype=th.float16)) == "sequential"
    assert select_impl(th.zeros(2, 3, 4)) == ("fused" if scan.fused_available() else "sequential")


def test_import_does_not_import_triton():
    code = (
        "import sys, torch, sb3_shm, sb3_shm.common.memory.scan as scan\n"
        "from sb3_shm.common.memory.scan import shm_sequence\n"
        "x = torch.zeros(1, 2, 3)\n"
        "shm_sequence(x, x, x, x, x, torch.ones(1, 2), torch.zeros(1, 3, 3))\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
