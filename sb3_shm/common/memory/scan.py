"""
The SHM recurrence over whole sequences: ``M_t = clamp(C_t * (keep_t * M_{t-1}) + U_t)``.

Every entry of ``M`` is its own scalar linear recurrence (a Hadamard product), with

    C_t = 1 + tanh(outer(theta_t, v_c_t))    # (H, H), entries in [0, 2]
    U_t = outer(w_t, k_t)                    # (H, H), w_t = eta_t * v_t
    y_t = M_t @ q_t                          # (H,)    the read-out

``keep_t = 1 - episode_start_t`` resets the memory inside a sequence. A reset (``keep_t == 0``) replaces ``M_{t-1}`` by
the initial memory 0 whatever it holds, NaN and inf included, with a select (:func:`reset_memory`), not a multiply:
``0 * NaN`` is NaN, so a multiply would let one non-finite memory poison the environment for good. Every
implementation below does the same, forward and backward (the gradient into ``M_{t-1}`` at a reset is exactly 0),
so they agree with ``"loop"`` on any memory before a reset, and on any input before it as far as the outputs after
it are concerned. This module is the only place the
recurrence lives; :class:`~sb3_shm.common.memory.shm.ShmCell` builds its inputs. The implementations
share one signature and give the same outputs and gradients:

- ``"loop"``: the step-wise reference (plain autograd), one step at a time exactly like a rollout.
- ``"scan"``: a Hillis-Steele associative scan over pairs ``(a_t, b_t) = (C_t * keep_t, U_t)`` with
  ``(a1, b1) o (a2, b2) = (a1 * a2, a2 * b1 + b2)``: O(log T) depth, division free (C reaches 0, so
  ``cumsum(U / cumprod(C))`` would produce NaN).
- ``"sequential"``: a custom :class:`torch.autograd.Function` that walks t forward, keeps only the
  memories ``M_t`` and runs the reverse-time recurrence in its backward
  (``dM_{t-1} = keep_t * C_t * dM_t``, ``dC_t = dM_t * keep_t * M_{t-1}``, ``dU_t = dM_t``).
- ``"chunked"``: the scan over chunks of 32 steps, sequential across chunks, each chunk under activation checkpointing
  (memory O(B H^2 T / 32)); same clamp rule as ``"scan"``.
- ``"fused"``: numba kernels (:mod:`~sb3_shm.common.memory.fused_numba`, optional dependency) that form ``C_t`` and
  ``U_t`` on the fly, keep only chunk checkpoints of ``M`` and recompute them in backward; CPU, float32 / float64.
  Applies the clamp at every step exactly like ``"loop"``. Its float32 tanh is within one ulp of ``torch.tanh``
  (see that module), so rollouts (:func:`shm_step`, ``torch.tanh``) and training agree to float32 rounding.
- ``"triton"``: the same fused forward / backward as Triton GPU kernels
  (:mod:`~sb3_shm.common.memory.fused_triton`, optional dependency); CUDA float32 / float64 tensors, or CPU tensors
  under Triton's interpreter (``TRITON_INTERPRET=1``, slow, for tests). Tested equal to ``"loop"`` on an H200 and an H100
  (``tests/test_cuda.py``) and on CPU through the interpreter; 10-30x faster than ``"sequential"`` on that GPU.
- ``"auto"``: ``"fused"`` on CPU when numba is installed (5-10x faster than the others, ``docs/benchmarks.md``),
  ``"triton"`` on CUDA when triton is installed, otherwise ``"sequential"``.

The clamp. The authors guard the memory with ``clamp(M, -100, 100)`` at every step. A clamp is not part of a
linear recurrence, so the associative scan cannot apply it per step. We keep the per-step clamp as the
definition (rollouts use it) and make every form agree with it exactly: ``"loop"`` and ``"sequential"``
apply it at every step; ``"scan"`` computes the unclamped recurrence and checks its result: if no entry
left ``[-clamp, clamp]`` the clamp never acted, so the result is the clamped recurrence; otherwise the batch is
recomputed with ``"sequential"``. Gradients through a clamped entry are zero, as for ``torch.clamp``.
"""

import functools
import importlib
from typing import Literal

import numpy as np
import torch as th
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

ScanImpl = Literal["auto", "loop", "scan", "sequential", "chunked", "fused", "triton"]
SCAN_IMPLS = ("auto", "loop", "scan", "sequential", "chunked", "fused", "triton")


