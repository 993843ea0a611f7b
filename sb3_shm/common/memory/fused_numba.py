"""
Fused CPU kernels (numba) for the SHM recurrence, forward and backward.

Importing this module imports ``numba``: :mod:`sb3_shm.common.memory.scan` imports it lazily and falls back to the
torch implementations when numba is not installed (``pip install sb3-shm[fast]``).

Every entry ``M[b, i, j]`` is its own scalar recurrence and a row ``M[b, i, :]`` depends only on ``theta_t[i]``,
``w_t[i]`` and the vectors ``v_c_t``, ``k_t``, ``keep_t``. The kernels walk time for a block of rows, keep those
rows in a small buffer and form ``C_t = 1 + tanh(theta_t[i] * v_c_t[j])`` and ``U_t = w_t[i] * k_t[j]`` on the fly,
so nothing of size ``(B, T, H, H)`` is ever written. The inner loop over ``j`` vectorises (AVX2 / AVX-512).

Forward: ``y (B, T, H)``, ``M_last (B, H, H)`` and checkpoints ``M_{c*K - 1}`` at chunk starts, ``(B, T/K, H, H)``.
Backward: per chunk (last to first) it recomputes the chunk's ``M_t`` rows from the checkpoint (K * H numbers per
row, in L1) and runs the reverse-time recurrence::

    gM_t    += gy_t[i] * q_t                     # read-out y_t = M_t q_t
    gq_t    += gy_t[i] * M_t[i]                  # summed over rows i
    gP       = gM_t * (|P_t| <= clamp)           # P_t: the value before the clamp (torch.clamp's gradient)
    gw_t[i]  = gP . k_t,       gk_t += w_t[i] * gP
    gZ       = gP * keep_t * M_{t-1} * (1 - tanh(Z)^2),   Z = theta_t[i] * v_c_t
    gtheta_t[i] = gZ . v_c_t,  gv_c_t += theta_t[i] * gZ
    gM_{t-1} = gP * C_t * keep_t

Memory: inputs and gradients ``O(B T H)`` plus checkpoints ``O(B H^2 T / K)``. Parallelism: ``prange`` over
``B x G`` tasks, each owning a block of ``H / G`` rows of one batch element (``G = 1`` unless the batch is smaller
than the thread count); the column sums (``gq``, ``gk``, ``gv_c``) are accumulated per task, so no two threads
write the same number.

tanh. ``float64`` uses ``math.tanh``. ``float32`` uses a rational function evaluated in ``float64``
(``tanh(x) = x P(u) / Q(u)``, ``u = (x / 9.1)^2``, degree 5 / 5, ``|x|`` clamped to 9.1, fitted to a relative error
below ``1e-10``) and rounded to ``float32``: that is correctly rounded except for rare near-ties, i.e. at most one
float32 ulp from ``torch.tanh`` (which is itself within about half an ulp). So the kernel computes the same
``C_t`` as the step-wise form :func:`~sb3_shm.common.memory.scan.shm_step` (rollouts, ``predict``) up to float32
rounding, and ``shm_step`` keeps ``torch.tanh``; ``tests/test_scan_impls.py`` checks both claims. Scalar
``math.tanh`` would not vectorise and costs about 15x more here (``shared/SHM.md``).
"""

import math
import os

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

# No "nnan"/"ninf": the clamp and its gradient mask must see infinities and NaNs as torch does. "reassoc" lets
# the read-out and gradient sums over j vectorise.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# numba's OpenMP threading layer keeps idle threads spinning after each parallel kernel, which starves torch and the
# environments on a small shared CPU (one example: 15-36 s of CPU with it, 4.3 s with workqueue). The workqueue layer
# does not spin. NUMBA_THREADING_LAYER still overrides it.
numba.config.THREADING_LAYER = os.environ.get("NUMBA_THREADING_LAYER", "workqueue")

_JIT = dict(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)

# tanh(x) ~ x * P(u) / Q(u) with u = (x / _TANH_RANGE)^2 on |x| <= _TANH_RANGE; tanh(9.1) rounds to 1 in float32
_TANH_RANGE = 9.1
_TANH_P = (
    0.9999999999374904,
    11.66694151717438,
    30.256016220270435,
    23.804536336003522,
    5.133537130322452,
    0.1383082311694915,
)
_TANH_Q = (1.0, 39.270274795839924, 199.91369611500278, 282.89959579162644, 120.90547627218841, 11.204962207762783)
_P0, _P1, _P2, _P3, _P4, _P5 = _TANH_P
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5 = _TANH_Q
_INV_RANGE2 = 1.0 / (_TANH_RANGE * _TANH_RANGE)


