"""
How zoo runs of this package's algorithms behave where rl_zoo3's defaults fall short (the patches that install these
are in :mod:`~sb3_shm.zoo.algos`):

- the progress bar (rl_zoo3's ``-P/--progress``) is on by default when stdout is a terminal
  (``SB3_SHM_ZOO_PROGRESS=0`` turns it off, ``=1`` on everywhere): :func:`progress_by_default`;
- SIGTERM (``kill``, a CI timeout) during training stops it as Ctrl-C does, so the zoo saves the model (at the next
  step; a second SIGTERM stops it at once): :func:`sigterm_as_ctrl_c`;
- an agent that ``enjoy`` (or ``record_video``) cannot find is a clear :class:`AgentNotFoundError`, not a hub
  download attempt: :func:`agent_not_found_message`.
"""

import contextlib
import functools
import glob
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

PROGRESS_ENV = "SB3_SHM_ZOO_PROGRESS"
# The agents shipped with sb3-shm, in the repository (the zoo's default ``-f`` folder when run from its root)
SHIPPED_AGENTS = Path(__file__).resolve().parent.parent.parent / "rl-trained-agents"


class TrainingTerminated(KeyboardInterrupt):
    """Raised in the main thread on a second SIGTERM during zoo training: rl_zoo3 handles it as Ctrl-C (and saves)."""


class AgentNotFoundError(FileNotFoundError):
    """No trained agent of this package's algorithm where a zoo script looked (``-f``, ``--exp-id``)."""


def progress_by_default(stream: Any = None) -> bool:
    """
    Whether zoo training shows the progress bar when ``-P/--progress`` is not given: ``SB3_SHM_ZOO_PROGRESS`` if set
    (``1``/``true``/``yes`` or ``0``/``false``/``no``), else whether ``stream`` is a terminal (not in CI logs or pipes).

    :param stream: the stream the bar would be drawn on (default: ``sys.stdout``)
    """
    value = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar_available() -> bool:
    """Whether SB3's ProgressBarCallback can run (it needs tqdm and rich, SB3's ``extra``)."""
    try:
        import rich  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def set_progress_default(manager: Any) -> None:
    """
    Turn on ``manager.show_progress`` (rl_zoo3's ``-P/--progress``) where :func:`progress_by_default` says so, for
    training (not ``--optimize``); rl_zoo3 has no ``--no-progress``: ``SB3_SHM_ZOO_PROGRESS=0`` turns it off.

    :param manager: an ``ExperimentManager`` of one of this package's algorithms, just initialised
    """
    if (
        not getattr(manager, "show_progress", True)
        and not getattr(manager, "optimize_hyperparameters", False)
        and progress_by_default()
        and progress_bar_available()
    ):
        manager.show_progress = True


class StopOnSignal(BaseCallback):
    """
    Stops training at its next step once ``received[0]`` is True (set by :func:`sigterm_as_ctrl_c`).

    :param received: the flag
    """

    def __init__(self, received: list[bool]) -> None:
        super().__init__()
        self.received = received

    def _on_step(self) -> bool:
        return not self.received[0]


