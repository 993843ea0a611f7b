"""The spaces the algorithms accept, checked before SB3's bare assertions, with errors that say the fix."""

from gymnasium import spaces

OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)


def check_spaces(
    algorithm: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    action_spaces: tuple[type[spaces.Space], ...],
    action_fix: str,
) -> None:
    """
    Raise a ValueError naming the unsupported space and the fix.

    :param algorithm: the algorithm's name, for messages
    :param observation_space: the environment's observation space (Box, Discrete, MultiDiscrete, MultiBinary, or a
        flat Dict of those)
    :param action_space: the environment's action space
    :param action_spaces: the action spaces the algorithm supports
    :param action_fix: what to do instead, e.g. "use Box or Discrete"
    """
    if not isinstance(action_space, action_spaces):
        raise ValueError(f"{algorithm} does not support {type(action_space).__name__} action spaces: {action_fix}")
    inner = observation_space.spaces.values() if isinstance(observation_space, spaces.Dict) else [observation_space]
    for space in [observation_space, *inner]:
        nested = isinstance(space, spaces.Dict) and space is not observation_space
        if nested or not isinstance(space, OBSERVATION_SPACES):
            where = " nested in a Dict" if nested else ""
            raise ValueError(
                f"{algorithm} does not support {type(space).__name__} observation spaces{where}: "
                "use Box, Discrete, MultiDiscrete, MultiBinary or a flat Dict of those with MultiInputShmPolicy "
                "(for example gymnasium.wrappers.FlattenObservation for a Tuple space)"
            )
