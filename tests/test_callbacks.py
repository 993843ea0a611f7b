"""MemoryDiagnosticsCallback, and the SB3 / RL Zoo callbacks used with ShmPPO (in-process, small runs)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    ProgressBarCallback,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

from sb3_shm import MemoryDiagnosticsCallback, ShmPPO
from sb3_shm.common.recall_env import RecallFirstEnv
from sb3_shm.zoo import HYPERPARAMS_FILE

ROOT = Path(__file__).resolve().parent.parent
DELAY = 3  # RecallFirstEnv episodes last DELAY + 1 steps
KEYS = ("memory_abs_max", "memory_abs_mean", "calib_near_0", "calib_near_2", "clamp_hit", "clamp_hit_envs", "eta_mean")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recall_env(n_envs: int = 2, seed: int = 0, **env_kwargs):
    return make_vec_env(RecallFirstEnv, n_envs=n_envs, seed=seed, env_kwargs={"delay": DELAY, **env_kwargs})


def small_model(env=None, seed: int = 0, **policy_kwargs) -> ShmPPO:
    return ShmPPO(
        "MlpShmPolicy",
        recall_env() if env is None else env,
        n_steps=16,
        batch_size=32,
        n_epochs=2,
        seed=seed,
        device="cpu",
        policy_kwargs={"memory_size": 8, "net_arch": [16], **policy_kwargs},
    )


def parameters(model) -> th.Tensor:
    return th.nn.utils.parameters_to_vector(model.policy.parameters()).detach().clone()


def read_csv(path: Path) -> list[dict[str, float]]:
    with open(path) as file:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


# ------------------------------------------------------------------------------------------------------------
# MemoryDiagnosticsCallback
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("log_freq", [0, -5, 1.5, True, "10"])
def test_bad_log_freq_is_a_value_error(log_freq):
    with pytest.raises(ValueError, match="log_freq must be an integer >= 1"):
        MemoryDiagnosticsCallback(log_freq=log_freq)
    with pytest.raises(ValueError, match="saturation_eps"):
        MemoryDiagnosticsCallback(saturation_eps=1.0)


def test_non_shm_model_is_a_type_error_at_init_callback():
    for model in (
        PPO("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, device="cpu"),
        RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16, batch_size=16, device="cpu"),
    ):
        with pytest.raises(TypeError, match="needs an ShmPPO model"):
            model.learn(64, callback=MemoryDiagnosticsCallback())
        assert model.num_timesteps == 0, "the error must come before training starts"
    model = small_model()
    model.policy.memory_actor = None  # a policy without memory
    with pytest.raises(TypeError, match="needs a policy with an SHM memory"):
        MemoryDiagnosticsCallback().init_callback(model)


def test_diagnostics_are_logged_and_sane(tmp_path):
    model = small_model()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(96, callback=MemoryDiagnosticsCallback(log_freq=8))
    rows = read_csv(tmp_path / "progress.csv")
    assert len(rows) == 3
    for row in rows:
        for cell in ("actor", "critic"):
            values = {key: row[f"shm/{cell}/{key}"] for key in KEYS}
            assert values["memory_abs_max"] >= values["memory_abs_mean"] > 0
            assert values["memory_abs_max"] <= model.policy.memory_actor.clamp
            for key in ("calib_near_0", "calib_near_2", "clamp_hit", "clamp_hit_envs"):
                assert 0.0 <= values[key] <= 1.0
            assert 0.0 < values["eta_mean"] < 1.0
    # No gradient before the first update; then the last minibatch's gradient reaches the memories
    assert "shm/actor/grad_norm" not in rows[0] and "shm/theta_evenness" not in rows[0]
    for cell in ("actor", "critic"):
        assert rows[-1][f"shm/{cell}/grad_norm"] > 0
        assert 0 < rows[-1][f"shm/{cell}/grad_share"] <= 1
    # Bank usage is counted over the completed rollouts (128 rows, 32 draws per rollout)
    assert 0 < rows[-1]["shm/theta_evenness"] <= 1
    assert 0 < rows[-1]["shm/theta_rows_used"] <= 32 / 128


def test_grad_norm_is_that_of_the_last_minibatch():
    model = small_model()
    callback = MemoryDiagnosticsCallback(log_freq=1000)
    model.learn(64, callback=callback)
    grads = [p.grad for p in model.policy.memory_actor.parameters() if p.grad is not None]
    expected = th.linalg.vector_norm(th.stack([g.norm() for g in grads])).item()
    assert expected > 0
    assert callback.diagnostics()["shm/actor/grad_norm"] == pytest.approx(expected)


def test_saturation_and_clamp_are_detected():
    model = small_model(memory_clamp=1e-6)
    callback = MemoryDiagnosticsCallback(log_freq=1000)
    model.learn(32, callback=callback)
    values = callback.diagnostics()
    assert values["shm/actor/clamp_hit"] > 0.1 and values["shm/actor/clamp_hit_envs"] == 1.0
    assert values["shm/actor/calib_near_0"] + values["shm/actor/calib_near_2"] < 0.5
    with th.no_grad():
        model.policy.memory_actor.theta_bank.mul_(1e4)
    values = callback.diagnostics()
    assert values["shm/actor/calib_near_0"] + values["shm/actor/calib_near_2"] > 0.5


@pytest.mark.parametrize(
    "policy_kwargs",
    [
        dict(calibration="none", critic_memory="none", memory_clamp=None),
        dict(calibration="fixed", critic_memory="shared"),
    ],
)
def test_other_memory_layouts(policy_kwargs):
    model = small_model(**policy_kwargs)
    callback = MemoryDiagnosticsCallback(log_freq=1000)
    model.learn(32, callback=callback)
    values = callback.diagnostics()
    assert not any(key.startswith("shm/critic/") for key in values)
    if policy_kwargs["calibration"] == "none":
        assert values["shm/actor/calib_near_0"] == values["shm/actor/calib_near_2"] == 0.0
        assert "shm/theta_evenness" not in values and "shm/actor/clamp_hit" not in values
    else:
        assert values["shm/theta_evenness"] == 0.0 and values["shm/theta_rows_used"] == 1 / 128


def test_diagnostics_do_not_change_training():
    reference = small_model()
    reference.learn(64)
    diagnosed = small_model()
    diagnosed.learn(64, callback=MemoryDiagnosticsCallback(log_freq=1))
    th.testing.assert_close(parameters(diagnosed), parameters(reference), rtol=0, atol=0)


def test_hyperparams_file_callback_is_picked_up_by_the_zoo(tmp_path):
    entry = yaml.safe_load(HYPERPARAMS_FILE.read_text())["CartPoleNoVel-v1"]
    ((name, kwargs),) = entry["callback"][0].items()
    assert name == "sb3_shm.callbacks.MemoryDiagnosticsCallback" and kwargs["log_freq"] <= 128
    result = subprocess.run(
        [
            sys.executable, "-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPoleNoVel-v1", "-n", "512",
            "-f", str(tmp_path), "--num-threads", "1", "--eval-freq", "-1", "-params", "n_envs:2", "n_epochs:1",
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "actor/memory_abs_max" in result.stdout and "theta_evenness" in result.stdout
    config = tmp_path / "shm_ppo" / "CartPoleNoVel-v1_1" / "CartPoleNoVel-v1" / "config.yml"
    config = yaml.load(config.read_text(), Loader=yaml.UnsafeLoader)
    assert "MemoryDiagnosticsCallback" in str(dict(config)["callback"])


# ------------------------------------------------------------------------------------------------------------
# SB3 and RL Zoo callbacks with ShmPPO
# ------------------------------------------------------------------------------------------------------------
def test_eval_callback_carries_and_resets_memory_and_reports_success(tmp_path, monkeypatch):
    model = small_model()
    calls = []
    predict = model.policy.predict

    def spy(observation, state=None, episode_start=None, deterministic=False):
        action, new_state = predict(observation, state, episode_start, deterministic)
        # A reset memory depends on this step only: the same as starting from an empty memory
        fresh = predict(observation, None, np.ones(len(observation), dtype=bool), deterministic)[1]
        calls.append((observation.copy(), state, np.array(episode_start), new_state, fresh))
        return action, new_state

    monkeypatch.setattr(model.policy, "predict", spy)
    eval_callback = EvalCallback(recall_env(seed=1), n_eval_episodes=4, eval_freq=16, log_path=str(tmp_path))
    model.learn(64, callback=eval_callback)
    assert len(eval_callback.evaluations_timesteps) == 2
    assert sum(state is None for _, state, *_ in calls) == 2, "each evaluation starts from an empty memory"
    for step, (observation, state, starts, new_state, fresh) in enumerate(calls):
        if state is not None:
            # The memory returned by the previous step comes back in (the reset is the episode_start flag's job)
            for memory, previous in zip(state, calls[step - 1][3], strict=True):
                np.testing.assert_array_equal(memory, previous)
        # Episodes start exactly where the cue is shown (t = 0)
        is_start = observation[:, :2].sum(axis=1) > 0
        np.testing.assert_array_equal(starts, is_start)
        if is_start.any():
            for memory, reset in zip(new_state, fresh, strict=True):
                np.testing.assert_allclose(memory[is_start], reset[is_start], rtol=1e-5, atol=1e-7)
    assert any(not starts.all() for _, _, starts, *_ in calls[1:])
    # is_success from the env's info reaches the evaluations (2 evaluations of 4 episodes) and the logger
    successes = np.load(tmp_path / "evaluations.npz")["successes"]
    assert successes.shape == (2, 4)
    assert len(eval_callback._is_success_buffer) == 4  # what EvalCallback logs as eval/success_rate


def test_checkpoint_callback_saves_vecnormalize(tmp_path):
    env = VecNormalize(recall_env())
    model = small_model(env)
    model.learn(64, callback=CheckpointCallback(save_freq=16, save_path=str(tmp_path), save_vecnormalize=True))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "rl_model_32_steps.zip",
        "rl_model_64_steps.zip",
        "rl_model_vecnormalize_32_steps.pkl",
        "rl_model_vecnormalize_64_steps.pkl",
    ]
    stats = VecNormalize.load(str(tmp_path / "rl_model_vecnormalize_64_steps.pkl"), recall_env())
    assert stats.obs_rms.count > 1
    loaded = ShmPPO.load(tmp_path / "rl_model_64_steps.zip", env=stats, device="cpu")
    loaded.learn(32)


def test_stop_training_on_reward_threshold():
    stop = StopTrainingOnRewardThreshold(reward_threshold=-10.0)
    eval_callback = EvalCallback(recall_env(seed=1), callback_on_new_best=stop, n_eval_episodes=2, eval_freq=8)
    model = small_model()
    model.learn(10_000, callback=eval_callback)
    assert model.num_timesteps == 16 and eval_callback.best_mean_reward >= -10.0


def test_stop_training_on_no_model_improvement():
    # One cue: every episode earns +1, so the best mean reward can never improve after the first evaluation
    env = recall_env(n_cues=1)
    stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=1, min_evals=1)
    eval_callback = EvalCallback(recall_env(seed=1, n_cues=1), callback_after_eval=stop, n_eval_episodes=2, eval_freq=8)
    model = small_model(env)
    model.learn(10_000, callback=eval_callback)
    assert model.num_timesteps == 3 * 8 * 2 and stop.no_improvement_evals == 2


def test_progress_bar_and_callback_list(tmp_path, capsys):
    class Count(BaseCallback):
        def _on_step(self) -> bool:
            return True

    count = Count()
    diagnostics = MemoryDiagnosticsCallback(log_freq=4)
    checkpoint = CheckpointCallback(save_freq=16, save_path=str(tmp_path))
    model = small_model()
    model.learn(64, callback=CallbackList([ProgressBarCallback(), count, diagnostics, checkpoint]))
    assert count.n_calls == diagnostics.n_calls == 32
    assert len(list(tmp_path.glob("rl_model_*_steps.zip"))) == 2
    model.learn(32, progress_bar=True, reset_num_timesteps=False)
    assert model.num_timesteps == 96


def test_rl_zoo_trial_eval_callback():
    import optuna
    from rl_zoo3.callbacks import TrialEvalCallback

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    for pruner, pruned in ((optuna.pruners.NopPruner(), False), (AlwaysPrune(), True)):
        trial = optuna.create_study(pruner=pruner).ask()
        callback = TrialEvalCallback(recall_env(seed=1), trial, n_eval_episodes=2, eval_freq=8)
        model = small_model()
        model.learn(64, callback=callback)
        assert callback.is_pruned is pruned
        assert callback.eval_idx == (1 if pruned else 4)
        assert np.isfinite(callback.last_mean_reward)
        assert model.num_timesteps == (16 if pruned else 64)


def test_rl_zoo_save_vecnormalize_callback(tmp_path):
    from rl_zoo3.callbacks import SaveVecNormalizeCallback

    eval_env = VecNormalize(recall_env(seed=1), training=False, norm_reward=False)
    save = SaveVecNormalizeCallback(save_freq=1, save_path=str(tmp_path))
    eval_callback = EvalCallback(eval_env, callback_on_new_best=save, best_model_save_path=str(tmp_path), eval_freq=8)
    model = small_model(VecNormalize(recall_env()))
    every = SaveVecNormalizeCallback(save_freq=8, save_path=str(tmp_path / "all"), name_prefix="vn")
    model.learn(32, callback=CallbackList([eval_callback, every]))
    assert (tmp_path / "vecnormalize.pkl").is_file() and (tmp_path / "best_model.zip").is_file()
    assert sorted(path.name for path in (tmp_path / "all").iterdir()) == ["vn_16_steps.pkl", "vn_32_steps.pkl"]
    ShmPPO.load(tmp_path / "best_model.zip").predict(np.zeros((1, 3), dtype=np.float32))
