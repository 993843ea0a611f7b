"""
Fused CPU kernels (numba) for the SHM recurrence, forward and backward.

Importing this module imports ``numba``: :mod:`sb3_shm.common.memory.scan` imports it lazily and falls back to the
torch implementations when numba is not installed (``pip install sb3-shm[fast]``).

Every entry ``M[b, i, j]`` is its own scalar recurrence and a row ``M[b, i, :]`` depends only on ``theta_t[i]``,
``w_t[i]`` and the vectors ``v_c_t``, ``k_t``, ``keep_t``. The kernels walk time for a block of rows and form
``C_t = 1 + tanh(theta_t[i] * v_c_t[j])`` and ``U_t = w_t[i] * k_t[j]`` on the fly, so nothing of size
``(B, T, H, H)`` is ever written. The inner loop over ``j`` vectorises (AVX2 / AVX-512).

Forward: ``y (B, T, H)``, ``M_last (B, H, H)`` (also the running memory) and checkpoints ``M_{c*K - 1}`` at chunk
starts, ``(B, T/K, H, H)``. Backward: per chunk (last to first) it recomputes the chunk's ``M_t`` rows from the
checkpoint (K * H numbers per row, in L1) and runs the reverse-time recurrence, one pass over the row per step::

    gM_t    += gy_t[i] * q_t                     # read-out y_t = M_t q_t
    gq_t    += gy_t[i] * M_t[i]                  # summed over rows i
    gP       = gM_t * (|P_t| <= clamp)           # P_t: the value before the clamp (torch.clamp's gradient)
    gw_t[i]  = gP . k_t,       gk_t += w_t[i] * gP
    gZ       = gP * keep_t * M_{t-1} * (1 - tanh(Z)^2),   Z = theta_t[i] * v_c_t
    gtheta_t[i] = gZ . v_c_t,  gv_c_t += theta_t[i] * gZ
    gM_{t-1} = gP * C_t * keep_t

At an episode start (``keep_t == 0``) ``keep_t * M_{t-1}`` and ``gM_{t-1}`` are exactly 0 whatever ``M_{t-1}`` and
``gM_t`` hold (a multiply would keep NaN and inf: ``0 * inf = NaN``), as in
:func:`~sb3_shm.common.memory.scan.reset_memory`: the forward zeroes the row of ``M_{t-1}``; the backward runs the
reset step's own equations (``M_t = U_t``; no gradient into ``C_t`` or ``M_{t-1}``). Each is a branch per (row, step)
outside the vectorised loops over ``j`` (why not a select inside them: ``docs/benchmarks.md``).

Memory: inputs and gradients ``O(B T H)``, checkpoints ``O(B H^2 T / K)`` and a per-task workspace of ``3 K H``
numbers. Parallelism: ``prange`` over ``B x G`` tasks, each owning a block of ``H / G`` rows of one batch element
(``G = 1`` unless the batch is smaller than the thread count); the column sums (``gq``, ``gk``, ``gv_c``) are
accumulated per task, so no two threads write the same number.

Vectorisation. The ``prange`` bodies index the arrays directly and create no array views (no ``row = rows[i]``), and the
workspace is passed in as arguments: numba's alias analysis then finds no aliases and declares every array ``noalias``,
so LLVM vectorises the ``j`` loops without runtime alias checks (with views, the checks send the loops to their scalar
fallback: ``docs/benchmarks.md``). Check with ``NUMBA_DEBUG_ARRAY_OPT=1`` ("No aliases found so adding noalias flag")
after a change, with ``NUMBA_CACHE_DIR`` set to an empty folder (the debug output is compiled into the cached kernels).

tanh. ``float64`` uses ``math.tanh``. ``float32`` uses :func:`tanh_float32`, in float32 arithmetic: ``x + x^3 P(x^2)``
(degree 5) for ``|x| < 0.75``, else ``1 - 2 / (exp(2|x|) + 1)`` with ``exp`` from a degree-6 polynomial and an
exponent bit shift; ``|x|`` clamped to 9.1 (``tanh(9.1)`` rounds to 1). Its error is at most 1.08 float32 ulp, and
it is within one ulp of ``torch.tanh`` (itself within 0.52 ulp): checked for every float32 ``1e-4 <= |x| <= 9.5``
on an AVX-512 machine (below ``1e-4`` both return ``x``; the test checks a grid on any machine). So the kernel
computes the same ``C_t`` as the step-wise form :func:`~sb3_shm.common.memory.scan.shm_step` (rollouts,
``predict``) up to float32 rounding, and ``shm_step`` keeps ``torch.tanh``; ``tests/test_scan_impls.py`` checks
both claims. It is still the largest cost of the forward; scalar ``math.tanh`` would not vectorise at all
(``docs/spec.md``).
"""

