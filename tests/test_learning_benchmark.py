"""The learning benchmark's own pieces (benchmarks/learning): the joint-LSTM RecurrentPPO and run.py's run list."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

LEARNING = Path(__file__).resolve().parent.parent / "benchmarks" / "learning"
sys.path.insert(0, str(LEARNING))

from joint_lstm import JointLstmPolicy  # noqa: E402


def lstm_grad_from_value_loss(policy_class: type, **kwargs) -> float:
    """Sum of |d value / d LSTM input weights| on a random batch (0 when the value loss does not reach the LSTM)."""
    import sb3_shm.envs  # noqa: F401  (registers VisualMatch-v0)
    from sb3_contrib.common.recurrent.type_aliases import RNNStates

    env = gym.make("VisualMatch-v0")
    th.manual_seed(0)
    policy = policy_class(env.observation_space, env.action_space, lambda _: 3e-4, lstm_hidden_size=8, **kwargs)
    hidden = th.zeros(1, 2, 8)  # 2 sequences of 3 steps
    states = RNNStates((hidden, hidden), (hidden, hidden))
    values, _, _ = policy.evaluate_actions(th.rand(6, 75), th.zeros(6), states, th.zeros(6))
    values.sum().backward()
    grad = policy.lstm_actor.weight_ih_l0.grad
    return 0.0 if grad is None else float(grad.abs().sum())


def test_joint_lstm_value_loss_trains_the_lstm():
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    assert lstm_grad_from_value_loss(JointLstmPolicy) > 0
    # sb3-contrib's shared LSTM detaches the critic's input: the reason joint_lstm.py exists
    assert lstm_grad_from_value_loss(RecurrentActorCriticPolicy, shared_lstm=True, enable_critic_lstm=False) == 0


def test_run_lists_each_task_s_algorithms(tmp_path):
    result = subprocess.run(
        [sys.executable, str(LEARNING / "run.py"), "--tasks", "VisualMatch-15-onemap", "KeyToDoor-15-2M", "--seeds", "0",
         "--algos", "shm_ppo", "ppo_lstm", "ppo", "ppo_lstm_joint", "--dry-run", "-f", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = {line.split(":")[0] for line in result.stdout.splitlines()[1:]}
    assert runs == {
        "VisualMatch-15-onemap shm_ppo seed 0",
        "VisualMatch-15-onemap ppo_lstm seed 0",
        "VisualMatch-15-onemap ppo seed 0",
        "VisualMatch-15-onemap ppo_lstm_joint seed 0",
        "KeyToDoor-15-2M shm_ppo seed 0",
        "KeyToDoor-15-2M ppo_lstm seed 0",
        "KeyToDoor-15-2M ppo seed 0",
    }
    joint = next(line for line in result.stdout.splitlines() if "ppo_lstm_joint seed" in line)
    assert "--algo ppo_lstm --gym-packages joint_lstm" in joint
    assert "policy: MlpJointLstmPolicy" in (tmp_path / "confs" / "VisualMatch-15-onemap" / "ppo_lstm_joint.yml").read_text()


def test_colour_separation_tells_apart_separated_and_mixed_classes():
    from readout_probe import colour_separation, nearest_mean_accuracy

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(3), 40)
    noise = rng.normal(size=(120, 4))
    apart = noise + 10 * np.eye(4)[labels]
    assert colour_separation(apart, labels) > 3 and nearest_mean_accuracy(apart, labels) == 1.0
    assert colour_separation(noise, labels) < 0.5 and nearest_mean_accuracy(noise, labels) < 0.6


def test_readout_probe_reports_a_trained_agent(tmp_path):
    import sb3_shm.envs  # noqa: F401  (registers VisualMatch-15-v0)
    from readout_probe import probe

    from sb3_shm import ShmPPO

    env = gym.make("VisualMatch-15-v0", door_colours=[0, 1, 2])
    model = ShmPPO("MlpShmPolicy", env, n_steps=32, batch_size=32, policy_kwargs=dict(memory_size=4), seed=0)
    model.save(tmp_path / "agent.zip")
    lines = probe(str(tmp_path / "agent.zip"), distractor_length=15, episodes=6).splitlines()
    assert "colour decoded from y_t" in lines[1] and "tanh units saturated" in lines[2]
    doors = [int(count) for row in lines[3].split(": ")[1].split("; ") for count in row.split()[1].split("/")]
    assert len(doors) == 12 and sum(doors) == 6  # one touched door (or none) per episode


def test_report_names_each_task_memory_setup():
    """Every result row says which model and calibration ShmPPO trained with (the entry recorded by run.py)."""
    import yaml
    from report import memory_setup
    from run import package_hyperparams

    entries = yaml.safe_load(package_hyperparams().read_text())
    assert memory_setup(entries["POPGym-RepeatPreviousEasy-v0"]) == (
        "authors' POPGym model; calibration fixed, no clamp, critic_memory joint"
    )
    assert memory_setup({"policy_kwargs": "dict(calibration='fixed', memory_decay=0.7)"}) == (
        "MLP policy; calibration fixed, clamp 100, memory_decay 0.7, critic_memory separate"
    )
    assert memory_setup({}) == "MLP policy; calibration random, clamp 100, critic_memory separate"
    assert memory_setup({"ent_coef": "lin_0.05"}).endswith("critic_memory separate, ent_coef lin_0.05")


def test_gru_baseline_entries_differ_from_the_package_s_only_in_the_critic_memory():
    """benchmarks/learning's shm_sac_gru.yml is the package's shm_sac.yml with GRU critics: nothing else may drift."""
    import yaml
    from run import hyperparams_file

    package = yaml.safe_load(hyperparams_file("shm_sac").read_text())
    gru = yaml.safe_load(hyperparams_file("shm_sac_gru").read_text())
    assert gru, "shm_sac_gru.yml has no entry"
    for env_id, entry in gru.items():
        expected = dict(package[env_id])
        assert "critic_memory_type='shm'" in expected["policy_kwargs"]
        expected["policy_kwargs"] = expected["policy_kwargs"].replace("critic_memory_type='shm'", "critic_memory_type='gru'")
        assert entry == expected, env_id


def test_run_writes_the_task_s_overrides_into_the_conf_file(tmp_path):
    import yaml

    result = subprocess.run(
        [sys.executable, str(LEARNING / "run.py"), "--tasks", "Wind-cpu", "--seeds", "0", "--algos", "shm_sac",
         "shm_sac_gru", "--dry-run", "-f", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--algo shm_sac --env Wind-v0" in result.stdout and "Wind-cpu shm_sac_gru seed 0" in result.stdout
    for algo, critic in (("shm_sac", "shm"), ("shm_sac_gru", "gru")):
        (entry,) = yaml.safe_load((tmp_path / "confs" / "Wind-cpu" / f"{algo}.yml").read_text()).values()
        assert entry["batch_size"] == 16 and entry["gradient_steps"] == 15  # the task's, not the entry's 64 / 67
        assert entry["sequence_length"] == 100 and f"critic_memory_type='{critic}'" in entry["policy_kwargs"]


def test_report_says_whether_an_off_policy_target_is_met():
    from report import Run, sac_setup, target_cell
    from tasks import TASKS

    task = TASKS["Wind-cpu"]

    def run(seed: int, final: float) -> Run:
        entry = {"batch_size": 16, "gradient_steps": 15, "policy_kwargs": "dict(actor_memory_type='gru')"}
        return Run(seed, np.array([0, 1]), np.array([0.0, final]), task.n_timesteps, 60.0, True, entry)

    assert target_cell(task, []) == ">= 0.90: pending"
    assert target_cell(task, [run(0, 0.95), run(1, 0.9)]) == ">= 0.90: met (0.93, 2 seeds)"
    assert target_cell(task, [run(0, 0.95), run(1, 0.5)]) == ">= 0.90: **not met** (0.72, 2 seeds)"
    assert target_cell(TASKS["VisualMatch-15-onemap-sac"], [run(0, 1.0)]) == "-"
    assert sac_setup([run(0, 1.0)], task) == (
        "ShmSAC entry; actor gru, critic shm, batch_size 16, gradient_steps 15 (this task's: batch_size, gradient_steps)"
    )
