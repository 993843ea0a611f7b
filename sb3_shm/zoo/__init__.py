"""
RL Zoo (rl_zoo3) integration: ``--algo shm_ppo`` in every zoo entry point.

Installing sb3-shm adds ``sb3_shm_zoo.pth`` to site-packages; at interpreter start it installs a tiny import
hook (``_hook.py``, standard library only) that extends rl_zoo3 when rl_zoo3 is imported. What each file does:

- ``_hook.py``: the import hook: calls ``_patch.py`` when an rl_zoo3 module is imported or run as a script;
- ``_patch.py``: which patch runs for which rl_zoo3 module;
- ``algos.py``: the algorithms this package adds (one :class:`~sb3_shm.zoo.algos.ZooAlgo` line each) and the
  patches that register them (``ALGOS``, samplers, default hyperparameter file, environments);
- ``config.py``: checks of a yml entry, for one-line :class:`~sb3_shm.zoo.config.ZooConfigError` messages;
- ``sampler.py``: the ``--optimize`` samplers;
- ``upstream.py``: fixes for upstream defects, each with its version;
- ``runs.py``: how training and enjoy runs behave (progress bar on a terminal, SIGTERM saves the model as Ctrl-C
  does, a clear error when enjoy finds no trained agent);
- ``cli.py``: one-line errors for zoo runs; ``compat.py``: the warning when rl_zoo3 changes shape;
- ``_build.py``: the build step that installs the ``.pth`` file; ``__main__.py``: ``python -m sb3_shm.zoo``.

``SB3_SHM_NO_ZOO_HOOK=1`` turns the hook off; ``python -m sb3_shm.zoo train|enjoy|...`` does the same without the
``.pth`` file. See ``docs/zoo.md``.
"""

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from sb3_shm.zoo.algos import ALGOS, ZooAlgo
from sb3_shm.zoo.config import ZooConfigError, check_hyperparams, check_policy_kwargs
from sb3_shm.zoo.sampler import (
    convert_shm_ppo_params,
    convert_shm_sac_params,
    sample_shm_ppo_params,
    sample_shm_sac_params,
)

# The default hyperparameter file of shm_ppo
HYPERPARAMS_FILE = ALGOS["shm_ppo"].hyperparams_file

__all__ = [
    "ALGOS",
    "HYPERPARAMS_FILE",
    "ZooAlgo",
    "ZooConfigError",
    "check_hyperparams",
    "check_policy_kwargs",
    "convert_shm_ppo_params",
    "convert_shm_sac_params",
    "hook_module",
    "install_hook",
    "sample_shm_ppo_params",
    "sample_shm_sac_params",
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
