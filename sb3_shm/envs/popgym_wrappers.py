"""POPGym (Morad et al. 2023) environments for SB3: a float32 ``Box`` observation for every POPGym env.

``popgym`` is an optional dependency, imported only when a POPGym env is made. ``import sb3_shm`` registers
``POPGym-<Name>-v0`` for every env that ``import popgym`` registers as ``popgym-<Name>-v0``:
``gymnasium.make("POPGym-RepeatPreviousEasy-v0")`` is ``make_popgym_env("popgym-RepeatPreviousEasy-v0")``.
"""

import copy
from importlib.util import find_spec
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator

POPGYM_FAMILIES = (
    "Autoencode",
    "Battleship",
    "Concentration",
    "CountRecall",
    "HigherLower",
    "LabyrinthEscape",
    "LabyrinthExplore",
    "MineSweeper",
    "MultiarmedBandit",
    "NoisyPositionOnlyCartPole",
    "NoisyPositionOnlyPendulum",
    "PositionOnlyCartPole",
    "PositionOnlyPendulum",
    "RepeatFirst",
    "RepeatPrevious",
    "VelocityOnlyCartpole",  # sic: popgym's id spells it so (the class is VelocityOnlyCartPole)
)
# popgym 1.0.7 registers the Easy / Medium / Hard levels of each family (the Labyrinths only with mazelib installed).
POPGYM_ENV_NAMES = tuple(f"{family}{level}" for family in POPGYM_FAMILIES for level in ("Easy", "Medium", "Hard"))
# Families whose popgym envs need mazelib (popgym does not register them without it).
MAZELIB_FAMILIES = ("LabyrinthEscape", "LabyrinthExplore")


class PopgymFlattenObservation(gym.Wrapper[np.ndarray, Any, Any, Any]):
    """
    Flatten any observation space into a float32 ``Box``: ``Discrete`` and ``MultiDiscrete`` parts are one-hot
    encoded, ``Tuple`` / ``Dict`` parts concatenated, ``Box`` parts kept (gymnasium's ``flatten_space``, cast to
    float32). popgym's own ``Flatten`` wrapper leaves ``Discrete`` / ``MultiDiscrete`` integer observations as they
    are, and SB3 takes no ``Tuple`` observations (``Autoencode``, or any env with popgym's ``PreviousAction``).

    The ``info`` dicts are deep-copied: some POPGym envs (CountRecall, MultiarmedBandit) return arrays that they
    later change in place, which gymnasium's env checker rejects.

    :param env: the environment to wrap
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        flat = spaces.flatten_space(env.observation_space)
        if not isinstance(flat, spaces.Box):
            raise ValueError(f"cannot flatten the observation space {env.observation_space} into a Box")
        self.observation_space = spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32)

    def _flatten(self, obs: Any) -> np.ndarray:
        return np.asarray(spaces.flatten(self.env.observation_space, obs), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._flatten(obs), copy.deepcopy(info)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._flatten(obs), reward, terminated, truncated, copy.deepcopy(info)


def make_popgym_env(env_id_or_class: str | type[gym.Env], prev_action: bool = False, **kwargs: Any) -> gym.Env:
    """
    Make a POPGym env usable by SB3: its observations flattened into a float32 ``Box``
    (:class:`PopgymFlattenObservation`), optionally with the previous action appended by popgym's ``PreviousAction``
    wrapper (the SHM paper used the raw envs, without it).

    :param env_id_or_class: a popgym id (``"popgym-RepeatPreviousEasy-v0"``), a bare name (``"RepeatPreviousEasy"``)
        or an env class (``popgym.envs.RepeatPreviousEasy``)
    :param prev_action: append the previous action (the null action after reset) to the observation
    :param kwargs: passed to the env's constructor
    :return: the wrapped env
    """
    try:
        from popgym.wrappers import PreviousAction  # also registers the popgym-* ids
    except ImportError as error:
        raise ImportError("POPGym environments need the popgym package: pip install popgym") from error
    if isinstance(env_id_or_class, str):
        env_id = env_id_or_class if env_id_or_class.startswith("popgym-") else f"popgym-{env_id_or_class}-v0"
        if env_id.startswith(tuple(f"popgym-{family}" for family in MAZELIB_FAMILIES)) and find_spec("mazelib") is None:
            raise ImportError(f"{env_id} needs the mazelib package, which popgym leaves optional: pip install mazelib")
        spec = gym.spec(env_id)
        # gymnasium annotates entry points as creators or strings; popgym registers strings, so load_env_creator applies
        env: gym.Env = load_env_creator(spec.entry_point)(**{**spec.kwargs, **kwargs})  # type: ignore[arg-type, assignment]  # see above
    else:
        env = env_id_or_class(**kwargs)
    if prev_action:
        env = PreviousAction(env)
    return PopgymFlattenObservation(env)