def tanh_rational(x: np.ndarray) -> np.ndarray:
    """
    The float32 kernel's tanh in numpy (for tests and documentation): evaluated in float64, rounded to float32.

    :param x: float32 array
    :return: tanh(x) as float32
    """
    x = np.clip(x.astype(np.float64), -_TANH_RANGE, _TANH_RANGE)
    u = x * x * _INV_RANGE2
    p = _P0 + u * (_P1 + u * (_P2 + u * (_P3 + u * (_P4 + u * _P5))))
    q = _Q0 + u * (_Q1 + u * (_Q2 + u * (_Q3 + u * (_Q4 + u * _Q5))))
    return (x * p / q).astype(np.float32)


def _tanh(x):  # pragma: no cover - replaced by the overload below inside jitted code
    raise NotImplementedError


@overload(_tanh, inline="always", fastmath=_FASTMATH)
def _tanh_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def tanh_float32(x):
            z = min(max(np.float64(x), -_TANH_RANGE), _TANH_RANGE)
            u = z * z * _INV_RANGE2
            p = _P0 + u * (_P1 + u * (_P2 + u * (_P3 + u * (_P4 + u * _P5))))
            q = _Q0 + u * (_Q1 + u * (_Q2 + u * (_Q3 + u * (_Q4 + u * _Q5))))
            return np.float32(z * p / q)

        return tanh_float32
    return lambda x: math.tanh(x)


