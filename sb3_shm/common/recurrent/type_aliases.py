"""Named tuples for the SHM recurrent state and for training samples."""

from typing import NamedTuple

import torch as th
from stable_baselines3.common.type_aliases import TensorDict


class ShmStates(NamedTuple):
    """
    Memories of the actor and the critic, each (n_envs, H, H).

    Without a critic memory of its own (``critic_memory`` other than ``"separate"``), ``vf`` is ``pi``.
    """

    pi: th.Tensor
    vf: th.Tensor


class ShmReplay(NamedTuple):
    """
    What training needs to recompute a batch of sequences exactly as the agent lived them.

    :param memory: memories before the first step of each sequence, each (n_seq, H, H)
    :param theta_idx: calibration indices drawn during the rollout, (n_seq * T,)
    """

    memory: ShmStates
    theta_idx: th.Tensor


class ShmRolloutBufferSamples(NamedTuple):
    """
    Equal-length sequences, flattened to (n_seq * T, ...) in (sequence, time) order; no padding.
    ``observations`` is a tensor, or a dict of tensors for Dict observation spaces.
    """

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    replay: ShmReplay
    episode_starts: th.Tensor
    mask: th.Tensor

    @property
    def lstm_states(self) -> ShmReplay:
        """The name under which sb3-contrib's ``RecurrentPPO.train`` (reused by ShmPPO) passes the recurrent state."""
        return self.replay