import math
import os

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic, overload

# No "nnan"/"ninf": the clamp and its gradient mask must see infinities and NaNs as torch does. "reassoc" lets
# the read-out and gradient sums over j vectorise.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# numba's OpenMP threading layer keeps idle threads spinning after each parallel kernel, which starves torch and the
# environments on a small shared CPU (docs/benchmarks.md). The workqueue layer does not spin: it is chosen only when
# the user has chosen no layer (neither NUMBA_THREADING_LAYER nor numba.config.THREADING_LAYER).
if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":  # type: ignore[attr-defined]  # untyped
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]  # numba's config module is untyped

_JIT = dict(parallel=True, cache=True, fastmath=_FASTMATH, error_model="numpy", nogil=True)

# float32 tanh constants (float32 values). |x| < _TANH_SMALL: x + x^3 P(x^2), P a weighted least-squares fit of
# (tanh(x) - x) / x^3; else 1 - 2 / (exp(2|x|) + 1), exp(y) = 2^n exp(r), n = round(y / ln 2), r = y - n ln 2 (ln 2
# split in two for an exact reduction), exp(r) a fit on |r| <= ln(2) / 2.
_F32 = np.float32
_TANH_RANGE = _F32(9.1)
_TANH_SMALL = _F32(0.75)
_S0, _S1, _S2, _S3, _S4, _S5 = (
    _F32(c) for c in (-0.33333316, 0.1333272, -0.053894803, 0.021459442, -0.0076692356, 0.0017441473)
)
_E0, _E1, _E2, _E3, _E4, _E5, _E6 = (_F32(c) for c in (1.0, 1.0, 0.4999999, 0.1666642, 0.041668225, 0.008374816, 0.0013836846))
_LN2_HI, _LN2_LO, _TWO_LOG2E = _F32(0.6931472), _F32(-1.9046542e-09), _F32(2.88539)
_ONE, _TWO, _HALF = _F32(1.0), _F32(2.0), _F32(0.5)


def tanh_float32(x: np.ndarray) -> np.ndarray:
    """
    The float32 kernel's tanh in numpy (for tests and documentation), same operations in float32. The kernel
    contracts some of them into FMAs, so the two can differ by rounding; both are within one ulp of ``torch.tanh``.

    :param x: float32 array
    :return: tanh(x) as float32
    """
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.minimum(np.abs(x), _TANH_RANGE)
        z = a * a
        small = a + a * z * (_S0 + z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * _S5)))))
        n = np.floor(a * _TWO_LOG2E + _HALF)
        r = (a + a - n * _LN2_HI) - n * _LN2_LO
        exp_r = _E0 + r * (_E1 + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * _E6)))))
        exp_2a = np.ldexp(exp_r, np.nan_to_num(n).astype(np.int32))
        large = _ONE - _TWO / (exp_2a + _ONE)
        t = np.where(a < _TANH_SMALL, small, large).astype(np.float32)
        return np.where(x >= 0, t, -t)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32 as a float32 (LLVM bitcast; vectorises)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def _tanh(x):  # pragma: no cover - replaced by the overload below inside jitted code
    raise NotImplementedError


@overload(_tanh, inline="always", fastmath=_FASTMATH)  # type: ignore[call-arg]  # numba passes jit options on; its stub does not list them
def _tanh_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def tanh_float32(x):
            a = min(abs(x), _TANH_RANGE)
            z = a * a
            small = a + a * z * (_S0 + z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * _S5)))))
            n = np.int32(a * _TWO_LOG2E + _HALF)  # round(2a / ln 2), a >= 0
            n_float = np.float32(n)
            r = (a + a - n_float * _LN2_HI) - n_float * _LN2_LO
            exp_r = _E0 + r * (_E1 + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * _E6)))))
            exp_2a = exp_r * _float32_from_bits((n + np.int32(127)) << 23)  # times 2^n, 0 <= n <= 27
            t = small if a < _TANH_SMALL else _ONE - _TWO / (exp_2a + _ONE)
            return t if x >= 0 else -t

        return tanh_float32
    return lambda x: math.tanh(x)


