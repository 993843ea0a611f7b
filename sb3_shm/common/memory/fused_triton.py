"""
Fused GPU kernels (Triton) for the SHM recurrence, forward and backward: ``impl="triton"`` of
:func:`~sb3_shm.common.memory.scan.shm_sequence`.

Importing this module imports ``triton`` (``pip install sb3-shm[triton]``): :mod:`sb3_shm.common.memory.scan`
imports it lazily, only when ``impl="triton"`` is asked for or ``impl="auto"`` sees CUDA tensors. It is the GPU
counterpart of :mod:`~sb3_shm.common.memory.fused_numba` (same math, same checkpoints, same backward equations,
see that module's docstring) and is meant for CUDA tensors. On CPU it runs only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before triton is imported; numpy, slow): that is how ``tests/test_triton.py`` checks it
against ``"loop"`` on a machine without a GPU; the same tests compile it ahead of time for sm_80 (no GPU needed).
On a GPU, ``tests/test_cuda.py`` checks it against ``"loop"`` and ``benchmarks/memory_scan.py --device cuda`` times it
(results: ``docs/benchmarks.md``).

Layout. One program per (batch element ``b``, block of ``BLOCK_I`` rows); it holds its rows of ``M`` in registers,
``(BLOCK_I, BLOCK_J)`` with ``BLOCK_J = next_power_of_2(H)`` (at least 16), and walks time, forming
``C_t = 1 + tanh(theta_t[i] * v_c_t[j])`` and ``U_t = w_t[i] * k_t[j]`` on the fly from the ``(B, T, H)`` vectors:
nothing of size ``(B, T, H, H)`` is ever written.

Forward: ``y (B, T, H)``, ``M_last (B, H, H)`` and checkpoints ``M_{c*K - 1}`` at chunk starts,
``(B, ceil(T / K), H, H)``. Backward: per chunk (last to first) each program recomputes its rows of the chunk's
memories from the checkpoint into a scratch buffer (global memory, ``K`` tiles per program, re-read by the same
program), then runs the reverse-time recurrence; ``tanh`` and the pre-clamp value ``P_t`` are recomputed from
``M_{t-1}`` rather than stored. Row sums (``gtheta``, ``gw``) are complete inside a program; column sums over rows
(``gv_c``, ``gk``, ``gq``) are written per row block, ``(n_blocks, B, T, H)``, and summed by torch afterwards
(deterministic, no atomics). The clamp is applied at every step exactly like ``"loop"``, and the gradient passes
where ``|P_t| <= clamp`` (``torch.clamp``'s rule). At an episode start (``keep_t == 0``) ``keep_t M_{t-1}`` and the
gradient into ``M_{t-1}`` are exactly 0 (a select on the program's scalar ``keep_t``), whatever ``M_{t-1}`` holds.

Memory: inputs and gradients ``O(B T H)``, checkpoints ``O(B H^2 T / K)``, backward scratch
``B * n_blocks * K * BLOCK_I * BLOCK_J`` numbers (about ``B K H^2``) and column-sum partials ``3 n_blocks B T H``.

tanh. On the GPU the kernels call CUDA's ``tanh`` (libdevice), the function ``torch.tanh`` runs there, so ``C_t`` agrees
with the rollouts' :func:`~sb3_shm.common.memory.scan.shm_step` to float32 rounding (why not a formula on ``exp``:
``docs/benchmarks.md``). The interpreter has no libdevice: there ``sign(z) (1 - e) / (1 + e)``, ``e = exp(-2 |z|)``,
runs, on numpy's exp (absolute error below 2 ``2^-24`` in float32 over ``|z| <= 12``). float32 and float64.
"""

import contextlib
import functools
import os
import types

import torch as th
import triton
import triton.language as tl
from triton.language.extra import libdevice
from torch.autograd.function import once_differentiable

__all__ = ["TritonShm", "interpreting", "triton_backward", "triton_forward"]


