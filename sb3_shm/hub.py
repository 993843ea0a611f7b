"""
Hugging Face Hub for this package's agents (ShmPPO, ShmSAC), in the RL Zoo's repository layout.

A repository ``ORG/ALGO-ENV`` (e.g. ``ORG/shm_ppo-CartPoleNoVel-v1``) holds (as ``rl_zoo3.push_to_hub`` writes it):

- ``ALGO-ENV.zip``: the model; ``config.yml``, ``args.yml``, ``env_kwargs.yml``: the zoo's run files;
- ``results.json``: the evaluation (mean/std reward, episodes, deterministic); ``README.md``: the model card
  with the score in its metadata; ``train_eval_metrics.zip``: monitor and evaluation logs, when present;
- ``vec_normalize.pkl`` when the agent was trained with ``VecNormalize``; ``replay.mp4`` when rendering works.

Transport is ``huggingface_hub`` (``hf_hub_download`` honours ``HF_HOME``, ``HF_HUB_CACHE`` and
``HF_HUB_OFFLINE=1``). Every failure is a :class:`HubError` with a one-line message.

Loading a model unpickles data from the repository: like ``huggingface_sb3.load_from_hub``, downloading a
model requires ``trust_remote_code=True`` or the environment variable ``TRUST_REMOTE_CODE=True``.
"""

from __future__ import annotations

import datetime
import glob
import inspect
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ALGO = "shm_ppo"  # the default algorithm name of a package whose model's class is not registered
TRUST_ENV = "TRUST_REMOTE_CODE"
OPTIONAL_FILES = ("vec_normalize.pkl", "env_kwargs.yml", "train_eval_metrics.zip")


class HubError(ValueError):
    """A hub repository or file that cannot be used (one-line message)."""


class HubFileNotFoundError(HubError):
    """The repository (or the local cache of it) has no such file."""


# --------------------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------------------
def _trusted(trust_remote_code: bool | None) -> bool:
    if trust_remote_code is not None:
        return bool(trust_remote_code)
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "y", "on", "t")


def _check_trust(repo_id: str, trust_remote_code: bool | None) -> None:
    if not _trusted(trust_remote_code):
        raise HubError(
            f"loading '{repo_id}' unpickles files from the hub, which can run arbitrary code: if you trust this "
            f"repository, pass trust_remote_code=True or set the environment variable {TRUST_ENV}=True"
        )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _explain(error: BaseException, repo_id: str, filename: str | None) -> str:
    """One line for a huggingface_hub error."""
    from huggingface_hub import errors

    what = f"'{filename}' of hub repo '{repo_id}'" if filename else f"hub repo '{repo_id}'"
    if isinstance(error, errors.GatedRepoError):
        return f"hub repo '{repo_id}' is gated: accept its conditions on huggingface.co and log in (`hf auth login`)"
    if isinstance(error, errors.RepositoryNotFoundError):
        return f"hub repo '{repo_id}' does not exist (or is private: log in with `hf auth login`)"
    if isinstance(error, errors.RevisionNotFoundError):
        return f"hub repo '{repo_id}' has no such revision"
    if isinstance(error, errors.LocalEntryNotFoundError) or isinstance(error, errors.OfflineModeIsEnabled):
        reason = "HF_HUB_OFFLINE is set" if _offline() else "the hub cannot be reached (no network)"
        return f"{what} is not in the local hub cache and {reason}: check the repo id or connect and retry"
    if isinstance(error, errors.EntryNotFoundError):
        return f"hub repo '{repo_id}' has no file '{filename}'"
    if isinstance(error, errors.HfHubHTTPError):
        return f"the hub refused {what}: {' '.join(str(error).split())[:200]}"
    text = " ".join(str(error).split())[:200]
    return f"cannot download {what}: {type(error).__name__}: {text} (no network?)"


