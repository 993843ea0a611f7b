"""
The Stable Hadamard Memory cell (Le et al., ICLR 2025), as specified in ``docs/spec.md``.

Per environment and step, with input ``x_t`` (D,) and memory ``M`` (H, H)::

    x     = LayerNorm(x_t)
    k     = relu(W_k x);  k = k / (1e-5 + sum(k))
    q     = relu(W_q x);  q = q / (1e-5 + sum(q))
    v     = W_v x
    eta   = sigmoid(w_eta . x)
    v_c   = W_c x
    theta = Theta[i_t],  i_t ~ Uniform{0..L-1}
    M_t   = clamp(decay * (1 + tanh(outer(theta, v_c))) * M_{t-1} * (1 - episode_start_t) + eta * outer(v, k))
    out_t = W_out (M_t @ q + shortcut(x)) + b_out

``decay`` is this package's addition (default 1: the paper's cell), see :class:`ShmCell`.

The recurrence itself lives in :mod:`sb3_shm.common.memory.scan`.
"""

import math
import numbers
import warnings
from typing import Literal, NamedTuple

import torch as th
from torch import nn

from sb3_shm.common.memory.scan import SCAN_IMPLS, ScanImpl, shm_sequence, shm_step

Calibration = Literal["random", "fixed", "none"]
CALIBRATIONS = ("random", "fixed", "none")


def is_integer(value: object) -> bool:
    """:return: whether ``value`` is an integer (Python or numpy), bools excluded: ``True`` is not a size"""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """:return: whether ``value`` is a real number (Python or numpy, integer or float), bools and strings excluded"""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_memory_arguments(
    memory_size: int, bank_size: int, calibration: str, clamp: float | None, scan_impl: str, decay: float = 1.0
) -> None:
    """Raise a ValueError that names the bad memory option and the allowed values."""
    if not (is_integer(memory_size) and memory_size >= 1):
        raise ValueError(f"memory_size must be an integer >= 1, got {memory_size!r}")
    if not (is_integer(bank_size) and bank_size >= 1):
        raise ValueError(f"bank_size must be an integer >= 1, got {bank_size!r}")
    if not (isinstance(calibration, str) and calibration in CALIBRATIONS):
        raise ValueError(f"Unknown calibration mode {calibration!r}: choose one of {CALIBRATIONS}")
    if clamp is not None and not (is_real(clamp) and clamp > 0):
        raise ValueError(f"clamp must be a positive number or None (no clamp), got {clamp!r}")
    if not (isinstance(scan_impl, str) and scan_impl in SCAN_IMPLS):
        raise ValueError(f"Unknown scan_impl {scan_impl!r}: choose one of {SCAN_IMPLS}")
    if not (is_real(decay) and 0.0 < decay <= 1.0):
        raise ValueError(f"memory decay must be a number in (0, 1] (1 = the paper's cell, no decay), got {decay!r}")


def all_finite(tensor: th.Tensor) -> bool:
    """
    Whether no entry is NaN or inf, at the cost of one reduction: any NaN or inf makes the sum NaN or inf, and a finite
    sum can only be wrong the other way (an overflow of finite entries), which the exact check then settles. About
    7 us per call at rollout sizes, half of ``isfinite(tensor).all()`` (two kernels) between the policy's other ops.

    :param tensor: a floating-point tensor
    :return: True if every entry is finite
    """
    return math.isfinite(tensor.sum().item()) or bool(th.isfinite(tensor).all())