def calibration(theta: th.Tensor, v_c: th.Tensor) -> th.Tensor:
    """
    ``C = 1 + tanh(outer(theta, v_c))``.

    :param theta: (..., H)
    :param v_c: (..., H)
    :return: (..., H, H)
    """
    return 1.0 + th.tanh(theta.unsqueeze(-1) * v_c.unsqueeze(-2))


def update(w: th.Tensor, k: th.Tensor) -> th.Tensor:
    """
    ``U = outer(w, k)`` with ``w = eta * v``.

    :param w: (..., H)
    :param k: (..., H)
    :return: (..., H, H)
    """
    return w.unsqueeze(-1) * k.unsqueeze(-2)


def reset_memory(keep: th.Tensor, memory: th.Tensor) -> th.Tensor:
    """
    ``keep * memory``, and exactly 0 where ``keep`` is 0 (an episode start) even if the memory is NaN or inf.

    The select comes before the multiply: ``where(keep == 0, 0, keep * memory)`` would give the right values, but its
    gradient with respect to ``keep`` would be ``0 * memory``, NaN again.

    :param keep: factor on the previous memory, broadcastable to ``memory``, e.g. (B, 1, 1)
    :param memory: M_{t-1}, e.g. (B, H, H)
    :return: the part of M_{t-1} that the next step keeps, shaped like ``memory``
    """
    return keep * th.where(keep == 0, 0.0, memory)


def shm_step(
    memory: th.Tensor,
    theta: th.Tensor,
    v_c: th.Tensor,
    w: th.Tensor,
    k: th.Tensor,
    keep: th.Tensor,
    clamp: float | None,
) -> th.Tensor:
    """
    One step of the recurrence (rollouts, ``predict`` and the ``"loop"`` reference).

    :param memory: M_{t-1}, (B, H, H)
    :param theta: calibration row, (B, H)
    :param v_c: (B, H)
    :param w: eta * v, (B, H)
    :param k: (B, H)
    :param keep: 1 - episode_start, (B,); where it is 0 the previous memory is dropped whatever it holds (NaN, inf)
    :param clamp: bound on |M|, or None
    :return: M_t, (B, H, H)
    """
    memory = calibration(theta, v_c) * reset_memory(keep.view(-1, 1, 1), memory) + update(w, k)
    if clamp is not None:
        memory = memory.clamp(-clamp, clamp)
    return memory


def _loop(theta, v_c, w, k, q, keep, memory, clamp):
    outputs = []
    for t in range(theta.shape[1]):
        memory = shm_step(memory, theta[:, t], v_c[:, t], w[:, t], k[:, t], keep[:, t], clamp)
        outputs.append(th.einsum("bij,bj->bi", memory, q[:, t]))
    return th.stack(outputs, dim=1), memory


def associative_scan(a: th.Tensor, b: th.Tensor) -> th.Tensor:
    """
    Inclusive Hillis-Steele scan of ``x_t = a_t * x_{t-1} + b_t`` with ``x_{-1} = 0`` along dim 1.

    :param a: (B, T, ...)
    :param b: (B, T, ...)
    :return: x, (B, T, ...)
    """
    offset = 1
    while offset < a.shape[1]:
        # (a1, b1) o (a2, b2) = (a1 * a2, a2 * b1 + b2): combine each element with the one `offset` before it. Where
        # a2 is 0 (a reset inside the later window) the earlier window is dropped by a select, so a NaN or inf
        # before a reset does not leak through it (0 * inf = NaN), as in the step loop.
        later = a[:, offset:]
        b = th.cat([b[:, :offset], reset_memory(later, b[:, :-offset]) + b[:, offset:]], dim=1)
        a = th.cat([a[:, :offset], reset_memory(later, a[:, :-offset])], dim=1)
        offset *= 2
    return b


def _fold_initial_memory(a: th.Tensor, b: th.Tensor, keep: th.Tensor, memory: th.Tensor) -> th.Tensor:
    """
    ``b_0 <- C_0 * (keep_0 * M_init) + b_0``, the initial memory dropped exactly where step 0 starts an episode.

    :param a: C_t * keep_t, (B, T, H, H)
    :param b: U_t, (B, T, H, H)
    :param keep: (B, T)
    :param memory: M_init, (B, H, H)
    :return: b with the initial memory folded into step 0, (B, T, H, H)
    """
    first = a[:, 0] * th.where(keep[:, 0, None, None] == 0, 0.0, memory) + b[:, 0]  # a_0 = 0 there: see reset_memory
    return th.cat([first.unsqueeze(1), b[:, 1:]], dim=1)


