"""Tests of the SHM paper's environments (sb3_shm.envs): API checks, seeding, phases, oracle and chance levels."""

import subprocess
import sys
from collections import deque
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

from sb3_shm.envs import (
    DISTRACTOR_LENGTHS,
    POPGYM_ENV_NAMES,
    KeyToDoorEnv,
    PointRobotEnv,
    SinePositionalEncoding,
    VisualMatchEnv,
    WindEnv,
    make_popgym_env,
)
from sb3_shm.envs.grid import MOVES, PALETTE, PLAYER, PhasedGridEnv
from sb3_shm.envs.key_to_door import DOOR_CELL
from sb3_shm.envs.visual_match import DOOR_CELLS
from sb3_shm.envs.wrappers import sine_positional_encoding

GRID_IDS = [f"{name}-v0" for name in ("VisualMatch", "KeyToDoor")] + [
    f"{name}-{length}-v0" for name in ("VisualMatch", "KeyToDoor") for length in DISTRACTOR_LENGTHS
]
META_IDS = ["Wind-v0", "PointRobot-v0"]
HAS_MAZELIB = find_spec("mazelib") is not None


# -- scripted policies that read the hidden state --------------------------------------------------------------------
def bfs_action(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    """The first move of a shortest path from ``start`` to ``goal`` (which may itself be blocked)."""
    distance = np.full(walls.shape, np.inf)
    distance[goal] = 0
    queue = deque([goal])
    while queue:
        cell = queue.popleft()
        for move in MOVES:
            row, col = np.add(cell, move)
            if (
                0 <= row < walls.shape[0]
                and 0 <= col < walls.shape[1]
                and not walls[row, col]
                and distance[row, col] == np.inf
            ):
                distance[row, col] = distance[cell] + 1
                queue.append((row, col))
    candidates = [np.add(start, move) for move in MOVES]
    costs = [distance[tuple(c)] if 0 <= c[0] < walls.shape[0] and 0 <= c[1] < walls.shape[1] else np.inf for c in candidates]
    return int(np.argmin(costs))


def nearest_apple_action(env: PhasedGridEnv) -> int:
    """Greedy apple collector for the distractor phase (north when no apple is left)."""
    apples = np.argwhere(env.apples)
    if len(apples) == 0:
        return 0
    start = np.array(env.player_position)
    goal = apples[np.argmin(np.abs(apples - start).sum(axis=1))]
    return bfs_action(env.walls, env.player_position, tuple(goal))


def visual_match_policy(door: Callable[[VisualMatchEnv], int]) -> Callable[[VisualMatchEnv], int]:
    """A policy that collects apples, then walks to the door ``door(env)``."""

    def policy(env: VisualMatchEnv) -> int:
        if env.phase == "final":
            walls = env.walls
            walls[tuple(DOOR_CELLS.T)] = True  # touching any other door would end the try
            return bfs_action(walls, env.player_position, tuple(DOOR_CELLS[door(env)]))
        return nearest_apple_action(env) if env.phase == "distractor" else 0

    return policy


visual_match_oracle = visual_match_policy(lambda env: env.target_door)
visual_match_same_door = visual_match_policy(lambda env: 1)  # memoryless: always the middle door


def key_to_door_oracle(env: KeyToDoorEnv) -> int:
    if env.phase == "explore":
        return 0 if env.has_key else bfs_action(env.walls, env.player_position, env.key_position)
    if env.phase == "distractor":
        return nearest_apple_action(env)
    return bfs_action(env.walls, env.player_position, DOOR_CELL)


def random_policy(env: gym.Env) -> np.ndarray:
    return env.action_space.sample()


def run_episode(env: gym.Env, policy: Callable, seed: int | None = None, options: dict | None = None) -> tuple:
    """:return: per-step rewards, the phase before each step, the final info"""
    env.reset(seed=seed, options=options)
    rewards, phases = [], []
    while True:
        phases.append(getattr(env, "phase", None))
        _, reward, terminated, truncated, info = env.step(policy(env))
        rewards.append(reward)
        if terminated or truncated:
            return np.array(rewards), phases, info


def success_rate(env: gym.Env, policy: Callable, n_episodes: int, seed: int = 0, **kwargs) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return float(np.mean([run_episode(env, policy, **kwargs)[2]["is_success"] for _ in range(n_episodes)]))


# -- API checks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", GRID_IDS + META_IDS)
def test_check_env(env_id: str) -> None:
    gym_check_env(gym.make(env_id).unwrapped)
    sb3_check_env(gym.make(env_id))


@pytest.mark.parametrize("env_class", [VisualMatchEnv, KeyToDoorEnv])
def test_image_mode(env_class: type[PhasedGridEnv]) -> None:
    env = env_class(obs_mode="image")
    assert env.observation_space.shape == (40, 40, 3) and env.observation_space.dtype == np.uint8
    gym_check_env(env)
    sb3_check_env(env_class(obs_mode="image"))
    flat_env = env_class()
    image, _ = env.reset(seed=3)
    flat, _ = flat_env.reset(seed=3)
    terminated = False
    while not terminated:
        np.testing.assert_array_equal(image[::8, ::8], np.rint(flat.reshape(3, 5, 5).transpose(1, 2, 0) * 255))
        action = env.action_space.sample()
        image, _, terminated, *_ = env.step(action)
        flat, *_ = flat_env.step(action)


@pytest.mark.parametrize("env_class", [VisualMatchEnv, KeyToDoorEnv])
def test_render(env_class: type[PhasedGridEnv], capsys: pytest.CaptureFixture) -> None:
    env = env_class(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (7 * 16, 11 * 16, 3) and frame.dtype == np.uint8
    env = env_class(render_mode="human")
    env.reset(seed=0)
    assert "phase: explore" in capsys.readouterr().out


def test_make_after_import() -> None:
    env = gym.make("VisualMatch-250-v0")
    assert env.unwrapped.phase_lengths == (15, 250, 10)
    assert gym.make("KeyToDoor-v0").unwrapped.phase_lengths == (10, 15, 3)


# -- bad input -------------------------------------------------------------------------------------------------------
def step_after_reset(env: gym.Env, action: int) -> None:
    env.reset(seed=0)
    env.step(action)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: VisualMatchEnv(distractor_length=-1), r"distractor_length must be an integer >= 0"),
        (lambda: KeyToDoorEnv(explore_length=0), r"explore_length must be an integer >= 1"),
        (lambda: VisualMatchEnv(final_length=2.5), r"final_length must be an integer >= 1"),
        (lambda: VisualMatchEnv(n_apples=23), r"n_apples must be in 0..22"),
        (lambda: KeyToDoorEnv(final_reward=0.0), r"final_reward must be > 0"),
        (lambda: VisualMatchEnv(apple_reward=-1.0), r"apple_reward must be >= 0"),
        (lambda: VisualMatchEnv(obs_mode="rgb"), r"obs_mode must be one of"),
        (lambda: VisualMatchEnv(image_scale=0), r"image_scale must be an integer >= 1"),
        (lambda: KeyToDoorEnv(render_mode="ansi"), r"render_mode must be one of"),
        (lambda: WindEnv(horizon=0), r"horizon must be an integer >= 1"),
        (lambda: WindEnv(n_train_tasks=200), r"n_train_tasks must be in 1..199"),
        (lambda: PointRobotEnv(task_split="test"), r"task_split must be one of"),
        (lambda: PointRobotEnv(goal_radius=0.0), r"goal_radius must be > 0"),
        (lambda: PointRobotEnv().reset(options={"task": 200}), r"options\['task'\] must be in 0..199"),
        (lambda: step_after_reset(VisualMatchEnv(), 4), r"action must be an integer in 0..3"),
    ],
)
def test_bad_arguments(make: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("env_class", [WindEnv, PointRobotEnv])
@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([np.nan, 0.5]), r"the action holds NaN: array\(\[nan, 0\.5\]\)"),
        (np.zeros(3), r"the action must have shape \(2,\), got shape \(3,\)"),
        (np.zeros((1, 2)), r"the action must have shape \(2,\), got shape \(1, 2\)"),
        (0.5, r"the action must have shape \(2,\), got shape \(\)"),
        (["left", "up"], r"the action must be 2 numbers, shape \(2,\), got \['left', 'up'\]"),
    ],
)
def test_meta_envs_refuse_bad_actions(env_class: type[gym.Env], action: object, match: str) -> None:
    """NaN would make the position NaN for the rest of the episode; a wrong shape gave a numpy reshape error."""
    env = env_class()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=f"{env_class.__name__}: {match}"):
        env.step(action)
    position = env.position
    env.step(np.array([np.inf, -np.inf]))  # out of range like any other action: clipped to [-1, 1]
    assert np.isfinite(env.position).all() and not np.array_equal(env.position, position)