def memory_is_bounded(calibration: str, clamp: float | None, decay: float) -> bool:
    """
    Whether these options bound |M| for any finite input (``docs/guide/memory.md``, "What each option guarantees").

    ``|U_t| <= u`` always, with ``u`` a constant of the cell's parameters (``k`` sums to at most 1, ``v`` is a linear map
    of a LayerNorm output), and ``M_t = C_t * M_{t-1} + U_t`` with ``0 <= C_t <= c_max``:

    - a clamp ``c``: ``|M| <= c``;
    - ``c_max < 1`` (calibration ``"none"`` with decay < 1, or ``"random"`` / ``"fixed"`` with decay < 0.5):
      ``|M| <= u / (1 - c_max)``;
    - ``c_max = 1`` (``"none"`` with decay 1, or decay 0.5): ``|M| <= n u`` after n steps of an episode, at most
      linear in its length (no overflow in any realistic episode);
    - otherwise (``"random"`` / ``"fixed"``, decay > 0.5, no clamp) ``C`` can stay above 1 and the memory can grow
      geometrically until it overflows: not bounded.

    :param calibration: the calibration mode
    :param clamp: the clamp, or None
    :param decay: the memory decay gamma
    :return: False only for the last case
    """
    return clamp is not None or calibration == "none" or decay <= 0.5


def unbounded_memory_hint(calibration: str, decay: float) -> str:
    """:return: why options without a bound are unbounded, and the fixes (for warnings and errors)"""
    return (
        f"with memory_clamp=None, calibration={calibration!r} and memory_decay={decay} (ShmCell: clamp, calibration, "
        "decay) the memory has no bound: "
        f"C_t = {decay} * (1 + tanh(...)) reaches up to {2 * decay:g} > 1, so |M| can grow geometrically over an "
        "episode until it overflows (inf, then NaN). Set memory_clamp (the default 100 bounds |M| by 100), "
        'memory_decay <= 0.5 or calibration="none"; see docs/guide/memory.md'
    )


class ShmGates(NamedTuple):
    """
    The gates of :class:`ShmCell` for a batch of inputs (:meth:`ShmCell.gates`).

    :param theta: the calibration row ``Theta[i_t]``, (..., H) (zeros for ``calibration="none"``)
    :param v_c: the calibration vector ``W_c x``, (..., H)
    :param eta: the write strength ``sigmoid(w_eta . x)``, (...)
    :param calibration: ``C_t = decay * (1 + tanh(outer(theta, v_c)))``, (..., H, H), each entry in ``[0, 2 * decay]``
    """

    theta: th.Tensor
    v_c: th.Tensor
    eta: th.Tensor
    calibration: th.Tensor


