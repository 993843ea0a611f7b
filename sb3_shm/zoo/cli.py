"""One-line errors for zoo runs of this package's algorithms: an uncaught exception prints ``error: Type: message``
instead of a traceback from inside rl_zoo3 (``SB3_SHM_ZOO_TRACEBACK=1`` restores tracebacks)."""

import os
import sys
from typing import Any

from sb3_shm.zoo.algos import ALGOS
from sb3_shm.zoo.compat import MARK

TRACEBACK_ENV = "SB3_SHM_ZOO_TRACEBACK"


def algo_requested(argv: list[str] | None = None) -> bool:
    """Whether the command line asks for one of this package's algorithms (``--algo shm_ppo``)."""
    argv = sys.argv[1:] if argv is None else argv
    return any(arg == name or arg.endswith(f"={name}") for arg in argv for name in ALGOS)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    return f"error: {type(error).__name__}: {text}  [{TRACEBACK_ENV}=1 shows the traceback]"


def install_excepthook() -> None:
    """Print uncaught errors as one line; only in a zoo script run for one of this package's algorithms."""
    previous = sys.excepthook
    if getattr(previous, MARK, False):
        return

    def excepthook(exc_type: type[BaseException], error: BaseException, traceback: Any) -> None:
        wants_traceback = os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0")
        if wants_traceback or not issubclass(exc_type, Exception):
            previous(exc_type, error, traceback)
            return
        sys.stderr.write(one_line(error) + "\n")

    setattr(excepthook, MARK, True)
    sys.excepthook = excepthook