def interpreting() -> bool:
    """:return: whether Triton's interpreter is on (``TRITON_INTERPRET=1``): kernels then run on CPU tensors"""
    try:
        return bool(triton.knobs.runtime.interpret)
    except AttributeError:  # Triton < 3.4 has no knobs
        return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _tanh(z, LIBDEVICE: tl.constexpr):
    """tanh(z), elementwise: CUDA's own ``tanhf`` / ``tanh`` (libdevice, what torch.tanh runs on the GPU), or, under
    the interpreter (which has no libdevice), ``sign(z) (1 - e) / (1 + e)`` with ``e = exp(-2 |z|)``."""
    if LIBDEVICE:
        return libdevice.tanh(z)
    e = tl.exp(-2.0 * tl.abs(z))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -t, t)


def _load_step(theta, v_c, w, k, keep, base, step, rows, cols, row_mask, col_mask):
    """:return: theta_t and w_t at this program's rows, v_c_t and k_t at all columns, keep_t (``base``: offset of
    step t in the (B, T, H) inputs, ``step``: in ``keep``)"""
    a = tl.load(theta + base + rows, mask=row_mask, other=0.0)
    wi = tl.load(w + base + rows, mask=row_mask, other=0.0)
    vc = tl.load(v_c + base + cols, mask=col_mask, other=0.0)
    kj = tl.load(k + base + cols, mask=col_mask, other=0.0)
    kp = tl.load(keep + step)
    return a, wi, vc, kj, kp


def _pre_clamp(previous, a, wi, vc, kj, kp, LIBDEVICE_TANH: tl.constexpr):
    """One step of this program's rows before the clamp.

    :return: ``tanh(theta_t v_c_t^T)``, ``keep_t M_{t-1}`` and ``P_t = C_t * (keep_t M_{t-1}) + U_t``
    """
    tz = _tanh(a[:, None] * vc[None, :], LIBDEVICE_TANH)  # C_t = 1 + tz
    # an episode start drops M_{t-1} by a select, not by the multiply (0 * inf = NaN): scan.reset_memory
    kept = tl.where(kp == 0, 0.0, kp * previous)
    return tz, kept, (1.0 + tz) * kept + wi[:, None] * kj[None, :]


def _clamp(x, bound, USE_CLAMP: tl.constexpr):
    """:return: x clamped to [-bound, bound] where USE_CLAMP, else x"""
    if USE_CLAMP:
        x = tl.where(x > bound, bound, tl.where(x < -bound, -bound, x))
    return x


# the kernels' helpers, by the global names the kernels call them by: _kernels replaces each with its jitted form
_HELPERS = {"_tanh": _tanh, "_load_step": _load_step, "_pre_clamp": _pre_clamp, "_clamp": _clamp}


def _forward_kernel(
    theta, v_c, w, k, q, keep, consts, m_last, y, ckpt, n_steps, size, n_chunks,
    CHUNK: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr, USE_CLAMP: tl.constexpr,
    LIBDEVICE_TANH: tl.constexpr,
):  # fmt: skip
    """
    :param theta, v_c, w, k, q: (B, T, H), contiguous
    :param keep: (B, T)
    :param consts: [clamp] in the input dtype
    :param m_last: (B, H, H), M_{-1} on entry, M_{T-1} on exit
    :param y: output (B, T, H)
    :param ckpt: output (B, n_chunks, H, H), M before each chunk of CHUNK steps
    """
    b = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    cols = tl.arange(0, BLOCK_J)
    row_mask = rows < size
    col_mask = cols < size
    tile = rows[:, None] * size + cols[None, :]
    tile_mask = row_mask[:, None] & col_mask[None, :]
    bound = tl.load(consts)
    memory = tl.load(m_last + b * size * size + tile, mask=tile_mask, other=0.0)
    for c in range(0, n_chunks):
        tl.store(ckpt + (b * n_chunks + c) * size * size + tile, memory, mask=tile_mask)
        t0 = c * CHUNK
        for t in range(t0, tl.minimum(t0 + CHUNK, n_steps)):
            base = (b * n_steps + t) * size
            a, wi, vc, kj, kp = _load_step(theta, v_c, w, k, keep, base, b * n_steps + t, rows, cols, row_mask, col_mask)
            qj = tl.load(q + base + cols, mask=col_mask, other=0.0)
            _, _, memory = _pre_clamp(memory, a, wi, vc, kj, kp, LIBDEVICE_TANH)
            memory = _clamp(memory, bound, USE_CLAMP)
            tl.store(y + base + rows, tl.sum(memory * qj[None, :], axis=1), mask=row_mask)
    tl.store(m_last + b * size * size + tile, memory, mask=tile_mask)


