"""
Episode replay buffers for recurrent off-policy algorithms (ShmSAC): SB3's ring arrays, sampled as windows of steps.

Transitions are stored once, exactly as SB3's :class:`~stable_baselines3.common.buffers.ReplayBuffer` stores them
(arrays of shape ``(buffer_size // n_envs, n_envs, ...)``, so memory is O(buffer_size x obs)); two integer arrays
beside them record each transition's episode and its step in that episode. Sampling returns windows that never cross
an episode boundary:

- episodes are cut into consecutive chunks of ``sequence_length`` steps (an episode that fits is one chunk); a
  window is one chunk, right-padded to ``sequence_length`` with ``mask = 0`` on the padding;
- a chunk is drawn by drawing a stored transition uniformly (so each transition is equally likely to be trained on)
  and taking the chunk that holds it;
- the memory starts at zero at the window's first step: at an episode start that is exact, mid-episode it is the
  usual truncation (R2D2's zero state); ``burn_in`` prepends up to that many earlier steps of the same episode,
  which the memory reads but no loss sees;
- a chunk is sampled only while its episode's first transition is still stored: once the ring overwrote an episode's
  start, its remainder is never sampled (its memory could not be rebuilt from the episode start any more);
- ``dones`` are SB3's: with ``handle_timeout_termination`` a truncated step (``TimeLimit.truncated``) still bootstraps.
"""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_shm.common.off_policy.type_aliases import EpisodeReplayBufferSamples

# Draws per needed window in one round of rejection sampling (rejected: transitions whose episode start is gone)
_OVERSAMPLE = 2
_MAX_ROUNDS = 64


class _Windows(NamedTuple):
    """Where a minibatch of windows lies in the ring: (n_seq, S) slots, (n_seq,) envs, and per-step flags."""

    slots: np.ndarray
    envs: np.ndarray
    valid: np.ndarray  # (n_seq, S) real steps of the episode (burn-in included)
    mask: np.ndarray  # (n_seq, S) steps that enter the losses
    before: np.ndarray  # (n_seq,) slot of the step before the window, -1 at an episode start


