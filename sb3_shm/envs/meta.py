"""Meta-RL navigation tasks of the SHM paper: Wind and sparse PointRobot (``pomdp-baselines/envs/meta/toy_navigation``).

A point on the plane moves by ``s' = s + a (+ wind)``; the reward is 1 on every step that ends within
``goal_radius`` of the goal, else 0, and reaching the goal ends nothing. The hidden task (a wind, or a goal) is
drawn at every reset from a fixed list of ``n_tasks`` tasks, split into train and eval tasks.

What the source did outside the env, done here by the env (so that an SB3 policy sees what SHM's agent saw):

- Actions: ``Box(-1, 1, (2,))``, clipped and scaled to ``[-0.1, 0.1]`` (the source's ``VariBadWrapper``).
- ``episodes_per_task`` inner episodes of ``horizon`` steps form one gymnasium episode (a meta-episode); the memory
  is meant to persist across them. With more than one, the observation carries a flag that is 1 on the step that
  ends an inner episode, as ``VariBadWrapper``'s ``done_mdp``. Deviation: that step returns the first state of the
  next inner episode (the source returned the last state and hid the new start state for one step).
- SHM's agent took the previous action (Wind) or the previous reward (PointRobot) as extra inputs; SB3 policies take
  only the observation, so ``prev_action_obs`` / ``prev_reward_obs`` append them to it (0 after reset).
- The meta-episode ends with ``terminated=True`` after ``episodes_per_task * horizon`` steps, with
  ``info["is_success"]`` (and ``info["success"]``): whether the goal was reached at any step, the source's
  ``success_rate_eval``.

Tasks come from a local ``np.random.RandomState(1337)`` drawn in the same order as the source (which reseeded the
global RNG with 1337 in the env constructor), and the train/eval split from the same stream afterwards (the source
took ``permutation(n_tasks)``: the first ``n_train_tasks`` train, the rest eval). Episodes (task choice, start
states) use ``self.np_random``; ``reset(options={"task": i})`` picks task ``i`` of the full list instead.
"""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_shm.envs.grid import check_int

MAX_ACTION = 0.1  # the source's action bound, reached by a policy action of +-1
TASK_SEED = 1337
TASK_SPLITS = ("train", "eval", "all")


class MetaNavigationEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    Base class: a point robot with a hidden task, several inner episodes per gymnasium episode.

    :param horizon: steps per inner episode (>= 1)
    :param episodes_per_task: inner episodes per gymnasium episode (>= 1)
    :param goal_radius: the reward is 1 within this distance of the goal (> 0)
    :param n_tasks: size of the fixed task list (>= 2)
    :param n_train_tasks: tasks in the train split (1..n_tasks - 1); the others are eval tasks
    :param task_split: which tasks reset draws from: ``"train"``, ``"eval"`` or ``"all"``
    :param prev_action_obs: append the previous (clipped, unscaled) action to the observation
    :param prev_reward_obs: append the previous reward to the observation
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (gymnasium's type)

    def __init__(
        self,
        horizon: int,
        episodes_per_task: int,
        goal_radius: float,
        n_tasks: int,
        n_train_tasks: int,
        task_split: str,
        prev_action_obs: bool,
        prev_reward_obs: bool,
    ) -> None:
        check_int("horizon", horizon, 1)
        check_int("episodes_per_task", episodes_per_task, 1)
        check_int("n_tasks", n_tasks, 2)
        check_int("n_train_tasks", n_train_tasks, 1)
        if n_train_tasks >= n_tasks:
            raise ValueError(f"n_train_tasks must be in 1..{n_tasks - 1} (n_tasks - 1), got {n_train_tasks}")
        if not goal_radius > 0:
            raise ValueError(f"goal_radius must be > 0, got {goal_radius}")
        if task_split not in TASK_SPLITS:
            raise ValueError(f"task_split must be one of {TASK_SPLITS}, got {task_split!r}")
        self.horizon = horizon
        self.episodes_per_task = episodes_per_task
        self.goal_radius = goal_radius
        self.task_split = task_split
        self.prev_action_obs = prev_action_obs
        self.prev_reward_obs = prev_reward_obs

        rng = np.random.RandomState(TASK_SEED)
        self.tasks = self._draw_tasks(rng, n_tasks)  # (n_tasks, 2)
        permutation = rng.permutation(n_tasks)
        self.train_tasks = np.sort(permutation[:n_train_tasks])
        self.eval_tasks = np.sort(permutation[n_train_tasks:])
        self._task_pool = {"train": self.train_tasks, "eval": self.eval_tasks, "all": np.arange(n_tasks)}[task_split]

        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        low = [-np.inf, -np.inf] + [0.0] * (episodes_per_task > 1) + [-1.0, -1.0] * prev_action_obs + [0.0] * prev_reward_obs
        high = [np.inf, np.inf] + [1.0] * (episodes_per_task > 1) + [1.0, 1.0] * prev_action_obs + [1.0] * prev_reward_obs
        self.observation_space = spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)

        self._running = False
        self._task = 0
        self._state = np.zeros(2)
        self._t = 0
        self._success = False

    # -- subclass hooks ----------------------------------------------------------------------------------------
    def _draw_tasks(self, rng: np.random.RandomState, n_tasks: int) -> np.ndarray:
        """:return: the task list drawn as the source did, shape ``(n_tasks, 2)``"""
        raise NotImplementedError

    def _start_state(self) -> np.ndarray:
        raise NotImplementedError

    def _goal(self) -> np.ndarray:
        raise NotImplementedError

    def _drift(self) -> np.ndarray:
        """Displacement added to every step besides the action."""
        return np.zeros(2)

    # -- gymnasium API -----------------------------------------------------------------------------------------
    @property
    def task(self) -> int:
        """Index of the current task in ``self.tasks`` (hidden state)."""
        return self._task

    @property
    def position(self) -> np.ndarray:
        """Current position of the point, shape ``(2,)`` (also the first two observation entries)."""
        return self._state.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options is not None and "task" in options:
            task = options["task"]
            check_int("options['task']", task, 0)
            if task >= len(self.tasks):
                raise ValueError(f"options['task'] must be in 0..{len(self.tasks) - 1}, got {task}")
            self._task = int(task)
        else:
            self._task = int(self.np_random.choice(self._task_pool))
        self._state = self._start_state()
        self._t = 0
        self._success = False
        self._running = True
        return self._observe(False, np.zeros(2), 0.0), {"task": self._task}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._running:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset() or after the episode ended: call reset()")
        action = np.clip(self._check_action(action), -1.0, 1.0)
        self._state = self._state + MAX_ACTION * action + self._drift()
        reached = bool(np.linalg.norm(self._state - self._goal()) <= self.goal_radius)
        self._success |= reached
        reward = float(reached)
        self._t += 1
        inner_done = self._t % self.horizon == 0
        terminated = self._t == self.horizon * self.episodes_per_task
        info: dict[str, Any] = {"task": self._task}
        if terminated:
            self._running = False
            info.update(is_success=self._success, success=self._success)
        elif inner_done:
            self._state = self._start_state()
        return self._observe(inner_done, action, reward), reward, terminated, False, info

    def _check_action(self, action: Any) -> np.ndarray:
        """
        :param action: the action passed to :meth:`step`
        :return: it as a float64 array of the action space's shape (2,); a ValueError names it when it is not
            numeric, has another shape, or holds NaN (which would make the position NaN for the rest of the episode;
            infinities are clipped like any action outside [-1, 1])
        """
        try:
            array = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{type(self).__name__}: the action must be 2 numbers, shape (2,), got {action!r}") from error
        if array.shape != self.action_space.shape:
            raise ValueError(
                f"{type(self).__name__}: the action must have shape {self.action_space.shape}, got shape {array.shape} "
                f"({action!r})"
            )
        if np.isnan(array).any():
            raise ValueError(f"{type(self).__name__}: the action holds NaN: {action!r}")
        return array

    def _observe(self, inner_done: bool, action: np.ndarray, reward: float) -> np.ndarray:
        parts: list[np.ndarray | list[float]] = [self._state]
        if self.episodes_per_task > 1:
            parts.append([float(inner_done)])
        if self.prev_action_obs:
            parts.append(action)
        if self.prev_reward_obs:
            parts.append([reward])
        return np.concatenate(parts).astype(np.float32)