def _backward_kernel(
    theta, v_c, w, k, q, keep, consts, ckpt, grad_y, grad_m, scratch,
    grad_theta, grad_w, part_v_c, part_k, part_q, n_steps, size, n_chunks, n_batch,
    CHUNK: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr, USE_CLAMP: tl.constexpr,
    LIBDEVICE_TANH: tl.constexpr,
):  # fmt: skip
    """
    Inputs as in :func:`_forward_kernel`; ``ckpt`` from it, ``grad_y`` (B, T, H).
    Outputs: ``grad_theta``, ``grad_w`` (B, T, H); ``part_v_c``, ``part_k``, ``part_q`` (n_blocks, B, T, H) column
    sums of each row block; ``grad_m`` (B, H, H): dL/dM_{T-1} on entry, dL/dM_{-1} on exit.
    ``scratch``: (B, n_blocks, CHUNK, BLOCK_I, BLOCK_J), slot s = M_{t0 + s - 1} of this program's rows.
    """
    b = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1).to(tl.int64)
    rows = block * BLOCK_I + tl.arange(0, BLOCK_I)
    cols = tl.arange(0, BLOCK_J)
    row_mask = rows < size
    col_mask = cols < size
    tile = rows[:, None] * size + cols[None, :]
    tile_mask = row_mask[:, None] & col_mask[None, :]
    local = tl.arange(0, BLOCK_I)[:, None] * BLOCK_J + cols[None, :]
    work = scratch + (b * tl.num_programs(1) + block) * (CHUNK * BLOCK_I * BLOCK_J)
    bound = tl.load(consts)
    gm = tl.load(grad_m + b * size * size + tile, mask=tile_mask, other=0.0)
    for c_rev in range(0, n_chunks):
        c = n_chunks - 1 - c_rev
        t0 = c * CHUNK
        t1 = tl.minimum(t0 + CHUNK, n_steps)
        # recompute this block's memories over the chunk from the checkpoint
        memory = tl.load(ckpt + (b * n_chunks + c) * size * size + tile, mask=tile_mask, other=0.0)
        for t in range(t0, t1):
            tl.store(work + (t - t0) * (BLOCK_I * BLOCK_J) + local, memory)
            base = (b * n_steps + t) * size
            a, wi, vc, kj, kp = _load_step(theta, v_c, w, k, keep, base, b * n_steps + t, rows, cols, row_mask, col_mask)
            _, _, memory = _pre_clamp(memory, a, wi, vc, kj, kp, LIBDEVICE_TANH)
            memory = _clamp(memory, bound, USE_CLAMP)
        tl.debug_barrier()  # the scratch tiles are re-read below, possibly by other threads of this program
        # reverse-time recurrence over the chunk
        for s in range(0, t1 - t0):
            t = t1 - 1 - s
            previous = tl.load(work + (t - t0) * (BLOCK_I * BLOCK_J) + local)
            base = (b * n_steps + t) * size
            a, wi, vc, kj, kp = _load_step(theta, v_c, w, k, keep, base, b * n_steps + t, rows, cols, row_mask, col_mask)
            gy = tl.load(grad_y + base + rows, mask=row_mask, other=0.0)
            qj = tl.load(q + base + cols, mask=col_mask, other=0.0)
            tz, kept, before_clamp = _pre_clamp(previous, a, wi, vc, kj, kp, LIBDEVICE_TANH)
            memory = _clamp(before_clamp, bound, USE_CLAMP)
            part = ((block * n_batch + b) * n_steps + t) * size + cols
            # read-out y_t = M_t q_t
            gm = gm + gy[:, None] * qj[None, :]
            tl.store(part_q + part, tl.sum(gy[:, None] * memory, axis=0), mask=col_mask)
            if USE_CLAMP:
                gm = tl.where(tl.abs(before_clamp) <= bound, gm, 0.0)
            # U_t = outer(w, k)
            tl.store(grad_w + base + rows, tl.sum(gm * kj[None, :], axis=1), mask=row_mask)
            tl.store(part_k + part, tl.sum(wi[:, None] * gm, axis=0), mask=col_mask)
            # C_t = 1 + tanh(outer(theta, v_c))
            gz = gm * kept * (1.0 - tz * tz)
            tl.store(grad_theta + base + rows, tl.sum(gz * vc[None, :], axis=1), mask=row_mask)
            tl.store(part_v_c + part, tl.sum(a[:, None] * gz, axis=0), mask=col_mask)
            gm = tl.where(kp == 0, 0.0, gm * (1.0 + tz) * kp)  # exactly 0 into M_{t-1} at a reset
        tl.debug_barrier()  # before the next chunk overwrites the scratch tiles
    tl.store(grad_m + b * size * size + tile, gm, mask=tile_mask)


