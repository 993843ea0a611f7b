"""
Import hook that teaches the RL Zoo (``rl_zoo3``) about ``--algo shm_ppo``.

rl_zoo3 has no plugin mechanism: its ``ALGOS`` dict, optuna samplers and hyperparameter-file lookup are fixed
when its modules are imported. This file is loaded at interpreter start by the ``sb3_shm_zoo.pth`` file that
the package installs into site-packages (see ``sb3_shm/zoo/_build.py``). It must stay cheap and
dependency-free: it imports only the standard library and does nothing but put a meta path finder at the
front of ``sys.meta_path``. The finder reacts only to a handful of ``rl_zoo3`` (and ``huggingface_sb3``)
module names; for those it lets the normal finders do the work and, once the real module has run, calls
``sb3_shm.zoo._patch.patch_module`` (which may import torch: by then rl_zoo3 is importing it anyway).

When a target is run as a script (``python -m rl_zoo3.load_from_hub``), ``runpy`` asks the loader for its code
object: the finder then inserts one call to ``sb3_shm.zoo._patch.patch_main(globals())`` just before the
script's ``if __name__ == "__main__":`` block, so functions defined in the script itself can be fixed too.

Set ``SB3_SHM_NO_ZOO_HOOK=1`` to disable it. ``python -m sb3_shm.zoo ...`` installs the same finder
explicitly and therefore works without the ``.pth`` file.
"""

import os
import sys
from typing import Any

DISABLE_ENV = "SB3_SHM_NO_ZOO_HOOK"
HOOK_MODULE_NAME = "_sb3_shm_zoo_hook"
PATCH_MODULE = "sb3_shm.zoo._patch"

# Modules patched once imported (the patch is chosen in sb3_shm.zoo._patch.patch_module)
PATCHED_MODULES = frozenset(
    {
        "rl_zoo3.utils",
        "rl_zoo3.hyperparams_opt",
        "rl_zoo3.exp_manager",
        "rl_zoo3.import_envs",
        "rl_zoo3.load_from_hub",
        "rl_zoo3.push_to_hub",
        "huggingface_sb3.push_to_hub",
    }
)
# Modules whose code gets the patch_main() call when they are run with ``python -m``
SCRIPT_MODULES = frozenset(
    {
        "rl_zoo3.train",
        "rl_zoo3.enjoy",
        "rl_zoo3.record_video",
        "rl_zoo3.record_training",
        "rl_zoo3.load_from_hub",
        "rl_zoo3.push_to_hub",
        "rl_zoo3.cli",
    }
)
TARGETS = PATCHED_MODULES | SCRIPT_MODULES


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _warn(message: str) -> None:
    import warnings

    warnings.warn(f"sb3-shm RL Zoo hook: {message}", RuntimeWarning, stacklevel=3)


def _run_patch(function: str, *args: object) -> None:
    """Call ``sb3_shm.zoo._patch.<function>(*args)``; a failure is a loud warning, never a broken rl_zoo3."""
    try:
        import importlib

        patch = importlib.import_module(PATCH_MODULE)
        getattr(patch, function)(*args)
    except Exception as error:  # the zoo must keep working for its own algorithms
        _warn(f"could not add --algo shm_ppo ({type(error).__name__}: {error}); use `python -m sb3_shm.zoo` instead")


class _PatchingLoader:
    """Wraps the loader of a target module: runs it unchanged, then applies the patch."""

    def __init__(self, loader, fullname: str) -> None:
        # Any importlib loader; the script targets' (source file loaders) have get_code / get_source / ...
        self.loader: Any = loader
        self.fullname = fullname

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        if self.fullname in PATCHED_MODULES:
            _run_patch("patch_module", self.fullname, module)

    # --- used by runpy for ``python -m <target>`` ---
    def get_code(self, fullname: str):
        code = self.loader.get_code(fullname)
        if fullname not in SCRIPT_MODULES:
            return code
        try:
            source = self.loader.get_source(fullname)
            return _code_with_main_patch(source, code.co_filename) if source else code
        except Exception as error:
            _warn(f"could not prepare `python -m {fullname}` ({type(error).__name__}: {error})")
            return code

    def get_source(self, fullname: str):
        return self.loader.get_source(fullname)

    def get_filename(self, fullname: str):
        return self.loader.get_filename(fullname)

    def is_package(self, fullname: str) -> bool:
        return self.loader.is_package(fullname)

    def get_resource_reader(self, fullname: str):
        return self.loader.get_resource_reader(fullname)


def _code_with_main_patch(source: str, filename: str):
    """Compile ``source`` with ``patch_main(globals())`` inserted before ``if __name__ == "__main__":``."""
    import ast

    tree = ast.parse(source, filename)
    call = ast.parse(f"__import__({PATCH_MODULE!r}, fromlist=['patch_main']).patch_main(globals())").body[0]
    for index, node in enumerate(tree.body):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            ast.copy_location(call, node)
            ast.fix_missing_locations(call)
            tree.body.insert(index, call)
            break
    else:
        _warn(f"no `if __name__ == '__main__':` block in {filename}: rl_zoo3 changed shape")
    return compile(tree, filename, "exec", dont_inherit=True)


class ZooHookFinder:
    """Meta path finder that wraps the loaders of the rl_zoo3 modules listed in ``TARGETS``."""

    sb3_shm_zoo_hook = True  # marker: one finder per interpreter, whichever copy of this file installed it

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS or disabled():
            return None
        # Let the other finders find the real module
        for finder in sys.meta_path:
            if getattr(finder, "sb3_shm_zoo_hook", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module") or isinstance(spec.loader, _PatchingLoader):
            return spec
        spec.loader = _PatchingLoader(spec.loader, fullname)
        return spec


def installed() -> bool:
    return any(getattr(finder, "sb3_shm_zoo_hook", False) for finder in sys.meta_path)


def install(force: bool = False) -> bool:
    """
    Put the finder in ``sys.meta_path`` (once) and patch target modules that are already imported.

    :param force: install even when ``SB3_SHM_NO_ZOO_HOOK`` is set (used by ``python -m sb3_shm.zoo``)
    :return: whether the hook is active
    """
    if force:
        os.environ.pop(DISABLE_ENV, None)
    elif disabled():
        return False
    if not installed():
        sys.meta_path.insert(0, ZooHookFinder())
    for name in sorted(PATCHED_MODULES):
        module = sys.modules.get(name)
        if module is not None:
            _run_patch("patch_module", name, module)
    return True


def uninstall() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not getattr(finder, "sb3_shm_zoo_hook", False)]