@numba.njit(**_JIT)  # type: ignore[call-overload]  # numba's stub does not type keyword options given as a dict
def _forward_kernel(theta, v_c, w, k, q, keep, consts, use_clamp, chunk, n_groups, y, m_last, ckpt):
    """
    :param theta, v_c, w, k, q: (B, T, H)
    :param keep: (B, T)
    :param consts: [1, clamp] in the input dtype (numba would promote Python float literals to float64)
    :param use_clamp: apply the clamp
    :param chunk: K, steps between checkpoints
    :param n_groups: G, row blocks per batch element
    :param y: output (B, T, H)
    :param m_last: (B, H, H), M_{-1} on entry, M_{T-1} on exit (the running memory)
    :param ckpt: output (B, ceil(T / K), H, H), M before each chunk
    """
    n_batch, n_steps, size = theta.shape
    one, bound = consts[0], consts[1]
    zero = one - one
    rows_per_group = (size + n_groups - 1) // n_groups
    for task in prange(n_batch * n_groups):
        b = task // n_groups
        row_start = (task % n_groups) * rows_per_group
        row_end = min(size, row_start + rows_per_group)
        for t0 in range(0, n_steps, chunk):
            c = t0 // chunk
            for i in range(row_start, row_end):
                for j in range(size):
                    ckpt[b, c, i, j] = m_last[b, i, j]
            for t in range(t0, min(n_steps, t0 + chunk)):
                kp = keep[b, t]
                for i in range(row_start, row_end):
                    if kp == zero:  # an episode start: M_{t-1} replaced by 0 even if not finite (0 * inf = NaN)
                        for j in range(size):
                            m_last[b, i, j] = zero
                    a = theta[b, t, i]
                    wi = w[b, t, i]
                    acc = zero
                    for j in range(size):
                        m = (one + _tanh(a * v_c[b, t, j])) * (kp * m_last[b, i, j]) + wi * k[b, t, j]
                        if use_clamp:
                            m = min(max(m, -bound), bound)
                        m_last[b, i, j] = m
                        acc += m * q[b, t, j]
                    y[b, t, i] = acc


@numba.njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _recompute_row(theta, v_c, w, k, keep, one, bound, use_clamp, ckpt, b, c, i, t0, t1, task, history, before_clamp, tanh_z):
    """
    Part of :func:`_backward_kernel` (inlined into it, so its loops keep the kernel's ``noalias`` arrays): recompute
    row ``i`` of ``M`` over steps ``t0 .. t1 - 1`` from the checkpoint ``c`` into the task's workspace: ``history``
    (M_{t0-1} .. M_{t1-1}), ``before_clamp`` (P_t) and ``tanh_z`` (tanh(Z_t), not written at episode starts, where
    the backward does not read it).
    """
    size = theta.shape[2]
    for j in range(size):
        history[task, 0, j] = ckpt[b, c, i, j]
    for t in range(t0, t1):
        s = t - t0
        a = theta[b, t, i]
        wi = w[b, t, i]
        kp = keep[b, t]
        if kp == one - one:  # an episode start: M_t = U_t, whatever M_{t-1} holds
            for j in range(size):
                m = wi * k[b, t, j]
                before_clamp[task, s, j] = m
                if use_clamp:
                    m = min(max(m, -bound), bound)
                history[task, s + 1, j] = m
            continue
        for j in range(size):
            tz = _tanh(a * v_c[b, t, j])
            m = (one + tz) * (kp * history[task, s, j]) + wi * k[b, t, j]
            tanh_z[task, s, j] = tz
            before_clamp[task, s, j] = m
            if use_clamp:
                m = min(max(m, -bound), bound)
            history[task, s + 1, j] = m