@functools.cache
def _kernels(interpret: bool):
    """
    The two kernels, jitted, or wrapped for the interpreter (``triton.jit`` reads TRITON_INTERPRET when called;
    ``interpret`` is the cache key).
    """
    if interpret and type(tl.sum).__name__ == "JITFunction":
        # triton.language's own helpers (tl.sum) were jitted for the compiler when triton was imported
        raise RuntimeError("TRITON_INTERPRET=1 was set after triton was imported: set it before, in the environment")
    # The kernels call the helpers by their global names, so the helpers must be jitted the same way as the kernels:
    # copies of all of them that share a namespace of their own (this module's globals are left as they are)
    namespace = dict(globals())

    def jit_in_namespace(function):
        copy = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__)
        copy.__doc__, copy.__qualname__ = function.__doc__, function.__qualname__
        return triton.jit(copy)

    namespace.update({name: jit_in_namespace(helper) for name, helper in _HELPERS.items()})
    return jit_in_namespace(_forward_kernel), jit_in_namespace(_backward_kernel)


def _launch_config(size: int) -> tuple[int, int, int]:
    """:return: BLOCK_I, BLOCK_J, num_warps"""
    block_j = max(16, triton.next_power_of_2(size))
    block_i = 16
    return block_i, block_j, 4 if block_i * block_j <= 2048 else 8