@pytest.mark.parametrize("env_class", [VisualMatchEnv, KeyToDoorEnv, WindEnv, PointRobotEnv])
def test_step_needs_reset(env_class: type[gym.Env]) -> None:
    env = env_class()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(env.action_space.sample())
    run_episode(env, random_policy, seed=0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(env.action_space.sample())
    env.reset()
    env.step(env.action_space.sample())


# -- seeding ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_class", [VisualMatchEnv, KeyToDoorEnv, WindEnv, PointRobotEnv])
def test_same_seed_same_trajectory(env_class: type[gym.Env]) -> None:
    trajectories = []
    for _ in range(2):
        env = env_class()
        env.action_space.seed(7)
        obs, _ = env.reset(seed=42)
        observations, rewards = [obs], []
        for _ in range(3):  # three episodes: also the unseeded resets must replay
            terminated = False
            while not terminated:
                obs, reward, terminated, _, _ = env.step(env.action_space.sample())
                observations.append(obs)
                rewards.append(reward)
            observations.append(env.reset()[0])
        trajectories.append((np.array(observations), np.array(rewards)))
    np.testing.assert_array_equal(trajectories[0][0], trajectories[1][0])
    np.testing.assert_array_equal(trajectories[0][1], trajectories[1][1])


def test_visual_match_one_map_by_default() -> None:
    # The source's task: the training VecEnv and the evaluation env (another seed, as the RL Zoo builds it) share a map
    train_env = make_vec_env("VisualMatch-v0", n_envs=8, seed=0)
    eval_env = make_vec_env("VisualMatch-60-v0", n_envs=2, seed=12345)
    for vec_env in (train_env, eval_env):
        vec_env.reset()
        for door_colours in vec_env.get_attr("door_colours"):
            np.testing.assert_array_equal(door_colours, [0, 1, 2])
    # door_colours=None: the harder task, a map per instance
    per_instance = make_vec_env("VisualMatch-v0", n_envs=8, seed=0, env_kwargs=dict(door_colours=None))
    per_instance.reset()
    assert len({tuple(door_colours) for door_colours in per_instance.get_attr("door_colours")}) > 1


def test_visual_match_seeds_draw_colours() -> None:
    env = VisualMatchEnv(door_colours=None)
    maps, targets = set(), set()
    for seed in range(20):
        env.reset(seed=seed)
        maps.add(tuple(env.door_colours))
        targets.add(env.target_colour)
    assert len(maps) > 1 and targets == {0, 1, 2}
    # Without a new seed, the colour-to-door map stays fixed and the target changes.
    env.reset(seed=0)
    door_colours = env.door_colours
    doors = set()
    for _ in range(20):
        env.reset()
        np.testing.assert_array_equal(env.door_colours, door_colours)
        doors.add(env.target_door)
    assert doors == {0, 1, 2}


def test_visual_match_fixed_door_colours() -> None:
    for seed in range(5):  # every instance and every seed: the same map; the target still changes
        env = VisualMatchEnv(door_colours=[2, 0, 1])
        env.reset(seed=seed)
        np.testing.assert_array_equal(env.door_colours, [2, 0, 1])
    targets = set()
    for _ in range(30):
        env.reset()
        np.testing.assert_array_equal(env.door_colours, [2, 0, 1])
        targets.add(env.target_colour)
    assert targets == {0, 1, 2}
    assert gym.make("VisualMatch-v0", door_colours=(0, 1, 2)).unwrapped.door_colours.tolist() == [0, 1, 2]


@pytest.mark.parametrize("door_colours", [(0, 0, 1), (0, 1), (1, 2, 3), "rgb"])
def test_visual_match_bad_door_colours(door_colours) -> None:
    with pytest.raises(ValueError, match="door_colours must be a permutation of"):
        VisualMatchEnv(door_colours=door_colours)


@pytest.mark.parametrize("env_class", [WindEnv, PointRobotEnv])
def test_meta_seeds_draw_tasks(env_class: type[gym.Env]) -> None:
    env = env_class()
    tasks = {env.reset(seed=seed)[1]["task"] for seed in range(10)}
    assert len(tasks) > 5 and tasks <= set(env.train_tasks)


# -- phases, lengths, rewards ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_class", [VisualMatchEnv, KeyToDoorEnv])
@pytest.mark.parametrize("lengths", [(15, 15, 10), (10, 0, 3), (1, 1, 1), (15, 60, 15)])
def test_phase_boundaries(env_class: type[PhasedGridEnv], lengths: tuple[int, int, int]) -> None:
    explore, distractor, final = lengths
    env = env_class(explore_length=explore, distractor_length=distractor, final_length=final)
    assert env.episode_length == sum(lengths)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        phases = [env.phase]
        centres = [obs[12::25]]  # the centre pixel of each channel
        terminated = False
        while not terminated:
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            assert not truncated
            phases.append(env.phase)
            centres.append(obs[12::25])
        assert phases == ["explore"] * explore + ["distractor"] * distractor + ["final"] * (final + 1)
        assert set(info) == {"is_success", "success"}
        if env_class is VisualMatchEnv:  # the player is always at the centre of the view
            np.testing.assert_allclose(np.array(centres), np.tile(PALETTE[PLAYER] / 255, (len(centres), 1)), atol=1e-6)


def test_apple_respawn() -> None:
    env = VisualMatchEnv(explore_length=1, distractor_length=40, n_apples=22)
    env.reset(seed=0)
    env.step(0)  # explore ends, the player stands at (5, 5) between apples at (5, 3) and (5, 7)
    rewards = [env.step(action)[1] for action in [2, 2] + [1] * 30]  # west twice onto (5, 3), then bump the wall
    # Eaten at frame 2, back after 20 frames (at frame 23, under the player), eaten again at frame 24.
    assert np.flatnonzero(rewards).tolist() == [1, 23]


@pytest.mark.parametrize("distractor_length", [15, 60])
def test_visual_match_oracle(distractor_length: int) -> None:
    env = VisualMatchEnv(distractor_length=distractor_length)
    env.reset(seed=0)
    for _ in range(30):
        rewards, phases, info = run_episode(env, visual_match_oracle)
        assert info["is_success"] and info["success"]
        assert len(rewards) == env.episode_length
        by_phase = {phase: rewards[np.array(phases) == phase] for phase in ("explore", "distractor", "final")}
        assert by_phase["explore"].sum() == 0 and by_phase["final"].sum() == env.final_reward
        assert set(by_phase["distractor"]) <= {0.0, env.apple_reward} and by_phase["distractor"].sum() >= 3


@pytest.mark.parametrize("distractor_length", [15, 60])
def test_key_to_door_oracle(distractor_length: int) -> None:
    env = KeyToDoorEnv(distractor_length=distractor_length)
    env.reset(seed=0)
    for _ in range(30):
        rewards, phases, info = run_episode(env, key_to_door_oracle)
        assert info["is_success"] and info["success"]
        assert len(rewards) == env.episode_length
        by_phase = {phase: rewards[np.array(phases) == phase] for phase in ("explore", "distractor", "final")}
        assert by_phase["explore"].sum() == 0 and by_phase["final"].sum() == env.final_reward
        assert set(by_phase["distractor"]) <= {0.0, env.apple_reward} and by_phase["distractor"].sum() >= 3


def test_visual_match_touched_door() -> None:
    env = VisualMatchEnv(distractor_length=2)
    for door in (0, 1, 2):
        run_episode(env, visual_match_policy(lambda env, door=door: door), seed=door)
        assert env.touched_door == door
        env.reset()
        assert env.touched_door is None
    # bumping into the wall below the start cell for the whole final phase touches no door
    run_episode(env, lambda env: 1 if env.phase == "final" else 0)
    assert env.touched_door is None and env.phase == "final"


def test_visual_match_needs_memory() -> None:
    env = VisualMatchEnv(distractor_length=1)
    # Without memory the final room looks the same whatever the target: always the same door succeeds 1/3 of the time.
    assert abs(success_rate(env, visual_match_same_door, 300) - 1 / 3) < 0.08  # 3 standard errors
    assert success_rate(env, random_policy, 300) < 0.1  # a random walk rarely reaches a door (measured: about 0.02)


def test_key_to_door_random() -> None:
    # Measured about 0.004: a random walk seldom finds the key and then goes north twice in the 3 final steps.
    assert success_rate(KeyToDoorEnv(distractor_length=1), random_policy, 300) < 0.05


# -- meta-RL tasks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_class", [WindEnv, PointRobotEnv])
def test_task_split(env_class: type[gym.Env]) -> None:
    train, evaluation = env_class(), env_class(task_split="eval")
    assert len(train.train_tasks) == 50 and len(train.eval_tasks) == 150
    assert set(train.train_tasks) | set(train.eval_tasks) == set(range(200))
    np.testing.assert_array_equal(train.tasks, evaluation.tasks)
    np.testing.assert_array_equal(train.eval_tasks, evaluation.eval_tasks)
    assert {evaluation.reset(seed=seed)[1]["task"] for seed in range(20)} <= set(train.eval_tasks)
    assert env_class(n_train_tasks=10).train_tasks.shape == (10,)
    assert train.reset(options={"task": 3})[1]["task"] == 3


def test_task_distributions() -> None:
    winds = WindEnv().tasks
    assert winds.shape == (200, 2) and np.abs(winds).max() <= 0.1
    goals = PointRobotEnv().tasks
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 1.0)
    assert (goals[:, 1] >= 0).all()