def _scan(theta, v_c, w, k, q, keep, memory, clamp):
    a = calibration(theta, v_c) * keep[..., None, None]  # (B, T, H, H)
    b = update(w, k)  # (B, T, H, H)
    b = _fold_initial_memory(a, b, keep, memory)
    memories = associative_scan(a, b)  # (B, T, H, H)
    if clamp is not None and bool((memories.detach().abs() > clamp).any()):
        # The clamp would have acted somewhere: the unclamped scan is not the recurrence, recompute exactly.
        return _sequential(theta, v_c, w, k, q, keep, memory, clamp)
    return th.einsum("btij,btj->bti", memories, q), memories[:, -1]


def _sequential_forward(theta, v_c, w, k, q, keep, memory, clamp):
    """Forward of ``"sequential"``: returns the outputs and everything its backward needs."""
    tanh_z = th.tanh(theta.unsqueeze(-1) * v_c.unsqueeze(-2))  # (B, T, H, H)
    updates = update(w, k)  # (B, T, H, H)
    memories = th.empty_like(updates)  # M_t for t = 0..T-1
    for t in range(theta.shape[1]):
        memory = (1.0 + tanh_z[:, t]) * reset_memory(keep[:, t, None, None], memory) + updates[:, t]
        if clamp is not None:
            memory = memory.clamp(-clamp, clamp)
        memories[:, t] = memory
    return memories, tanh_z


class SequentialShm(th.autograd.Function):
    """
    The recurrence with a hand-written backward: it stores ``M_t`` (B, T, H, H) and ``tanh`` of the calibration,
    and none of autograd's per-step intermediates.
    """

    @staticmethod
    def forward(ctx, theta, v_c, w, k, q, keep, initial_memory, clamp):
        memories, tanh_z = _sequential_forward(theta, v_c, w, k, q, keep, initial_memory, clamp)
        ctx.clamp = clamp
        ctx.save_for_backward(theta, v_c, w, k, q, keep, initial_memory, memories, tanh_z)
        return th.einsum("btij,btj->bti", memories, q), memories[:, -1].clone()

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        theta, v_c, w, k, q, keep, initial_memory, memories, tanh_z = ctx.saved_tensors
        clamp = ctx.clamp
        n_steps = theta.shape[1]
        grad_q = th.einsum("btij,bti->btj", memories, grad_y)
        grad_theta, grad_v_c = th.zeros_like(theta), th.zeros_like(v_c)
        grad_w, grad_k = th.zeros_like(w), th.zeros_like(k)
        # dL/dM_t, carried backwards in time
        grad_m = grad_last.clone() if grad_last is not None else th.zeros_like(initial_memory)
        for t in range(n_steps - 1, -1, -1):
            grad_m = grad_m + grad_y[:, t].unsqueeze(-1) * q[:, t].unsqueeze(-2)
            previous = memories[:, t - 1] if t > 0 else initial_memory
            kept = reset_memory(keep[:, t, None, None], previous)  # (B, H, H)
            if clamp is not None:
                # torch.clamp lets the gradient through where the pre-clamp value lies inside [-clamp, clamp]
                pre = (1.0 + tanh_z[:, t]) * kept + w[:, t].unsqueeze(-1) * k[:, t].unsqueeze(-2)
                grad_m = grad_m * (pre.abs() <= clamp)
            # U_t = outer(w, k)
            grad_w[:, t] = th.einsum("bij,bj->bi", grad_m, k[:, t])
            grad_k[:, t] = th.einsum("bij,bi->bj", grad_m, w[:, t])
            # C_t = 1 + tanh(outer(theta, v_c))
            grad_z = grad_m * kept * (1.0 - tanh_z[:, t] ** 2)
            grad_theta[:, t] = th.einsum("bij,bj->bi", grad_z, v_c[:, t])
            grad_v_c[:, t] = th.einsum("bij,bi->bj", grad_z, theta[:, t])
            # exactly 0 at a reset: M_t does not depend on M_{t-1} there, even where dL/dM_t is not finite
            grad_m = reset_memory(keep[:, t, None, None], grad_m * (1.0 + tanh_z[:, t]))
        # keep comes from episode starts (data): no gradient
        return grad_theta, grad_v_c, grad_w, grad_k, grad_q, None, grad_m, None