def triton_forward(theta, v_c, w, k, q, keep, m0, clamp, chunk):
    """
    :param theta, v_c, w, k, q: contiguous (B, T, H) tensors of one float dtype, on one device
    :param keep: (B, T)
    :param m0: (B, H, H)
    :param clamp: bound on |M| or None
    :param chunk: steps between checkpoints
    :return: y (B, T, H), M_last (B, H, H), checkpoints (B, ceil(T / chunk), H, H)
    """
    n_batch, n_steps, size = theta.shape
    n_chunks = -(-n_steps // chunk)
    block_i, block_j, num_warps = _launch_config(size)
    consts = th.tensor([th.inf if clamp is None else clamp], dtype=theta.dtype, device=theta.device)
    y = th.empty_like(theta)
    m_last = m0.clone()  # updated in place
    ckpt = th.empty(n_batch, n_chunks, size, size, dtype=theta.dtype, device=theta.device)
    forward, _ = _kernels(interpreting())
    grid = (n_batch, triton.cdiv(size, block_i))
    forward[grid](
        theta, v_c, w, k, q, keep, consts, m_last, y, ckpt, n_steps, size, n_chunks,
        CHUNK=chunk, BLOCK_I=block_i, BLOCK_J=block_j, USE_CLAMP=clamp is not None,
        LIBDEVICE_TANH=not interpreting(), num_warps=num_warps,
    )  # fmt: skip
    return y, m_last, ckpt


def triton_backward(theta, v_c, w, k, q, keep, clamp, chunk, ckpt, grad_y, grad_last):
    """
    :return: gradients for theta, v_c, w, k, q (B, T, H) and the initial memory (B, H, H)
    """
    n_batch, n_steps, size = theta.shape
    n_chunks = ckpt.shape[1]
    block_i, block_j, num_warps = _launch_config(size)
    n_blocks = triton.cdiv(size, block_i)
    consts = th.tensor([th.inf if clamp is None else clamp], dtype=theta.dtype, device=theta.device)
    grad_theta, grad_w = th.empty_like(theta), th.empty_like(w)
    partial = th.empty(3, n_blocks, n_batch, n_steps, size, dtype=theta.dtype, device=theta.device)
    grad_m0 = grad_last.clone()  # updated in place: dL/dM_t, then dL/dM_{-1}
    scratch = th.empty(n_batch * n_blocks * chunk * block_i * block_j, dtype=theta.dtype, device=theta.device)
    _, backward = _kernels(interpreting())
    backward[(n_batch, n_blocks)](
        theta, v_c, w, k, q, keep, consts, ckpt, grad_y, grad_m0, scratch,
        grad_theta, grad_w, partial[0], partial[1], partial[2], n_steps, size, n_chunks, n_batch,
        CHUNK=chunk, BLOCK_I=block_i, BLOCK_J=block_j, USE_CLAMP=clamp is not None,
        LIBDEVICE_TANH=not interpreting(), num_warps=num_warps,
    )  # fmt: skip
    grad_v_c, grad_k, grad_q = partial.sum(dim=1)
    return grad_theta, grad_v_c, grad_w, grad_k, grad_q, grad_m0


class TritonShm(th.autograd.Function):
    """
    The Triton kernels: forward keeps only chunk checkpoints of M, backward recomputes each chunk and runs the
    reverse-time recurrence. Same signature and results as :class:`~sb3_shm.common.memory.scan.FusedShm`;
    no gradient for ``keep``.
    """

    @staticmethod
    def forward(ctx, theta, v_c, w, k, q, keep, initial_memory, clamp, chunk):
        inputs = [tensor.detach().contiguous() for tensor in (theta, v_c, w, k, q, keep, initial_memory)]
        with th.cuda.device(theta.device) if theta.is_cuda else contextlib.nullcontext():
            y, last, ckpt = triton_forward(*inputs, clamp, chunk)
        ctx.clamp, ctx.chunk = clamp, chunk
        ctx.inputs = inputs[:6]
        ctx.ckpt = ckpt
        return y, last

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, grad_last):
        theta = ctx.inputs[0]
        grad_y = th.zeros_like(theta) if grad_y is None else grad_y.contiguous()
        if grad_last is None:
            grad_last = theta.new_zeros(theta.shape[0], theta.shape[2], theta.shape[2])
        else:
            grad_last = grad_last.contiguous()
        with th.cuda.device(theta.device) if theta.is_cuda else contextlib.nullcontext():
            grads = triton_backward(*ctx.inputs, ctx.clamp, ctx.chunk, ctx.ckpt, grad_y, grad_last)
        g_theta, g_v_c, g_w, g_k, g_q, g_m0 = grads
        return g_theta, g_v_c, g_w, g_k, g_q, None, g_m0, None, None