@numba.njit(**_JIT)
def _forward_kernel(theta, v_c, w, k, q, keep, m0, consts, use_clamp, chunk, n_groups, y, m_last, ckpt):
    """
    :param theta, v_c, w, k, q: (B, T, H)
    :param keep: (B, T)
    :param m0: (B, H, H)
    :param consts: [1, clamp] in the input dtype (numba would promote Python float literals to float64)
    :param use_clamp: apply the clamp
    :param chunk: K, steps between checkpoints
    :param n_groups: G, row blocks per batch element
    :param y: output (B, T, H)
    :param m_last: output (B, H, H)
    :param ckpt: output (B, ceil(T / K), H, H), M before each chunk
    """
    n_batch, n_steps, size = theta.shape
    one, bound = consts[0], consts[1]
    rows_per_group = (size + n_groups - 1) // n_groups
    for task in prange(n_batch * n_groups):
        b = task // n_groups
        row_start = (task % n_groups) * rows_per_group
        row_end = min(size, row_start + rows_per_group)
        rows = m0[b].copy()  # only rows [row_start, row_end) are used
        for t0 in range(0, n_steps, chunk):
            ckpt[b, t0 // chunk, row_start:row_end] = rows[row_start:row_end]
            for t in range(t0, min(n_steps, t0 + chunk)):
                kp = keep[b, t]
                v_c_t, k_t, q_t = v_c[b, t], k[b, t], q[b, t]
                for i in range(row_start, row_end):
                    a = theta[b, t, i]
                    wi = w[b, t, i]
                    row = rows[i]
                    acc = one - one
                    for j in range(size):
                        m = (one + _tanh(a * v_c_t[j])) * (kp * row[j]) + wi * k_t[j]
                        if use_clamp:
                            m = min(max(m, -bound), bound)
                        row[j] = m
                        acc += m * q_t[j]
                    y[b, t, i] = acc
        m_last[b, row_start:row_end] = rows[row_start:row_end]


@numba.njit(**_JIT)
def _backward_kernel(
    theta, v_c, w, k, q, keep, consts, use_clamp, chunk, n_groups, ckpt, grad_y, grad_last,
    grad_theta, grad_w, grad_v_c, grad_k, grad_q, grad_m0,
):  # fmt: skip
    """
    Inputs as in :func:`_forward_kernel`; ``grad_y`` (B, T, H), ``grad_last`` (B, H, H).
    Outputs: ``grad_theta``, ``grad_w`` (B, T, H); ``grad_v_c``, ``grad_k``, ``grad_q`` (G, B, T, H) partial sums
    over row blocks, zero-initialised; ``grad_m0`` (B, H, H).
    """
    n_batch, n_steps, size = theta.shape
    one, bound = consts[0], consts[1]
    zero = one - one
    rows_per_group = (size + n_groups - 1) // n_groups
    for task in prange(n_batch * n_groups):
        b = task // n_groups
        g = task % n_groups
        row_start = g * rows_per_group
        row_end = min(size, row_start + rows_per_group)
        grad_m = grad_last[b].copy()  # dL/dM_t, rows [row_start, row_end)
        history = np.empty((chunk + 1, size), dtype=theta.dtype)  # M_{t0-1} .. M_{t1-1} of one row
        before_clamp = np.empty((chunk, size), dtype=theta.dtype)
        tanh_z = np.empty((chunk, size), dtype=theta.dtype)
        last_chunk = (n_steps - 1) // chunk
        for c in range(last_chunk, -1, -1):
            t0 = c * chunk
            t1 = min(n_steps, t0 + chunk)
            for i in range(row_start, row_end):
                # Recompute this row of M over the chunk from the checkpoint. Short loops that each write one or two
                # arrays: LLVM then vectorises them (its runtime alias checks are limited).
                history[0] = ckpt[b, c, i]
                for t in range(t0, t1):
                    s = t - t0
                    a = theta[b, t, i]
                    wi = w[b, t, i]
                    kp = keep[b, t]
                    tz, pre, prev, now = tanh_z[s], before_clamp[s], history[s], history[s + 1]
                    v_c_t, k_t = v_c[b, t], k[b, t]
                    for j in range(size):
                        tz[j] = _tanh(a * v_c_t[j])
                    for j in range(size):
                        m = (one + tz[j]) * (kp * prev[j]) + wi * k_t[j]
                        pre[j] = m
                        if use_clamp:
                            m = min(max(m, -bound), bound)
                        now[j] = m
                # reverse-time recurrence over the chunk
                grad_row = grad_m[i]
                for t in range(t1 - 1, t0 - 1, -1):
                    s = t - t0
                    a = theta[b, t, i]
                    wi = w[b, t, i]
                    kp = keep[b, t]
                    gyi = grad_y[b, t, i]
                    tz, pre, prev, now = tanh_z[s], before_clamp[s], history[s], history[s + 1]
                    v_c_t, k_t, q_t = v_c[b, t], k[b, t], q[b, t]
                    grad_q_t, grad_k_t, grad_v_c_t = grad_q[g, b, t], grad_k[g, b, t], grad_v_c[g, b, t]
                    sum_w = zero
                    for j in range(size):
                        gm = grad_row[j] + gyi * q_t[j]
                        if use_clamp:
                            gm = gm if abs(pre[j]) <= bound else zero
                        grad_row[j] = gm
                        sum_w += gm * k_t[j]
                    for j in range(size):
                        grad_q_t[j] += gyi * now[j]
                        grad_k_t[j] += wi * grad_row[j]
                    sum_theta = zero
                    for j in range(size):
                        gm = grad_row[j]
                        gz = gm * (kp * prev[j]) * (one - tz[j] * tz[j])
                        sum_theta += gz * v_c_t[j]
                        grad_v_c_t[j] += a * gz
                        grad_row[j] = gm * (one + tz[j]) * kp
                    grad_w[b, t, i] = sum_w
                    grad_theta[b, t, i] = sum_theta
        grad_m0[b, row_start:row_end] = grad_m[row_start:row_end]


def _groups(n_batch: int, size: int) -> int:
    """Row blocks per batch element: enough tasks for every thread, as few column-sum partials as possible."""
    return max(1, min(size, -(-numba.get_num_threads() // n_batch)))


def fused_forward(theta, v_c, w, k, q, keep, m0, clamp, chunk):
    """
    :param theta, v_c, w, k, q: C-contiguous (B, T, H) arrays of one float dtype
    :param keep: (B, T)
    :param m0: (B, H, H)
    :param clamp: bound on |M| or None
    :param chunk: steps between checkpoints
    :return: y (B, T, H), M_last (B, H, H), checkpoints (B, ceil(T / chunk), H, H)
    """
    n_batch, n_steps, size = theta.shape
    dtype = theta.dtype
    consts = np.array([1.0, np.inf if clamp is None else clamp], dtype=dtype)
    y = np.empty((n_batch, n_steps, size), dtype=dtype)
    m_last = np.empty((n_batch, size, size), dtype=dtype)
    ckpt = np.empty((n_batch, -(-n_steps // chunk), size, size), dtype=dtype)
    groups = _groups(n_batch, size)
    _forward_kernel(theta, v_c, w, k, q, keep, m0, consts, clamp is not None, chunk, groups, y, m_last, ckpt)
    return y, m_last, ckpt


def fused_backward(theta, v_c, w, k, q, keep, clamp, chunk, ckpt, grad_y, grad_last):
    """
    :return: gradients for theta, v_c, w, k, q (B, T, H) and the initial memory (B, H, H)
    """
    n_batch, n_steps, size = theta.shape
    dtype = theta.dtype
    consts = np.array([1.0, np.inf if clamp is None else clamp], dtype=dtype)
    groups = _groups(n_batch, size)
    grad_theta = np.empty_like(theta)
    grad_w = np.empty_like(w)
    partial = np.zeros((3, groups, n_batch, n_steps, size), dtype=dtype)  # column sums: v_c, k, q
    grad_m0 = np.empty((n_batch, size, size), dtype=dtype)
    _backward_kernel(
        theta, v_c, w, k, q, keep, consts, clamp is not None, chunk, groups, ckpt, grad_y, grad_last,
        grad_theta, grad_w, partial[0], partial[1], partial[2], grad_m0,
    )  # fmt: skip
    grad_v_c, grad_k, grad_q = partial.sum(axis=1) if groups > 1 else partial[:, 0]
    return grad_theta, grad_v_c, grad_w, grad_k, grad_q, grad_m0
