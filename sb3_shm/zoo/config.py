"""
Checks of a zoo hyperparameter entry (yml file and ``-params``) before the zoo builds the model, so that a bad key,
type or value is a one-line :class:`ZooConfigError` that names the file and entry instead of a traceback.
"""

import functools
import inspect
from typing import Any

from sb3_shm.zoo.algos import ALGOS


class ZooConfigError(ValueError):
    """A bad zoo configuration for one of this package's algorithms (hyperparameter key, type, value)."""


# Keys the zoo consumes itself (the rest goes to the algorithm's constructor)
ZOO_KEYS = {
    "n_envs",
    "n_timesteps",
    "normalize",
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "monitor_kwargs",
    "env_kwargs",
    "policy",
}
# Passed by the zoo itself: a yml entry must not set them
ZOO_RESERVED = {"env", "tensorboard_log", "seed", "verbose", "device", "_init_setup_model", "self"}

_INT = "an integer"
_NUMBER = "a number"
_SCHEDULE = "a number or a 'lin_<number>' string"
# Hyperparameters this package converts itself (ZooAlgo.schedules) also take an end value other than 0
_SCHEDULE_TO = "a number, a 'lin_<start>' or a 'lin_<start>_<end>' string"
_TYPES: dict[str, str] = {
    "n_steps": _INT,
    "n_epochs": _INT,
    "n_envs": _INT,
    "frame_stack": _INT,
    "stats_window_size": _INT,
    "sde_sample_freq": _INT,
    "batch_size": _INT + " or null",
    "sequence_length": _INT + " or null",
    "n_timesteps": _NUMBER + " (write 1e5 as !!float 1e5 in yaml)",
    "gamma": _NUMBER,
    "gae_lambda": _NUMBER,
    "ent_coef": _SCHEDULE_TO,
    "vf_coef": _NUMBER,
    "max_grad_norm": _NUMBER,
    "target_kl": _NUMBER + " or null",
    "learning_rate": _SCHEDULE,
    "clip_range": _SCHEDULE,
    "clip_range_vf": _SCHEDULE + " or null",
    "normalize_advantage": "true or false",
    "use_sde": "true or false",
    "normalize": "true, false, a dict or a python dict string",
    "policy": "a policy name (e.g. MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy) or a dotted class path",
    "policy_kwargs": "a dict or a python dict string",
    "env_kwargs": "a dict",
    "monitor_kwargs": "a dict or a python dict string",
}


# Where an algorithm's constructor takes other types than ShmPPO's
_ALGO_TYPES: dict[str, dict[str, str]] = {
    "shm_sac": {"ent_coef": "a number, 'auto' or 'auto_<initial value>'", "batch_size": _INT},
}


def _type_ok(key: str, value: Any, expected: str | None) -> bool:
    if expected is None:
        return True
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_number = (isinstance(value, (int, float))) and not isinstance(value, bool)
    if expected.startswith(_INT):
        return is_int or (value is None and "null" in expected)
    if expected.startswith((_SCHEDULE, _SCHEDULE_TO)):
        if value is None:
            return "null" in expected
        if isinstance(value, str):
            parts = value.split("_")
            lengths = (2, 3) if expected.startswith(_SCHEDULE_TO) else (2,)
            try:
                return len(parts) in lengths and parts[0] == "lin" and all(float(part) >= 0 for part in parts[1:])
            except ValueError:
                return False
        return is_number
    if expected.startswith(_NUMBER):
        if "'auto'" in expected and isinstance(value, str):
            return value == "auto" or (value.startswith("auto_") and _is_number(value[len("auto_") :]))
        return is_number or (value is None and "null" in expected)
    if expected == "true or false":
        return isinstance(value, bool)
    if key == "normalize":
        return isinstance(value, (bool, dict, str))
    if key == "policy":
        return isinstance(value, str)
    if key == "env_kwargs":
        return isinstance(value, dict)
    return isinstance(value, (dict, str))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@functools.cache
def algorithm_keys(algo: str) -> frozenset[str]:
    """The hyperparameters the algorithm's constructor takes, less those the zoo passes itself."""
    return frozenset(inspect.signature(ALGOS[algo].load().__init__).parameters) - ZOO_RESERVED