def _sequential(theta, v_c, w, k, q, keep, memory, clamp):
    return SequentialShm.apply(theta, v_c, w, k, q, keep, memory, clamp)


def _chunked(theta, v_c, w, k, q, keep, memory, clamp, chunk: int = 32):
    """
    Sequential across chunks of ``chunk`` steps, Hillis-Steele scan inside each; every chunk runs under activation
    checkpointing, so only ``(B, chunk, H, H)`` is alive at a time (plus the chunk's recomputation in backward).
    """
    outputs: list[th.Tensor] = []
    chunks: list[th.Tensor] = []
    for t0 in range(0, theta.shape[1], chunk):
        piece = slice(t0, t0 + chunk)
        args = (theta[:, piece], v_c[:, piece], w[:, piece], k[:, piece], q[:, piece], keep[:, piece], memory)
        if th.is_grad_enabled() and any(tensor.requires_grad for tensor in args):
            y, memory, peak = checkpoint(_chunk_scan, *args, use_reentrant=False)
        else:
            y, memory, peak = _chunk_scan(*args)
        if clamp is not None and bool(peak > clamp):
            return _sequential(theta, v_c, w, k, q, keep, chunks[0] if chunks else args[-1], clamp)
        if not chunks:
            chunks.append(args[-1])  # the initial memory, for the fallback above
        outputs.append(y)
    return th.cat(outputs, dim=1), memory


def _chunk_scan(theta, v_c, w, k, q, keep, memory):
    """One chunk of :func:`_chunked`: read-outs (B, K, H), last memory (B, H, H), max |M| (detached scalar)."""
    a = calibration(theta, v_c) * keep[..., None, None]  # (B, K, H, H)
    b = update(w, k)
    b = _fold_initial_memory(a, b, keep, memory)
    memories = associative_scan(a, b)
    return th.einsum("btij,btj->bti", memories, q), memories[:, -1], memories.detach().abs().amax()


class FusedShm(th.autograd.Function):
    """
    The numba kernels of :mod:`sb3_shm.common.memory.fused_numba`: forward keeps only chunk checkpoints of M,
    backward recomputes each chunk row by row and runs the reverse-time recurrence. CPU, float32 / float64.
    """

    @staticmethod
    def forward(ctx, theta, v_c, w, k, q, keep, initial_memory, clamp, chunk):
        fused = _fused_module()
        arrays = [tensor.detach().contiguous().numpy() for tensor in (theta, v_c, w, k, q, keep, initial_memory)]
        y, last, ckpt = fused.fused_forward(*arrays, clamp, chunk)
        ctx.clamp, ctx.chunk = clamp, chunk
        ctx.arrays = arrays[:6]
        ctx.ckpt = ckpt
        return th.from_numpy(y), th.from_numpy(last)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_last):
        fused = _fused_module()
        theta = ctx.arrays[0]
        grad_y = np.zeros_like(theta) if grad_y is None else grad_y.contiguous().numpy()
        if grad_last is None:
            grad_last = np.zeros(ctx.ckpt.shape[:1] + ctx.ckpt.shape[2:], dtype=theta.dtype)
        else:
            grad_last = grad_last.contiguous().numpy()
        grads = fused.fused_backward(*ctx.arrays, ctx.clamp, ctx.chunk, ctx.ckpt, grad_y, grad_last)
        g_theta, g_v_c, g_w, g_k, g_q, g_m0 = (th.from_numpy(np.ascontiguousarray(grad)) for grad in grads)
        return g_theta, g_v_c, g_w, g_k, g_q, None, g_m0, None, None


FUSED_CHUNK = 32


def _kernel_inputs(theta: th.Tensor, *tensors: th.Tensor) -> tuple[th.Tensor, ...]:
    """The fused kernels take one dtype: theta's (keep and the initial memory may come in another)."""
    return (theta, *(tensor.to(theta.dtype) for tensor in tensors))


def _kernel_chunk(theta: th.Tensor) -> int:
    """:return: steps between the fused kernels' checkpoints of M for (B, T, H) inputs"""
    return min(FUSED_CHUNK, theta.shape[1])


