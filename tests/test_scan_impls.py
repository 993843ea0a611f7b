"""Every whole-sequence implementation of the SHM recurrence equals the step-wise reference ("loop")."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch as th

from sb3_shm.common.memory import scan
from sb3_shm.common.memory.scan import select_impl, shm_sequence, shm_step

numba_missing = not scan.fused_available()
needs_numba = pytest.mark.skipif(numba_missing, reason="numba is not installed")

IMPLS = ["scan", "sequential", "chunked", pytest.param("fused", marks=needs_numba), "auto"]


def make_inputs(batch, n_steps, size, reset, scale=1.0, dtype=th.float64, seed=0):
    generator = th.Generator().manual_seed(seed)
    vectors = [(scale * th.randn(batch, n_steps, size, generator=generator, dtype=dtype)).requires_grad_() for _ in range(5)]
    if reset == "none":
        keep = th.ones(batch, n_steps, dtype=dtype)
    elif reset == "every":
        keep = th.zeros(batch, n_steps, dtype=dtype)
    else:  # random resets, always one at t = 0 for the first sequence, none for the others
        keep = (th.rand(batch, n_steps, generator=generator) > 0.3).to(dtype)
        keep[0, 0] = 0.0
        keep[1:, 0] = 1.0
    memory = (scale * th.randn(batch, size, size, generator=generator, dtype=dtype)).requires_grad_()
    return vectors, keep, memory


def run(impl, vectors, keep, memory, clamp, use_last=True):
    y, last = shm_sequence(*vectors, keep, memory, clamp=clamp, impl=impl)
    loss = (y.sin() * th.linspace(0.5, 1.5, y.shape[1], dtype=y.dtype)[None, :, None]).sum()
    if use_last:
        loss = loss + last.cos().sum()
    grads = th.autograd.grad(loss, [*vectors, memory])
    return y.detach(), last.detach(), grads


def assert_same(result, reference, rtol, atol):
    for value, expected in zip(result[:2], reference[:2], strict=True):
        th.testing.assert_close(value, expected, rtol=rtol, atol=atol)
    for grad, expected in zip(result[2], reference[2], strict=True):
        th.testing.assert_close(grad, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n_steps", "size"), [(1, 4), (2, 1), (7, 9), (33, 4), (70, 16)])
@pytest.mark.parametrize("reset", ["random", "every", "none"])
def test_equals_loop_float64(impl, n_steps, size, reset):
    vectors, keep, memory = make_inputs(3, n_steps, size, reset)
    assert_same(run(impl, vectors, keep, memory, None), run("loop", vectors, keep, memory, None), 1e-9, 1e-9)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reset", ["random", "none"])
def test_clamp_binding(impl, reset):
    # |M| crosses the bound mid-sequence (and the initial memory already exceeds it): the per-step clamp acts
    vectors, keep, memory = make_inputs(3, 40, 6, reset, scale=3.0)
    reference = run("loop", vectors, keep, memory, 2.0)
    assert reference[1].abs().max() <= 2.0
    assert not th.allclose(run("loop", vectors, keep, memory, None)[0], reference[0])
    assert_same(run(impl, vectors, keep, memory, 2.0), reference, 1e-9, 1e-9)


@pytest.mark.parametrize("impl", IMPLS)
def test_clamp_not_binding(impl):
    vectors, keep, memory = make_inputs(2, 20, 5, "random", scale=0.5)
    reference = run("loop", vectors, keep, memory, 100.0)
    assert reference[1].abs().max() < 100.0
    assert_same(run(impl, vectors, keep, memory, 100.0), reference, 1e-9, 1e-9)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch", [1, 5])
def test_only_outputs_used(impl, batch):
    # grad of the last memory is None in backward; batch 1 < threads splits rows across tasks in "fused"
    vectors, keep, memory = make_inputs(batch, 9, 8, "random", seed=2)
    reference = run("loop", vectors, keep, memory, 100.0, use_last=False)
    assert_same(run(impl, vectors, keep, memory, 100.0, use_last=False), reference, 1e-9, 1e-9)


@pytest.mark.parametrize("impl", ["loop", *IMPLS])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("clamp", [None, 2.0])
def test_reset_clears_a_non_finite_initial_memory(impl, value, clamp):
    """An episode start at t = 0 drops the initial memory whatever it holds: outputs and gradients as from zeros."""
    vectors, keep, memory = make_inputs(3, 40, 4, "random")
    keep[:, 0] = 0.0
    clean = run("loop", vectors, keep, th.zeros_like(memory).requires_grad_(), clamp)
    poisoned = th.full_like(memory, value).requires_grad_()
    result = run(impl, vectors, keep, poisoned, clamp)
    assert_same(result, clean, 1e-9, 1e-9)
    assert th.equal(result[2][-1], th.zeros_like(memory)), "no gradient reaches the dropped memory"


@pytest.mark.parametrize("impl", ["loop", *IMPLS])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_reset_clears_a_memory_poisoned_mid_sequence(impl, value):
    """
    A non-finite write poisons the memory until the next episode start, and not after: outputs from the reset on,
    and the gradients of those outputs with respect to the inputs from the reset on, equal a clean run's. Batch 0:
    poisoned at t = 40, reset at t = 50 (one fused chunk); batch 1: poisoned at t = 20, reset at t = 40 (across a
    chunk checkpoint).
    """
    vectors, keep, memory = make_inputs(2, 70, 4, "none")
    keep[0, 50] = keep[1, 40] = 0.0
    bad = [vector.detach().clone() for vector in vectors]
    bad[2][0, 40] = bad[2][1, 20] = value  # w = eta * v
    after = th.zeros(2, 70, 1, dtype=th.float64)
    after[0, 50:] = after[1, 40:] = 1.0

    def outputs_after_reset(inputs):
        inputs = [tensor.requires_grad_() for tensor in inputs]
        y, _ = shm_sequence(*inputs, keep, memory.detach(), clamp=None, impl=impl)
        y = th.where(after > 0, y, 0.0)  # the outputs before the reset are NaN / inf in both
        grads = th.autograd.grad((y.sin() * after).sum(), inputs)
        return y.detach(), [th.where(after > 0, grad, 0.0) for grad in grads]  # those before are NaN in both

    clean_y, clean_grads = outputs_after_reset([vector.detach().clone() for vector in vectors])
    y, grads = outputs_after_reset(bad)
    th.testing.assert_close(y, clean_y, rtol=1e-9, atol=1e-9)
    for grad, expected in zip(grads, clean_grads, strict=True):
        th.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", ["chunked", pytest.param("fused", marks=needs_numba)])
def test_gradcheck(impl):
    vectors, keep, memory = make_inputs(2, 5, 3, "random", seed=1)

    def function(*inputs):
        return shm_sequence(*inputs[:5], keep, inputs[5], clamp=None, impl=impl)

    assert th.autograd.gradcheck(function, (*vectors, memory))


def scaled_error(value, reference):
    """max |value - reference| / max |reference|"""
    return ((value.double() - reference).abs().max() / reference.abs().max().clamp_min(1e-30)).item()


@needs_numba
@pytest.mark.parametrize("clamp", [None, 2.0])
def test_fused_float32(clamp):
    # float32 rounding only: the fused kernel is as close to the float64 reference as the float32 step loop is
    vectors, keep, memory = make_inputs(4, 45, 32, "random", scale=3.0 if clamp else 0.5)
    reference = run("loop", vectors, keep, memory, clamp)
    vectors32 = [vector.detach().float().requires_grad_() for vector in vectors]
    memory32 = memory.detach().float().requires_grad_()
    loop32 = run("loop", vectors32, keep.float(), memory32, clamp)
    fused32 = run("fused", vectors32, keep.float(), memory32, clamp)
    assert fused32[0].dtype == th.float32
    for fused, loop, expected in zip(
        (*fused32[:2], *fused32[2]), (*loop32[:2], *loop32[2]), (*reference[:2], *reference[2]), strict=True
    ):
        assert scaled_error(fused, expected) <= max(2 * scaled_error(loop, expected), 1e-6)


@needs_numba
def test_rollout_and_training_agree_float32():
    # Rollouts run shm_step (torch.tanh); training runs the fused kernel: same memories up to float32 rounding
    vectors, keep, memory = make_inputs(8, 128, 32, "random", scale=1.0, dtype=th.float32, seed=3)
    vectors = [vector.detach() for vector in vectors]
    theta, v_c, w, k, q = vectors
    memory = th.zeros_like(memory.detach())
    outputs = []
    for t in range(128):
        memory = shm_step(memory, theta[:, t], v_c[:, t], w[:, t], k[:, t], keep[:, t], 100.0)
        outputs.append(th.einsum("bij,bj->bi", memory, q[:, t]))
    with th.no_grad():
        y, last = shm_sequence(*vectors, keep, th.zeros_like(memory), clamp=100.0, impl="fused")
    assert scaled_error(y, th.stack(outputs, dim=1).double()) < 1e-6
    assert scaled_error(last, memory.double()) < 1e-6


@needs_numba
def test_float32_tanh_is_torch_tanh_to_one_ulp():
    from sb3_shm.common.memory.fused_numba import tanh_float32

    x = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-8, 12, 100_001)]).astype(np.float32)
    x = np.concatenate([x, -x])
    ours = tanh_float32(x)
    reference = th.tanh(th.from_numpy(x)).numpy()
    ulp = np.spacing(np.abs(reference))
    assert np.all(np.abs(ours - reference) <= ulp)


def test_auto_selection(monkeypatch):
    theta = th.zeros(2, 3, 4)
    assert select_impl(theta) == ("sequential" if numba_missing else "fused")
    assert select_impl(theta.to(th.bfloat16)) == "sequential"
    monkeypatch.setattr(scan, "fused_available", lambda: False)
    assert select_impl(theta) == "sequential"


def test_fused_without_numba(monkeypatch):
    monkeypatch.setattr(scan, "_fused_module", lambda: None)
    vectors, keep, memory = make_inputs(1, 3, 2, "random")
    with pytest.raises(ImportError, match="numba"):
        shm_sequence(*vectors, keep, memory, impl="fused")
    shm_sequence(*vectors, keep, memory, impl="auto")  # falls back


def test_numba_threading_layer_is_only_chosen_when_the_user_chose_none():
    """The fused kernel picks numba's workqueue layer (no idle spinning) only if neither the environment variable nor
    numba.config names a layer: importing it never overrides the user's choice."""
    pytest.importorskip("numba")
    code = (
        "import numba, sys; numba.config.THREADING_LAYER = sys.argv[1] or numba.config.THREADING_LAYER;"
        "import sb3_shm.common.memory.fused_numba; print(numba.config.THREADING_LAYER)"
    )

    def layer(set_in_code: str = "", **env: str) -> str:
        environment = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
        result = subprocess.run(
            [sys.executable, "-c", code, set_in_code], capture_output=True, text=True, env={**environment, **env}, check=True
        )
        return result.stdout.strip()

    assert layer() == "workqueue"
    assert layer(NUMBA_THREADING_LAYER="omp") == "omp"
    assert layer("tbb") == "tbb"
