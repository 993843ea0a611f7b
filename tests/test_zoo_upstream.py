"""
The upstream defects that ``sb3_shm/zoo/upstream.py`` routes around are still there. Each test runs upstream's own
code with the hook off: when one fails, upstream fixed that defect, and its fix in ``upstream.py`` can go.
"""

import os
import subprocess
import sys
import textwrap

from tests.test_hub import add_to_cache


def run_without_hook(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "SB3_SHM_NO_ZOO_HOOK": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env)


def test_rl_zoo3_push_to_hub_cannot_be_imported():
    """upstream.patch_hf_push_to_hub: `generate_metadata` is gone from huggingface_sb3.push_to_hub."""
    result = run_without_hook("import rl_zoo3.push_to_hub")
    assert result.returncode != 0
    assert "cannot import name 'generate_metadata'" in result.stderr


def test_rl_zoo3_download_from_hub_fails_without_the_optional_normalization_file(tmp_path):
    """upstream.patch_load_from_hub: rl_zoo3 catches requests.HTTPError for vec_normalize.pkl, the hub raises its own."""
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "ppo-CartPole-v1.zip")
    files = {"ppo-CartPole-v1.zip": tmp_path / "ppo-CartPole-v1.zip"}
    for name in ("config.yml", "args.yml", "env_kwargs.yml"):
        (tmp_path / name).write_text("{}\n")
        files[name] = tmp_path / name
    add_to_cache(tmp_path / "hf_home", "testorg/ppo-CartPole-v1", files)  # every file but vec_normalize.pkl
    code = f"""
        from huggingface_sb3 import EnvironmentName
        from rl_zoo3.load_from_hub import download_from_hub
        download_from_hub("ppo", EnvironmentName("CartPole-v1"), 1, {str(tmp_path / "logs")!r}, "testorg")
    """
    result = run_without_hook(code, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRUST_REMOTE_CODE="True")
    assert result.returncode != 0
    assert "vec_normalize.pkl" in result.stderr and "EntryNotFoundError" in result.stderr
