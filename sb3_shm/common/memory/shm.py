"""
The Stable Hadamard Memory cell (Le et al., ICLR 2025), as specified in ``shared/SHM.md``.

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

from typing import Literal

import torch as th
from torch import nn

from sb3_shm.common.memory.scan import SCAN_IMPLS, ScanImpl, shm_sequence, shm_step

Calibration = Literal["random", "fixed", "none"]
CALIBRATIONS = ("random", "fixed", "none")


def check_memory_arguments(
    memory_size: int, bank_size: int, calibration: str, clamp: float | None, scan_impl: str, decay: float = 1.0
) -> None:
    """Raise a ValueError that names the bad memory option and the allowed values."""
    if not (isinstance(memory_size, int) and memory_size >= 1):
        raise ValueError(f"memory_size must be an integer >= 1, got {memory_size!r}")
    if not (isinstance(bank_size, int) and bank_size >= 1):
        raise ValueError(f"bank_size must be an integer >= 1, got {bank_size!r}")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"Unknown calibration mode {calibration!r}: choose one of {CALIBRATIONS}")
    if clamp is not None and not clamp > 0:
        raise ValueError(f"clamp must be a positive number or None (no clamp), got {clamp!r}")
    if scan_impl not in SCAN_IMPLS:
        raise ValueError(f"Unknown scan_impl {scan_impl!r}: choose one of {SCAN_IMPLS}")
    if not (isinstance(decay, (int, float)) and 0.0 < decay <= 1.0):
        raise ValueError(f"memory decay must be a number in (0, 1] (1 = the paper's cell, no decay), got {decay!r}")


class ShmCell(nn.Module):
    """
    Stable Hadamard Memory cell.

    :param input_dim: size D of the input features
    :param embed_dim: if set, ``x_t`` first goes through ``ReLU(Linear(D, embed_dim))``, as in the authors' set-up
        (``Linear(128, 64) + ReLU -> SHM cell``). Deviation from the bare cell of SHM.md, on by default in the policies:
        the cell's LayerNorm over a raw low-dimensional observation erases its magnitude (over 2 features it leaves
        only the sign of their difference), so raw observations need an embedding first.
    :param memory_size: H, the memory is an H x H matrix
    :param output_dim: size of the output (``W_out``); defaults to H
    :param bank_size: L, number of calibration rows in the learned bank ``Theta`` (L, H)
    :param calibration: ``"random"`` (the paper: a random row of the bank per step and environment),
        ``"fixed"`` (always row 0) or ``"none"`` (C = 1: linear attention with a write gate)
    :param clamp: bound on |M| applied at every step (the authors' guard), None to disable
    :param scan_impl: implementation of the whole-sequence form, see :func:`~sb3_shm.common.memory.scan.shm_sequence`
    :param decay: gamma in ``C_t = gamma * (1 + tanh(outer(theta, v_c)))``, a constant forgetting factor. Deviation
        from SHM.md, off by default (1.0 = the paper's cell). Why: at initialisation ``theta (x) v_c`` is small, so
        ``C`` is about 1 and the memory is an integrator of everything written since the episode start; learning to
        forget takes every row of the bank agreeing in sign, which is slow (CartPoleNoVel-v1 stayed at memoryless
        PPO's ~50 for 60k steps). With ``decay`` 0.7 and fixed calibration it reached 399 +/- 61 at 100k steps, against
        RecurrentPPO's 466 +/- 48 with rl_zoo3's settings, 500 with tuned ones (``docs/results.md``). Tasks
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
        if embed_dim is not None and not (isinstance(embed_dim, int) and embed_dim >= 1):
            raise ValueError(f"embed_dim must be an integer >= 1 or None (no embedding), got {embed_dim!r}")
        self.input_dim = input_dim
        self.embed_dim = embed_dim
        self.memory_size = memory_size
        self.output_dim = output_dim or memory_size
        self.bank_size = bank_size
        self.calibration = calibration
        self.clamp = clamp
        self.scan_impl = scan_impl
        self.decay = float(decay)

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

    def _project(self, x: th.Tensor, theta_idx: th.Tensor) -> tuple[th.Tensor, ...]:
        """(..., D), (...) -> theta, v_c, w = eta * v, k, q: each (..., H); shortcut (..., H)."""
        x = self.norm(self.embed(x))
        size = self.memory_size
        k, q, v, v_c, eta = self.projection(x).split([size, size, size, size, 1], dim=-1)
        k = th.relu(k)
        k = k / (1e-5 + k.sum(-1, keepdim=True))
        q = th.relu(q)
        q = q / (1e-5 + q.sum(-1, keepdim=True))
        w = th.sigmoid(eta) * v
        if self.calibration == "none":
            # tanh(0) = 0, so C = 1 without a special case in the recurrence
            theta = th.zeros_like(v_c)
        else:
            theta = self.theta_bank[theta_idx]
        return theta, v_c, w, k, q, self.shortcut(x)

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
        memory = shm_step(memory, theta, v_c, w, k, self._keep(episode_starts, x.dtype), self.clamp)
        read = th.einsum("bij,bj->bi", memory, q)
        return self.out(read + shortcut), memory

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
        read, memory = shm_sequence(theta, v_c, w, k, q, keep, memory, self.clamp, self.scan_impl)
        return self.out(read + shortcut), memory