def _fused(theta, v_c, w, k, q, keep, memory, clamp):
    if theta.device.type != "cpu" or theta.dtype not in (th.float32, th.float64):
        raise ValueError(f'impl="fused" runs on CPU float32 / float64 tensors, got {theta.device} {theta.dtype}')
    if _fused_module() is None:
        raise ImportError('impl="fused" needs numba: pip install "sb3-shm[fast]" (or pip install numba)')
    return FusedShm.apply(*_kernel_inputs(theta, v_c, w, k, q, keep, memory), clamp, _kernel_chunk(theta))


@functools.cache
def _optional_module(name: str):
    """``sb3_shm.common.memory.<name>``, or None when its optional dependency (numba, triton) is not installed."""
    try:
        return importlib.import_module(f"sb3_shm.common.memory.{name}")
    except ImportError:
        return None


def _fused_module():
    """:mod:`~sb3_shm.common.memory.fused_numba`, or None without numba"""
    return _optional_module("fused_numba")


def fused_available() -> bool:
    """:return: whether the numba kernels (``impl="fused"``) can be used"""
    return _fused_module() is not None


def _triton(theta, v_c, w, k, q, keep, memory, clamp):
    module = _triton_module()
    if module is None:
        raise ValueError('impl="triton" needs triton: pip install "sb3-shm[triton]" (or pip install triton)')
    if theta.dtype not in (th.float32, th.float64):
        raise ValueError(f'impl="triton" runs on float32 / float64 tensors, got {theta.dtype}')
    if theta.device.type != "cuda" and not (theta.device.type == "cpu" and module.interpreting()):
        raise ValueError(
            f'impl="triton" runs on CUDA tensors, got {theta.device}: move the model to a GPU, or (CPU, tests only) '
            "set TRITON_INTERPRET=1 to run the kernels in Triton's interpreter"
        )
    return module.TritonShm.apply(*_kernel_inputs(theta, v_c, w, k, q, keep, memory), clamp, _kernel_chunk(theta))


def _triton_module():
    """:mod:`~sb3_shm.common.memory.fused_triton`, or None without triton"""
    return _optional_module("fused_triton")


def triton_available() -> bool:
    """:return: whether triton is installed (``impl="triton"`` then runs on CUDA tensors)"""
    return _triton_module() is not None


def select_impl(theta: th.Tensor) -> str:
    """
    The implementation ``impl="auto"`` runs for these inputs.

    :param theta: (B, T, H), only its device and dtype are read
    :return: ``"fused"`` on CPU with numba, ``"triton"`` on CUDA with triton, otherwise ``"sequential"``
    """
    if theta.dtype in (th.float32, th.float64):
        if theta.device.type == "cpu" and fused_available():
            return "fused"
        if theta.device.type == "cuda" and triton_available():
            return "triton"
    return "sequential"


_IMPLS = {"loop": _loop, "scan": _scan, "sequential": _sequential, "chunked": _chunked, "fused": _fused, "triton": _triton}


def shm_sequence(
    theta: th.Tensor,
    v_c: th.Tensor,
    w: th.Tensor,
    k: th.Tensor,
    q: th.Tensor,
    keep: th.Tensor,
    initial_memory: th.Tensor,
    clamp: float | None = 100.0,
    impl: ScanImpl = "auto",
) -> tuple[th.Tensor, th.Tensor]:
    """
    Run the SHM recurrence over whole sequences and read the memory out at every step.

    :param theta: calibration rows ``Theta[i_t]``, (B, T, H)
    :param v_c: calibration vectors, (B, T, H)
    :param w: ``eta_t * v_t``, (B, T, H)
    :param k: keys, (B, T, H)
    :param q: queries, (B, T, H)
    :param keep: ``1 - episode_start_t``, (B, T); where it is 0 the previous memory is dropped whatever it holds
    :param initial_memory: M before the first step, (B, H, H)
    :param clamp: bound on |M| applied at every step, None for no clamp
    :param impl: one of :data:`SCAN_IMPLS` (see module docstring)
    :return: read-outs ``y_t = M_t q_t`` (B, T, H) and the last memory M_{T-1} (B, H, H)
    """
    if impl not in SCAN_IMPLS:
        raise ValueError(f"Unknown scan implementation {impl!r}: choose one of {SCAN_IMPLS}")
    if theta.shape[1] == 0:
        raise ValueError("shm_sequence needs at least one step (T >= 1)")
    chosen = select_impl(theta) if impl == "auto" else impl
    return _IMPLS[chosen](theta, v_c, w, k, q, keep, initial_memory, clamp)