@contextlib.contextmanager
def sigterm_as_ctrl_c(describe: Callable[[], str] = lambda: "") -> Iterator[list[bool]]:
    """
    While the block runs, SIGTERM stops zoo training as Ctrl-C does, so that ``train`` saves the model: the first
    SIGTERM sets the flag this yields (a callback then stops training at its next step, where the model is in a state
    that can be saved and resumed); a second one raises :class:`TrainingTerminated` (a ``KeyboardInterrupt``) at once,
    as Ctrl-C would; a third acts as before the block (it kills). Outside the main thread (where handlers cannot be
    set) the block runs unchanged.

    :param describe: where training stands, for the message (e.g. "at step 1024")
    :return: a list that holds True once SIGTERM was received
    """
    received = [False]
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield received
        return
    previous = signal.getsignal(signal.SIGTERM)
    restore = previous if previous is not None else signal.SIG_DFL

    def handler(signum: int, frame: Any) -> None:
        where = describe()
        where = f" {where}" if where else ""
        if not received[0]:
            received[0] = True
            sys.stderr.write(
                f"sb3-shm: SIGTERM received{where}: training stops at the next step and the model is saved, as on Ctrl-C "
                "(a second SIGTERM stops it at once)\n"
            )
            sys.stderr.flush()
            return
        signal.signal(signal.SIGTERM, restore)
        sys.stderr.write(f"sb3-shm: second SIGTERM{where}: training stopped at once, the model is saved (a third kills)\n")
        sys.stderr.flush()
        raise TrainingTerminated("SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, restore)


def wrap_learn(original: Callable[..., Any], algos: Any) -> Callable[..., Any]:
    """
    ``ExperimentManager.learn`` that, for this package's algorithms, stops on SIGTERM as on Ctrl-C
    (:func:`sigterm_as_ctrl_c`): training ends, rl_zoo3's ``train`` then saves the model (atomically).

    :param original: rl_zoo3's method
    :param algos: the names of this package's algorithms
    """

    @functools.wraps(original)
    def learn(self: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "algo", "") not in algos:
            return original(self, model, *args, **kwargs)
        callbacks = getattr(self, "callbacks", None)
        with sigterm_as_ctrl_c(lambda: f"at step {getattr(model, 'num_timesteps', '?')}") as received:
            stop = StopOnSignal(received)
            if isinstance(callbacks, list):
                callbacks.append(stop)  # last: rl_zoo3 closes the progress bar as callbacks[0]
            try:
                return original(self, model, *args, **kwargs)
            except TrainingTerminated:  # the second signal came just outside upstream's `except KeyboardInterrupt`
                return None
            except (OSError, EOFError) as error:
                # SIGTERM sent to the whole process group also stopped SubprocVecEnv's workers: closing them fails
                if not received[0]:
                    raise
                warnings.warn(
                    f"sb3-shm: closing the environments after SIGTERM failed ({error!r})", RuntimeWarning, stacklevel=2
                )
                return None
            finally:
                if isinstance(callbacks, list) and stop in callbacks:
                    callbacks.remove(stop)

    return learn


def _runs(folder: str, algo: str, env_id: str | None = None) -> list[str]:
    """The run folders ``ALGO/ENV_<id>`` under ``folder`` that hold a model zip (of ``env_id`` if given)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), algo, "*_[0-9]*"))):
        name = os.path.basename(path)
        env, _, run_id = name.rpartition("_")
        if run_id.isdigit() and (env_id is None or env == env_id) and os.path.isfile(os.path.join(path, f"{env}.zip")):
            runs.append(f"{algo}/{name}")
    return runs


def agent_not_found_message(folder: str, algo: str, env_id: str, reason: str) -> str:
    """
    The message of :class:`AgentNotFoundError`: what was searched, what is there, and how to get an agent.

    :param folder: the zoo's ``-f`` folder
    :param algo: the ``--algo`` name
    :param env_id: the environment id
    :param reason: rl_zoo3's own reason (the missing folder or file), replaced when there is no run of ``env_id``
    """
    if not _runs(folder, algo, env_id):
        reason = f"no run folder {os.path.join(folder, algo, env_id)}_<N> with a model {env_id}.zip"
    there = _runs(folder, algo)
    found = f"trained {algo} agents there: {', '.join(there)}" if there else f"no trained {algo} agent is there"
    message = (
        f"trained {algo} agent for {env_id} not found under {os.path.abspath(folder)!r} ({reason}; {found}). "
        f"Train one with `python -m rl_zoo3.train --algo {algo} --env {env_id}` (it is saved under logs/: then pass "
        "-f logs)"
    )
    if SHIPPED_AGENTS.is_dir() and os.path.abspath(folder) != str(SHIPPED_AGENTS):
        shipped = _runs(str(SHIPPED_AGENTS), algo)
        if shipped:
            message += f", or enjoy an agent shipped with sb3-shm: -f {SHIPPED_AGENTS} ({', '.join(shipped)})"
    elif not SHIPPED_AGENTS.is_dir():
        message += ", or enjoy an agent shipped with sb3-shm: from the root of its repository, -f rl-trained-agents"
    return (
        message + f"; for an agent on the Hugging Face Hub: `python -m rl_zoo3.load_from_hub --algo {algo} --env {env_id} "
        "--orga ORGANIZATION -f rl-trained-agents` first"
    )


def wrap_get_model_path(original: Callable[..., Any], algos: Any) -> Callable[..., Any]:
    """
    ``rl_zoo3.utils.get_model_path`` that raises :class:`AgentNotFoundError` for this package's algorithms, instead
    of the ``AssertionError``/``ValueError`` on which ``enjoy`` tries a download from the hub's ``sb3`` organization
    (which has no agent of this package, and so answered with a hub error).

    :param original: rl_zoo3's function
    :param algos: the names of this package's algorithms
    """

    @functools.wraps(original)
    def get_model_path(exp_id: int, folder: str, algo: str, env_name: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(exp_id, folder, algo, env_name, *args, **kwargs)
        except (AssertionError, ValueError) as error:
            if algo not in algos:
                raise
            reason = " ".join(str(error).split()) or type(error).__name__
            raise AgentNotFoundError(agent_not_found_message(folder, algo, str(env_name), reason)) from error

    return get_model_path
