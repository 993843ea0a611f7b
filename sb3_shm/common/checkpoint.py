"""
Checkpoint files: atomic saves that keep the target's file semantics, a check of a checkpoint before it is loaded,
and what makes a resume exact (the random generators' states, :class:`ExactResume`).

Shared by the algorithms (``ShmPPO``, ``ShmSAC``) and the hub code. Why not SB3's ``save_to_zip_file`` alone: it writes in
place, so a save that fails or is killed half-way destroys the previous good file.
"""

import base64
import errno
import glob
import io
import json
import os
import pathlib
import random
import stat
import zipfile
from collections.abc import Callable, Iterable
from copy import copy, deepcopy
from typing import IO, Any, ClassVar

import cloudpickle
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

# Where a checkpoint is: a path, or an open binary file object (SB3's save and load accept both)
CheckpointPath = str | pathlib.Path | IO[bytes] | io.BufferedIOBase


def atomic_save(path: str | pathlib.Path, write: Callable[[io.BufferedWriter], None]) -> pathlib.Path:
    """
    Write a file atomically: ``write`` fills a temporary file beside the target, which replaces the target only once
    complete and flushed to disk, so a failure or a kill at any point leaves either the old file or the new one.

    The target keeps the semantics of writing in place (as SB3's own save has): a symlink is written through (the
    link stays, its target gets the new content), an existing file keeps its permission bits (and owner, where
    allowed), and a file without write permission is refused, even for root. A hard link is the exception: the
    path gets a new file, the other names of the old one keep the old content. Temporary files left by saves that
    were killed (``.NAME.PID.tmp`` of a process that no longer runs) are removed by the next save to the same path.

    :param path: the file to write (its folder is created if needed)
    :param write: writes the content to the binary file object it is given
    :return: the path that was written (the symlink's target for a symlink)
    :raises PermissionError: if the existing file is read-only
    """
    target = pathlib.Path(os.path.realpath(path))
    existing = target.stat() if target.exists() else None
    if existing is not None and (not os.access(target, os.W_OK) or not existing.st_mode & 0o222):
        raise PermissionError(
            errno.EACCES,
            f"cannot save over the read-only file {str(path)!r} (mode {stat.filemode(existing.st_mode)}): make it "
            "writable (chmod u+w) or save to another path",
            str(path),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    tmp_path = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp_path, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if existing is not None:
            os.chmod(tmp_path, stat.S_IMODE(existing.st_mode))
            try:
                os.chown(tmp_path, existing.st_uid, existing.st_gid)
            except (PermissionError, AttributeError):  # not the owner (or no chown on this OS): keep ours
                pass
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    _fsync_folder(target.parent)
    return target


def _remove_stale_temporaries(target: pathlib.Path) -> None:
    """Remove ``.NAME.PID.tmp`` files of earlier saves to ``target`` whose process is gone (killed mid-save)."""
    prefix = f".{target.name}."
    for candidate in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = candidate.name[len(prefix) : -len(".tmp")]
        if pid.isdigit() and (int(pid) == os.getpid() or not _process_alive(int(pid))):
            candidate.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or a platform without signal 0: assume alive
        return True
    return True


def _fsync_folder(folder: pathlib.Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def resolve_checkpoint(path: str | pathlib.Path, algorithm: str) -> pathlib.Path:
    """
    :return: ``path``, or ``path`` with ".zip" appended when only that exists (as SB3's load does)
    :raises FileNotFoundError: if neither exists
    """
    path = pathlib.Path(path)
    if not path.exists() and path.with_suffix(".zip").exists():
        path = path.with_suffix(".zip")
    if not path.exists():
        raise FileNotFoundError(f"No {algorithm} checkpoint at {str(path)!r} (nor {path}.zip)")
    return path


def check_checkpoint(
    path: CheckpointPath,
    algorithm: str,
    policy_base: type,
    required: Iterable[str] = ("data", "policy.pth"),
    custom_objects: dict[str, Any] | None = None,
) -> None:
    """
    Check that ``path`` is a whole, readable checkpoint of ``algorithm`` before SB3 loads it, with a clear message
    if not. Only the ``policy_class`` entry is unpickled here (unless ``custom_objects`` replaces it).

    :param path: a zip file's path or a readable binary file object (its position is restored)
    :param algorithm: the algorithm's name, for messages (e.g. "ShmPPO")
    :param policy_base: the policy class that ``algorithm``'s policies derive from
    :param required: entries the zip must have (e.g. "policy.optimizer.pth")
    :param custom_objects: as in ``BaseAlgorithm.load``: entries replaced instead of unpickled
    :raises ValueError: corrupt, truncated, incomplete, not JSON, or another algorithm's checkpoint
    :raises FileNotFoundError: no such file
    """
    name = str(path)
    if isinstance(path, (str, pathlib.Path)):
        path = resolve_checkpoint(path, algorithm)
    position = path.tell() if not isinstance(path, pathlib.Path) else None
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"{name!r} is corrupt (entry {broken!r} fails its checksum): save the model again")
            names = set(archive.namelist())
            text = archive.read("data").decode() if "data" in names else None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(
            f"{name!r} is not a readable {algorithm} checkpoint (truncated or not a zip file): {error}"
        ) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{name!r} is corrupt: its 'data' entry is not text ({error})") from error
    finally:
        if position is not None and not isinstance(path, pathlib.Path):
            path.seek(position)
    if text is not None:
        # Which algorithm saved it comes first: another algorithm's zip has other entries, and that is not the news
        _check_policy_class(_parse_data(text, name), name, algorithm, policy_base, custom_objects)
    missing = sorted(set(required) - names)
    if missing:
        raise ValueError(
            f"{name!r} is not a whole {algorithm} checkpoint (no {' or '.join(missing)} entry): the file is "
            "truncated, was saved without these parts, or was not saved by Stable-Baselines3"
        )


def _parse_data(text: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name!r} is corrupt: its 'data' entry is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{name!r} is corrupt: its 'data' entry is not a JSON object")
    return data


def _check_policy_class(
    data: dict[str, Any], name: str, algorithm: str, policy_base: type, custom_objects: dict[str, Any] | None
) -> None:
    if custom_objects and "policy_class" in custom_objects:
        policy_class = custom_objects["policy_class"]
    else:
        policy_class = _unpickle(data.get("policy_class"), "policy_class", name)
    if not (isinstance(policy_class, type) and issubclass(policy_class, policy_base)):
        found = getattr(policy_class, "__name__", repr(policy_class))
        raise ValueError(
            f"{name!r} holds a model with policy {found}, not an {algorithm} model: load it with the algorithm that saved "
            "it (ShmPPO.load, ShmSAC.load, or e.g. RecurrentPPO.load for an LSTM policy)"
        )


def save_checkpoint(save: Callable[[Any], None], path: CheckpointPath, suffix: str = ".zip") -> None:
    """
    ``save(path_or_file)`` (``BaseAlgorithm.save``, ``save_replay_buffer``) to a file object as it is, or to a path
    atomically (:func:`atomic_save`; ``suffix`` is appended when the path has none, as SB3 does).

    :param save: writes the checkpoint to the path or file object it is given
    :param path: a path or a writable binary file object
    :param suffix: the suffix of a path without one (".zip" for a model, ".pkl" for a replay buffer)
    """
    if not isinstance(path, (str, pathlib.Path)):
        save(path)
        return
    path = pathlib.Path(path)
    atomic_save(path if path.suffix else path.with_suffix(suffix), save)


def load_checkpoint(
    load: Callable[[], Any], path: CheckpointPath, algorithm: str, custom_objects: dict[str, Any] | None
) -> Any:
    """
    ``load()`` (``BaseAlgorithm.load`` of ``path``), with an ImportError of an unpicklable entry turned into a
    ValueError that names the entries and the ``custom_objects`` that replaces them.

    :param load: loads the checkpoint
    :param path: the checkpoint, as given to ``load``
    :param algorithm: the algorithm's name, for messages
    :param custom_objects: the entries that were replaced, not unpickled
    :return: what ``load`` returns
    """
    try:
        return load()
    except ImportError as error:
        message = explain_import_error(path, algorithm, custom_objects)
        if message is None:
            raise
        raise ValueError(message) from error


def _unpickle(item: Any, key: str, name: str) -> Any:
    """One entry of a checkpoint's ``data``, deserialized as SB3's ``json_to_data`` does."""
    if not (isinstance(item, dict) and ":serialized:" in item):
        return item
    try:
        return cloudpickle.loads(base64.b64decode(item[":serialized:"].encode()))
    except ImportError as error:
        raise ValueError(_import_error_message(name, {key: error})) from error
    except Exception as error:
        raise ValueError(f"{name!r}: its {key!r} entry cannot be unpickled ({type(error).__name__}: {error})") from error


def pickled_entries(path: str | pathlib.Path) -> list[str]:
    """
    The entries of a checkpoint's ``data`` that loading would unpickle (and so could run code): pass them all in
    ``custom_objects`` to load a file you do not trust without running any of its code.

    :param path: the checkpoint's path
    """
    with zipfile.ZipFile(resolve_checkpoint(path, "model")) as archive:
        data = json.loads(archive.read("data").decode())
    return [key for key, item in data.items() if isinstance(item, dict) and ":serialized:" in item]


def explain_import_error(path: CheckpointPath, algorithm: str, custom_objects: dict[str, Any] | None) -> str | None:
    """
    After a load failed with an ImportError: the message naming each entry that cannot be unpickled here and the
    ``custom_objects`` that replaces it, or None if no entry is the cause.

    :param path: the checkpoint, as given to ``load``
    :param algorithm: the algorithm's name, for messages
    :param custom_objects: the entries that were replaced, not unpickled
    """
    if isinstance(path, (str, pathlib.Path)):
        path = resolve_checkpoint(path, algorithm)
    else:
        path.seek(0)
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data").decode())
    failures: dict[str, ImportError] = {}
    for key, item in data.items():
        if custom_objects and key in custom_objects:
            continue
        if isinstance(item, dict) and ":serialized:" in item:
            try:
                cloudpickle.loads(base64.b64decode(item[":serialized:"].encode()))
            except ImportError as error:
                failures[key] = error
    return _import_error_message(str(path), failures) if failures else None


def _import_error_message(name: str, failures: dict[str, ImportError]) -> str:
    keys = ", ".join(repr(key) for key in failures)
    entries, was = ("entry", "was") if len(failures) == 1 else ("entries", "were")
    modules = sorted({getattr(error, "name", None) or str(error) for error in failures.values()})
    example = ", ".join(f"{key!r}: ..." for key in failures)
    return (
        f"{name!r}: the {entries} {keys} {was} pickled with code from {', '.join(modules)}, which cannot be imported here. "
        f"Install that code, or replace the entries with custom_objects={{{example}}} (for a learning-rate schedule, "
        "e.g. {'learning_rate': 3e-4, 'lr_schedule': lambda _: 3e-4})"
    )


def get_rng_states(device: th.device, action_space: spaces.Space | None = None) -> dict[str, Any]:
    """
    The generators the algorithms draw from: torch's (calibration indices, actions), numpy's (minibatches, replayed
    windows), python's, and the action space's (ShmSAC's random actions before ``learning_starts``).

    :param device: the model's device (CUDA's generators are saved on a GPU)
    :param action_space: the model's action space, whose own generator loading re-seeds
    """
    states: dict[str, Any] = {
        "torch": th.get_rng_state().numpy().copy(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda" and th.cuda.is_available():
        states["torch_cuda"] = [state.numpy().copy() for state in th.cuda.get_rng_state_all()]
    if action_space is not None:
        states["action_space"] = action_space.np_random.bit_generator.state
    return states


def set_rng_states(states: dict[str, Any], device: th.device, action_space: spaces.Space | None = None) -> None:
    """
    Restore what :func:`get_rng_states` returned (the CUDA states only on the same number of GPUs; the action space's
    only where it was saved, as checkpoints from before it was are restored without it).
    """
    th.set_rng_state(th.as_tensor(states["torch"], dtype=th.uint8))
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    cuda_states = states.get("torch_cuda")
    if cuda_states is not None and device.type == "cuda" and len(cuda_states) == th.cuda.device_count():
        th.cuda.set_rng_state_all([th.as_tensor(state, dtype=th.uint8) for state in cuda_states])
    if action_space is not None and "action_space" in states:
        action_space.np_random.bit_generator.state = states["action_space"]


class ExactResume(BaseAlgorithm):
    """
    Makes a saved model a resume point; mixed in before the SB3 algorithm (``class ShmPPO(ExactResume, RecurrentPPO)``).

    The algorithm calls :meth:`_init_exact_resume` in ``__init__``, :meth:`_begin_rollout` when a rollout starts and
    clears ``_rollout_start`` once the rollout is consumed, extends :meth:`_resume_point` with its own rollout state,
    and calls :meth:`_take_saved_rng_states` on the model its ``load`` returns. Then:

    - :meth:`save` writes the resume point: the live state, or during a rollout (from a callback) the state at the
      start of that rollout, with the random generators' states of that moment;
    - after ``load(..., force_reset=False)``, the saved generator states are restored when the first rollout starts,
      unless ``set_random_seed`` or ``learn(reset_num_timesteps=True)`` comes first.
    """

    # Set by the algorithm: the class its policies derive from and the zip entries a whole checkpoint has (load checks)
    checkpoint_policy_class: ClassVar[type]
    checkpoint_entries: ClassVar[tuple[str, ...]]
    # The resume point at the start of the rollout in progress (None outside a rollout)
    _rollout_start: dict[str, Any] | None
    # Random generator states read from a checkpoint, applied when the next rollout starts (exact resume)
    _pending_rng_states: dict[str, Any] | None

    def _init_exact_resume(self) -> None:
        self._rollout_start = None
        self._pending_rng_states = None

    def _begin_rollout(self) -> None:
        """At a rollout start: restore the generators read from a checkpoint, then keep the resume point."""
        if self._pending_rng_states is not None:
            set_rng_states(self._pending_rng_states, self.device, self.action_space)
            self._pending_rng_states = None
        self._rollout_start = self._resume_point()

    def _resume_point(self) -> dict[str, Any]:
        """The state that training continues from, besides the parameters and the optimizers (copies)."""
        return {
            "num_timesteps": self.num_timesteps,
            "_episode_num": self._episode_num,
            "_last_obs": deepcopy(self._last_obs),
            "_last_episode_starts": deepcopy(self._last_episode_starts),
            # Shallow copies: the deques change, the episode records in them do not
            "ep_info_buffer": copy(self.ep_info_buffer),
            "ep_success_buffer": copy(self.ep_success_buffer),
            "_saved_rng_states": self._pending_rng_states or get_rng_states(self.device, self.action_space),
        }

    def _excluded_save_params(self) -> list[str]:
        # What a save writes instead is the resume point's `_saved_*` entries
        return [*super()._excluded_save_params(), "_rollout_start", "_pending_rng_states"]

    def set_random_seed(self, seed: int | None = None) -> None:
        if seed is not None:
            # An explicit seed wins over generator states restored from a checkpoint
            self._pending_rng_states = None
        super().set_random_seed(seed)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if reset_num_timesteps:
            # A fresh start (the environment is reset): generator states restored from a checkpoint do not apply
            self._pending_rng_states = None
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def save(
        self,
        path: CheckpointPath,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the resume point to a zip file atomically (:func:`save_checkpoint`).

        :param path: path to the file (".zip" is appended when it has no suffix) or a file-like object
        :param exclude: names of parameters that should be excluded in addition to the default ones
        :param include: names of parameters that might be excluded but should be included anyway
        """
        point = self._rollout_start if self._rollout_start is not None else self._resume_point()
        # BaseAlgorithm.save pickles the model's __dict__: give it a shallow copy that shows the resume point, so the
        # live model is never modified (the copy shares the policy, the buffers and the environment)
        snapshot = copy(self)
        snapshot.__dict__.update(point)
        save_checkpoint(lambda target: super(ExactResume, snapshot).save(target, exclude=exclude, include=include), path)

    @classmethod
    def check_checkpoint(cls, path: CheckpointPath, custom_objects: dict[str, Any] | None = None) -> None:
        """
        Check that ``path`` is a whole checkpoint of this algorithm before loading it (unpickles only its policy class).

        :param path: a zip file's path or a readable binary file object
        :param custom_objects: as in :meth:`load`
        :raises ValueError: with what is wrong (see :meth:`load`)
        """
        check_checkpoint(path, cls.__name__, cls.checkpoint_policy_class, cls.checkpoint_entries, custom_objects)

    @classmethod
    def load(  # type: ignore[override]  # SB3's returns SelfBaseAlgorithm; same arguments
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Any:
        """
        SB3's load after :meth:`check_checkpoint`, with its errors named (:func:`load_checkpoint`); the saved
        generator states are kept for the first rollout (exact resume, with ``force_reset=False``).
        """
        cls.check_checkpoint(path, custom_objects)
        model = load_checkpoint(
            lambda: super(ExactResume, cls).load(
                path,
                env=env,
                device=device,
                custom_objects=custom_objects,
                print_system_info=print_system_info,
                force_reset=force_reset,
                **kwargs,
            ),
            path,
            cls.__name__,
            custom_objects,
        )
        model._take_saved_rng_states()
        return model

    def _take_saved_rng_states(self) -> None:
        """On a loaded model: keep the saved generator states for the first rollout if SB3 kept the saved observation."""
        rng_states = self.__dict__.pop("_saved_rng_states", None)
        if self._last_obs is not None:
            self._pending_rng_states = rng_states