def wind_oracle(env: WindEnv) -> np.ndarray:
    return np.clip((env.GOAL - env.position - env.wind) / 0.1, -1, 1)


def point_robot_oracle(env: PointRobotEnv) -> np.ndarray:
    return np.clip((env.goal - env.position) / 0.1, -1, 1)


def test_point_robot() -> None:
    env = PointRobotEnv(task_split="eval")
    env.reset(seed=0)
    for task in env.eval_tasks[:30]:
        rewards, _, info = run_episode(env, point_robot_oracle, options={"task": task})
        assert info["is_success"] and len(rewards) == 200
        # The oracle stays on the goal once there: at most 26 steps away from any start state.
        assert rewards[:100].sum() >= 74 and rewards[100:].sum() >= 74
    env.reset(seed=0)
    obs = [env.step(env.action_space.sample())[0] for _ in range(200)]
    flags = np.array(obs)[:, 2]
    assert flags.nonzero()[0].tolist() == [99, 199]  # the inner-episode done flag
    # A random walk from a start state near the half circle sometimes crosses the goal (measured: about 0.09).
    assert success_rate(env, random_policy, 200) < 0.2


def test_wind() -> None:
    env = WindEnv(task_split="all")
    successes = [run_episode(env, wind_oracle, options={"task": task})[2]["is_success"] for task in range(200)]
    # The oracle fails only where a headwind below -0.09 leaves less than 0.01 progress per step.
    assert np.mean(successes) > 0.9
    assert all(successes[task] for task in np.flatnonzero(env.tasks[:, 1] > -0.08))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and not obs.any()
    obs, *_ = env.step(np.array([2.0, -0.5]))
    np.testing.assert_allclose(obs[2:], [1.0, -0.5])  # the previous action, clipped
    np.testing.assert_allclose(obs[:2], np.array([0.1, -0.05]) + env.wind, atol=1e-6)
    assert success_rate(env, random_policy, 50) < 0.1