@numba.njit(**_JIT)  # type: ignore[call-overload]  # numba's stub does not type keyword options given as a dict
def _backward_kernel(
    theta, v_c, w, k, q, keep, consts, use_clamp, chunk, n_groups, ckpt, grad_y,
    grad_theta, grad_w, grad_v_c, grad_k, grad_q, grad_m, history, before_clamp, tanh_z,
):  # fmt: skip
    """
    Inputs as in :func:`_forward_kernel`; ``ckpt`` from it, ``grad_y`` (B, T, H).
    Outputs: ``grad_theta``, ``grad_w`` (B, T, H); ``grad_v_c``, ``grad_k``, ``grad_q`` (G, B, T, H) partial sums
    over row blocks, zero-initialised; ``grad_m`` (B, H, H): dL/dM_{T-1} on entry, dL/dM_{-1} on exit.
    Workspace, one slot per task (B * G): ``history`` (B * G, K + 1, H) = M_{t0-1} .. M_{t1-1} of the current row,
    ``before_clamp`` and ``tanh_z`` (B * G, K, H) = P_t and tanh(Z_t) of that row.
    """
    n_batch, n_steps, size = theta.shape
    one, bound = consts[0], consts[1]
    zero = one - one
    rows_per_group = (size + n_groups - 1) // n_groups
    last_chunk = (n_steps - 1) // chunk
    for task in prange(n_batch * n_groups):
        b = task // n_groups
        g = task % n_groups
        row_start = g * rows_per_group
        row_end = min(size, row_start + rows_per_group)
        for c in range(last_chunk, -1, -1):
            t0 = c * chunk
            t1 = min(n_steps, t0 + chunk)
            for i in range(row_start, row_end):
                _recompute_row(
                    theta, v_c, w, k, keep, one, bound, use_clamp, ckpt, b, c, i, t0, t1, task, history, before_clamp, tanh_z
                )
                # reverse-time recurrence over the chunk, one pass over the row per step
                for t in range(t1 - 1, t0 - 1, -1):
                    s = t - t0
                    a = theta[b, t, i]
                    wi = w[b, t, i]
                    kp = keep[b, t]
                    gyi = grad_y[b, t, i]
                    sum_w = zero
                    sum_theta = zero
                    if kp == zero:  # an episode start: no gradient into C_t or M_{t-1}, even where gM_t is not finite
                        for j in range(size):
                            gm = grad_m[b, i, j] + gyi * q[b, t, j]
                            if use_clamp:
                                gm = gm if abs(before_clamp[task, s, j]) <= bound else zero
                            sum_w += gm * k[b, t, j]
                            grad_q[g, b, t, j] += gyi * history[task, s + 1, j]
                            grad_k[g, b, t, j] += wi * gm
                            grad_m[b, i, j] = zero
                    else:
                        for j in range(size):
                            gm = grad_m[b, i, j] + gyi * q[b, t, j]
                            if use_clamp:
                                gm = gm if abs(before_clamp[task, s, j]) <= bound else zero
                            sum_w += gm * k[b, t, j]
                            grad_q[g, b, t, j] += gyi * history[task, s + 1, j]
                            grad_k[g, b, t, j] += wi * gm
                            tz = tanh_z[task, s, j]
                            gz = gm * (kp * history[task, s, j]) * (one - tz * tz)
                            sum_theta += gz * v_c[b, t, j]
                            grad_v_c[g, b, t, j] += a * gz
                            grad_m[b, i, j] = gm * (one + tz) * kp
                    grad_w[b, t, i] = sum_w
                    grad_theta[b, t, i] = sum_theta


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
    m_last[:] = m0  # the kernel updates it in place
    _forward_kernel(theta, v_c, w, k, q, keep, consts, clamp is not None, chunk, groups, y, m_last, ckpt)
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
    grad_m0 = grad_last.copy()  # updated in place: dL/dM_t, then dL/dM_{-1}
    tasks = n_batch * groups
    history = np.empty((tasks, chunk + 1, size), dtype=dtype)
    before_clamp = np.empty((tasks, chunk, size), dtype=dtype)
    tanh_z = np.empty((tasks, chunk, size), dtype=dtype)
    _backward_kernel(
        theta, v_c, w, k, q, keep, consts, clamp is not None, chunk, groups, ckpt, grad_y,
        grad_theta, grad_w, partial[0], partial[1], partial[2], grad_m0, history, before_clamp, tanh_z,
    )  # fmt: skip
    grad_v_c, grad_k, grad_q = partial.sum(axis=1) if groups > 1 else partial[:, 0]
    return grad_theta, grad_v_c, grad_w, grad_k, grad_q, grad_m0
