"""The whole-sequence forms of the SHM recurrence equal the step-wise reference, forward and gradients."""

import pytest
import torch as th

from sb3_shm.common.memory.scan import associative_scan, shm_sequence

IMPLS = ["scan", "sequential", "auto"]


def make_inputs(batch: int, n_steps: int, size: int, reset: str, scale: float = 1.0, dtype=th.float64, seed: int = 0):
    generator = th.Generator().manual_seed(seed)
    vectors = [(scale * th.randn(batch, n_steps, size, generator=generator, dtype=dtype)).requires_grad_() for _ in range(5)]
    if reset == "none":
        keep = th.ones(batch, n_steps, dtype=dtype)
    elif reset == "every":
        keep = th.zeros(batch, n_steps, dtype=dtype)
    else:  # random resets, always one at t = 0
        keep = (th.rand(batch, n_steps, generator=generator) > 0.3).to(dtype)
        keep[:, 0] = 0.0
    memory = (scale * th.randn(batch, size, size, generator=generator, dtype=dtype)).requires_grad_()
    return vectors, keep, memory


def run(impl, vectors, keep, memory, clamp):
    y, last = shm_sequence(*vectors, keep, memory, clamp=clamp, impl=impl)
    loss = (y.sin() * th.linspace(0.5, 1.5, y.shape[1], dtype=y.dtype)[None, :, None]).sum() + last.cos().sum()
    grads = th.autograd.grad(loss, [*vectors, memory])
    return y.detach(), last.detach(), grads


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n_steps", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("size", [1, 4, 9])
@pytest.mark.parametrize("reset", ["random", "every", "none"])
def test_sequence_equals_step_loop(impl, n_steps, size, reset):
    vectors, keep, memory = make_inputs(3, n_steps, size, reset)
    y_ref, last_ref, grads_ref = run("loop", vectors, keep, memory, clamp=None)
    y, last, grads = run(impl, vectors, keep, memory, clamp=None)
    th.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    th.testing.assert_close(last, last_ref, rtol=1e-10, atol=1e-10)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        th.testing.assert_close(grad, grad_ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("impl", IMPLS)
def test_clamp_that_binds_is_applied_at_every_step(impl):
    # Large inputs so that |M| crosses the bound mid-sequence: the scan must fall back to the exact recurrence
    vectors, keep, memory = make_inputs(2, 12, 5, "random", scale=3.0)
    y_ref, last_ref, grads_ref = run("loop", vectors, keep, memory, clamp=2.0)
    assert last_ref.abs().max() <= 2.0
    y, last, grads = run(impl, vectors, keep, memory, clamp=2.0)
    th.testing.assert_close(y, y_ref)
    th.testing.assert_close(last, last_ref)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        th.testing.assert_close(grad, grad_ref)
    # and the clamp really changed the result
    y_free, _, _ = run("loop", vectors, keep, memory, clamp=None)
    assert not th.allclose(y_free, y_ref)


@pytest.mark.parametrize("impl", ["scan", "sequential"])
def test_gradcheck(impl):
    vectors, keep, memory = make_inputs(2, 5, 3, "random", seed=1)

    def function(*inputs):
        return shm_sequence(*inputs[:5], keep, inputs[5], clamp=None, impl=impl)

    assert th.autograd.gradcheck(function, (*vectors, memory))


def test_float32_matches_float64():
    vectors, keep, memory = make_inputs(4, 64, 8, "random")
    y64, _, _ = run("auto", vectors, keep, memory, clamp=100.0)
    vectors32 = [v.detach().float() for v in vectors]
    y32, _ = shm_sequence(*vectors32, keep.float(), memory.detach().float(), impl="auto")
    assert y32.dtype == th.float32
    th.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-4)


def test_associative_scan_is_the_linear_recurrence():
    a, b = th.rand(2, 13, 3, dtype=th.float64), th.randn(2, 13, 3, dtype=th.float64)
    x, expected = th.zeros(2, 3, dtype=th.float64), []
    for t in range(13):
        x = a[:, t] * x + b[:, t]
        expected.append(x)
    th.testing.assert_close(associative_scan(a, b), th.stack(expected, dim=1))


def test_bad_arguments():
    vectors, keep, memory = make_inputs(1, 3, 2, "random")
    with pytest.raises(ValueError, match="Unknown scan implementation"):
        shm_sequence(*vectors, keep, memory, impl="magic")
    empty = [v[:, :0] for v in vectors]
    with pytest.raises(ValueError, match="at least one step"):
        shm_sequence(*empty, keep[:, :0], memory)