_REACHABLE: dict[str, bool] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """
    Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds (checked once per process).

    Without this, ``hf_hub_download`` retries for about 25 s when there is no network before failing.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    key = f"{host}:{port}"
    if key not in _REACHABLE:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _REACHABLE[key] = True
        except OSError:
            _REACHABLE[key] = False
    return _REACHABLE[key]


def _local_only() -> bool:
    """Use only the local cache: offline mode, or no network (then say so in errors)."""
    return _offline() or not hub_reachable()


def download_file(
    repo_id: str,
    filename: str,
    *,
    optional: bool = False,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
) -> str | None:
    """
    Download one file of a hub repository (or take it from the cache) and return its local path.

    :param optional: return None instead of raising when the repository has no such file
    :raises HubError: with a one-line message (missing repo, missing file, no network, ...)
    """
    from huggingface_hub import errors, hf_hub_download

    from sb3_shm import __version__

    try:
        return hf_hub_download(
            repo_id=repo_id,
            filename=filename,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            library_name="sb3-shm",
            library_version=__version__,
            local_files_only=_local_only(),
        )
    except errors.EntryNotFoundError as error:  # remotely missing, or missing from the local cache
        if optional:
            return None
        raise HubFileNotFoundError(_explain(error, repo_id, filename)) from error
    except (errors.HfHubHTTPError, OSError, ValueError) as error:
        raise HubError(_explain(error, repo_id, filename)) from error
    except Exception as error:  # httpx transport errors and the like
        raise HubError(_explain(error, repo_id, filename)) from error


def model_filename(repo_id: str) -> str:
    """The zoo names the model ``{algo}-{env}.zip`` and the repository ``ORG/{algo}-{env}``."""
    return f"{repo_id.split('/')[-1]}.zip"


def _find_model_zip(repo_id: str, revision: str | None, cache_dir: str | Path | None, token: Any) -> str:
    """Path of the repo's model zip when its name does not follow the zoo convention."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=repo_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            allow_patterns=["*.zip"],
            local_files_only=_local_only(),
        )
    except Exception as error:
        raise HubError(_explain(error, repo_id, None)) from error
    zips = sorted(p for p in glob.glob(os.path.join(folder, "*.zip")) if os.path.basename(p) != "train_eval_metrics.zip")
    if len(zips) != 1:
        found = ", ".join(os.path.basename(p) for p in zips) or "none"
        raise HubError(
            f"hub repo '{repo_id}' has no model zip named {model_filename(repo_id)} (zips found: {found}): pass filename=..."
        )
    return zips[0]


def load_from_hub(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    env: Any = None,
    device: str = "auto",
    custom_objects: dict[str, Any] | None = None,
    trust_remote_code: bool | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    **load_kwargs: Any,
):
    """
    Download an agent of this package from the hub (or the local cache) and load it with the algorithm that saved
    it (ShmPPO or ShmSAC, told apart by each algorithm's checkpoint check).

    :param repo_id: ``ORG/NAME``, e.g. ``my-org/shm_ppo-CartPoleNoVel-v1``
    :param filename: the model zip in the repo; None: ``NAME.zip`` (zoo convention), else the repo's only zip
    :param env: optional environment to attach (as in ``ShmPPO.load``)
    :param custom_objects: as in ``ShmPPO.load``; the learning-rate and clip schedules are always replaced (never
        unpickled): a loaded agent is for acting, or for training with a schedule you set
    :param trust_remote_code: allow unpickling the model (default: environment variable ``TRUST_REMOTE_CODE``)
    :return: the loaded :class:`~sb3_shm.ShmPPO` or :class:`~sb3_shm.ShmSAC`
    :raises HubError: one-line message if the repo or file is missing, the hub is unreachable, or the zip is
        not a usable model of this package
    """
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"hub repo id must look like 'ORG/NAME', got {repo_id!r}")
    _check_trust(repo_id, trust_remote_code)
    if filename is None:
        try:
            path = download_file(repo_id, model_filename(repo_id), revision=revision, cache_dir=cache_dir, token=token)
        except HubFileNotFoundError:
            path = _find_model_zip(repo_id, revision, cache_dir, token)
    else:
        path = download_file(repo_id, filename, revision=revision, cache_dir=cache_dir, token=token)
    assert path is not None
    algorithm = _algorithm_of(path, repo_id)
    objects = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    objects.update(custom_objects or {})
    try:
        return algorithm.load(path, env=env, device=device, custom_objects=objects, **load_kwargs)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as error:
        text = " ".join(str(error).split())
        name = os.path.basename(path)
        raise HubError(f"'{name}' from hub repo '{repo_id}' is not a usable {algorithm.__name__} model: {text}") from error


