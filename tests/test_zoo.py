"""RL Zoo integration: `python -m rl_zoo3.<script> --algo shm_ppo` in fresh interpreters (offline, short runs)."""

import copy
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from sb3_shm.zoo import (
    HYPERPARAMS_FILE,
    ZooConfigError,
    _patch,
    check_hyperparams,
    check_policy_kwargs,
    convert_shm_ppo_params,
    install_hook,
    sample_shm_ppo_params,
)
from sb3_shm.zoo.compat import ZooShapeWarning

ROOT = Path(__file__).resolve().parent.parent
# Keep the subprocesses light on the shared CI cores
FAST = ["--num-threads", "1", "--eval-freq", "-1", "-params", "n_envs:2", "n_epochs:1"]
# Short rollouts and training sequences for VisualMatch runs (its entry uses 256 steps)
SMALL_ROLLOUTS = ["n_steps:64", "batch_size:64", "sequence_length:64"]


def run(*args: str, env: dict | None = None, cwd: Path | str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"rc={result.returncode}\nSTDOUT:\n{result.stdout[-3000:]}\nSTDERR:\n{result.stderr[-3000:]}"
    )
    return result


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def has_env(env_id: str) -> bool:
    import gymnasium

    import rl_zoo3.import_envs  # noqa: F401  (NoVel envs + sb3_shm.envs through the hook)

    return env_id in gymnasium.registry


# ------------------------------------------------------------------------------------------------------------
# Installation: one hyperparameter file, the .pth hook, the kill switch
# ------------------------------------------------------------------------------------------------------------
def test_hyperparams_single_source():
    top_level = ROOT / "hyperparams" / "shm_ppo.yml"
    assert HYPERPARAMS_FILE.is_file() and HYPERPARAMS_FILE.parent.parent.name == "sb3_shm"
    # The top-level file is a symlink to the packaged one (or, on a checkout without symlinks, an identical copy)
    assert top_level.read_bytes() == HYPERPARAMS_FILE.read_bytes()
    if top_level.is_symlink():
        assert top_level.resolve() == HYPERPARAMS_FILE.resolve()


def test_pth_hook_is_installed_and_cheap():
    code = "import sys; print('_sb3_shm_zoo_hook' in sys.modules, 'torch' in sys.modules, 'sb3_shm' in sys.modules)"
    assert ok(run("-c", code)).stdout.split() == ["True", "False", "False"], "sb3_shm_zoo.pth missing: reinstall sb3-shm"
    assert ok(run("-c", code, env={"SB3_SHM_NO_ZOO_HOOK": "1"})).stdout.split() == ["False", "False", "False"]


def test_hook_extends_rl_zoo3():
    code = (
        "from rl_zoo3.utils import ALGOS; from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER as S;"
        "import rl_zoo3.import_envs, gymnasium; print(ALGOS.get('shm_ppo').__name__, 'shm_ppo' in S,"
        "'CartPoleNoVel-v1' in gymnasium.registry)"
    )
    assert ok(run("-c", code)).stdout.split() == ["ShmPPO", "True", "True"]
    disabled = run("-m", "rl_zoo3.train", "--algo", "shm_ppo", env={"SB3_SHM_NO_ZOO_HOOK": "1"})
    assert disabled.returncode == 2 and "invalid choice: 'shm_ppo'" in disabled.stderr


def test_shape_change_warns_with_version():
    with pytest.warns(ZooShapeWarning, match=r"rl_zoo3 \S+ changed shape"):
        _patch.patch_module("rl_zoo3.utils", types.SimpleNamespace(__name__="rl_zoo3.utils"))
    with pytest.warns(ZooShapeWarning, match="HYPERPARAMS_SAMPLER"):
        _patch.patch_module("rl_zoo3.hyperparams_opt", types.SimpleNamespace(__name__="rl_zoo3.hyperparams_opt"))
    with pytest.warns(ZooShapeWarning, match="ExperimentManager"):
        _patch.patch_module("rl_zoo3.exp_manager", types.SimpleNamespace(__name__="rl_zoo3.exp_manager"))


