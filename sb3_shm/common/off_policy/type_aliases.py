"""Named tuples for recurrent off-policy training (ShmSAC): replayed sequences and the rollout's memory state."""

from typing import NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import TensorDict


class EpisodeReplayBufferSamples(NamedTuple):
    """
    A minibatch of ``n_seq`` windows of ``S = burn_in + sequence_length`` steps, each inside one episode, right-padded.

    Step ``j`` of a window is the transition ``(o_j, a_j, r_j, o_{j+1})``; the memory reads ``(a_{j-1}, r_{j-1}, o_j)``
    at position ``j`` (``j = 0 .. S``), so one pass over ``S + 1`` positions gives both ``h_j`` and ``h_{j+1}``.

    :param observations: ``o_0 .. o_S``, ``(n_seq, S + 1, *obs_shape)`` (a dict of those for Dict observations);
        ``o_{j+1}`` is the stored next observation of step ``j`` (the terminal one at an episode end)
    :param actions: ``a_j`` as stored (scaled to [-1, 1] for Box, indices for Discrete), (n_seq, S, action_dim)
    :param prev_actions: the action before each position, (n_seq, S + 1, action_dim); zeros at an episode start
    :param prev_rewards: the reward before each position, (n_seq, S + 1); zero at an episode start
    :param rewards: ``r_j``, (n_seq, S)
    :param dones: 1 where step ``j`` terminated the episode (no bootstrap; truncations are 0), (n_seq, S)
    :param mask: 1 on the steps that enter the losses, 0 on burn-in and padding, (n_seq, S)
    """

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    prev_actions: th.Tensor
    prev_rewards: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    mask: th.Tensor


class RolloutMemoryState(NamedTuple):
    """
    What the actor carries from one rollout step to the next, per environment (numpy, so saved models are device free).

    :param memory: the actor's memory, ``(n_envs, *memory_state_shape)``
    :param prev_actions: the last executed action in buffer form (scaled Box action, or Discrete index), (n_envs, action_dim)
    :param prev_rewards: the last reward, (n_envs,)
    """

    memory: np.ndarray
    prev_actions: np.ndarray
    prev_rewards: np.ndarray