def _gather(array: np.ndarray, slots: np.ndarray, envs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(buffer, n_envs, *shape)``[(n_seq, S), (n_seq,)] -> ``(n_seq, S, *shape)``, zero where not valid."""
    values = array[slots, envs[:, None]]
    return values * valid.reshape(*valid.shape, *([1] * (values.ndim - 2))).astype(values.dtype)


class _EpisodeIndexMixin:
    """Episode bookkeeping and window sampling shared by the Box and Dict buffers (needs SB3's buffer attributes)."""

    buffer_size: int
    n_envs: int
    pos: int
    full: bool
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    timeouts: np.ndarray

    def _setup_episode_index(self, sequence_length: int, burn_in: int) -> None:
        self.set_window(sequence_length, burn_in)
        # -1: never written. Episode ids are unique over the buffer's life, so a slot overwritten by a later episode
        # never matches the id of the episode a window is reading
        self.episode_ids = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)
        self.episode_steps = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)
        self._current_episode = np.arange(self.n_envs, dtype=np.int64)
        self._current_step = np.zeros(self.n_envs, dtype=np.int64)
        self._next_episode_id = self.n_envs

    def set_window(self, sequence_length: int, burn_in: int) -> None:
        """
        Set the shape of sampled windows (they are cut at sampling time, so this can change, e.g. after loading).

        :param sequence_length: steps per window; episodes are cut into chunks of this length
        :param burn_in: up to this many earlier steps of the episode before a chunk that starts mid-episode
        """
        if not (isinstance(sequence_length, (int, np.integer)) and sequence_length >= 1):
            raise ValueError(f"sequence_length must be an integer >= 1, got {sequence_length!r}")
        if not (isinstance(burn_in, (int, np.integer)) and burn_in >= 0):
            raise ValueError(f"burn_in must be an integer >= 0, got {burn_in!r}")
        if self.buffer_size < sequence_length + burn_in:
            raise ValueError(
                f"buffer_size // n_envs = {self.buffer_size} transitions per environment cannot hold one window of "
                f"burn_in + sequence_length = {burn_in + sequence_length} steps: increase buffer_size"
            )
        self.sequence_length = int(sequence_length)
        self.burn_in = int(burn_in)

    @property
    def window_length(self) -> int:
        """S = burn_in + sequence_length, the number of steps in every sampled window."""
        return self.burn_in + self.sequence_length

    def _index_step(self, pos: int, done: np.ndarray) -> None:
        """Record the episode and step of the transitions just written at ``pos``, then start episodes where done."""
        self.episode_ids[pos] = self._current_episode
        self.episode_steps[pos] = self._current_step
        self._current_step += 1
        self.end_episodes(np.asarray(done, dtype=bool).reshape(self.n_envs))

    def end_episodes(self, which: np.ndarray | None = None) -> None:
        """
        The next transition of these environments starts a new episode. Called on every ``done``, and by the
        algorithm when the environments are reset outside an episode end (a new ``learn`` that resets them).

        :param which: (n_envs,) bool, None for all environments
        """
        which = np.ones(self.n_envs, dtype=bool) if which is None else which
        n_ended = int(which.sum())
        self._current_episode[which] = self._next_episode_id + np.arange(n_ended)
        self._current_step[which] = 0
        self._next_episode_id += n_ended

    def _episode_start_slots(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Slot of each transition's episode start, -1 where that start is no longer stored."""
        steps = self.episode_steps[slots, envs]
        starts = (slots - steps) % self.buffer_size
        stored = (steps >= 0) & (steps < self.buffer_size)
        stored &= self.episode_ids[starts, envs] == self.episode_ids[slots, envs]
        stored &= self.episode_steps[starts, envs] == 0
        return np.where(stored, starts, -1)

    def _sample_windows(self, batch_size: int) -> _Windows:
        n_stored = self.buffer_size if self.full else self.pos
        if n_stored == 0:
            raise ValueError("The replay buffer is empty: collect transitions before sampling")
        slots_list, envs_list, starts_list = [], [], []
        n_found = 0
        for _ in range(_MAX_ROUNDS):
            slots = np.random.randint(0, n_stored, size=_OVERSAMPLE * batch_size)
            envs = np.random.randint(0, self.n_envs, size=_OVERSAMPLE * batch_size)
            starts = self._episode_start_slots(slots, envs)
            keep = starts >= 0
            slots_list.append(slots[keep])
            envs_list.append(envs[keep])
            starts_list.append(starts[keep])
            n_found += int(keep.sum())
            if n_found >= batch_size:
                break
        else:
            raise RuntimeError(
                "Could not find transitions whose episode start is still stored: the episodes are longer than "
                "buffer_size // n_envs; increase buffer_size"
            )
        slots = np.concatenate(slots_list)[:batch_size]
        envs = np.concatenate(envs_list)[:batch_size]
        starts = np.concatenate(starts_list)[:batch_size]

        steps = self.episode_steps[slots, envs]
        chunk_first = steps - steps % self.sequence_length  # first step of the chunk holding the drawn transition
        first = chunk_first - np.minimum(self.burn_in, chunk_first)  # burn-in cannot reach before the episode start
        window_steps = first[:, None] + np.arange(self.window_length)  # (n_seq, S) steps in the episode
        window_slots = (starts[:, None] + window_steps) % self.buffer_size
        episode = self.episode_ids[slots, envs]
        valid = (self.episode_ids[window_slots, envs[:, None]] == episode[:, None]) & (
            self.episode_steps[window_slots, envs[:, None]] == window_steps
        )
        # Stop at the first step that is not this episode's (episode end, or a step not collected yet)
        valid = np.logical_and.accumulate(valid, axis=1)
        in_chunk = (window_steps >= chunk_first[:, None]) & (window_steps < chunk_first[:, None] + self.sequence_length)
        before = np.where(first > 0, (starts + first - 1) % self.buffer_size, -1)
        return _Windows(window_slots, envs, valid, valid & in_chunk, before)

    def _sequence_arrays(self, windows: _Windows, env: VecNormalize | None) -> dict[str, np.ndarray]:
        """Everything but the observations, as numpy arrays (see :class:`EpisodeReplayBufferSamples`)."""
        slots, envs, valid = windows.slots, windows.envs, windows.valid
        actions = _gather(self.actions, slots, envs, valid)
        rewards = _gather(self.rewards, slots, envs, valid)
        has_before = windows.before >= 0
        before = np.maximum(windows.before, 0)
        first_action = self.actions[before, envs] * has_before[:, None].astype(self.actions.dtype)
        first_reward = self.rewards[before, envs] * has_before
        # Only use dones that are not due to timeouts (timeouts stay 0 without handle_timeout_termination)
        dones = _gather(self.dones * (1 - self.timeouts), slots, envs, valid)
        # ignores: a mixin of SB3's ReplayBuffer / DictReplayBuffer, which have _normalize_reward
        rewards = self._normalize_reward(rewards, env)  # type: ignore[attr-defined]
        first_reward = self._normalize_reward(first_reward, env)  # type: ignore[attr-defined]
        return {
            "actions": actions,
            "prev_actions": np.concatenate([first_action[:, None], actions], axis=1),
            "prev_rewards": np.concatenate([first_reward[:, None], rewards], axis=1).astype(np.float32),
            "rewards": rewards.astype(np.float32),
            "dones": dones.astype(np.float32),
            "mask": windows.mask.astype(np.float32),
        }

    @staticmethod
    def _observation_sequence(observations: np.ndarray, next_observations: np.ndarray, windows: _Windows) -> np.ndarray:
        """``o_0`` then the next observation of every step: ``(n_seq, S + 1, *obs_shape)``, zeros on padding."""
        first = observations[windows.slots[:, 0], windows.envs][:, None]
        following = _gather(next_observations, windows.slots, windows.envs, windows.valid)
        return np.concatenate([first, following], axis=1)


class EpisodeReplayBuffer(_EpisodeIndexMixin, ReplayBuffer):
    """
    SB3's :class:`~stable_baselines3.common.buffers.ReplayBuffer` sampled as windows of whole episodes or episode
    chunks (see the module docstring); ``sample`` returns :class:`EpisodeReplayBufferSamples`.

    :param buffer_size: Max number of transitions in the buffer (over all environments)
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: not supported (must be False): windows read the next observation of every step
    :param handle_timeout_termination: Handle timeout termination (due to timelimit) separately and treat the task as
        infinite horizon task (a truncated step bootstraps). https://github.com/DLR-RM/stable-baselines3/issues/284
    :param sequence_length: steps per window; episodes are cut into chunks of this length
    :param burn_in: up to this many steps before a chunk that starts mid-episode, read by the memory, not trained on
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        sequence_length: int = 64,
        burn_in: int = 0,
    ):
        if optimize_memory_usage:
            raise ValueError("EpisodeReplayBuffer does not support optimize_memory_usage=True")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination)
        self._setup_episode_index(sequence_length, burn_in)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        pos = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        self._index_step(pos, done)

    # ignore: returns windows (EpisodeReplayBufferSamples), not SB3's ReplayBufferSamples
    def sample(self, batch_size: int, env: VecNormalize | None = None) -> EpisodeReplayBufferSamples:  # type: ignore[override]
        """
        :param batch_size: number of windows
        :param env: associated VecEnv, to normalize the observations and rewards when sampling
        :return: windows of ``burn_in + sequence_length`` steps, see :class:`EpisodeReplayBufferSamples`
        """
        windows = self._sample_windows(batch_size)
        arrays = self._sequence_arrays(windows, env)
        observations = self._observation_sequence(self.observations, self.next_observations, windows)
        return EpisodeReplayBufferSamples(
            # ignore: SB3 annotates _normalize_obs for arrays and dicts in one signature
            observations=self.to_torch(self._normalize_obs(observations, env)),  # type: ignore[arg-type]
            **{name: self.to_torch(value) for name, value in arrays.items()},
        )


class DictEpisodeReplayBuffer(_EpisodeIndexMixin, DictReplayBuffer):
    """
    :class:`EpisodeReplayBuffer` for Dict observation spaces (one array per key, as SB3's ``DictReplayBuffer``).

    :param buffer_size: Max number of transitions in the buffer (over all environments)
    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: not supported (must be False)
    :param handle_timeout_termination: Handle timeout termination (due to timelimit) separately and treat the task as
        infinite horizon task (a truncated step bootstraps).
    :param sequence_length: steps per window; episodes are cut into chunks of this length
    :param burn_in: up to this many steps before a chunk that starts mid-episode, read by the memory, not trained on
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        sequence_length: int = 64,
        burn_in: int = 0,
    ):
        if optimize_memory_usage:
            raise ValueError("DictEpisodeReplayBuffer does not support optimize_memory_usage=True")
        super().__init__(buffer_size, observation_space, action_space, device, n_envs, False, handle_timeout_termination)
        self._setup_episode_index(sequence_length, burn_in)

    def add(  # type: ignore[override]  # Dict observations, as SB3's DictReplayBuffer.add
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        pos = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        self._index_step(pos, done)

    # ignore: returns windows (EpisodeReplayBufferSamples), not SB3's ReplayBufferSamples
    def sample(self, batch_size: int, env: VecNormalize | None = None) -> EpisodeReplayBufferSamples:  # type: ignore[override]
        """
        :param batch_size: number of windows
        :param env: associated VecEnv, to normalize the observations and rewards when sampling
        :return: windows of ``burn_in + sequence_length`` steps, see :class:`EpisodeReplayBufferSamples`
        """
        windows = self._sample_windows(batch_size)
        arrays = self._sequence_arrays(windows, env)
        observations = {
            key: self._observation_sequence(self.observations[key], self.next_observations[key], windows)
            for key in self.observations
        }
        # ignores: SB3 annotates _normalize_obs for arrays and dicts in one signature
        normalized = self._normalize_obs(observations, env)  # type: ignore[arg-type]
        return EpisodeReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in normalized.items()},  # type: ignore[union-attr]
            **{name: self.to_torch(value) for name, value in arrays.items()},
        )