class WindEnv(MetaNavigationEnv):
    """
    Wind (SHM's ``Wind-v0``): reach the fixed, unobserved goal (0, 1) from (0, 0) against a hidden constant wind.

    Each task is a wind with components from U(-0.1, 0.1): ``s' = s + a + wind``. Defaults are SHM's (``horizon=100``,
    ``goal_radius=0.01``, 200 tasks, split 50 / 150; its other config is ``n_train_tasks=10``), one episode per task,
    and the previous action in the observation (SHM's Wind agent took it as input), so obs is
    ``(x, y, prev_ax, prev_ay)``. pomdp-baselines upstream differs: H=75, radius 0.03, wind U(-0.08, 0.08), 60 tasks.

    :param horizon: steps per episode (>= 1)
    :param goal_radius: reward radius around the goal (> 0)
    :param n_tasks: number of winds (>= 2)
    :param n_train_tasks: winds in the train split (1..n_tasks - 1)
    :param task_split: ``"train"``, ``"eval"`` or ``"all"``
    :param prev_action_obs: append the previous action to the observation
    :param prev_reward_obs: append the previous reward to the observation
    :param episodes_per_task: inner episodes per gymnasium episode (>= 1; SHM used 1)
    """

    GOAL = np.array([0.0, 1.0])
    MAX_WIND = 0.1

    def __init__(
        self,
        horizon: int = 100,
        goal_radius: float = 0.01,
        n_tasks: int = 200,
        n_train_tasks: int = 50,
        task_split: str = "train",
        prev_action_obs: bool = True,
        prev_reward_obs: bool = False,
        episodes_per_task: int = 1,
    ) -> None:
        super().__init__(
            horizon, episodes_per_task, goal_radius, n_tasks, n_train_tasks, task_split, prev_action_obs, prev_reward_obs
        )

    @property
    def wind(self) -> np.ndarray:
        """The current task's wind, shape ``(2,)`` (hidden state)."""
        return self.tasks[self._task].copy()

    def _draw_tasks(self, rng: np.random.RandomState, n_tasks: int) -> np.ndarray:
        return rng.uniform(-self.MAX_WIND, self.MAX_WIND, size=(n_tasks, 2))

    def _start_state(self) -> np.ndarray:
        return np.zeros(2)

    def _goal(self) -> np.ndarray:
        return self.GOAL

    def _drift(self) -> np.ndarray:
        return self.tasks[self._task]


class PointRobotEnv(MetaNavigationEnv):
    """
    Sparse PointRobot (SHM's ``PointRobotSparse-v0``): find a hidden goal on the upper unit half-circle, then return
    to it in the next inner episode.

    Each task is a goal at angle U(0, pi) on the unit circle; each inner episode starts from U([-1.5, 1.5] x
    [-0.5, 1.5]) and the state is unbounded. Defaults are SHM's (``goal_radius=0.05``, ``horizon=100``, 2 episodes
    per task, 200 tasks, split 50 / 150; its other config is ``n_train_tasks=10``), so one gymnasium episode is 200
    steps. The observation is ``(x, y, inner_done, prev_reward)``: the previous reward is appended because SHM's
    PointRobot agent took it as input, and without it the goal cannot be found. pomdp-baselines upstream differs:
    radius 0.2, H=60, 100 tasks.

    :param horizon: steps per inner episode (>= 1)
    :param episodes_per_task: inner episodes per gymnasium episode (>= 1)
    :param goal_radius: reward radius around the goal (> 0)
    :param n_tasks: number of goals (>= 2)
    :param n_train_tasks: goals in the train split (1..n_tasks - 1)
    :param task_split: ``"train"``, ``"eval"`` or ``"all"``
    :param prev_action_obs: append the previous action to the observation
    :param prev_reward_obs: append the previous reward to the observation
    """

    def __init__(
        self,
        horizon: int = 100,
        episodes_per_task: int = 2,
        goal_radius: float = 0.05,
        n_tasks: int = 200,
        n_train_tasks: int = 50,
        task_split: str = "train",
        prev_action_obs: bool = False,
        prev_reward_obs: bool = True,
    ) -> None:
        super().__init__(
            horizon, episodes_per_task, goal_radius, n_tasks, n_train_tasks, task_split, prev_action_obs, prev_reward_obs
        )

    @property
    def goal(self) -> np.ndarray:
        """The current task's goal, shape ``(2,)`` (hidden state)."""
        return self.tasks[self._task].copy()

    def _draw_tasks(self, rng: np.random.RandomState, n_tasks: int) -> np.ndarray:
        # The source's constructors drew, after seeding 1337: the dense PointEnv's goals, one start state,
        # the half-circle angles (then shuffled the goals) and another start state. Replay them in that order.
        rng.uniform(-10.0, 10.0, size=(n_tasks, 2))
        rng.uniform(-1.0, 1.0, size=2)
        angles = rng.uniform(0.0, np.pi, size=n_tasks)
        goals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        rng.shuffle(goals)
        rng.uniform(-1.0, 1.0, size=2)
        return goals

    def _start_state(self) -> np.ndarray:
        return np.array([self.np_random.uniform(-1.5, 1.5), self.np_random.uniform(-0.5, 1.5)])

    def _goal(self) -> np.ndarray:
        return self.tasks[self._task]
