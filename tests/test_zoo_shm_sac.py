"""RL Zoo: `python -m rl_zoo3.<script> --algo shm_sac` in fresh interpreters (offline, a few hundred steps)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from sb3_shm.zoo import ALGOS

ROOT = Path(__file__).resolve().parent.parent
# Small windows and batches so that a few hundred steps train (the yml entries use 64-step windows)
SMALL = ["--num-threads", "1", "--eval-freq", "-1", "-params", "learning_starts:100", "sequence_length:16", "batch_size:8"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"rc={result.returncode}\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-3000:]}"
    )
    return result


def test_hyperparams_file():
    hyperparams_file = ALGOS["shm_sac"].hyperparams_file
    entries = yaml.safe_load(hyperparams_file.read_text())
    assert {"CartPoleNoVel-v1", "PendulumNoVel-v1"} <= set(entries)
    # The top-level hyperparams/ view is the packaged file
    assert (ROOT / "hyperparams" / "shm_sac.yml").read_bytes() == hyperparams_file.read_bytes()


def test_train_and_enjoy(tmp_path):
    ok(
        run(
            "-m",
            "rl_zoo3.train",
            "--algo",
            "shm_sac",
            "--env",
            "PendulumNoVel-v1",
            "-n",
            "300",
            "-f",
            str(tmp_path),
            *SMALL,
            cwd=tmp_path,
        )
    )
    assert (tmp_path / "shm_sac" / "PendulumNoVel-v1_1" / "PendulumNoVel-v1.zip").is_file()
    enjoy = ok(
        run(
            "-m",
            "rl_zoo3.enjoy",
            "--algo",
            "shm_sac",
            "--env",
            "PendulumNoVel-v1",
            "-f",
            str(tmp_path),
            "-n",
            "200",
            "--no-render",
            cwd=tmp_path,
        )
    )
    assert "Mean reward" in enjoy.stdout


def test_bad_entry_is_one_line(tmp_path):
    result = run(
        "-m",
        "rl_zoo3.train",
        "--algo",
        "shm_sac",
        "--env",
        "CartPoleNoVel-v1",
        "-n",
        "100",
        "-f",
        str(tmp_path),
        "-params",
        "learning_starts:4",
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "learning_starts=4 is smaller than one sequence" in errors[0]