def check_hyperparams(
    hyperparams: dict[str, Any], where: str = "", overrides: dict[str, Any] | None = None, algo: str = "shm_ppo"
) -> None:
    """
    Raise :class:`ZooConfigError` (one line) for an unknown key or a value of the wrong type.

    :param hyperparams: the entry, with the ``-params`` overrides laid over it
    :param where: the yml file and entry, for the message
    :param overrides: the ``-params`` overrides (a bad key found there is blamed on ``-params``)
    :param algo: the ``--algo`` name
    """
    if not isinstance(hyperparams, dict):
        raise ZooConfigError(f"{where}: the hyperparameters must be a mapping, got {type(hyperparams).__name__}")
    allowed = algorithm_keys(algo) | ZOO_KEYS
    name = ALGOS[algo].algorithm.split(":")[-1]
    base_where = where
    for key, value in hyperparams.items():
        where = "-params" if overrides and key in overrides else base_where
        if key in ZOO_RESERVED:
            raise ZooConfigError(f"{where}: '{key}' is set by the zoo (use its command-line option), not in the yml")
        if key not in allowed:
            raise ZooConfigError(f"{where}: {name} takes no hyperparameter '{key}' (valid: {', '.join(sorted(allowed))})")
        expected = _ALGO_TYPES.get(algo, {}).get(key, _TYPES.get(key))
        if not _type_ok(key, value, expected):
            raise ZooConfigError(f"{where}: '{key}' must be {expected}, got {value!r}")
    if "n_timesteps" not in hyperparams:
        raise ZooConfigError(f"{where}: 'n_timesteps' is missing (the zoo needs it even with -n)")


def check_policy_kwargs(policy: Any, policy_kwargs: Any, where: str = "", algo: str = "shm_ppo") -> None:
    """
    Raise :class:`ZooConfigError` (one line) for an unknown policy, a ``policy_kwargs`` key the policy does not take,
    or a bad memory option (checked by the policy's own validation).

    :param policy: a policy name, a dotted class path, a class, or None (not set)
    :param policy_kwargs: the entry's ``policy_kwargs`` (after the zoo evaluated the string)
    :param where: the yml file and entry, for the message
    :param algo: the ``--algo`` name
    """
    algorithm = ALGOS[algo].load()
    if isinstance(policy, str) and "." not in policy and policy not in algorithm.policy_aliases:
        raise ZooConfigError(
            f"{where}: unknown policy '{policy}' for {algorithm.__name__} (use one of {', '.join(algorithm.policy_aliases)})"
        )
    if policy_kwargs is None:
        return
    if not isinstance(policy_kwargs, dict):
        raise ZooConfigError(f"{where}: 'policy_kwargs' must be a dict, got {policy_kwargs!r}")
    policy_class = policy if isinstance(policy, type) else algorithm.policy_aliases.get(policy)
    if policy_class is None:
        return
    parameters = _policy_parameters(policy_class)
    for key in policy_kwargs:
        if key not in parameters:
            raise ZooConfigError(
                f"{where}: {policy_class.__name__} takes no policy_kwargs '{key}' (valid: {', '.join(sorted(parameters))})"
            )
    _check_memory_values(policy_kwargs, parameters, where)


def _policy_parameters(policy_class: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``policy_class`` (following ``**kwargs`` up the class hierarchy)."""
    accepted: dict[str, inspect.Parameter] = {}
    for klass in policy_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        for name, parameter in parameters.items():
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                accepted.setdefault(name, parameter)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    for name in ("self", "observation_space", "action_space", "lr_schedule", "use_sde"):
        accepted.pop(name, None)
    return accepted


def _check_memory_values(policy_kwargs: dict[str, Any], parameters: dict[str, inspect.Parameter], where: str) -> None:
    """The memory's options, through the validation the policy itself runs (one set of rules)."""
    from sb3_shm.common.memory.shm import check_memory_arguments

    if "memory_size" not in parameters:
        return

    def value(name: str) -> Any:
        # None for an option the policy does not have (ShmSAC's policy has no memory-sharing flags)
        return policy_kwargs.get(name, parameters[name].default if name in parameters else None)

    try:
        check_memory_arguments(
            value("memory_size"),
            value("bank_size"),
            value("calibration"),
            value("memory_clamp"),
            value("scan_impl"),
            value("memory_decay"),
        )
    except ValueError as error:
        raise ZooConfigError(f"{where}: policy_kwargs: {error}") from error
    if "critic_memory" in parameters:
        from sb3_shm.common.recurrent.policies import resolve_critic_memory

        try:
            resolve_critic_memory(
                policy_kwargs.get("critic_memory"),
                shared_memory=policy_kwargs.get("shared_memory"),
                enable_critic_memory=policy_kwargs.get("enable_critic_memory"),
                critic_trains_memory=policy_kwargs.get("critic_trains_memory"),
                warn=False,
            )
        except ValueError as error:
            raise ZooConfigError(f"{where}: policy_kwargs: {error}") from error
