"""RL Zoo: `python -m rl_zoo3.<script> --algo shm_sac` in fresh interpreters (offline, a few hundred steps)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
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
    assert {"CartPoleNoVel-v1", "PendulumNoVel-v1", "VisualMatch-v0", "Wind-v0", "PointRobot-v0"} <= set(entries)
    # The top-level hyperparams/ view is the packaged file
    assert (ROOT / "hyperparams" / "shm_sac.yml").read_bytes() == hyperparams_file.read_bytes()


@pytest.mark.parametrize("env_id", sorted(yaml.safe_load(ALGOS["shm_sac"].hyperparams_file.read_text())))
def test_every_yml_entry_builds(env_id):
    """Each entry's hyperparameters and policy_kwargs make a ShmSAC on its env (as the zoo reads them)."""
    import gymnasium as gym
    import rl_zoo3.import_envs  # noqa: F401  (the NoVel envs)
    import torch as th
    from torch import nn

    import sb3_shm.envs  # noqa: F401
    from sb3_shm import ShmSAC

    hyperparams = dict(yaml.safe_load(ALGOS["shm_sac"].hyperparams_file.read_text())[env_id])
    hyperparams.pop("n_timesteps")
    policy = hyperparams.pop("policy")
    policy_kwargs = eval(hyperparams.pop("policy_kwargs", "dict()"), {"nn": nn, "th": th})
    if isinstance(hyperparams.get("train_freq"), list):
        hyperparams["train_freq"] = tuple(hyperparams["train_freq"])
    model = ShmSAC(policy, gym.make(env_id), policy_kwargs=policy_kwargs, buffer_size=10_000, **hyperparams)
    assert model.sequence_length == hyperparams["sequence_length"]


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


def test_train_continues_a_run_with_its_replay_buffer(tmp_path):
    """A long run split in parts: `--save-replay-buffer` keeps the buffer beside the model, and `-i` trains that
    model further on it (the buffer then holds both parts' transitions)."""
    from sb3_shm import ShmSAC

    first = tmp_path / "first" / "shm_sac" / "PendulumNoVel-v1_1"
    train = ("-m", "rl_zoo3.train", "--algo", "shm_sac", "--env", "PendulumNoVel-v1", "--save-replay-buffer")
    ok(run(*train, "-n", "300", "-f", str(tmp_path / "first"), *SMALL, cwd=tmp_path))
    assert (first / "replay_buffer.pkl").is_file()
    result = ok(
        run(*train, "-i", str(first / "PendulumNoVel-v1.zip"), "-n", "200", "-f", str(tmp_path / "second"), *SMALL,
            cwd=tmp_path)
    )  # fmt: skip
    assert "Loading replay buffer" in result.stdout
    second = tmp_path / "second" / "shm_sac" / "PendulumNoVel-v1_1"
    start = ShmSAC.load(first / "PendulumNoVel-v1.zip", device="cpu")
    final = ShmSAC.load(second / "PendulumNoVel-v1.zip", device="cpu")
    final.load_replay_buffer(second / "replay_buffer.pkl")
    assert final.replay_buffer.size() == 300 + 200
    # The zoo restarts the step count, so learning_starts (100) applies again: 100 updates of 200 steps, 1 per step
    assert final._n_updates == start._n_updates + 100


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


def test_sampler_builds_a_model():
    """Each sampled trial builds a ShmSAC (over an entry's values, as the zoo does), and --trial-id's converter gives
    back the same hyperparameters."""
    import optuna

    from sb3_shm import ShmSAC
    from sb3_shm.zoo import convert_shm_sac_params, sample_shm_sac_params

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        trial = study.ask()
        params = sample_shm_sac_params(trial, 0, 1, {})
        assert convert_shm_sac_params(trial.params) == params
        model = ShmSAC("MlpShmPolicy", "Pendulum-v1", **{"learning_starts": 1000, **params})
        assert model.sequence_length == params["sequence_length"] <= 64
        assert model.policy.actor_memory_type == params["policy_kwargs"]["actor_memory_type"]


def test_entropy_coefficient_may_be_automatic():
    from sb3_shm.zoo import ZooConfigError, check_hyperparams

    for value in ("auto", "auto_0.1", 0.1):
        check_hyperparams({"n_timesteps": 1000, "policy": "MlpShmPolicy", "ent_coef": value}, "test", algo="shm_sac")
    try:
        check_hyperparams({"n_timesteps": 1000, "policy": "MlpShmPolicy", "ent_coef": "auto"}, "test", algo="shm_ppo")
    except ZooConfigError as error:
        assert "ent_coef" in str(error)
    else:
        raise AssertionError("ShmPPO's ent_coef is a number")


def test_optimize_one_trial(tmp_path):
    result = ok(
        run(
            "-m", "rl_zoo3.train", "--algo", "shm_sac", "--env", "CartPoleNoVel-v1", "-f", str(tmp_path), "--optimize",
            "--n-trials", "1", "-n", "200", "--n-evaluations", "1", "--eval-episodes", "1", "--sampler", "random",
            "--pruner", "none", "--no-optim-plots", "--num-threads", "1", "--seed", "3", "-params", "learning_starts:64",
            cwd=ROOT,
        )
    )  # fmt: skip
    assert "Number of finished trials:  1" in result.stdout
    (report,) = (tmp_path / "shm_sac").glob("report_CartPoleNoVel-v1_1-trials-200-random-none_*.csv")
    assert "params_actor_memory_type" in report.read_text().splitlines()[0]


def test_every_distractor_length_has_an_entry_with_whole_episode_windows():
    """`--env VisualMatch-250-v0` (any registered length) finds an entry, and its windows are whole episodes."""
    import gymnasium as gym

    from sb3_shm.envs import DISTRACTOR_LENGTHS

    entries = yaml.safe_load(ALGOS["shm_sac"].hyperparams_file.read_text())
    for name in ("VisualMatch", "KeyToDoor"):
        for length in DISTRACTOR_LENGTHS:
            env_id = f"{name}-{length}-v0"
            episode_length = gym.make(env_id).unwrapped.episode_length
            assert entries[env_id]["sequence_length"] == episode_length, env_id
            # 1 gradient step per 4 env steps, as the measured VisualMatch-v0 entry
            assert entries[env_id]["gradient_steps"] == -(-episode_length // 4), env_id
