"""The SHM paper's environments, registered with gymnasium on import (see ``docs/envs.md``).

- ``VisualMatch-v0`` and ``VisualMatch-{15,60,120,250,500}-v0`` (the number is the distractor length),
- ``KeyToDoor-v0`` and ``KeyToDoor-{15,60,120,250,500}-v0``,
- ``Wind-v0`` and ``PointRobot-v0`` (meta-RL),
- ``POPGym-<Name>-v0`` for every POPGym env (needs the optional ``popgym`` package when made).

:class:`SinePositionalEncoding` appends a sine encoding of the episode step to the observation (the SHM authors'
POPGym set-up); :class:`PreviousReward` appends the previous reward (for memories that read rewards, so that
``predict`` callers such as ``EvalCallback`` pass it).
"""

import gymnasium

from sb3_shm.envs.key_to_door import KeyToDoorEnv
from sb3_shm.envs.meta import PointRobotEnv, WindEnv
from sb3_shm.envs.popgym_wrappers import POPGYM_ENV_NAMES, PopgymFlattenObservation, make_popgym_env
from sb3_shm.envs.visual_match import VisualMatchEnv
from sb3_shm.envs.wrappers import PreviousReward, SinePositionalEncoding

DISTRACTOR_LENGTHS = (15, 60, 120, 250, 500)

__all__ = [
    "DISTRACTOR_LENGTHS",
    "POPGYM_ENV_NAMES",
    "KeyToDoorEnv",
    "PointRobotEnv",
    "PopgymFlattenObservation",
    "PreviousReward",
    "SinePositionalEncoding",
    "VisualMatchEnv",
    "WindEnv",
    "make_popgym_env",
]


def _register(env_id: str, entry_point: str, **kwargs: object) -> None:
    # Re-importing (e.g. after importlib.reload) must not warn about overriding our own ids.
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=entry_point, kwargs=kwargs)


for _name, _entry_point in (
    ("VisualMatch", "sb3_shm.envs.visual_match:VisualMatchEnv"),
    ("KeyToDoor", "sb3_shm.envs.key_to_door:KeyToDoorEnv"),
):
    _register(f"{_name}-v0", _entry_point)
    for _length in DISTRACTOR_LENGTHS:
        _register(f"{_name}-{_length}-v0", _entry_point, distractor_length=_length)
_register("Wind-v0", "sb3_shm.envs.meta:WindEnv")
_register("PointRobot-v0", "sb3_shm.envs.meta:PointRobotEnv")
for _name in POPGYM_ENV_NAMES:
    _register(f"POPGym-{_name}-v0", "sb3_shm.envs.popgym_wrappers:make_popgym_env", env_id_or_class=f"popgym-{_name}-v0")