class ShmCell(nn.Module):
    """
    Stable Hadamard Memory cell.

    :param input_dim: size D of the input features
    :param embed_dim: if set, ``x_t`` first goes through ``ReLU(Linear(D, embed_dim))``, as in the authors' set-up
        (``Linear(128, 64) + ReLU -> SHM cell``). Deviation from the bare cell of the spec, on by default in the policies:
        the cell's LayerNorm over a raw low-dimensional observation erases its magnitude (over 2 features it leaves
        only the sign of their difference), so raw observations need an embedding first.
    :param memory_size: H, the memory is an H x H matrix
    :param output_dim: size of the output (``W_out``); defaults to H
    :param bank_size: L, number of calibration rows in the learned bank ``Theta`` (L, H)
    :param calibration: ``"random"`` (a random row of the bank per step and environment: the method as the paper
        describes it, and the authors' pomdp-baselines code), ``"fixed"`` (always row 0: what the authors' POPGym code
        ran, without a clamp) or ``"none"`` (C = 1: linear attention with a write gate)
    :param clamp: bound on |M| applied at every step (the authors' guard), None to disable. Without it, random or
        fixed calibration with ``decay > 0.5`` leaves the memory unbounded (a UserWarning here; see
        :meth:`memory_bound` for the bound of each option)
    :param scan_impl: implementation of the whole-sequence form, see :func:`~sb3_shm.common.memory.scan.shm_sequence`
    :param decay: gamma in ``C_t = gamma * (1 + tanh(outer(theta, v_c)))``, a constant forgetting factor. Deviation
        from the spec, off by default (1.0 = the paper's cell). Why: at initialisation ``theta (x) v_c`` is small, so
        ``C`` is about 1 and the memory is an integrator of everything written since the episode start; learning to
        forget takes every row of the bank agreeing in sign, which is slow; a constant decay of 0.7-0.9 lets tasks that
        need the recent past learn (measured on the NoVel and POPGym tasks: ``docs/results.md``). Tasks
        that must hold a cue for long (Visual Match, Key-to-Door) keep 1.0; the learned part can still raise ``C``
        up to ``2 * decay``. It is applied through ``keep = decay * (1 - episode_start)``, which every scan
        implementation already multiplies in, so all of them (and the fused kernels) support it unchanged.
    """

    def __init__(
        self,
        input_dim: int,
        memory_size: int = 32,
        embed_dim: int | None = None,
        output_dim: int | None = None,
        bank_size: int = 128,
        calibration: Calibration = "random",
        clamp: float | None = 100.0,
        scan_impl: ScanImpl = "auto",
        decay: float = 1.0,
    ):
        super().__init__()
        check_memory_arguments(memory_size, bank_size, calibration, clamp, scan_impl, decay)
        if embed_dim is not None and not (is_integer(embed_dim) and embed_dim >= 1):
            raise ValueError(f"embed_dim must be an integer >= 1 or None (no embedding), got {embed_dim!r}")
        if not memory_is_bounded(calibration, clamp, decay):
            warnings.warn(unbounded_memory_hint(calibration, float(decay)), UserWarning, stacklevel=2)
        # Python numbers: numpy integers are accepted above, and these are saved with the model and passed to torch
        self.input_dim = int(input_dim)
        self.embed_dim = None if embed_dim is None else int(embed_dim)
        self.memory_size = int(memory_size)
        self.output_dim = int(output_dim or memory_size)
        self.bank_size = int(bank_size)
        self.calibration = calibration
        self.clamp = None if clamp is None else float(clamp)
        self.scan_impl = scan_impl
        self.decay = float(decay)
        input_dim, embed_dim, memory_size, bank_size = self.input_dim, self.embed_dim, self.memory_size, self.bank_size

        self.embed = nn.Sequential(nn.Linear(input_dim, embed_dim), nn.ReLU()) if embed_dim else nn.Identity()
        input_dim = embed_dim or input_dim
        self.norm = nn.LayerNorm(input_dim)
        # W_k, W_q, W_v, W_c and w_eta stacked into one bias-free Linear (4H + 1 outputs): one matrix product per
        # step instead of five, which matters at rollout time where each small op costs more than its arithmetic.
        # Same initialisation as five separate Linear layers (it depends only on fan_in = D).
        self.projection = nn.Linear(input_dim, 4 * memory_size + 1, bias=False)
        self.theta_bank = nn.Parameter(nn.init.xavier_uniform_(th.empty(bank_size, memory_size)))
        self.shortcut = nn.Linear(input_dim, memory_size)
        self.out = nn.Linear(memory_size, self.output_dim)

    def initial_state(
        self, batch_size: int, device: th.device | str | None = None, dtype: th.dtype | None = None
    ) -> th.Tensor:
        """
        :param batch_size: number of environments
        :return: the empty memory, (batch_size, H, H)
        """
        dtype = dtype or self.theta_bank.dtype
        return th.zeros(batch_size, self.memory_size, self.memory_size, device=device, dtype=dtype)

    def sample_theta_indices(self, *shape: int, device: th.device | str | None = None) -> th.Tensor:
        """
        Draw calibration indices ``i_t`` from torch's global RNG (so ``set_random_seed`` makes them reproducible).

        :param shape: e.g. (n_envs,) for a step or (n_seq, T) for sequences
        :return: int64 indices of the given shape; all zeros for ``"fixed"`` and ``"none"``
        """
        if self.calibration == "random":
            return th.randint(0, self.bank_size, shape, device=device)
        return th.zeros(shape, dtype=th.long, device=device)

    def _projections(self, x: th.Tensor, theta_idx: th.Tensor) -> tuple[th.Tensor, ...]:
        """(..., D), (...) -> theta, v_c, v, k, q: each (..., H); eta (..., 1); shortcut (..., H)."""
        x = self.norm(self.embed(x))
        size = self.memory_size
        k, q, v, v_c, eta_logit = self.projection(x).split([size, size, size, size, 1], dim=-1)
        k = th.relu(k)
        k = k / (1e-5 + k.sum(-1, keepdim=True))
        q = th.relu(q)
        q = q / (1e-5 + q.sum(-1, keepdim=True))
        if self.calibration == "none":
            # tanh(0) = 0, so C = 1 without a special case in the recurrence
            theta = th.zeros_like(v_c)
        else:
            theta = self.theta_bank[theta_idx]
        return theta, v_c, v, k, q, th.sigmoid(eta_logit), self.shortcut(x)

    def _project(self, x: th.Tensor, theta_idx: th.Tensor) -> tuple[th.Tensor, ...]:
        """(..., D), (...) -> theta, v_c, w = eta * v, k, q: each (..., H); shortcut (..., H)."""
        theta, v_c, v, k, q, eta, shortcut = self._projections(x, theta_idx)
        return theta, v_c, eta * v, k, q, shortcut

    def gates(self, x: th.Tensor, theta_idx: th.Tensor) -> ShmGates:
        """
        What the cell does with input ``x``: its calibration and write gates, as the recurrence uses them (for
        diagnostics and figures; the recurrence itself never forms ``C`` outside the scan).

        :param x: (..., D) inputs, e.g. (B, D) for one step or (B, T, D)
        :param theta_idx: (...) calibration indices, e.g. from :meth:`sample_theta_indices`
        :return: the gates, each with the leading shape of ``x``
        """
        theta, v_c, _, _, _, eta, _ = self._projections(x, theta_idx)
        calibration = self.decay * (1.0 + th.tanh(theta.unsqueeze(-1) * v_c.unsqueeze(-2)))
        return ShmGates(theta=theta, v_c=v_c, eta=eta.squeeze(-1), calibration=calibration)

    def write_bound(self) -> float:
        """
        A bound ``u`` on every entry of the write ``U_t = eta_t v_t k_t^T``, for any finite input, with the current
        parameters: ``0 < eta < 1`` and ``0 <= k_j < 1`` (``k`` is normalised by its sum), so
        ``abs(U_t[i, j]) <= abs(v_t[i])``; ``v = W_v x`` with ``x`` the LayerNorm's output, and each entry of a
        normalised vector of D numbers is at most ``sqrt(D - 1)`` in size, so
        ``abs(x_d) <= abs(gamma_d) sqrt(D - 1) + abs(beta_d)``.

        :return: u
        """
        norm = self.norm
        size = norm.normalized_shape[0]
        with th.no_grad():
            x_bound = norm.weight.double().abs() * (size - 1) ** 0.5 + norm.bias.double().abs()
            w_v = self.projection.weight[2 * self.memory_size : 3 * self.memory_size].double()
            return (w_v.abs() @ x_bound).max().item()

    def memory_bound(self, n_steps: int) -> float:
        """
        The bound on ``abs(M_t)`` (every entry) that the options guarantee over the first ``n_steps`` steps of an episode
        (the first one an episode start), for any finite input, with the current parameters (``docs/guide/memory.md``):
        with ``u = write_bound()`` and ``c = max C_t`` (``2 * decay``, or ``decay`` without calibration), ``u / (1 - c)``
        if ``c < 1``, ``n_steps * u`` if ``c = 1``, none if ``c > 1``; and ``clamp`` if it is set.

        :param n_steps: steps since the episode start, that one included (>= 1)
        :return: the bound, ``inf`` where the options give none (see :func:`memory_is_bounded`)
        """
        growth = self.decay * (1.0 if self.calibration == "none" else 2.0)
        u = self.write_bound()
        bound = u / (1.0 - growth) if growth < 1.0 else n_steps * u if growth == 1.0 else float("inf")
        return bound if self.clamp is None else min(self.clamp, bound)

    def _keep(self, episode_starts: th.Tensor, dtype: th.dtype) -> th.Tensor:
        """The factor on M_{t-1}: 0 at episode starts (reset), ``decay`` elsewhere."""
        return self.decay * (1.0 - episode_starts.to(dtype))

    def step(
        self, x: th.Tensor, memory: th.Tensor, episode_starts: th.Tensor, theta_idx: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        One step for a batch of environments (rollouts and ``predict``).

        :param x: (B, D)
        :param memory: M_{t-1}, (B, H, H)
        :param episode_starts: (B,) 1.0 where a new episode starts (memory reset to 0 before the update)
        :param theta_idx: (B,) calibration indices
        :return: output (B, output_dim), M_t (B, H, H)
        """
        theta, v_c, w, k, q, shortcut = self._project(x, theta_idx)
        new_memory = shm_step(memory, theta, v_c, w, k, self._keep(episode_starts, x.dtype), self.clamp)
        read = th.einsum("bij,bj->bi", new_memory, q)
        self._check_finite(read, x, memory, episode_starts)
        return self.out(read + shortcut), new_memory

    def forward(
        self, x: th.Tensor, memory: th.Tensor, episode_starts: th.Tensor, theta_idx: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        Whole sequences (training), memory reset inside the sequence at episode starts.

        :param x: (B, T, D)
        :param memory: M before the first step, (B, H, H)
        :param episode_starts: (B, T)
        :param theta_idx: (B, T) calibration indices (replayed from the rollout)
        :return: outputs (B, T, output_dim), last memory (B, H, H)
        """
        theta, v_c, w, k, q, shortcut = self._project(x, theta_idx)
        keep = self._keep(episode_starts, x.dtype)
        read, last = shm_sequence(theta, v_c, w, k, q, keep, memory, self.clamp, self.scan_impl)
        self._check_finite(read, x, memory, episode_starts[:, 0])
        return self.out(read + shortcut), last

    def _check_finite(self, read: th.Tensor, x: th.Tensor, previous: th.Tensor, episode_starts: th.Tensor) -> None:
        """
        Raise a FloatingPointError naming the environments whose memory turned NaN or inf, and why.

        The read-outs ``y_t = M_t q_t`` show it: an inf or NaN anywhere in a row of ``M_t`` makes that row's read-out
        inf or NaN (``q >= 0``, and ``0 * inf`` is NaN), so one reduction (:func:`all_finite`) over (B, H) (or
        (B, T, H)) numbers checks the (B, H, H) memories (which the fused kernels never store for every t): about 1% of
        a ``predict`` call.

        :param read: the read-outs, (B, H) or (B, T, H)
        :param x: the cell's input, (B, D) or (B, T, D)
        :param previous: the memory before the step (or the sequence), (B, H, H)
        :param episode_starts: (B,) episode starts of the (first) step
        """
        if all_finite(read):
            return
        bad = th.nonzero(~th.isfinite(read).flatten(1).all(1)).flatten().tolist()
        where = f"ShmCell memory is not finite (NaN or inf) for environment(s) {bad}: "
        kept = episode_starts.reshape(-1) == 0
        if not th.isfinite(x).all():
            cause = (
                "its input is not finite: check the observations (ShmPPO's policies do unless check_observations=False) "
                "and the features extractor"
            )
        elif not all(th.isfinite(parameter).all() for parameter in self.parameters()):
            cause = "the cell's parameters are not finite (training diverged: lower the learning rate or max_grad_norm)"
        elif not th.isfinite(previous[kept]).all():
            cause = (
                "the memory passed in (the state) is not finite: start a new episode there (episode_start=True) or "
                "pass state=None"
            )
        elif not memory_is_bounded(self.calibration, self.clamp, self.decay):
            cause = f"it overflowed: {unbounded_memory_hint(self.calibration, self.decay)}"
        else:
            cause = "an intermediate value overflowed (the inputs are very large)"
        raise FloatingPointError(where + cause)
