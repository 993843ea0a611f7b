"""
What the RL Zoo import hook (``_hook.py``) does to rl_zoo3 modules once they are imported.

Every patch checks the shape of what it patches and, if rl_zoo3 changed, warns with the rl_zoo3 version
instead of failing silently. Every patch is idempotent and changes nothing for rl_zoo3's own algorithms,
except one compatibility alias (``huggingface_sb3.push_to_hub.generate_metadata``) without which
``rl_zoo3.push_to_hub`` cannot even be imported.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import warnings
from pathlib import Path
from typing import Any

ALGO = "shm_ppo"
HYPERPARAMS_FILE = Path(__file__).resolve().parent.parent / "hyperparams" / f"{ALGO}.yml"
TRACEBACK_ENV = "SB3_SHM_ZOO_TRACEBACK"
TESTED_RL_ZOO3 = "2.9"

_MARK = "_sb3_shm_patched"


class ZooConfigError(ValueError):
    """A bad ``--algo shm_ppo`` configuration (hyperparameter key, type, value)."""


class ZooShapeWarning(RuntimeWarning):
    """rl_zoo3 does not look like the version this integration was written for."""


def rl_zoo3_version() -> str:
    try:
        from importlib.metadata import version

        return version("rl_zoo3")
    except Exception:
        return "unknown"


def warn_shape(detail: str) -> None:
    message = (
        f"sb3-shm: rl_zoo3 {rl_zoo3_version()} changed shape ({detail}); `--algo shm_ppo` may not work with it "
        f"(the integration was written for rl_zoo3 {TESTED_RL_ZOO3}.x). Please report it to sb3-shm."
    )
    warnings.warn(message, ZooShapeWarning, stacklevel=3)


def _dict_attr(module: Any, name: str) -> dict | None:
    value = getattr(module, name, None)
    if not isinstance(value, dict):
        warn_shape(f"{module.__name__}.{name} is not a dict")
        return None
    return value


# --------------------------------------------------------------------------------------------------------------
# Entry point called by the hook
# --------------------------------------------------------------------------------------------------------------
def patch_module(name: str, module: Any) -> None:
    patches = {
        "rl_zoo3.utils": _patch_utils,
        "rl_zoo3.hyperparams_opt": _patch_hyperparams_opt,
        "rl_zoo3.exp_manager": _patch_exp_manager,
        "rl_zoo3.import_envs": _patch_import_envs,
        "rl_zoo3.load_from_hub": lambda module: _patch_load_from_hub(vars(module)),
        "rl_zoo3.push_to_hub": lambda module: _patch_push_to_hub(vars(module)),
        "huggingface_sb3.push_to_hub": _patch_hf_push_to_hub,
    }
    if name in patches:
        patches[name](module)


def patch_main(namespace: dict[str, Any]) -> None:
    """Called from a zoo script run with ``python -m`` just before its ``if __name__ == "__main__":`` block."""
    spec = namespace.get("__spec__")
    name = getattr(spec, "name", "")
    if shm_ppo_requested():
        install_excepthook()
    if name == "rl_zoo3.load_from_hub":
        _patch_load_from_hub(namespace)
    elif name == "rl_zoo3.push_to_hub":
        _patch_push_to_hub(namespace)


# --------------------------------------------------------------------------------------------------------------
# ALGOS, sampler, hyperparameter file, envs
# --------------------------------------------------------------------------------------------------------------
def _patch_utils(module: Any) -> None:
    algos = _dict_attr(module, "ALGOS")
    if algos is None or ALGO in algos:
        return
    from sb3_shm import ShmPPO

    algos[ALGO] = ShmPPO


def _patch_hyperparams_opt(module: Any) -> None:
    samplers = _dict_attr(module, "HYPERPARAMS_SAMPLER")
    converters = _dict_attr(module, "HYPERPARAMS_CONVERTER")
    if samplers is not None:
        samplers.setdefault(ALGO, sample_shm_ppo_params)
    if converters is not None:
        converters.setdefault(ALGO, convert_shm_ppo_params)


def _patch_import_envs(module: Any) -> None:
    import_sb3_shm_envs()


def import_sb3_shm_envs() -> bool:
    """Register the package's environments (VisualMatch-v0, ...) in gymnasium's registry, if they exist."""
    import importlib

    try:
        importlib.import_module("sb3_shm.envs")
    except ModuleNotFoundError as error:
        if error.name in ("sb3_shm.envs", "sb3_shm"):
            return False
        warnings.warn(f"sb3-shm: could not register the package's environments ({error})", RuntimeWarning, stacklevel=2)
        return False
    return True


def _default_config_path(exp_manager_module: Any, algo: str) -> str:
    # Same rule as ExperimentManager.__init__
    base = Path(exp_manager_module.__file__).parent
    default_path = base if (base / "hyperparams").is_dir() else base.parent
    return str(default_path / f"hyperparams/{algo}.yml")


def _patch_exp_manager(module: Any) -> None:
    manager = getattr(module, "ExperimentManager", None)
    needed = ("__init__", "_preprocess_hyperparams", "read_hyperparameters")
    if not isinstance(manager, type) or not all(hasattr(manager, attribute) for attribute in needed):
        warn_shape("rl_zoo3.exp_manager.ExperimentManager lost __init__/_preprocess_hyperparams/read_hyperparameters")
        return
    if getattr(manager.__init__, _MARK, False):
        return
    original_init = manager.__init__
    original_preprocess = manager._preprocess_hyperparams
    try:
        init_signature = inspect.signature(original_init)
    except (TypeError, ValueError):
        init_signature = None
    if init_signature is None or "config" not in init_signature.parameters:
        warn_shape("ExperimentManager.__init__ has no `config` parameter")

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if getattr(self, "algo", None) != ALGO or init_signature is None or "config" not in init_signature.parameters:
            return
        config = init_signature.bind(self, *args, **kwargs).arguments.get("config")
        default = _default_config_path(module, ALGO)
        if config is None and getattr(self, "config", None) == default and not os.path.isfile(default):
            # rl_zoo3 looks for hyperparams/shm_ppo.yml inside its own package: use the one shipped with sb3-shm
            self.config = str(HYPERPARAMS_FILE)

    @functools.wraps(original_preprocess)
    def _preprocess_hyperparams(self, hyperparams: dict[str, Any], *args: Any, **kwargs: Any):
        if getattr(self, "algo", None) != ALGO:
            return original_preprocess(self, hyperparams, *args, **kwargs)
        where = f"{getattr(self, 'config', '?')} [{getattr(getattr(self, 'env_name', None), 'gym_id', '?')}]"
        check_hyperparams(hyperparams, where, overrides=getattr(self, "custom_hyperparams", None) or {})
        result = original_preprocess(self, hyperparams, *args, **kwargs)
        processed = result[0] if isinstance(result, tuple) else result
        if isinstance(processed, dict):
            check_policy_kwargs(processed.get("policy", "MlpShmPolicy"), processed.get("policy_kwargs"), where)
        return result

    setattr(__init__, _MARK, True)
    manager.__init__ = __init__
    manager._preprocess_hyperparams = _preprocess_hyperparams


# --------------------------------------------------------------------------------------------------------------
# Hyperparameter checks: one-line errors instead of a traceback from inside the zoo
# --------------------------------------------------------------------------------------------------------------
# Keys the zoo consumes itself (the rest goes to ShmPPO(...))
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
    "ent_coef": _NUMBER,
    "vf_coef": _NUMBER,
    "max_grad_norm": _NUMBER,
    "target_kl": _NUMBER + " or null",
    "learning_rate": _SCHEDULE,
    "clip_range": _SCHEDULE,
    "clip_range_vf": _SCHEDULE + " or null",
    "normalize_advantage": "true or false",
    "use_sde": "true or false",
    "normalize": "true, false, a dict or a python dict string",
    "policy": "a policy name (MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy) or a dotted class path",
    "policy_kwargs": "a dict or a python dict string",
    "env_kwargs": "a dict",
    "monitor_kwargs": "a dict or a python dict string",
}


def _type_ok(key: str, value: Any) -> bool:
    expected = _TYPES.get(key)
    if expected is None:
        return True
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_number = (isinstance(value, (int, float))) and not isinstance(value, bool)
    if expected.startswith(_INT):
        return is_int or (value is None and "null" in expected)
    if expected.startswith(_SCHEDULE):
        if value is None:
            return "null" in expected
        if isinstance(value, str):
            parts = value.split("_")
            try:
                return len(parts) == 2 and parts[0] == "lin" and float(parts[1]) >= 0
            except ValueError:
                return False
        return is_number
    if expected.startswith(_NUMBER):
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


@functools.lru_cache(maxsize=1)
def shm_ppo_keys() -> frozenset[str]:
    from sb3_shm import ShmPPO

    return frozenset(inspect.signature(ShmPPO.__init__).parameters) - ZOO_RESERVED


def check_hyperparams(hyperparams: dict[str, Any], where: str = "", overrides: dict[str, Any] | None = None) -> None:
    """
    Raise :class:`ZooConfigError` (one line) for an unknown key or a value of the wrong type.

    :param where: the yml file and entry, for the message
    :param overrides: the ``-params`` overrides (a bad key found there is blamed on ``-params``)
    """
    if not isinstance(hyperparams, dict):
        raise ZooConfigError(f"{where}: the hyperparameters must be a mapping, got {type(hyperparams).__name__}")
    allowed = shm_ppo_keys() | ZOO_KEYS
    base_where = where
    for key, value in hyperparams.items():
        where = "-params" if overrides and key in overrides else base_where
        if key in ZOO_RESERVED:
            raise ZooConfigError(f"{where}: '{key}' is set by the zoo (use its command-line option), not in the yml")
        if key not in allowed:
            raise ZooConfigError(f"{where}: ShmPPO takes no hyperparameter '{key}' (valid: {', '.join(sorted(allowed))})")
        if not _type_ok(key, value):
            raise ZooConfigError(f"{where}: '{key}' must be {_TYPES[key]}, got {value!r}")
    if "n_timesteps" not in hyperparams:
        raise ZooConfigError(f"{where}: 'n_timesteps' is missing (the zoo needs it even with -n)")


def _policy_class(policy: Any) -> type | None:
    from sb3_shm import ShmPPO

    if isinstance(policy, type):
        return policy
    if isinstance(policy, str):
        return ShmPPO.policy_aliases.get(policy)
    return None


def check_policy_kwargs(policy: Any, policy_kwargs: Any, where: str = "") -> None:
    if isinstance(policy, str) and "." not in policy:
        from sb3_shm import ShmPPO

        if policy not in ShmPPO.policy_aliases:
            raise ZooConfigError(
                f"{where}: unknown policy '{policy}' for ShmPPO (use one of {', '.join(ShmPPO.policy_aliases)})"
            )
    if policy_kwargs is None:
        return
    if not isinstance(policy_kwargs, dict):
        raise ZooConfigError(f"{where}: 'policy_kwargs' must be a dict, got {policy_kwargs!r}")
    policy_class = _policy_class(policy)
    if policy_class is None:
        return
    accepted: set[str] = set()
    for klass in policy_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        accepted |= {name for name, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    accepted -= {"self", "observation_space", "action_space", "lr_schedule", "use_sde"}
    for key in policy_kwargs:
        if key not in accepted:
            raise ZooConfigError(
                f"{where}: {policy_class.__name__} takes no policy_kwargs '{key}' (valid: {', '.join(sorted(accepted))})"
            )
    _check_memory_values(policy_kwargs, where)


def _check_memory_values(policy_kwargs: dict[str, Any], where: str) -> None:
    """The values of the memory's policy_kwargs (their names are checked by :func:`check_policy_kwargs`)."""
    calibration = policy_kwargs.get("calibration", "random")
    if calibration not in ("random", "fixed", "none"):
        raise ZooConfigError(f"{where}: policy_kwargs calibration must be 'random', 'fixed' or 'none', got {calibration!r}")
    for key in ("memory_size", "bank_size"):
        value = policy_kwargs.get(key, 1)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ZooConfigError(f"{where}: policy_kwargs {key} must be an integer >= 1, got {value!r}")
    decay = policy_kwargs.get("memory_decay", 1.0)
    if isinstance(decay, bool) or not (isinstance(decay, (int, float)) and 0.0 < decay <= 1.0):
        raise ZooConfigError(f"{where}: policy_kwargs memory_decay must be a number in (0, 1], got {decay!r}")
    shared = policy_kwargs.get("shared_memory", False)
    if shared and policy_kwargs.get("enable_critic_memory", True):
        raise ZooConfigError(f"{where}: policy_kwargs shared_memory=True needs enable_critic_memory=False too")
    if policy_kwargs.get("critic_trains_memory", False) and not shared:
        raise ZooConfigError(
            f"{where}: policy_kwargs critic_trains_memory=True needs shared_memory=True, enable_critic_memory=False"
        )