# -- POPGym ----------------------------------------------------------------------------------------------------------
def popgym_params() -> list:
    mazelib_skip = pytest.mark.skipif(not HAS_MAZELIB, reason="popgym's Labyrinth envs need mazelib (pip install mazelib)")
    return [pytest.param(name, marks=mazelib_skip) if name.startswith("Labyrinth") else name for name in POPGYM_ENV_NAMES]


@pytest.mark.parametrize("name", popgym_params())
def test_popgym(name: str) -> None:
    pytest.importorskip("popgym")
    gym_check_env(make_popgym_env(name), skip_render_check=True)
    gym_check_env(make_popgym_env(name, prev_action=True), skip_render_check=True)
    sb3_check_env(gym.make(f"POPGym-{name}-v0"))
    vec_env = make_vec_env(f"POPGym-{name}-v0", n_envs=2, seed=0)
    obs = vec_env.reset()
    assert obs.dtype == np.float32 and obs.shape == (2, *vec_env.observation_space.shape)
    for _ in range(5):
        obs, *_ = vec_env.step(np.array([vec_env.action_space.sample() for _ in range(2)]))


def test_popgym_flattening() -> None:
    popgym = pytest.importorskip("popgym")
    env = make_popgym_env(popgym.envs.AutoencodeEasy, prev_action=True)  # Tuple(Discrete(2), Discrete(4)) + Discrete(4)
    assert env.observation_space.shape == (10,)
    obs, _ = env.reset(seed=0)
    assert obs.sum() == 3 and obs[6] == 1  # three one-hot parts, the null previous action is 0
    obs, *_ = env.step(2)
    assert obs[6 + 2] == 1