def _algorithm_of(path: str, repo_id: str) -> Any:
    """The algorithm of this package whose checkpoint check accepts ``path`` (ShmPPO's error if none does)."""
    from sb3_shm.zoo.algos import ALGOS

    errors: list[BaseException] = []
    for algo in ALGOS.values():
        algorithm = algo.load()
        try:
            algorithm.check_checkpoint(path)
        except (ValueError, FileNotFoundError) as error:
            errors.append(error)
            continue
        return algorithm
    text = " ".join(str(errors[0]).split())
    raise HubError(f"'{os.path.basename(path)}' from hub repo '{repo_id}' is not a usable model of sb3-shm: {text}")


def download_to_zoo(
    algo: str,
    env_name: Any,
    exp_id: int,
    folder: str,
    organization: str,
    repo_name: str | None = None,
    force: bool = False,
    *,
    revision: str | None = None,
    trust_remote_code: bool | None = None,
    cache_dir: str | Path | None = None,
    upstream: Callable[..., None] | None = None,
) -> None:
    """
    ``rl_zoo3.load_from_hub.download_from_hub`` for this package's algorithms: upstream's own function (the zoo's log
    layout ``FOLDER/ALGO/ENV_ID/ENV.zip`` + ``ENV/config.yml``..., ``--exp-id``, ``--force``), given the hub access
    it lacks with huggingface_hub 2.x (see :func:`sb3_shm.zoo.upstream.patch_load_from_hub`): optional files the
    repository does not have are skipped (an empty ``env_kwargs.yml`` or ``train_eval_metrics.zip`` stands in), the
    model zip is checked before anything is written, and errors are one-line :class:`HubError` messages.

    :param cache_dir: the hub cache (default: huggingface_hub's, ``HF_HOME``)
    :param upstream: rl_zoo3's function (default: ``rl_zoo3.load_from_hub.download_from_hub``, unwrapped)
    """
    from huggingface_sb3 import EnvironmentName, ModelName, ModelRepoId

    from sb3_shm.zoo.algos import ALGOS

    if upstream is None:
        import rl_zoo3.load_from_hub

        upstream = inspect.unwrap(rl_zoo3.load_from_hub.download_from_hub)
    env_name = env_name if isinstance(env_name, EnvironmentName) else EnvironmentName(str(env_name))
    model_name = ModelName(algo, env_name)
    repo_id = ModelRepoId(organization, repo_name or model_name)
    _check_trust(repo_id, trust_remote_code)
    http_error = upstream.__globals__["HTTPError"]  # what upstream catches for a missing vec_normalize.pkl

    with tempfile.TemporaryDirectory() as stand_ins:

        def fetch(repo: str, filename: str) -> str:
            if filename not in OPTIONAL_FILES:
                path = download_file(repo, filename, revision=revision, cache_dir=cache_dir)
                assert path is not None
                if filename == model_name.filename:
                    _check_model_zip(ALGOS[algo].load(), path, repo)
                return path
            path = download_file(repo, filename, optional=True, revision=revision, cache_dir=cache_dir)
            if path is not None:
                return path
            if filename == "vec_normalize.pkl":
                raise http_error(f"{repo} has no {filename}")
            stand_in = os.path.join(stand_ins, filename)
            if filename.endswith(".zip"):
                zipfile.ZipFile(stand_in, "w").close()
            else:
                Path(stand_in).write_text("{}\n")
            return stand_in

        namespace = upstream.__globals__
        original_fetch = namespace["load_from_hub"]
        namespace["load_from_hub"] = fetch
        try:
            upstream(algo, env_name, exp_id, folder, organization, repo_name, force)
        finally:
            namespace["load_from_hub"] = original_fetch