# ------------------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------------------
def test_train_enjoy_cartpole(tmp_path):
    from sb3_shm import ShmPPO

    ok(run("-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPole-v1", "-n", "512", "-f", str(tmp_path), *FAST))
    run_dir = tmp_path / "shm_ppo" / "CartPole-v1_1"
    model = ShmPPO.load(run_dir / "CartPole-v1.zip")
    assert model.policy.memory_size == 32
    config = yaml.load((run_dir / "CartPole-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert dict(config)["n_envs"] == 2
    # enjoy through the hook-free wrapper (the .pth hook turned off); 501 steps: CartPole-v1 ends an episode by step 500
    # at the latest, however well the agent balances (150 steps failed once when a run happened to balance that long)
    result = ok(
        run(
            "-m", "sb3_shm.zoo", "enjoy", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(tmp_path),
            "--no-render", "-n", "501", "--num-threads", "1",
            env={"SB3_SHM_NO_ZOO_HOOK": "1"},
        )
    )  # fmt: skip
    assert "Episode Reward" in result.stdout
    # rl_zoo3.plots reads the same logs (monitor files) and draws the training curve
    plots = tmp_path / "plots"
    ok(
        run(
            "-m", "rl_zoo3.plots.all_plots", "-a", "shm_ppo", "-e", "CartPole-v1", "-f", str(tmp_path),
            "--no-display", "-o", str(plots), "-k", "results",
            env={"MPLBACKEND": "Agg"},
        )
    )  # fmt: skip
    assert (tmp_path / "plots.pkl").exists()
    plot_train = ["-m", "rl_zoo3.plots.plot_train", "-a", "shm_ppo", "-e", "CartPole-v1", "-f", str(tmp_path)]
    ok(run(*plot_train, env={"MPLBACKEND": "Agg"}))


def test_train_enjoy_visual_match(tmp_path):
    ok(
        run(
            "-m",
            "rl_zoo3.train",
            "--algo",
            "shm_ppo",
            "--env",
            "VisualMatch-v0",
            "-n",
            "512",
            "-f",
            str(tmp_path),
            *FAST,
            *SMALL_ROLLOUTS,
        )
    )
    assert (tmp_path / "shm_ppo" / "VisualMatch-v0_1" / "VisualMatch-v0.zip").is_file()
    ok(
        run(
            "-m",
            "rl_zoo3.enjoy",
            "--algo",
            "shm_ppo",
            "--env",
            "VisualMatch-v0",
            "-f",
            str(tmp_path),
            "--no-render",
            "-n",
            "100",
        )
    )


def test_train_options_then_record_video(tmp_path):
    """The train options the issue lists (rl_zoo3 has no --n-envs flag: `-params n_envs:N`), then record_video."""
    ok(
        run(
            "-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "-n", "512", "-f", str(tmp_path),
            "--num-threads", "1", "--save-freq", "256", "-tb", str(tmp_path / "tb"), "--vec-env", "subproc",
            "--eval-freq", "256", "--eval-episodes", "2", "--n-eval-envs", "2", "-params", "n_envs:2", "n_epochs:1",
            *SMALL_ROLLOUTS,
        )
    )  # fmt: skip
    run_dir = tmp_path / "shm_ppo" / "VisualMatch-v0_1"
    # --save-freq and --eval-freq count total steps (the zoo divides them by n_envs)
    checkpoints = sorted(path.name for path in run_dir.glob("rl_model_*_steps.zip"))
    assert checkpoints == ["rl_model_256_steps.zip", "rl_model_512_steps.zip"]
    assert (run_dir / "best_model.zip").is_file()
    assert list(np.load(run_dir / "evaluations.npz")["timesteps"]) == [256, 512]
    assert list((tmp_path / "tb" / "VisualMatch-v0").glob("ShmPPO_1/events.out.tfevents.*"))
    # enjoy a checkpoint, then record a video of the final model (VisualMatch renders rgb_array without pygame)
    enjoy = ["-m", "rl_zoo3.enjoy", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "-f", str(tmp_path), "-n", "60"]
    ok(run(*enjoy, "--no-render", "--load-checkpoint", "256", "--num-threads", "1"))
    videos = tmp_path / "videos"
    ok(
        run(
            "-m", "rl_zoo3.record_video", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "-f", str(tmp_path),
            "-n", "60", "-o", str(videos),
        )
    )  # fmt: skip
    (video,) = videos.glob("*.mp4")
    assert video.stat().st_size > 1000


def test_optimize_two_trials(tmp_path):
    result = ok(
        run(
            "-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--optimize",
            "--n-trials", "2", "-n", "256", "--n-evaluations", "1", "--eval-episodes", "2", "--sampler", "random",
            "--pruner", "none", "--no-optim-plots", "--num-threads", "1", "--seed", "3", "-params", "n_envs:1",
        )
    )  # fmt: skip
    assert "Number of finished trials:  2" in result.stdout
    (report,) = (tmp_path / "shm_ppo").glob("report_CartPole-v1_2-trials-256-random-none_*.csv")
    header = report.read_text().splitlines()[0]
    for name in ("params_memory_size", "params_calibration", "params_bank_size", "params_n_steps_pow"):
        assert name in header


def test_distributed_optimize_two_workers_one_study(tmp_path):
    """Two worker processes at once on one study in a shared Optuna storage (a journal file, as on NFS); the study
    then holds every worker's trials, and ``--trial-id`` retrains one of them from the storage."""
    storage = str(tmp_path / "study.log")
    worker = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(tmp_path),
        "--optimize", "--storage", storage, "--study-name", "shm-cartpole", "--n-trials", "2", "--max-total-trials", "4",
        "-n", "256", "--n-evaluations", "1", "--eval-episodes", "2", "--sampler", "random", "--pruner", "none",
        "--no-optim-plots", "--num-threads", "1", "-params", "n_envs:1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([*worker, "--seed", str(seed)], env=env, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for seed in (1, 2)]  # fmt: skip
    outputs = [process.communicate(timeout=600) for process in workers]
    for process, (_, stderr) in zip(workers, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]

    import optuna

    backend = optuna.storages.journal.JournalFileBackend(storage)
    study = optuna.load_study(study_name="shm-cartpole", storage=optuna.storages.JournalStorage(backend))
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(complete) == 4 and {"memory_size", "calibration"} <= set(complete[0].params)
    # rl_zoo3 2.9 ignores --trial-id 0 (it tests the id for truth): retrain the best trial numbered 1 or more
    best = max((trial for trial in complete if trial.number > 0), key=lambda trial: trial.value).number
    result = ok(
        run("-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(tmp_path / "best"),
            "--storage", storage, "--study-name", "shm-cartpole", "--trial-id", str(best), "-n", "256",
            "--eval-freq", "-1", "--num-threads", "1")
    )  # fmt: skip
    (config,) = (tmp_path / "best" / "shm_ppo").glob("CartPole-v1_1/CartPole-v1/config.yml")
    assert f"memory_size:{study.trials[best].params['memory_size']}" in config.read_text().replace(" ", ""), result.stdout[
        -2000:
    ]


def enjoy_shipped_agent(env_id: str, n_timesteps: int) -> subprocess.CompletedProcess:
    """Run ``rl_zoo3.enjoy`` on the agent shipped in ``rl-trained-agents/`` for ``env_id`` (a small zip)."""
    assert (ROOT / "rl-trained-agents" / "shm_ppo" / f"{env_id}_1" / f"{env_id}.zip").stat().st_size < 1_000_000
    return ok(
        run(
            "-m", "rl_zoo3.enjoy", "--algo", "shm_ppo", "--env", env_id, "-f", "rl-trained-agents/",
            "--no-render", "-n", str(n_timesteps), "--num-threads", "1",
        )
    )  # fmt: skip


def test_pretrained_agent_runs():
    result = enjoy_shipped_agent("CartPoleNoVel-v1", 501)  # an episode ends by step 500 at the latest
    assert "Episode Reward" in result.stdout


def test_pretrained_visual_match_agent_remembers():
    """enjoy carries the memory across steps and reads the run's env_kwargs (one colour-to-door map): the shipped agent
    succeeds in (nearly) every episode, where a policy without memory gets 1/3."""
    result = enjoy_shipped_agent("VisualMatch-v0", 800)  # 20 episodes
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Success rate:")]
    assert float(line.split(":")[1].strip(" %")) >= 90.0, line


# ------------------------------------------------------------------------------------------------------------
# Bad input: one line, no traceback
# ------------------------------------------------------------------------------------------------------------
def test_bad_cli_inputs_are_one_line(tmp_path):
    base = ["-m", "rl_zoo3.train", "--algo", "shm_ppo", "-f", str(tmp_path)]
    one_line_error(run(*base, "--env", "NoSuchEnv-v0"), "NoSuchEnv-v0 not found")
    one_line_error(run(*base, "--env", "CartPole-v1", "-params", "lstm_hidden_size:64"), "-params", "lstm_hidden_size")
    one_line_error(run(*base, "--env", "CartPole-v1", "-params", "n_steps:'many'"), "n_steps", "integer")
    enjoy = run("-m", "rl_zoo3.enjoy", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--no-render")
    one_line_error(enjoy, "not found")


@pytest.mark.parametrize(
    "override, message",
    [
        ({"foo": 1}, "takes no hyperparameter 'foo'"),
        ({"seed": 1}, "set by the zoo"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"batch_size": 3.5}, "batch_size"),
        ({"use_sde": "yes"}, "use_sde"),
        ({"n_timesteps": "1e5"}, "!!float"),
        ({"ent_coef": "fast"}, "ent_coef"),
        ({"ent_coef": "auto"}, "ent_coef"),
        ({"ent_coef": "lin_0.1_low"}, "ent_coef"),
        ({"ent_coef": "lin_0.1_0.01_0"}, "ent_coef"),
        ({"learning_rate": "lin_3e-4_1e-5"}, "learning_rate"),  # the zoo converts it: start values only
    ],
)
def test_hyperparam_checks(override, message):
    hyperparams = {"n_timesteps": 1000, "policy": "MlpShmPolicy", **override}
    with pytest.raises(ZooConfigError, match=message):
        check_hyperparams(hyperparams, "test")


@pytest.mark.parametrize("value, start, end", [("lin_0.05", 0.05, 0.0), ("lin_0.1_0.01", 0.1, 0.01)])
def test_entropy_schedule_from_a_lin_string(tmp_path, value, start, end):
    import argparse

    install_hook()
    from rl_zoo3.exp_manager import ExperimentManager

    overrides = {"ent_coef": value, "n_envs": 2, "n_steps": 64, "batch_size": 64, "sequence_length": 32}
    manager = ExperimentManager(
        argparse.Namespace(), "shm_ppo", "CartPole-v1", str(tmp_path), n_timesteps=128, eval_freq=-1,
        hyperparams=overrides, seed=0, verbose=0, device="cpu",
    )  # fmt: skip
    model, _ = manager.setup_experiment()
    assert (model.ent_coef(1.0), model.ent_coef(0.5), model.ent_coef(0.0)) == pytest.approx((start, (start + end) / 2, end))
    model.learn(128)
    progress = model._current_progress_remaining
    assert model.logger.name_to_value["train/ent_coef"] == pytest.approx(end + (start - end) * progress)
    model.env.close()


def test_policy_kwargs_checks():
    check_policy_kwargs("MlpShmPolicy", {"memory_size": 8, "calibration": "fixed"})
    with pytest.raises(ZooConfigError, match="lstm_hidden_size"):
        check_policy_kwargs("MlpShmPolicy", {"lstm_hidden_size": 8})
    with pytest.raises(ZooConfigError, match="calibration"):
        check_policy_kwargs("MlpShmPolicy", {"calibration": "sometimes"})
    with pytest.raises(ZooConfigError, match=r"memory.decay"):
        check_policy_kwargs("MlpShmPolicy", {"memory_decay": 2})
    with pytest.raises(ZooConfigError, match="Unknown critic_memory 'both'"):
        check_policy_kwargs("MlpShmPolicy", {"critic_memory": "both"})
    with pytest.raises(ZooConfigError, match="critic_trains_memory=True is not a valid critic memory"):
        check_policy_kwargs("MlpShmPolicy", {"critic_trains_memory": True})
    check_policy_kwargs("MlpShmPolicy", {"critic_memory": "joint"})
    # the deprecated flags of a valid mode still pass (the policy warns when it is built)
    check_policy_kwargs("MlpShmPolicy", {"shared_memory": True, "enable_critic_memory": False, "critic_trains_memory": True})
    with pytest.raises(ZooConfigError, match="unknown policy"):
        check_policy_kwargs("MlpLstmPolicy", None)


# ------------------------------------------------------------------------------------------------------------
# Optuna sampler and every yml entry (in-process)
# ------------------------------------------------------------------------------------------------------------
def test_sampler_builds_a_model():
    import optuna

    from sb3_shm import ShmPPO

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sharing = set()
    for _ in range(6):
        trial = study.ask()
        params = sample_shm_ppo_params(trial, 0, 1, {})
        assert params["batch_size"] <= params["n_steps"]
        assert params["policy_kwargs"]["calibration"] in ("random", "fixed", "none")
        assert convert_shm_ppo_params(trial.params) == params
        # as the zoo builds a trial's model: the sampled values over the entry's, here one with long sequences
        # (VisualMatch's and POPGym's entries set sequence_length; the sampled n_steps may be shorter)
        model = ShmPPO("MlpShmPolicy", "CartPole-v1", **{"sequence_length": 1024, **params})
        assert model.sequence_length == params["batch_size"]
        assert model.policy.memory_size == params["policy_kwargs"]["memory_size"]
        assert model.policy.memory_actor.decay == params["policy_kwargs"]["memory_decay"]
        assert model.policy.critic_trains_memory == (trial.params["memory_sharing"] == "joint")
        sharing.add(trial.params["memory_sharing"])
    assert sharing == {"separate", "joint"}, "the test needs both memory layouts"


def test_benchmark_tunes_recurrent_ppo_over_the_same_ppo_space():
    import importlib.util

    import optuna
    from sb3_contrib import RecurrentPPO

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "learning" / "optimize.py"
    spec = importlib.util.spec_from_file_location("benchmark_optimize", path)
    optimize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(optimize)
    shm_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    lstm_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(2):
        shm_trial, lstm_trial = shm_study.ask(), lstm_study.ask()
        shm_params = sample_shm_ppo_params(shm_trial, 0, 1, {})
        params = optimize.sample_ppo_lstm_params(lstm_trial, 0, 1, {})
        # same PPO search space (names and ranges), memories apart
        shared = set(shm_trial.distributions) & set(lstm_trial.distributions)
        assert shared == set(shm_trial.distributions) - {
            "memory_size",
            "bank_size",
            "calibration",
            "memory_decay",
            "memory_sharing",
        }
        assert set(lstm_trial.distributions) - shared == {"lstm_hidden_size"}
        assert all(shm_trial.distributions[key] == lstm_trial.distributions[key] for key in shared)
        assert params["batch_size"] <= params["n_steps"] and shm_params["batch_size"] <= shm_params["n_steps"]
        assert optimize.convert_ppo_lstm_params(lstm_trial.params) == params
        model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", **params)
        assert model.policy.lstm_actor.hidden_size == params["policy_kwargs"]["lstm_hidden_size"]


ENTRIES = yaml.safe_load(HYPERPARAMS_FILE.read_text())
REQUIRED = {
    "CartPole-v1",
    "CartPoleNoVel-v1",
    "PendulumNoVel-v1",
    "LunarLanderNoVel-v3",
    "VisualMatch-v0",
    "KeyToDoor-v0",
    "Wind-v0",
    "PointRobot-v0",
    "POPGym-RepeatPreviousEasy-v0",
}


def test_yml_has_required_entries_with_measured_comment():
    """Every entry is preceded by a comment that says what was measured with it (issue 4: score and steps)."""
    assert REQUIRED <= set(ENTRIES)
    lines = HYPERPARAMS_FILE.read_text().splitlines()
    for env_id in ENTRIES:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{env_id}:"))
        comment = []
        while index > 0 and lines[index - 1].startswith("#"):
            index -= 1
            comment.insert(0, lines[index])
        text = " ".join(comment)
        assert "Measured" in text, f"{env_id}: needs a comment that says what was measured (score, steps)"
        assert any(char.isdigit() for char in text), f"{env_id}: the comment names no score or step count"


def test_every_distractor_length_has_an_entry():
    """
    `--env VisualMatch-60-v0` (any registered length) finds the entry of its base env; Visual Match's longer distractors
    keep the former exploration settings (n_envs, ent_coef: the entry's comment says why) and nothing else differs.
    """
    from sb3_shm.envs import DISTRACTOR_LENGTHS

    for name in ("VisualMatch", "KeyToDoor"):
        base = ENTRIES[f"{name}-v0"]
        for length in DISTRACTOR_LENGTHS:
            entry = ENTRIES[f"{name}-{length}-v0"]
            differ = {key for key in {*entry, *base} if entry.get(key) != base.get(key)}
            allowed = {"n_envs", "ent_coef"} if name == "VisualMatch" and length > 15 else set()
            assert differ <= allowed, f"{name}-{length}-v0 differs from {name}-v0 in {sorted(differ - allowed)}"


def _env_skip_reason(env_id: str) -> str | None:
    import gymnasium

    if not has_env(env_id):
        return f"{env_id} is not registered (sb3_shm.envs missing?)"
    try:
        gymnasium.make(env_id).close()
    except (ImportError, gymnasium.error.DependencyNotInstalled) as error:
        return f"{env_id} needs a missing package: {error}"
    return None


@pytest.mark.parametrize("env_id", sorted(ENTRIES))
def test_every_yml_entry_learns(env_id, tmp_path):
    import argparse

    install_hook()
    from rl_zoo3.exp_manager import ExperimentManager

    reason = _env_skip_reason(env_id)
    if reason:
        pytest.skip(reason)
    entry = copy.deepcopy(ENTRIES[env_id])
    check_hyperparams(entry, env_id)
    # Small rollouts so that 256 steps include a training phase; everything else comes from the entry
    overrides = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "sequence_length": 32, "n_epochs": 1}
    manager = ExperimentManager(
        argparse.Namespace(), "shm_ppo", env_id, str(tmp_path), n_timesteps=256, eval_freq=-1, hyperparams=overrides,
        seed=0, verbose=0, device="cpu",
    )  # fmt: skip
    assert manager.config == str(HYPERPARAMS_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = manager.setup_experiment()
        model.learn(256)
    assert model.num_timesteps >= 256
    model.env.close()