def test_popgym_is_lazy_and_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys, gymnasium, sb3_shm.envs; gymnasium.spec('POPGym-RepeatPreviousEasy-v0');"
        "assert 'popgym' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    monkeypatch.setitem(sys.modules, "popgym.wrappers", None)
    with pytest.raises(ImportError, match="pip install popgym"):
        make_popgym_env("RepeatPreviousEasy")


@pytest.mark.skipif(HAS_MAZELIB, reason="checks the message given without mazelib")
def test_popgym_labyrinth_without_mazelib() -> None:
    with pytest.raises(ImportError, match="pip install mazelib"):
        gym.make("POPGym-LabyrinthEscapeEasy-v0")


# -- ShmPPO smoke tests ----------------------------------------------------------------------------------------------
def shm_ppo():
    try:
        from sb3_shm import ShmPPO
    except ImportError:
        pytest.skip("sb3_shm.ShmPPO is not available")
    return ShmPPO


@pytest.mark.parametrize("name", popgym_params())
def test_shm_ppo_trains_on_popgym(name: str) -> None:
    """Every POPGym env: wrapped, vectorised and trained for 256 steps by ShmPPO (finite losses)."""
    pytest.importorskip("popgym")
    vec_env = make_vec_env(f"POPGym-{name}-v0", n_envs=2, seed=0)
    model = shm_ppo()("MlpShmPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=0).learn(256)
    assert model.num_timesteps == 256 and np.isfinite(model.logger.name_to_value["train/loss"])


@pytest.mark.parametrize(
    "env_id, policy, kwargs",
    [
        ("VisualMatch-v0", "MlpShmPolicy", {}),
        ("KeyToDoor-v0", "CnnShmPolicy", {"obs_mode": "image"}),
        ("PointRobot-v0", "MlpShmPolicy", {}),
    ],
)
def test_shm_ppo_runs_on_paper_envs(env_id: str, policy: str, kwargs: dict) -> None:
    vec_env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=kwargs)
    shm_ppo()(policy, vec_env, n_steps=32, batch_size=32, n_epochs=1, seed=0).learn(64)


