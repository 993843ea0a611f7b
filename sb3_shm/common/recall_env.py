"""A minimal memory task, used by the demo and the tests."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class RecallFirstEnv(gym.Env):
    """
    Recall the first observation after ``delay`` blank steps.

    t = 0: a cue (one-hot over ``n_cues``); t = 1 .. delay - 1: blank; t = delay: a query flag. The action at the query
    step earns +1 if it names the cue, else -1; earlier actions earn 0. A memoryless policy sees the same query for
    every cue, so its expected return is at most ``2 / n_cues - 1`` (0 for 2 cues); one with memory reaches 1.

    ``continuous=True`` (2 cues only) asks for a ``Box(-1, 1, (1,))`` action instead: the cue names a sign (cue 0:
    -1, cue 1: +1) and the query step earns ``action * sign``, success when the signs agree. A memoryless policy's
    expected return is 0 at best (both signs are equally likely), one with memory reaches 1.

    :param delay: steps from the cue to the query (>= 1)
    :param n_cues: number of cues (>= 2)
    :param continuous: a Box action (2 cues) instead of a Discrete one
    """

    def __init__(self, delay: int = 5, n_cues: int = 2, continuous: bool = False):
        if continuous and n_cues != 2:
            raise ValueError(f"continuous=True needs n_cues=2 (the cue names a sign), got n_cues={n_cues}")
        self.delay, self.n_cues, self.continuous = delay, n_cues, continuous
        self.observation_space = spaces.Box(0.0, 1.0, (n_cues + 1,), np.float32)
        self.action_space: spaces.Space = spaces.Box(-1.0, 1.0, (1,), np.float32) if continuous else spaces.Discrete(n_cues)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_cues + 1, dtype=np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        elif self.t == self.delay:
            obs[-1] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.cue = 0, int(self.np_random.integers(self.n_cues))
        return self._obs(), {}

    def step(self, action):
        if self.t == self.delay:
            if self.continuous:
                reward = float(np.clip(action, -1.0, 1.0).item()) * (2 * self.cue - 1)
                return self._obs(), reward, True, False, {"is_success": reward > 0}
            success = int(action) == self.cue
            return self._obs(), 1.0 if success else -1.0, True, False, {"is_success": success}
        self.t += 1
        return self._obs(), 0.0, False, False, {}