def _check_model_zip(algorithm: Any, path: str, repo_id: str) -> None:
    """The algorithm's own checkpoint check, as a :class:`HubError`."""
    try:
        algorithm.check_checkpoint(path)
    except (ValueError, FileNotFoundError) as error:
        text = " ".join(str(error).split())
        raise HubError(
            f"'{os.path.basename(path)}' of hub repo '{repo_id}' is not a usable {algorithm.__name__} model: {text}"
        ) from error


# --------------------------------------------------------------------------------------------------------------
# Package / push
# --------------------------------------------------------------------------------------------------------------
def _evaluate(model: Any, eval_env: Any, n_eval_episodes: int, deterministic: bool) -> tuple[float, float]:
    import numpy as np
    from stable_baselines3.common.evaluation import evaluate_policy

    rewards, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=n_eval_episodes, deterministic=deterministic, return_episode_rewards=True
    )
    return float(np.mean(rewards)), float(np.std(rewards))


def _record_replay(model: Any, eval_env: Any, video_length: int, deterministic: bool, target: Path) -> bool:
    """Write ``replay.mp4`` (needs an env made with render_mode="rgb_array" and moviepy); False if impossible."""
    import numpy as np
    from stable_baselines3.common.vec_env import VecVideoRecorder

    if getattr(eval_env, "render_mode", None) != "rgb_array":
        return False
    with tempfile.TemporaryDirectory() as video_folder:
        try:
            recorder = VecVideoRecorder(
                eval_env,
                video_folder,
                record_video_trigger=lambda step: step == 0,
                video_length=video_length,
                name_prefix="replay",
            )
            obs = recorder.reset()
            state, starts = None, np.ones((recorder.num_envs,), dtype=bool)
            for _ in range(video_length):
                action, state = model.predict(obs, state=state, episode_start=starts, deterministic=deterministic)
                obs, _, starts, _ = recorder.step(action)
            recorder.close()
        except Exception as error:  # no renderer, no moviepy/ffmpeg: the package is still valid
            print(f"No replay video: {type(error).__name__}: {error}")
            return False
        videos = glob.glob(os.path.join(video_folder, "*.mp4"))
        if not videos:
            return False
        shutil.copy(videos[0], target / "replay.mp4")
    return True


_DESCRIPTIONS = {
    "ShmPPO": "PPO with a Stable Hadamard Memory",
    "ShmSAC": "SAC / SAC-Discrete with recurrent actor and critic memories",
}