def test_registered_ids() -> None:
    expected = set(GRID_IDS + META_IDS) | {f"POPGym-{name}-v0" for name in POPGYM_ENV_NAMES}
    assert expected <= set(gym.registry)


# -- wrappers --------------------------------------------------------------------------------------------------------
def test_sine_positional_encoding_counts_steps_from_reset() -> None:
    env = SinePositionalEncoding(gym.make("CartPole-v1"), size=8, max_period=100.0)
    assert env.observation_space.shape == (4 + 8,)
    sb3_check_env(env)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[4:], [0, 1] * 4)  # sin(0), cos(0)
    frequencies = 100.0 ** (-np.arange(0, 8, 2) / 8)  # entry 2i = sin(step * frequency_i), entry 2i + 1 its cos
    for step in range(1, 4):
        obs, *_ = env.step(0)
        np.testing.assert_allclose(obs[4::2], np.sin(step * frequencies), atol=1e-6)
        np.testing.assert_allclose(obs[5::2], np.cos(step * frequencies), atol=1e-6)
    assert env.observation_space.contains(obs)
    obs, _ = env.reset()
    np.testing.assert_allclose(obs[4:], [0, 1] * 4)


def test_sine_positional_encoding_matches_popgym() -> None:
    pytest.importorskip("popgym")
    from popgym.baselines.models.embeddings import positional_encoding

    expected = positional_encoding(1024, 16).numpy()  # the SHM authors' max_seq_len 1024
    actual = np.stack([sine_positional_encoding(step, 16) for step in range(1024)])
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    env = SinePositionalEncoding(gym.make("POPGym-RepeatPreviousEasy-v0"))
    gym_check_env(env, skip_render_check=True)