# --------------------------------------------------------------------------------------------------------------
# Optuna sampler (rl_zoo3.train --optimize)
# --------------------------------------------------------------------------------------------------------------
def sample_ppo_part(trial: Any) -> dict[str, Any]:
    """
    PPO's hyperparameters of the ShmPPO sampler, also used by the learning benchmark's RecurrentPPO sampler so that
    both recurrent agents are tuned over the same PPO space (``benchmarks/learning/optimize.py``).

    Rollouts are kept to at most 512 steps per env, and ``batch_size <= n_steps`` (see :func:`convert_ppo_part`) so
    that ShmPPO's training sequences (``gcd(n_steps, batch_size) = batch_size`` steps) stay long.
    """
    return {
        "n_steps_pow": trial.suggest_int("n_steps_pow", 5, 9),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 4, 9),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True),
        "one_minus_gae_lambda": trial.suggest_float("one_minus_gae_lambda", 0.0001, 0.1, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "net_arch": trial.suggest_categorical("net_arch", ["tiny", "small"]),
        "activation_fn": trial.suggest_categorical("activation_fn", ["tanh", "relu"]),
    }


def convert_ppo_part(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    Pop :func:`sample_ppo_part`'s keys from ``params``.

    :return: the PPO hyperparameters and the policy_kwargs they set (``net_arch``, ``activation_fn``)
    """
    from torch import nn

    n_steps = 2 ** params.pop("n_steps_pow")
    hyperparams = {
        "n_steps": n_steps,
        "batch_size": min(2 ** params.pop("batch_size_pow"), n_steps),
        "gamma": 1 - params.pop("one_minus_gamma"),
        "gae_lambda": 1 - params.pop("one_minus_gae_lambda"),
        **{key: params.pop(key) for key in ("learning_rate", "ent_coef", "clip_range", "n_epochs", "max_grad_norm")},
    }
    policy_kwargs = {
        "net_arch": {"tiny": dict(pi=[64], vf=[64]), "small": dict(pi=[64, 64], vf=[64, 64])}[params.pop("net_arch")],
        "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[params.pop("activation_fn")],
    }
    return hyperparams, policy_kwargs


def sample_shm_ppo_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for ShmPPO: PPO's hyperparameters (:func:`sample_ppo_part`) plus the memory's (size, calibration mode,
    bank size, decay, and whether actor and critic have separate memories or one trained by both losses)."""
    sampled = {
        **sample_ppo_part(trial),
        "memory_size": trial.suggest_categorical("memory_size", [8, 16, 32, 64]),
        "bank_size": trial.suggest_categorical("bank_size", [16, 64, 128, 512]),
        "calibration": trial.suggest_categorical("calibration", ["random", "fixed", "none"]),
        "memory_decay": trial.suggest_categorical("memory_decay", [0.7, 0.8, 0.9, 0.95, 1.0]),
        "memory_sharing": trial.suggest_categorical("memory_sharing", ["separate", "joint"]),
    }
    hyperparams = convert_shm_ppo_params(sampled)
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("n_steps", hyperparams["n_steps"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    return hyperparams


def convert_shm_ppo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled (trial.params) values into ShmPPO hyperparameters (also used by ``--trial-id``)."""
    params = dict(sampled_params)
    hyperparams, policy_kwargs = convert_ppo_part(params)
    policy_kwargs.update(
        memory_size=params.pop("memory_size"),
        bank_size=params.pop("bank_size"),
        calibration=params.pop("calibration"),
        # Trials of an older sampler had no decay: the paper's cell
        memory_decay=params.pop("memory_decay", 1.0),
    )
    # Trials of an older sampler had no memory_sharing: separate memories
    if params.pop("memory_sharing", "separate") == "joint":
        policy_kwargs.update(shared_memory=True, enable_critic_memory=False, critic_trains_memory=True)
    # The zoo lays these values over the entry's: an entry's sequence_length (VisualMatch's 256, POPGym's 128) need
    # not divide the sampled n_steps. None is the default, gcd(n_steps, batch_size) = batch_size: the longest allowed.
    hyperparams["sequence_length"] = None
    return {**hyperparams, "policy_kwargs": policy_kwargs, **params}


# --------------------------------------------------------------------------------------------------------------
# Hub: rl_zoo3.load_from_hub / rl_zoo3.push_to_hub (upstream is broken with huggingface_hub 2.x)
# --------------------------------------------------------------------------------------------------------------
def _patch_load_from_hub(namespace: dict[str, Any]) -> None:
    original = namespace.get("download_from_hub")
    if not callable(original):
        warn_shape("rl_zoo3.load_from_hub.download_from_hub is gone")
        return
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def download_from_hub(algo: str, env_name: Any, exp_id: int, folder: str, organization: str, *args: Any, **kwargs: Any):
        if algo != ALGO:
            return original(algo, env_name, exp_id, folder, organization, *args, **kwargs)
        from sb3_shm.hub import download_to_zoo

        return download_to_zoo(algo, env_name, exp_id, folder, organization, *args, **kwargs)

    setattr(download_from_hub, _MARK, True)
    namespace["download_from_hub"] = download_from_hub


def _patch_push_to_hub(namespace: dict[str, Any]) -> None:
    original = namespace.get("package_to_hub")
    if not callable(original):
        warn_shape("rl_zoo3.push_to_hub.package_to_hub is gone")
        return
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def package_to_hub(model: Any, model_name: Any, algo_name: str, *args: Any, **kwargs: Any):
        if algo_name != ALGO:
            return original(model, model_name, algo_name, *args, **kwargs)
        from sb3_shm.hub import zoo_package_to_hub

        return zoo_package_to_hub(model, model_name, algo_name, *args, **kwargs)

    setattr(package_to_hub, _MARK, True)
    namespace["package_to_hub"] = package_to_hub


def _patch_hf_push_to_hub(module: Any) -> None:
    # rl_zoo3.push_to_hub does `from huggingface_sb3.push_to_hub import generate_metadata`, renamed to
    # `_generate_metadata` (returning a ModelCardData) in sb3-team-hf-integration: give it back, as a dict
    if hasattr(module, "generate_metadata"):
        return
    private = getattr(module, "_generate_metadata", None)
    if not callable(private):
        warn_shape("huggingface_sb3.push_to_hub has neither generate_metadata nor _generate_metadata")
        return

    def generate_metadata(model_name: str, env_id: str, mean_reward: float, std_reward: float) -> dict[str, Any]:
        metadata = private(model_name, env_id, mean_reward, std_reward)
        return metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)

    module.generate_metadata = generate_metadata


# --------------------------------------------------------------------------------------------------------------
# One-line errors for `--algo shm_ppo` runs
# --------------------------------------------------------------------------------------------------------------
def shm_ppo_requested(argv: list[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return any(arg == ALGO or arg.endswith(f"={ALGO}") for arg in argv)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return f"error: {type(error).__name__}: {text}  [{TRACEBACK_ENV}=1 shows the traceback]"


def install_excepthook() -> None:
    """Print uncaught errors of a zoo run as one line (``SB3_SHM_ZOO_TRACEBACK=1`` restores tracebacks)."""
    previous = sys.excepthook
    if getattr(previous, _MARK, False):
        return

    def excepthook(exc_type: type[BaseException], error: BaseException, traceback: Any) -> None:
        wants_traceback = os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0")
        if wants_traceback or not issubclass(exc_type, Exception):
            previous(exc_type, error, traceback)
            return
        sys.stderr.write(one_line(error) + "\n")

    setattr(excepthook, _MARK, True)
    sys.excepthook = excepthook
