"""Smoke tests of ``examples/``: each script runs end to end, in its own process, with a tiny budget."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# script -> arguments for a run of about one PPO iteration (each script's --help documents them)
SMOKE_ARGS = {
    "train_visual_match.py": ["--timesteps", "1", "--eval-episodes", "2"],
    "vecnormalize_callbacks.py": ["--timesteps", "1", "--eval-freq", "512", "--eval-episodes", "1"],
    "load_pretrained.py": ["--episodes", "1", "--timesteps", "200"],
    "custom_features_extractor.py": ["--timesteps", "1", "--eval-episodes", "2"],
}


def test_every_example_is_smoke_tested():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(SMOKE_ARGS)


@pytest.mark.parametrize("script", sorted(SMOKE_ARGS))
def test_example_runs(script, tmp_path):
    if script == "load_pretrained.py":
        pytest.importorskip("rl_zoo3", reason="CartPoleNoVel-v1 is registered by rl_zoo3 (the `zoo` extra)")
    args = list(SMOKE_ARGS[script])
    if script == "vecnormalize_callbacks.py":
        args += ["--log-dir", str(tmp_path / "run")]
    # One torch thread, and numba's workqueue threading layer: with numba's default OpenMP layer on a loaded 2-core
    # machine, its idle threads spin after each fused kernel and slow the rest of the process 3-5x.
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_THREADING_LAYER="workqueue")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    if script == "vecnormalize_callbacks.py":
        assert (tmp_path / "run" / "vecnormalize.pkl").exists()
        assert list((tmp_path / "run" / "checkpoints").glob("shm_ppo_*_steps.zip"))
