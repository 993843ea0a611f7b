"""
The algorithms this package adds to the RL Zoo, one :class:`ZooAlgo` line each, and the patches that add them to
rl_zoo3's registries (``ALGOS``, the Optuna samplers, the default hyperparameter file) when rl_zoo3 is imported.
"""

import functools
import importlib
import inspect
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from sb3_shm.zoo.compat import MARK, dict_attr, warn_shape

HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"


class ZooAlgo(NamedTuple):
    """
    An algorithm of this package as the zoo sees it. Objects are named as ``"module:attribute"`` and imported only
    when rl_zoo3 needs them (the import hook runs before torch is imported, and must stay cheap).

    :param name: the ``--algo`` value
    :param algorithm: the algorithm class, e.g. ``"sb3_shm:ShmPPO"``
    :param samplers: the module of its ``--optimize`` sampler ``sample_<name>_params(trial, n_actions, n_envs,
        additional_args)`` and of the converter ``convert_<name>_params(trial.params)`` (``--trial-id``)
    :param schedules: hyperparameters that take a ``lin_<start>`` string (a linear decay to 0, as the zoo's own) or a
        ``lin_<start>_<end>`` string (to ``end``) besides those the zoo converts itself (learning_rate, clip_range,
        clip_range_vf), see :func:`linear_schedule`
    """

    name: str
    algorithm: str
    samplers: str = "sb3_shm.zoo.sampler"
    schedules: tuple[str, ...] = ()

    @property
    def sampler(self) -> str:
        return f"{self.samplers}:sample_{self.name}_params"

    @property
    def converter(self) -> str:
        return f"{self.samplers}:convert_{self.name}_params"

    @property
    def hyperparams_file(self) -> Path:
        """The default hyperparameter file, shipped in the package (``sb3_shm/hyperparams/<name>.yml``)."""
        return HYPERPARAMS_DIR / f"{self.name}.yml"

    def load(self, attribute: str = "algorithm") -> Any:
        """Import the object named by ``attribute`` (``"algorithm"``, ``"sampler"`` or ``"converter"``)."""
        module, name = getattr(self, attribute).split(":")
        return getattr(importlib.import_module(module), name)


# One line per algorithm
_REGISTERED = (
    ZooAlgo("shm_ppo", "sb3_shm:ShmPPO", schedules=("ent_coef",)),
    ZooAlgo("shm_sac", "sb3_shm:ShmSAC"),
)
ALGOS: dict[str, ZooAlgo] = {algo.name: algo for algo in _REGISTERED}


def linear_schedule(value: str) -> Any:
    """
    The schedule of a ``lin_<start>`` (to 0, rl_zoo3's ``SimpleLinearSchedule`` as the zoo makes for learning_rate) or
    ``lin_<start>_<end>`` string (stable-baselines3's ``LinearSchedule`` over the whole run), both picklable.

    :param value: the string, already checked by :func:`sb3_shm.zoo.config.check_hyperparams`
    :return: a function of the progress remaining (1 at the start of training, 0 at the end)
    """
    numbers = [float(part) for part in value.split("_")[1:]]
    if len(numbers) == 1:
        from rl_zoo3.utils import SimpleLinearSchedule  # imported here: this module is imported before torch

        return SimpleLinearSchedule(numbers[0])
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(start=numbers[0], end=numbers[1], end_fraction=1.0)


def patch_utils(module: Any) -> None:
    """``rl_zoo3.utils.ALGOS``: the ``--algo`` choices of every zoo script."""
    algos = dict_attr(module, "ALGOS")
    if algos is None:
        return
    for algo in ALGOS.values():
        if algo.name not in algos:
            algos[algo.name] = algo.load()
    # enjoy / record_video: a missing agent of this package's algorithms is a clear error, not a hub download attempt
    original = getattr(module, "get_model_path", None)
    if not callable(original):
        warn_shape("rl_zoo3.utils.get_model_path is gone")
    elif not getattr(original, MARK, False):
        from sb3_shm.zoo.runs import wrap_get_model_path

        get_model_path = wrap_get_model_path(original, ALGOS)
        setattr(get_model_path, MARK, True)
        module.get_model_path = get_model_path


