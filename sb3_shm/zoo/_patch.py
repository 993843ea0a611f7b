"""
The entry points that the import hook (``_hook.py``) calls: which patch runs when an rl_zoo3 module is imported
(:func:`patch_module`) and before a zoo script's ``__main__`` block (:func:`patch_main`). The patches themselves live
in :mod:`~sb3_shm.zoo.algos` (registration) and :mod:`~sb3_shm.zoo.upstream` (upstream defects).
"""

from typing import Any

from sb3_shm.zoo import algos, upstream
from sb3_shm.zoo.cli import algo_requested, install_excepthook


def patch_module(name: str, module: Any) -> None:
    """Patch the rl_zoo3 (or huggingface_sb3) module ``name`` once it has been imported."""
    patches = {
        "rl_zoo3.utils": algos.patch_utils,
        "rl_zoo3.hyperparams_opt": algos.patch_hyperparams_opt,
        "rl_zoo3.exp_manager": algos.patch_exp_manager,
        "rl_zoo3.import_envs": algos.patch_import_envs,
        "rl_zoo3.load_from_hub": lambda module: upstream.patch_load_from_hub(module.__dict__),
        "rl_zoo3.push_to_hub": lambda module: upstream.patch_push_to_hub(module.__dict__),
        "huggingface_sb3.push_to_hub": upstream.patch_hf_push_to_hub,
    }
    if name in patches:
        patches[name](module)


def patch_main(namespace: dict[str, Any]) -> None:
    """Called from a zoo script run with ``python -m`` just before its ``if __name__ == "__main__":`` block."""
    name = getattr(namespace.get("__spec__"), "name", "")
    if algo_requested():
        install_excepthook()
    if name == "rl_zoo3.load_from_hub":
        upstream.patch_load_from_hub(namespace)
    elif name == "rl_zoo3.push_to_hub":
        upstream.patch_push_to_hub(namespace)
