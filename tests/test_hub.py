"""Hugging Face Hub round trip without network: a local hub cache (HF_HOME in tmp, HF_HUB_OFFLINE=1)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sb3_shm import ShmPPO
from sb3_shm import hub
from sb3_shm.hub import HubError, load_from_hub, package_to_hub

ROOT = Path(__file__).resolve().parent.parent
ORG = "testorg"
REPO = f"{ORG}/shm_ppo-CartPole-v1"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def add_to_cache(hf_home: Path, repo_id: str, files: dict[str, Path] | None = None, folder: Path | None = None) -> Path:
    """Lay out `repo_id` as huggingface_hub's cache does: refs/main -> snapshots/<commit>/<files>."""
    repo_dir = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    if folder is not None:
        for path in folder.iterdir():
            (snapshot / path.name).write_bytes(path.read_bytes())
    for name, path in (files or {}).items():
        (snapshot / name).write_bytes(path.read_bytes())
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A packaged CartPole agent in a local hub cache, plus the model it came from."""
    import torch as th

    th.set_num_threads(1)
    hf_home = tmp_path_factory.mktemp("hf_home")
    model = ShmPPO(
        "MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, seed=0, policy_kwargs=dict(memory_size=8)
    )
    model.learn(64)
    packaged = package_to_hub(model, "CartPole-v1", tmp_path_factory.mktemp("package"), organization=ORG, n_eval_episodes=2)
    add_to_cache(hf_home, REPO, folder=packaged)
    return hf_home, model, packaged


@pytest.fixture
def offline(hub_cache, monkeypatch):
    hf_home, _, _ = hub_cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"cache_dir": str(hf_home / "hub")}


def test_package_layout(hub_cache):
    _, _, packaged = hub_cache
    names = {path.name for path in packaged.iterdir()}
    assert {"shm_ppo-CartPole-v1.zip", "config.yml", "args.yml", "env_kwargs.yml", "results.json", "README.md"} <= names
    readme = (packaged / "README.md").read_text()
    assert "mean_reward" in readme and "ShmPPO" in readme and "rl_zoo3.load_from_hub" in readme


def _rollout_actions(model, n_steps=40):
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=1, seed=7)
    obs, state, starts, actions = env.reset(), None, np.ones(1, dtype=bool), []
    for _ in range(n_steps):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        actions.append(int(action[0]))
        obs, _, starts, _ = env.step(action)
    env.close()
    return actions


def test_load_from_hub_reproduces_predictions(hub_cache, offline):
    _, model, _ = hub_cache
    loaded = load_from_hub(REPO, trust_remote_code=True, **offline)
    assert isinstance(loaded, ShmPPO)
    assert _rollout_actions(loaded) == _rollout_actions(model)
    # explicit filename, and a repo whose name does not follow the zoo convention (its only zip is found)
    assert isinstance(load_from_hub(REPO, "shm_ppo-CartPole-v1.zip", trust_remote_code=True, **offline), ShmPPO)
    add_to_cache(Path(offline["cache_dir"]).parent, f"{ORG}/my-agent", {"agent.zip": hub_cache[2] / "shm_ppo-CartPole-v1.zip"})
    assert isinstance(load_from_hub(f"{ORG}/my-agent", trust_remote_code=True, **offline), ShmPPO)


def test_hub_errors_are_one_line(hub_cache, offline, tmp_path):
    from stable_baselines3 import PPO

    def error(*args, **kwargs) -> str:
        with pytest.raises(HubError) as info:
            load_from_hub(*args, **{**offline, **kwargs})
        message = str(info.value)
        assert "\n" not in message
        return message

    start = time.monotonic()
    assert "not in the local hub cache" in error(f"{ORG}/does-not-exist", trust_remote_code=True)
    assert time.monotonic() - start < 10
    assert "ORG/NAME" in error("no-slash", trust_remote_code=True)
    assert "TRUST_REMOTE_CODE" in error(REPO, trust_remote_code=False)
    # a repo with another algorithm's zip, and a repo with no zip at all
    ppo = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    ppo.save(tmp_path / "ppo.zip")
    add_to_cache(Path(offline["cache_dir"]).parent, f"{ORG}/shm_ppo-Other-v1", {"shm_ppo-Other-v1.zip": tmp_path / "ppo.zip"})
    assert "not a usable model of sb3-shm" in error(f"{ORG}/shm_ppo-Other-v1", trust_remote_code=True)
    (tmp_path / "config.yml").write_text("{}\n")
    add_to_cache(Path(offline["cache_dir"]).parent, f"{ORG}/empty", {"config.yml": tmp_path / "config.yml"})
    assert "no model zip" in error(f"{ORG}/empty", trust_remote_code=True)


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(hub, "_REACHABLE", {})
    start = time.monotonic()
    with pytest.raises(HubError, match="cannot be reached"):
        hub.download_file(f"{ORG}/nothing", "config.yml", cache_dir=str(tmp_path))
    assert time.monotonic() - start < 10


def test_zoo_load_from_hub_then_enjoy(hub_cache, tmp_path):
    """`python -m rl_zoo3.load_from_hub` (fixed by the hook) then `rl_zoo3.enjoy`, with no network."""
    hf_home, _, packaged = hub_cache
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "TRUST_REMOTE_CODE": "True",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }

    def zoo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )

    result = zoo("rl_zoo3.load_from_hub", "--algo", "shm_ppo", "--env", "CartPole-v1", "-orga", ORG, "-f", "logs/")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "logs" / "shm_ppo" / "CartPole-v1_1"
    # The same bytes as the packaged model: the zoo reproduces its predictions exactly
    assert (run_dir / "CartPole-v1.zip").read_bytes() == (packaged / "shm_ppo-CartPole-v1.zip").read_bytes()
    result = zoo("rl_zoo3.enjoy", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", "logs/", "--no-render", "-n", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    # A repo that is not there: one line, no traceback, no hang
    result = zoo("rl_zoo3.load_from_hub", "--algo", "shm_ppo", "--env", "Acrobot-v1", "-orga", ORG, "-f", "logs/")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: HubFileNotFoundError:" in result.stderr and "not in the local hub cache" in result.stderr


def test_upstream_push_to_hub_imports_with_the_hook():
    result = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.push_to_hub", "--help"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shm_ppo" in result.stdout


FAKE_HUB = '''
import os, shutil

import huggingface_hub


class FakeHfApi:
    """Stands in for the hub: create_repo answers a URL, upload_folder copies to $FAKE_HUB_DIR/<repo_id>."""

    def __init__(self, token=None, **kwargs):
        pass

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message=None, **kwargs):
        shutil.copytree(folder_path, os.path.join(os.environ["FAKE_HUB_DIR"], str(repo_id)), dirs_exist_ok=True)


huggingface_hub.HfApi = FakeHfApi
'''


def test_zoo_push_to_hub_then_load(tmp_path, monkeypatch):
    """`python -m rl_zoo3.push_to_hub --algo shm_ppo` uploads the zoo's layout (and a replay video: VisualMatch
    renders), against a fake HfApi; what it uploaded then loads from a hub cache with the same predictions."""
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "sitecustomize.py").write_text(FAKE_HUB)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "fake"), os.environ.get("PYTHONPATH")])),
        "FAKE_HUB_DIR": str(tmp_path / "hub"),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }

    def zoo(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    small = ["n_envs:2", "n_steps:64", "batch_size:64", "sequence_length:64", "n_epochs:1"]
    zoo("rl_zoo3.train", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "-n", "256", "-f", "logs/", "--num-threads", "1",
        "--eval-freq", "-1", "-params", *small)  # fmt: skip
    zoo("rl_zoo3.push_to_hub", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "-f", "logs/", "-orga", ORG,
        "-n", "60", "--num-threads", "1")  # fmt: skip
    uploaded = tmp_path / "hub" / ORG / "shm_ppo-VisualMatch-v0"
    names = {path.name for path in uploaded.iterdir()}
    assert {"shm_ppo-VisualMatch-v0.zip", "config.yml", "args.yml", "env_kwargs.yml", "results.json", "README.md"} <= names
    assert "replay.mp4" in names
    assert "mean_reward" in (uploaded / "README.md").read_text()
    # what was uploaded loads from a hub cache and predicts as the model the zoo trained
    hf_home = tmp_path / "hf_home"
    add_to_cache(hf_home, f"{ORG}/shm_ppo-VisualMatch-v0", folder=uploaded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_from_hub(f"{ORG}/shm_ppo-VisualMatch-v0", trust_remote_code=True, cache_dir=str(hf_home / "hub"))
    original = ShmPPO.load(tmp_path / "logs" / "shm_ppo" / "VisualMatch-v0_1" / "VisualMatch-v0.zip")
    obs = np.stack([original.observation_space.sample() for _ in range(16)])
    starts = np.ones(16, dtype=bool)

    def predict(model: ShmPPO) -> np.ndarray:
        model.set_random_seed(0)  # the random calibration row comes from torch's global RNG
        return model.predict(obs, episode_start=starts, deterministic=True)[0]

    assert np.array_equal(predict(loaded), predict(original))


def test_load_from_hub_replaces_schedules_it_cannot_import(models_with_missing_module, offline):
    """The hub's custom_objects (learning-rate and clip schedules) are never unpickled: a missing module is no error."""
    model, folder = models_with_missing_module
    cache = Path(offline["cache_dir"]).parent
    add_to_cache(cache, f"{ORG}/scheduled", {"scheduled.zip": folder / "schedule.zip"})
    loaded = load_from_hub(f"{ORG}/scheduled", trust_remote_code=True, **offline)
    assert _rollout_actions(loaded) == _rollout_actions(model)
    # an entry the hub does not replace: a HubError that names it
    add_to_cache(cache, f"{ORG}/activation", {"activation.zip": folder / "activation.zip"})
    with pytest.raises(HubError, match="'policy_kwargs' was pickled with code from gone_module"):
        load_from_hub(f"{ORG}/activation", trust_remote_code=True, **offline)