def patch_hyperparams_opt(module: Any) -> None:
    """``rl_zoo3.hyperparams_opt``: the ``--optimize`` samplers and their converters."""
    samplers = dict_attr(module, "HYPERPARAMS_SAMPLER")
    converters = dict_attr(module, "HYPERPARAMS_CONVERTER")
    for algo in ALGOS.values():
        if samplers is not None and algo.name not in samplers:
            samplers[algo.name] = algo.load("sampler")
        if converters is not None and algo.name not in converters:
            converters[algo.name] = algo.load("converter")


def patch_import_envs(module: Any) -> None:
    """``rl_zoo3.import_envs``: register the package's environments too."""
    import_sb3_shm_envs()


def import_sb3_shm_envs() -> bool:
    """Register the package's environments (VisualMatch-v0, ...) in gymnasium's registry, if they exist."""
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


def patch_exp_manager(module: Any) -> None:
    """
    ``rl_zoo3.exp_manager.ExperimentManager`` (rl_zoo3 has no plugin mechanism for any):

    - the default hyperparameter file: rl_zoo3 looks for ``hyperparams/<algo>.yml`` inside its own package; use the
      one shipped with sb3-shm;
    - the yml entry is checked (:mod:`sb3_shm.zoo.config`) before the zoo builds the model, for one-line errors;
    - the progress bar is on by default on a terminal, and SIGTERM stops training as Ctrl-C does, so that the model is
      saved (:mod:`sb3_shm.zoo.runs`).
    """
    from sb3_shm.zoo.config import check_hyperparams, check_policy_kwargs
    from sb3_shm.zoo.runs import set_progress_default, wrap_learn

    manager = getattr(module, "ExperimentManager", None)
    needed = ("__init__", "_preprocess_hyperparams", "read_hyperparameters")
    if not isinstance(manager, type) or not all(attribute in manager.__dict__ for attribute in needed):
        warn_shape("rl_zoo3.exp_manager.ExperimentManager lost __init__/_preprocess_hyperparams/read_hyperparameters")
        return
    # Read from the class dict: rl_zoo3 has no plugin API, so its class is patched (mypy sees an instance method)
    original_init = manager.__dict__["__init__"]
    if getattr(original_init, MARK, False):
        return
    original_preprocess = manager.__dict__["_preprocess_hyperparams"]
    try:
        init_signature: inspect.Signature | None = inspect.signature(original_init)
    except (TypeError, ValueError):
        init_signature = None
    if init_signature is None or "config" not in init_signature.parameters:
        warn_shape("ExperimentManager.__init__ has no `config` parameter")

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        algo = ALGOS.get(getattr(self, "algo", ""))
        if algo is None or init_signature is None or "config" not in init_signature.parameters:
            return
        config = init_signature.bind(self, *args, **kwargs).arguments.get("config")
        default = _default_config_path(module, algo.name)
        if config is None and getattr(self, "config", None) == default and not os.path.isfile(default):
            self.config = str(algo.hyperparams_file)
        set_progress_default(self)

    @functools.wraps(original_preprocess)
    def _preprocess_hyperparams(self, hyperparams: dict[str, Any], *args: Any, **kwargs: Any):
        algo = ALGOS.get(getattr(self, "algo", ""))
        if algo is None:
            return original_preprocess(self, hyperparams, *args, **kwargs)
        where = f"{getattr(self, 'config', '?')} [{getattr(getattr(self, 'env_name', None), 'gym_id', '?')}]"
        overrides = getattr(self, "custom_hyperparams", None) or {}
        check_hyperparams(hyperparams, where, overrides=overrides, algo=algo.name)
        for key in algo.schedules:
            if isinstance(hyperparams.get(key), str):  # checked above
                hyperparams[key] = linear_schedule(hyperparams[key])
        result = original_preprocess(self, hyperparams, *args, **kwargs)
        processed = result[0] if isinstance(result, tuple) else result
        if isinstance(processed, dict):
            check_policy_kwargs(processed.get("policy"), processed.get("policy_kwargs"), where, algo=algo.name)
        return result

    setattr(__init__, MARK, True)
    type.__setattr__(manager, "__init__", __init__)
    type.__setattr__(manager, "_preprocess_hyperparams", _preprocess_hyperparams)
    if callable(manager.__dict__.get("learn")):
        type.__setattr__(manager, "learn", wrap_learn(manager.__dict__["learn"], ALGOS))
    else:
        warn_shape("rl_zoo3.exp_manager.ExperimentManager lost learn (SIGTERM will not save the model)")
