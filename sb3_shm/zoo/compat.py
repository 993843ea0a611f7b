"""How the integration tells that rl_zoo3 changed shape: a warning that names the rl_zoo3 version, never a crash."""

import warnings
from typing import Any

TESTED_RL_ZOO3 = "2.9"
# Set on every function the integration installs, so that patching twice is a no-op
MARK = "_sb3_shm_patched"


class ZooShapeWarning(RuntimeWarning):
    """rl_zoo3 does not look like the version this integration was written for."""


def rl_zoo3_version() -> str:
    try:
        from importlib.metadata import version

        return version("rl_zoo3")
    except Exception:
        return "unknown"


def warn_shape(detail: str) -> None:
    """Warn that ``detail`` of rl_zoo3 is not what the integration expects."""
    message = (
        f"sb3-shm: rl_zoo3 {rl_zoo3_version()} changed shape ({detail}); `--algo shm_ppo` may not work with it "
        f"(the integration was written for rl_zoo3 {TESTED_RL_ZOO3}.x). Please report it to sb3-shm."
    )
    warnings.warn(message, ZooShapeWarning, stacklevel=3)


def dict_attr(module: Any, name: str) -> dict | None:
    """``module.name`` if it is a dict (as rl_zoo3's registries are), else None after a shape warning."""
    value = getattr(module, name, None)
    if not isinstance(value, dict):
        warn_shape(f"{module.__name__}.{name} is not a dict")
        return None
    return value
