"""
RL Zoo (rl_zoo3) integration: ``--algo shm_ppo`` in every zoo entry point.

Installing sb3-shm adds ``sb3_shm_zoo.pth`` to site-packages; at interpreter start it installs a tiny import
hook (``sb3_shm/zoo/_hook.py``, standard library only) that extends rl_zoo3 when rl_zoo3 is imported:
``ALGOS["shm_ppo"]``, an Optuna sampler, the default hyperparameter file (``sb3_shm/hyperparams/shm_ppo.yml``),
the package's environments, and working hub download/upload. ``SB3_SHM_NO_ZOO_HOOK=1`` turns it off;
``python -m sb3_shm.zoo train|enjoy|...`` does the same without the ``.pth`` file. See ``docs/zoo.md``.
"""

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from sb3_shm.zoo._patch import (
    ALGO,
    HYPERPARAMS_FILE,
    ZooConfigError,
    check_hyperparams,
    convert_shm_ppo_params,
    sample_shm_ppo_params,
)

__all__ = [
    "ALGO",
    "HYPERPARAMS_FILE",
    "ZooConfigError",
    "check_hyperparams",
    "convert_shm_ppo_params",
    "hook_module",
    "install_hook",
    "sample_shm_ppo_params",
]


def hook_module() -> ModuleType:
    """The hook module, the copy the ``.pth`` file loaded if there is one (so that one finder is shared)."""
    module = sys.modules.get("_sb3_shm_zoo_hook")
    if module is None:
        path = os.path.join(os.path.dirname(__file__), "_hook.py")
        spec = importlib.util.spec_from_file_location("_sb3_shm_zoo_hook", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["_sb3_shm_zoo_hook"] = module
        spec.loader.exec_module(module)
    return module


def install_hook(force: bool = True) -> bool:
    """Install the import hook in this interpreter (and patch rl_zoo3 modules already imported)."""
    return hook_module().install(force=force)
