"""Observation wrappers for memory agents."""

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def sine_positional_encoding(step: int, size: int, max_period: float = 1024.0) -> np.ndarray:
    """
    The transformer's sine positional encoding of one time step (Vaswani et al. 2017) as popgym's
    ``positional_encoding(max_len, size)`` computes it, with ``max_period = max_len`` (popgym's change from the
    transformer's 10,000): entry ``2i`` is ``sin(step / max_period ** (2i / size))``, entry ``2i + 1`` the ``cos``.

    :param step: the time step (0 at the episode start)
    :param size: number of entries (even)
    :param max_period: the longest period is ``2 pi max_period`` steps
    :return: float32 array of shape (size,), every entry in [-1, 1]
    """
    frequencies = max_period ** (-np.arange(0, size, 2, dtype=np.float64) / size)  # (size / 2,)
    encoding = np.empty(size, dtype=np.float32)
    encoding[0::2] = np.sin(step * frequencies)
    encoding[1::2] = np.cos(step * frequencies)
    return encoding


def flat_box(env: gym.Env, wrapper: str) -> spaces.Box:
    """:return: the env's observation space if it is a 1-D ``Box`` (what the wrappers append to), else a ValueError"""
    space = env.observation_space
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(
            f"{wrapper} needs a 1-D Box observation space, got {space}: flatten the observations first "
            "(gymnasium.wrappers.FlattenObservation; POPGym envs made by sb3_shm are flat already)."
        )
    return space


class SinePositionalEncoding(gym.ObservationWrapper[np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """
    Append a sine encoding of the episode's time step to a flat ``Box`` observation: ``[obs, pe(t)]`` with ``t = 0``
    at reset (:func:`sine_positional_encoding`).

    Why: SHM reads its memory by content: the write key ``k(x_s)`` and the read query ``q(x_t)`` depend on the step's
    input only, so a task that asks for the item of a fixed age (POPGym's RepeatPrevious: the card seen 4 steps ago)
    needs the time in the input, or entries of the memory that forget at steady rates (``calibration="fixed"`` with
    ``memory_decay < 1``). The SHM authors' POPGym model adds popgym's sine embedding of the step to its
    features (``embedding="sine"`` in ``ray_shm.py``); appending it to the observation gives the memory the same
    information and keeps the recurrent state the memory alone. gymnasium's ``TimeAwareObservation`` appends the raw
    step, a scalar from which a network does not easily build an address.

    :param env: environment with a 1-D ``Box`` observation space (POPGym's envs after :func:`make_popgym_env`)
    :param size: number of encoding entries appended (even)
    :param max_period: the longest period of the encoding is ``2 pi max_period`` steps (default: the SHM authors'
        1,024, their training sequence length)
    """

    def __init__(self, env: gym.Env, size: int = 16, max_period: float = 1024.0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, size=size, max_period=max_period)
        gym.ObservationWrapper.__init__(self, env)
        space = flat_box(env, "SinePositionalEncoding")
        if size <= 0 or size % 2:
            raise ValueError(f"size must be a positive even number (sin and cos pairs), got {size}")
        if max_period <= 1:
            raise ValueError(f"max_period must be > 1, got {max_period}")
        self.size = size
        self.max_period = max_period
        self.step_count = 0
        low = np.concatenate([space.low, -np.ones(size)]).astype(np.float32)
        high = np.concatenate([space.high, np.ones(size)]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.step_count = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        self.step_count += 1
        return super().step(action)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        encoding = sine_positional_encoding(self.step_count, self.size, self.max_period)
        return np.concatenate([np.asarray(observation, dtype=np.float32), encoding])


class PreviousReward(gym.Wrapper[np.ndarray, Any, np.ndarray, Any], gym.utils.RecordConstructorArgs):
    """
    Append the previous step's reward to a flat ``Box`` observation: ``[obs, r_{t-1}]``, 0 after reset.

    Why: a memory that reads rewards (meta-RL: the reward says where the hidden goal is) needs ``r_{t-1}`` at every
    step. ShmSAC's ``memory_inputs=("reward", ...)`` takes it from the replay buffer in training, but SB3's
    ``predict`` (hence ``EvalCallback``, ``evaluate_policy``, the zoo's ``enjoy``) is never given rewards; with the
    reward in the observation, every caller passes it without knowing. ``PointRobot-v0`` does the same
    (``prev_reward_obs``).

    :param env: environment with a 1-D ``Box`` observation space
    :param scale: the reward is multiplied by this before it is appended (e.g. ``1 / final_reward``)
    """

    def __init__(self, env: gym.Env, scale: float = 1.0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, scale=scale)
        gym.Wrapper.__init__(self, env)
        space = flat_box(env, "PreviousReward")
        if not np.isfinite(scale) or scale == 0:
            raise ValueError(f"scale must be a finite, non-zero number, got {scale!r}")
        self.scale = float(scale)
        low = np.concatenate([space.low, [-np.inf]]).astype(np.float32)
        high = np.concatenate([space.high, [np.inf]]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def _append(self, observation: np.ndarray, reward: SupportsFloat) -> np.ndarray:
        previous = np.array([float(reward) * self.scale], dtype=np.float32)
        return np.concatenate([np.asarray(observation, dtype=np.float32), previous])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        return self._append(observation, 0.0), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._append(observation, reward), reward, terminated, truncated, info