def test_sine_positional_encoding_as_a_zoo_env_wrapper() -> None:
    """The hyperparameters-file form that docs/envs.md gives: ``env_wrapper: sb3_shm.envs.SinePositionalEncoding``."""
    rl_zoo3_utils = pytest.importorskip("rl_zoo3.utils")
    wrapper = rl_zoo3_utils.get_wrapper_class({"env_wrapper": [{"sb3_shm.envs.SinePositionalEncoding": {"size": 4}}]})
    vec_env = make_vec_env("CartPole-v1", n_envs=2, wrapper_class=wrapper)
    assert vec_env.observation_space.shape == (4 + 4,)
    np.testing.assert_allclose(vec_env.reset()[:, 4:], [[0, 1, 0, 1]] * 2)


def test_sine_positional_encoding_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"1-D Box observation space.*FlattenObservation"):
        SinePositionalEncoding(gym.make("Blackjack-v1"))  # a Tuple of Discrete spaces
    with pytest.raises(ValueError, match="positive even number"):
        SinePositionalEncoding(gym.make("CartPole-v1"), size=7)
    with pytest.raises(ValueError, match="max_period must be > 1"):
        SinePositionalEncoding(gym.make("CartPole-v1"), max_period=1.0)


def test_previous_reward_appends_the_last_reward():
    from gymnasium.wrappers import FlattenObservation

    from sb3_shm.envs import PreviousReward

    env = PreviousReward(gym.make("Wind-v0", prev_action_obs=False, goal_radius=0.5), scale=0.5)
    assert env.observation_space.shape == (3,)
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 0.0
    rewards = []
    for _ in range(12):  # straight up: the goal (radius 0.5 around (0, 1)) is reached within 12 steps
        obs, reward, *_ = env.step(np.array([0.0, 1.0], dtype=np.float32))
        assert obs[-1] == 0.5 * reward and env.observation_space.contains(obs)
        rewards.append(reward)
    assert 1.0 in rewards and 0.0 in rewards
    assert env.reset(seed=1)[0][-1] == 0.0  # a new episode starts without a previous reward
    with pytest.raises(ValueError, match="1-D Box observation space"):
        PreviousReward(gym.make("VisualMatch-v0", obs_mode="image"))
    with pytest.raises(ValueError, match="scale"):
        PreviousReward(gym.make("Wind-v0"), scale=0.0)
    PreviousReward(FlattenObservation(gym.make("VisualMatch-v0", obs_mode="image")))  # flattened first: accepted
