"""
Fixes for defects of the upstream packages (rl_zoo3 2.9, sb3-team-hf-integration 3.x, huggingface_hub 2.x), for
this package's algorithms only unless said otherwise. ``tests/test_zoo_upstream.py`` checks that each defect is still
there: when a test there fails, upstream fixed it, and the fix here can go.
"""

import functools
from collections.abc import MutableMapping
from typing import Any

from sb3_shm.zoo.algos import ALGOS
from sb3_shm.zoo.compat import MARK, warn_shape


def patch_load_from_hub(namespace: MutableMapping[str, Any]) -> None:
    """
    ``rl_zoo3.load_from_hub.download_from_hub`` (rl_zoo3 2.9 with huggingface_hub 2.x): it catches
    ``requests.HTTPError`` for the optional files (``vec_normalize.pkl``, ``env_kwargs.yml``,
    ``train_eval_metrics.zip``), huggingface_hub 2.x raises ``EntryNotFoundError``, so a repository without one of
    them fails. This package's algorithms go to :func:`sb3_shm.hub.download_to_zoo`, which skips missing optional files.
    """
    original = namespace.get("download_from_hub")
    if not callable(original):
        warn_shape("rl_zoo3.load_from_hub.download_from_hub is gone")
        return
    if getattr(original, MARK, False):
        return

    @functools.wraps(original)
    def download_from_hub(algo: str, env_name: Any, exp_id: int, folder: str, organization: str, *args: Any, **kwargs: Any):
        if algo not in ALGOS:
            return original(algo, env_name, exp_id, folder, organization, *args, **kwargs)
        from sb3_shm.hub import download_to_zoo

        return download_to_zoo(algo, env_name, exp_id, folder, organization, *args, upstream=original, **kwargs)

    setattr(download_from_hub, MARK, True)
    namespace["download_from_hub"] = download_from_hub


def patch_push_to_hub(namespace: MutableMapping[str, Any]) -> None:
    """
    ``rl_zoo3.push_to_hub.package_to_hub`` for this package's algorithms goes to :func:`sb3_shm.hub.zoo_package_to_hub`
    (same signature). Not an upstream defect but a choice, kept here beside the hub fixes: upstream creates and
    clones the remote repository before it writes anything (so nothing of it runs, or can be tested, offline), while
    ours packages the zoo layout locally (:func:`sb3_shm.hub.package_to_hub`, tested offline) and then uploads it.
    """
    original = namespace.get("package_to_hub")
    if not callable(original):
        warn_shape("rl_zoo3.push_to_hub.package_to_hub is gone")
        return
    if getattr(original, MARK, False):
        return

    @functools.wraps(original)
    def package_to_hub(model: Any, model_name: Any, algo_name: str, *args: Any, **kwargs: Any):
        if algo_name not in ALGOS:
            return original(model, model_name, algo_name, *args, **kwargs)
        from sb3_shm.hub import zoo_package_to_hub

        return zoo_package_to_hub(model, model_name, algo_name, *args, **kwargs)

    setattr(package_to_hub, MARK, True)
    namespace["package_to_hub"] = package_to_hub


def patch_hf_push_to_hub(module: Any) -> None:
    """
    ``huggingface_sb3.push_to_hub`` (sb3-team-hf-integration, which rl_zoo3 2.9 installs): ``rl_zoo3.push_to_hub``
    does ``from huggingface_sb3.push_to_hub import generate_metadata``, renamed ``_generate_metadata`` (returning a
    ``ModelCardData``) there, so ``rl_zoo3.push_to_hub`` cannot even be imported. Give the name back, returning a
    dict. The one patch that applies to every algorithm: without it the script is broken for all.
    """
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
