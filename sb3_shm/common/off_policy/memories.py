"""
The memories a recurrent off-policy network can use, behind one small interface: the SHM cell (this package's
:class:`~sb3_shm.common.memory.shm.ShmCell`, the same cell and scan as ShmPPO), torch's GRU or LSTM.

Every memory's state is one tensor with the environments first, so that the algorithm can store it, reset it at
episode starts (``1 - episode_start`` applied with a select) and hand it to ``predict`` the same way for all three.
Training windows always start from an empty memory and never cross an episode boundary
(:mod:`sb3_shm.common.off_policy.buffers`), so the whole-sequence form needs no resets inside a sequence.
"""

from typing import Any, Literal

import torch as th
from torch import nn

from sb3_shm.common.memory.scan import ScanImpl, reset_memory
from sb3_shm.common.memory.shm import Calibration, ShmCell, check_memory_arguments

MemoryKind = Literal["shm", "gru", "lstm"]
MEMORY_KINDS = ("shm", "gru", "lstm")


class SequenceMemory(nn.Module):
    """
    A recurrent memory with a one-step form (rollouts, ``predict``) and a whole-sequence form (training).

    :param output_dim: size of the memory's output at every step
    """

    def __init__(self, output_dim: int):
        super().__init__()
        self.output_dim = output_dim

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one environment's state."""
        raise NotImplementedError

    def initial_state(self, n_envs: int, device: th.device | str | None = None) -> th.Tensor:
        """
        :param n_envs: number of environments
        :param device: torch device
        :return: the empty memory, ``(n_envs, *state_shape)``
        """
        return th.zeros(n_envs, *self.state_shape, device=device)

    def step(self, x: th.Tensor, state: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        One step for a batch of environments; the state is emptied first where an episode starts.

        :param x: (n_envs, input_dim)
        :param state: ``(n_envs, *state_shape)``
        :param episode_starts: (n_envs,) 1.0 where a new episode starts
        :return: output (n_envs, output_dim) and the new state
        """
        raise NotImplementedError

    def forward(self, x: th.Tensor) -> th.Tensor:
        """
        Whole sequences from an empty memory.

        :param x: (n_seq, T, input_dim)
        :return: outputs, (n_seq, T, output_dim)
        """
        raise NotImplementedError


class ShmMemory(SequenceMemory):
    """
    The Stable Hadamard Memory. Calibration indices are drawn afresh at every call, in rollouts and in training, as
    the authors' pomdp-baselines code does: SAC has no importance ratio, so unlike ShmPPO nothing needs replaying.

    :param input_dim: size of the input
    :param memory_size: H (the memory is H x H)
    :param bank_size: L, number of calibration rows
    :param calibration: ``"random"``, ``"fixed"`` or ``"none"``, see :class:`~sb3_shm.common.memory.shm.ShmCell`
    :param memory_clamp: bound on |M| at every step, None for none
    :param memory_decay: forgetting factor in (0, 1], 1 is the paper's cell
    :param scan_impl: implementation of the whole-sequence recurrence
    """

    def __init__(
        self,
        input_dim: int,
        memory_size: int,
        bank_size: int,
        calibration: Calibration,
        memory_clamp: float | None,
        memory_decay: float,
        scan_impl: ScanImpl,
    ):
        super().__init__(memory_size)
        # The input is already ReLU embeddings of the observation, action and reward: no embedding inside the cell
        self.cell = ShmCell(
            input_dim,
            memory_size=memory_size,
            bank_size=bank_size,
            calibration=calibration,
            clamp=memory_clamp,
            scan_impl=scan_impl,
            decay=memory_decay,
        )

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.cell.memory_size, self.cell.memory_size)

    def step(self, x: th.Tensor, state: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        theta_idx = self.cell.sample_theta_indices(x.shape[0], device=x.device)
        return self.cell.step(x, state, episode_starts, theta_idx)

    def forward(self, x: th.Tensor) -> th.Tensor:
        n_seq, n_steps = x.shape[:2]
        no_starts = th.zeros(n_seq, n_steps, device=x.device)
        theta_idx = self.cell.sample_theta_indices(n_seq, n_steps, device=x.device)
        output, _ = self.cell(x, self.cell.initial_state(n_seq, device=x.device, dtype=x.dtype), no_starts, theta_idx)
        return output


class RnnMemory(SequenceMemory):
    """
    torch's GRU or LSTM (one layer), initialised as pomdp-baselines does (orthogonal weights, zero biases).
    The LSTM's state is ``(h, c)`` stacked: (n_envs, 2, hidden_size).

    :param kind: ``"gru"`` or ``"lstm"``
    :param input_dim: size of the input
    :param hidden_size: size of the hidden state (and of the output)
    """

    def __init__(self, kind: Literal["gru", "lstm"], input_dim: int, hidden_size: int):
        super().__init__(hidden_size)
        self.kind = kind
        self.rnn: nn.GRU | nn.LSTM = (nn.GRU if kind == "gru" else nn.LSTM)(input_dim, hidden_size, batch_first=True)
        for name, param in self.rnn.named_parameters():
            if "bias" in name:
                nn.init.zeros_(param)
            else:
                nn.init.orthogonal_(param)

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.output_dim,) if self.kind == "gru" else (2, self.output_dim)

    def step(self, x: th.Tensor, state: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        keep = (1.0 - episode_starts.to(state.dtype)).view(-1, *([1] * (state.dim() - 1)))
        state = reset_memory(keep, state)  # a select: 0 * NaN would keep a NaN state after an episode start
        if self.kind == "gru":
            # (n_envs, H) -> (1, n_envs, H): torch's layout for the hidden state
            output, hidden = self.rnn(x.unsqueeze(1), state.unsqueeze(0).contiguous())
            return output[:, 0], hidden[0]
        output, (h, c) = self.rnn(
            x.unsqueeze(1), (state[:, 0].unsqueeze(0).contiguous(), state[:, 1].unsqueeze(0).contiguous())
        )
        return output[:, 0], th.stack([h[0], c[0]], dim=1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        output, _ = self.rnn(x)  # zero initial state
        return output


def check_memory_options(actor_memory_type: str, critic_memory_type: str, hidden_size: int, **shm_options: Any) -> None:
    """Raise a ValueError naming the bad option and the allowed values (SHM options: as ShmPPO's)."""
    for name, kind in (("actor_memory_type", actor_memory_type), ("critic_memory_type", critic_memory_type)):
        if kind not in MEMORY_KINDS:
            raise ValueError(f"Unknown {name} {kind!r}: choose one of {MEMORY_KINDS}")
    if not (isinstance(hidden_size, int) and hidden_size >= 1):
        raise ValueError(f"rnn_hidden_size must be an integer >= 1, got {hidden_size!r}")
    check_memory_arguments(
        shm_options["memory_size"],
        shm_options["bank_size"],
        shm_options["calibration"],
        shm_options["memory_clamp"],
        shm_options["scan_impl"],
        shm_options["memory_decay"],
    )


def make_memory(kind: MemoryKind, input_dim: int, rnn_hidden_size: int, **shm_options: Any) -> SequenceMemory:
    """
    :param kind: ``"shm"``, ``"gru"`` or ``"lstm"``
    :param input_dim: size of the memory's input
    :param rnn_hidden_size: hidden size of a GRU / LSTM
    :param shm_options: ``memory_size``, ``bank_size``, ``calibration``, ``memory_clamp``, ``memory_decay``,
        ``scan_impl`` (used by ``"shm"``)
    :return: the memory
    """
    if kind == "shm":
        return ShmMemory(input_dim, **shm_options)
    return RnnMemory(kind, input_dim, rnn_hidden_size)