def _model_card(
    algorithm: str,
    algo: str,
    env_id: str,
    organization: str,
    mean_reward: float,
    std_reward: float,
    n_eval_episodes: int,
    hyperparams: dict[str, Any],
    env_kwargs: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    from pprint import pformat

    from huggingface_hub.repocard import metadata_eval_result

    metadata: dict[str, Any] = {
        "library_name": "stable-baselines3",
        "tags": [env_id, "deep-reinforcement-learning", "reinforcement-learning", "stable-baselines3", "sb3-shm", "memory"],
    }
    metadata.update(
        metadata_eval_result(
            model_pretty_name=algorithm,
            task_pretty_name="reinforcement-learning",
            task_id="reinforcement-learning",
            metrics_pretty_name="mean_reward",
            metrics_id="mean_reward",
            metrics_value=f"{mean_reward:.2f} +/- {std_reward:.2f}",
            dataset_pretty_name=env_id,
            dataset_id=env_id,
        )
    )
    card = f"""
# **{algorithm}** Agent playing **{env_id}**

A **{algorithm}** agent ({_DESCRIPTIONS.get(algorithm, "an agent with a Stable Hadamard Memory")},
[sb3-shm](https://pypi.org/project/sb3-shm/)) playing **{env_id}**, trained with the
[RL Zoo](https://github.com/DLR-RM/rl-baselines3-zoo).

Evaluation: mean reward **{mean_reward:.2f} +/- {std_reward:.2f}** over {n_eval_episodes} episodes.

## Usage (with the RL Zoo)

```bash
pip install "sb3-shm[zoo]"
# Download the model into logs/ (loading a model unpickles it: only for repositories you trust)
TRUST_REMOTE_CODE=True python -m rl_zoo3.load_from_hub --algo {algo} --env {env_id} -orga {organization} -f logs/
python -m rl_zoo3.enjoy --algo {algo} --env {env_id} -f logs/
```

## Usage (Python)

```python
from sb3_shm.hub import load_from_hub

model = load_from_hub("{organization}/{algo}-{env_id.replace("/", "-")}", trust_remote_code=True)
```

## Training (with the RL Zoo)

```bash
python -m rl_zoo3.train --algo {algo} --env {env_id} -f logs/
python -m rl_zoo3.push_to_hub --algo {algo} --env {env_id} -f logs/ -orga {organization}
```

## Hyperparameters

```python
{pformat(hyperparams)}
```
"""
    if env_kwargs:
        card += f"""
## Environment arguments

```python
{pformat(env_kwargs)}
```
"""
    return card, metadata


def package_to_hub(
    model: Any,
    env_id: str,
    local_dir: str | Path,
    *,
    algo: str | None = None,
    organization: str = "ORG",
    eval_env: Any = None,
    log_path: str | Path | None = None,
    hyperparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    args: dict[str, Any] | None = None,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    generate_video: bool = False,
    video_length: int = 1000,
) -> Path:
    """
    Write a hub repository for ``model`` in the zoo's layout into ``local_dir`` (nothing is uploaded).

    :param model: the trained agent (ShmPPO, ShmSAC)
    :param env_id: gymnasium id the agent plays
    :param algo: the zoo's algorithm name (default: the one registered for the model's class, e.g. ``shm_ppo``)
    :param eval_env: VecEnv used for the evaluation (default: ``make_vec_env(env_id, env_kwargs=...)``);
        its ``VecNormalize`` statistics, if any, are saved as ``vec_normalize.pkl``
    :param log_path: a zoo run folder (``logs/shm_ppo/ENV_1``): its ``ENV/config.yml``, ``ENV/args.yml``,
        monitor files and ``evaluations.npz`` are packaged
    :param hyperparams: written to ``config.yml`` when there is no ``log_path``
    :param generate_video: record ``replay.mp4`` (eval env created with ``render_mode="rgb_array"``)
    :return: the folder
    """
    from huggingface_hub.repocard import metadata_save
    from huggingface_sb3 import EnvironmentName, ModelName
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import unwrap_vec_normalize

    env_name = EnvironmentName(env_id)
    if algo is None:
        from sb3_shm.zoo.algos import ALGOS

        algo = next((name for name, entry in ALGOS.items() if isinstance(model, entry.load())), ALGO)
    model_name = ModelName(algo, env_name)
    target = Path(local_dir)
    target.mkdir(parents=True, exist_ok=True)
    env_kwargs = dict(env_kwargs or {})
    own_env = eval_env is None
    if own_env:
        kwargs = dict(env_kwargs, render_mode="rgb_array") if generate_video else env_kwargs
        eval_env = make_vec_env(env_id, n_envs=1, env_kwargs=kwargs)

    model.save(target / model_name.filename)
    vec_normalize = unwrap_vec_normalize(eval_env)
    if vec_normalize is not None:
        vec_normalize.save(str(target / "vec_normalize.pkl"))
        vec_normalize.training = False
        vec_normalize.norm_reward = False

    config_file = Path(log_path) / env_name / "config.yml" if log_path else None
    args_file = Path(log_path) / env_name / "args.yml" if log_path else None
    if config_file is not None and config_file.is_file():
        shutil.copy(config_file, target / "config.yml")
        with open(config_file) as file:
            hyperparams = hyperparams or yaml.load(file, Loader=yaml.UnsafeLoader)
    else:
        with open(target / "config.yml", "w") as file:
            yaml.dump(dict(hyperparams or {}), file)
    if args_file is not None and args_file.is_file():
        shutil.copy(args_file, target / "args.yml")
    else:
        with open(target / "args.yml", "w") as file:
            yaml.dump({"algo": algo, "env": env_id, "env_kwargs": env_kwargs or None, **(args or {})}, file)
    with open(target / "env_kwargs.yml", "w") as file:
        yaml.dump(env_kwargs, file)
    if log_path is not None:
        with zipfile.ZipFile(target / "train_eval_metrics.zip", "w") as archive:
            evaluations = Path(log_path) / "evaluations.npz"
            if evaluations.is_file():
                archive.write(evaluations, arcname="evaluations.npz")
            for monitor_file in glob.glob(os.path.join(str(log_path), "*.csv")):
                archive.write(monitor_file, arcname=os.path.basename(monitor_file))

    mean_reward, std_reward = _evaluate(model, eval_env, n_eval_episodes, deterministic)
    results = {
        "mean_reward": mean_reward,
        "std_reward": std_reward,
        "is_deterministic": deterministic,
        "n_eval_episodes": n_eval_episodes,
        "eval_datetime": datetime.datetime.now().isoformat(),
    }
    (target / "results.json").write_text(json.dumps(results, indent=2))
    if generate_video:
        _record_replay(model, eval_env, video_length, deterministic, target)
    if own_env:
        eval_env.close()

    card, metadata = _model_card(
        type(model).__name__,
        algo,
        env_id,
        organization,
        mean_reward,
        std_reward,
        n_eval_episodes,
        dict(hyperparams or {}),
        env_kwargs,
    )
    readme = target / "README.md"
    readme.write_text(card, encoding="utf-8")
    metadata_save(readme, metadata)
    return target


def push_to_hub(
    model: Any,
    env_id: str,
    repo_id: str,
    *,
    token: str | None = None,
    commit_message: str = "Upload sb3-shm agent",
    private: bool = False,
    local_dir: str | Path | None = None,
    **package_kwargs: Any,
) -> str:
    """
    :func:`package_to_hub` then upload the folder to ``repo_id`` (created if needed). Needs a token
    (``token=`` or ``hf auth login`` / ``HF_TOKEN``) and network.

    :return: the repository URL
    """
    from huggingface_hub import HfApi

    organization = repo_id.split("/")[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = package_to_hub(model, env_id, local_dir or tmp, organization=organization, **package_kwargs)
        api = HfApi(token=token)
        try:
            url = api.create_repo(repo_id=repo_id, private=private, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
        except Exception as error:
            raise HubError(
                f"cannot push to '{repo_id}': {type(error).__name__}: {' '.join(str(error).split())[:200]}"
            ) from error
    return str(url)


def zoo_package_to_hub(
    model: Any,
    model_name: str,
    algo_name: str,
    algo_class_name: str,
    log_path: Path,
    hyperparams: dict[str, Any],
    env_kwargs: dict[str, Any],
    env_name: Any,
    eval_env: Any,
    repo_id: str,
    commit_message: str,
    is_deterministic: bool = True,
    n_eval_episodes: int = 10,
    token: str | None = None,
    local_repo_path: str = "hub",
    video_length: int = 1000,
    generate_video: bool = False,
) -> str:
    """Same signature as ``rl_zoo3.push_to_hub.package_to_hub`` (which the zoo hook replaces for this package's algorithms)."""
    local_dir = Path(local_repo_path) / str(repo_id).split("/")[-1]
    return push_to_hub(
        model,
        getattr(env_name, "gym_id", str(env_name)),
        str(repo_id),
        token=token,
        commit_message=commit_message,
        local_dir=local_dir,
        algo=algo_name,
        eval_env=eval_env,
        log_path=log_path,
        hyperparams=hyperparams,
        env_kwargs={k: v for k, v in env_kwargs.items() if k != "render_mode"},
        n_eval_episodes=n_eval_episodes,
        deterministic=is_deterministic,
        generate_video=generate_video,
        video_length=video_length,
    )
