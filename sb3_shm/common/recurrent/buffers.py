"""
Rollout buffers for SHM policies.

Two things differ from sb3-contrib's ``RecurrentRolloutBuffer``:

- The memory is stored only where a training sequence starts (every ``sequence_length`` steps), not at every
  step: an SHM memory is H * H floats per environment, the stock buffer would hold that for every transition.
- The calibration index ``i_t`` of every step is stored, so that training replays exactly the memory the
  agent acted with (the memory is random in ``"random"`` calibration; see docs/spec.md, "the sampled indices are data").

Training sequences are the rollout cut into equal chunks of ``sequence_length`` steps per environment. Episode
starts inside a chunk reset the memory inside the sequence form (``keep = 1 - episode_start``), so no sequence is
padded: every minibatch is a dense (n_seq, T) grid, which is what the whole-sequence scan wants.
"""

from collections.abc import Callable, Generator

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer

from sb3_shm.common.recurrent.type_aliases import (
    ShmReplay,
    ShmRolloutBufferSamples,
    ShmStates,
)


class _ShmBufferMixin:
    """Memory and calibration-index storage shared by the array and Dict buffers."""

    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    generator_ready: bool
    device: th.device
    action_space: spaces.Space
    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    episode_starts: np.ndarray
    # BaseBuffer's methods, which the concrete buffers inherit
    swap_and_flatten: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[..., th.Tensor]

    def _init_memory_storage(self, memory_shape: tuple[int, int], sequence_length: int) -> None:
        if sequence_length < 1 or self.buffer_size % sequence_length != 0:
            raise ValueError(
                f"sequence_length={sequence_length} must divide n_steps={self.buffer_size}: "
                "training cuts each environment's rollout into equal sequences"
            )
        self.memory_shape = memory_shape
        self.sequence_length = sequence_length
        self.n_chunks = self.buffer_size // sequence_length

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]  # a mixin: RolloutBuffer / DictRolloutBuffer come after it in the MRO
        self.theta_indices = np.zeros((self.buffer_size, self.n_envs), dtype=np.int64)
        # (n_chunks, n_envs, H, H): the memory before the first step of each chunk
        self.memory_pi = np.zeros((self.n_chunks, self.n_envs, *self.memory_shape), dtype=np.float32)
        self.memory_vf = np.zeros((self.n_chunks, self.n_envs, *self.memory_shape), dtype=np.float32)

    def add(self, *args, memory_states: ShmStates, theta_idx: th.Tensor, **kwargs) -> None:
        """
        :param memory_states: memories before this step, each (n_envs, H, H)
        :param theta_idx: calibration indices drawn for this step, (n_envs,)
        """
        if self.pos % self.sequence_length == 0:
            chunk = self.pos // self.sequence_length
            self.memory_pi[chunk] = memory_states.pi.cpu().numpy()
            self.memory_vf[chunk] = memory_states.vf.cpu().numpy()
        self.theta_indices[self.pos] = theta_idx.cpu().numpy()
        super().add(*args, **kwargs)  # type: ignore[misc]  # as in reset

    def _prepare(self) -> None:
        """(n_steps, n_envs, ...) -> (n_envs * n_steps, ...), env-major, so sequence s covers rows s*T .. s*T+T-1."""
        if isinstance(self.observations, dict):
            for key, obs in self.observations.items():
                self.observations[key] = self.swap_and_flatten(obs)
        else:
            self.observations = self.swap_and_flatten(self.observations)
        for name in ["actions", "values", "log_probs", "advantages", "returns", "episode_starts", "theta_indices"]:
            self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
        # (n_chunks, n_envs, H, H) -> (n_envs * n_chunks, H, H), same sequence order as above
        for name in ["memory_pi", "memory_vf"]:
            self.__dict__[name] = self.__dict__[name].swapaxes(0, 1).reshape(-1, *self.memory_shape)
        self.generator_ready = True

    def get(self, batch_size: int | None = None) -> Generator:
        """
        Yield minibatches of whole sequences in random order.

        :param batch_size: transitions per minibatch (a multiple of ``sequence_length``); None for the whole buffer
        """
        assert self.full, "Rollout buffer must be full before sampling from it"
        if not self.generator_ready:
            self._prepare()
        n_seq = self.n_envs * self.n_chunks
        seqs_per_batch = n_seq if batch_size is None else max(1, batch_size // self.sequence_length)
        order = np.random.permutation(n_seq)
        for start in range(0, n_seq, seqs_per_batch):
            yield self._get_samples(order[start : start + seqs_per_batch])

    def _get_samples(self, seq_ids: np.ndarray, env=None):  # type: ignore[override]  # sequences, not transitions
        """
        :param seq_ids: (n_seq,) sequence indices
        :return: samples flattened to (n_seq * T, ...) in (sequence, time) order
        """
        # (n_seq,) -> (n_seq, T) -> (n_seq * T,) row indices
        inds = (seq_ids[:, None] * self.sequence_length + np.arange(self.sequence_length)).ravel()
        if isinstance(self.observations, dict):
            observations: th.Tensor | dict[str, th.Tensor] = {
                key: self.to_torch(obs[inds]) for key, obs in self.observations.items()
            }
        else:
            observations = self.to_torch(self.observations[inds])
        actions = self.to_torch(self.actions[inds])
        if isinstance(self.action_space, spaces.MultiBinary):
            # Stored in the space's int8 dtype, which torch's Bernoulli.log_prob rejects (see docs: upstream defects)
            actions = actions.float()
        replay = ShmReplay(
            memory=ShmStates(self.to_torch(self.memory_pi[seq_ids]), self.to_torch(self.memory_vf[seq_ids])),
            theta_idx=th.as_tensor(self.theta_indices[inds].ravel(), device=self.device),
        )
        return ShmRolloutBufferSamples(
            observations=observations,
            actions=actions,
            old_values=self.to_torch(self.values[inds].ravel()),
            old_log_prob=self.to_torch(self.log_probs[inds].ravel()),
            advantages=self.to_torch(self.advantages[inds].ravel()),
            returns=self.to_torch(self.returns[inds].ravel()),
            replay=replay,
            episode_starts=self.to_torch(self.episode_starts[inds].ravel()),
            # Sequences are never padded: every transition counts
            mask=th.ones(len(inds), device=self.device),
        )


# The mixin's add also takes the memory (keyword-only), and its observations are typed for both buffers
class ShmRolloutBuffer(_ShmBufferMixin, RolloutBuffer):  # type: ignore[misc]
    """
    Rollout buffer that also stores SHM memories at sequence starts and the calibration index of every step.

    :param buffer_size: n_steps per environment
    :param observation_space: Observation space
    :param action_space: Action space
    :param memory_shape: (H, H)
    :param sequence_length: length T of the training sequences; must divide ``buffer_size``
    :param device: PyTorch device
    :param gae_lambda: GAE lambda
    :param gamma: Discount factor
    :param n_envs: Number of parallel environments
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        memory_shape: tuple[int, int],
        sequence_length: int,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
    ):
        self.buffer_size = buffer_size
        self._init_memory_storage(memory_shape, sequence_length)
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)


class ShmDictRolloutBuffer(_ShmBufferMixin, DictRolloutBuffer):  # type: ignore[misc]  # as ShmRolloutBuffer
    """
    :class:`ShmRolloutBuffer` for Dict observations.

    :param buffer_size: n_steps per environment
    :param observation_space: Observation space
    :param action_space: Action space
    :param memory_shape: (H, H)
    :param sequence_length: length T of the training sequences; must divide ``buffer_size``
    :param device: PyTorch device
    :param gae_lambda: GAE lambda
    :param gamma: Discount factor
    :param n_envs: Number of parallel environments
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        memory_shape: tuple[int, int],
        sequence_length: int,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
    ):
        self.buffer_size = buffer_size
        self._init_memory_storage(memory_shape, sequence_length)
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs=n_envs)