def test_download_to_zoo_checks_the_model_before_writing(offline, tmp_path):
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "ppo.zip")
    hf_home = Path(offline["cache_dir"]).parent
    add_to_cache(hf_home, f"{ORG}/shm_ppo-Foreign-v1", {"shm_ppo-Foreign-v1.zip": tmp_path / "ppo.zip"})
    with pytest.raises(HubError, match=r"not a usable ShmPPO model: .* policy ActorCriticPolicy, not an ShmPPO model"):
        hub.download_to_zoo("shm_ppo", "Foreign-v1", 1, str(tmp_path / "logs"), ORG, trust_remote_code=True, **offline)
    assert not (tmp_path / "logs").exists()


def test_shm_sac_agent_round_trip(offline, tmp_path):
    """A ShmSAC agent packaged for the hub (its card names ShmSAC, its zip shm_sac-ENV) loads back as a ShmSAC."""
    from sb3_shm import ShmSAC

    model = ShmSAC("MlpShmPolicy", "CartPole-v1", learning_starts=32, sequence_length=8, batch_size=4, seed=0)
    model.learn(64)
    packaged = package_to_hub(model, "CartPole-v1", tmp_path / "package", organization=ORG, n_eval_episodes=1)
    assert (packaged / "shm_sac-CartPole-v1.zip").is_file() and "**ShmSAC**" in (packaged / "README.md").read_text()
    add_to_cache(Path(offline["cache_dir"]).parent, f"{ORG}/shm_sac-CartPole-v1", folder=packaged)
    loaded = load_from_hub(f"{ORG}/shm_sac-CartPole-v1", trust_remote_code=True, **offline)
    assert isinstance(loaded, ShmSAC)
    obs = np.stack([model.observation_space.sample() for _ in range(4)])
    starts = np.ones(4, dtype=bool)
    for agent in (model, loaded):
        agent.set_random_seed(0)
    np.testing.assert_array_equal(
        model.predict(obs, episode_start=starts, deterministic=True)[0],
        loaded.predict(obs, episode_start=starts, deterministic=True)[0],
    )
