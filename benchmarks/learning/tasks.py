"""
The learning benchmark of issue 6: tasks, step budgets, evaluation settings and the algorithms compared.

Budgets are total environment steps per run, the same for every algorithm on a task (CPU scale; the SHM paper used
far more: e.g. 15M steps for POPGym).
"""

from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

HERE = Path(__file__).resolve().parent
HYPERPARAMS_DIR = HERE / "hyperparams"

# The benchmark's algorithms and how the report names them; each is an rl_zoo3 --algo (ZOO_ALGOS where the names differ)
ALGOS = {
    "shm_ppo": "ShmPPO",
    "ppo_lstm": "RecurrentPPO",
    "ppo": "PPO (no memory)",
    # RecurrentPPO whose value loss also trains its (shared) LSTM, as ShmPPO's VisualMatch entry does with its memory
    # (joint_lstm.py): run where that entry matters, to tell the memory's share of ShmPPO's result from the loss's
    "ppo_lstm_joint": "RecurrentPPO, joint LSTM",
    # Off-policy (issue 20): ShmSAC as the package's entry sets it (the authors': GRU actor, SHM critic), and the same
    # agent with GRU memories in both networks (benchmarks/learning/hyperparams/shm_sac_gru.yml), the paper's baseline
    "shm_sac": "ShmSAC",
    "shm_sac_gru": "ShmSAC, GRU memories",
}
ZOO_ALGOS = {"ppo_lstm_joint": "ppo_lstm", "shm_sac_gru": "shm_sac"}
# Algorithms whose hyperparameters are the package's own zoo files (sb3_shm/hyperparams/<algo>.yml)
PACKAGE_ALGOS = ("shm_ppo", "shm_sac")
# The report's second table: the off-policy agents, on the tasks that run them
OFF_POLICY_ALGOS = ("shm_sac", "shm_sac_gru")
# Extra rl_zoo3.train arguments of an algorithm (run.py puts this folder on PYTHONPATH for --gym-packages)
ZOO_ARGS = {"ppo_lstm_joint": ("--gym-packages", "joint_lstm")}
MAIN_ALGOS = ("shm_ppo", "ppo_lstm", "ppo")
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Task:
    """
    :param name: short name (log folder, plot file)
    :param env_id: gymnasium id passed to ``rl_zoo3.train --env``
    :param n_timesteps: step budget of one run
    :param metric: ``"success"`` (evaluation success rate, from ``info["is_success"]``), ``"return"`` (evaluation
        episode return) or ``"popgym"`` (episode return; POPGym scales every task's return to [-1, 1])
    :param hyperparams_key: entry of the hyperparameter files to use when they have none for ``env_id``
    :param eval_episodes: episodes per evaluation
    :param n_evaluations: evaluations per run (points of the learning curve)
    :param env_kwargs: keyword arguments of the env (``rl_zoo3.train --env-kwargs``; the evaluation env gets them too)
    :param algos: the algorithms run on this task (keys of ``ALGOS``)
    :param overrides: hyperparameters that replace the entry's for this task (e.g. fewer gradient steps to fit a
        CPU budget); run.py writes them into the run's conf file, so run_info.json records them
    :param target: the score an issue asks of the task's first algorithm (mean over seeds of the last evaluation),
        None where no target is set; the report says whether it is met
    """

    name: str
    env_id: str
    n_timesteps: int
    metric: str
    hyperparams_key: str | None = None
    eval_episodes: int = 20
    n_evaluations: int = 20
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algos: tuple[str, ...] = MAIN_ALGOS
    overrides: dict[str, Any] = field(default_factory=dict)
    target: float | None = None

    @property
    def eval_freq(self) -> int:
        return max(self.n_timesteps // self.n_evaluations, 1)


TASKS = {
    task.name: task
    for task in (
        # A colour-to-door map per env instance (door_colours=None), so the agent must also look at the doors (see
        # VisualMatchEnv); nobody leaves chance at 15 steps, so the 60-step variant is not run
        Task(
            "VisualMatch-15",
            "VisualMatch-15-v0",
            500_000,
            "success",
            "VisualMatch-v0",
            eval_episodes=50,
            env_kwargs=dict(door_colours=None),
        ),
        # One map for every instance, the registered default (the source's training task: it trained on one env
        # instance): pure recall. door_colours is spelled out so that the logs say which map was used
        *(
            Task(
                f"VisualMatch-{length}-onemap",
                f"VisualMatch-{length}-v0",
                1_500_000,
                "success",
                "VisualMatch-v0",
                eval_episodes=50,
                env_kwargs=dict(door_colours=[0, 1, 2]),
                algos=(*MAIN_ALGOS, "ppo_lstm_joint"),
            )
            for length in (15, 60)
        ),
        Task("KeyToDoor-15", "KeyToDoor-15-v0", 500_000, "success", "KeyToDoor-v0", eval_episodes=50),
        # 4x the budget: the success rates above were still rising at 500k
        Task(
            "KeyToDoor-15-2M",
            "KeyToDoor-15-v0",
            2_000_000,
            "success",
            "KeyToDoor-v0",
            eval_episodes=50,
        ),
        # the 60-step variant gets the 15-step variant's budget (2 cores; 1M steps of RecurrentPPO is ~25 min a run)
        Task("KeyToDoor-60", "KeyToDoor-60-v0", 500_000, "success", "KeyToDoor-v0", eval_episodes=50),
        # ShmSAC (issue 20) at its own budgets: an off-policy agent learns from far fewer env steps and costs far more
        # CPU per step than PPO, so these tasks run the off-policy agents only.
        # Visual Match as the package's shm_sac entry sets it (SAC-Discrete, 10 gradient steps per 40-step episode)
        Task(
            "VisualMatch-15-onemap-sac",
            "VisualMatch-15-v0",
            40_000,
            "success",
            "VisualMatch-v0",
            eval_episodes=50,
            n_evaluations=8,
            env_kwargs=dict(door_colours=[0, 1, 2]),
            algos=OFF_POLICY_ALGOS,
        ),
        # Wind within the 500k env steps, at a 2-core CPU's budget: 16 episodes per batch and 15 gradient steps
        # per 100-step episode (the entry, the authors': 64 and 67, about 8 h a run here; this: about 2 h)
        Task(
            "Wind-cpu",
            "Wind-v0",
            500_000,
            "success",
            eval_episodes=20,
            algos=OFF_POLICY_ALGOS,
            overrides=dict(batch_size=16, gradient_steps=15),
            target=0.9,
        ),
        # PointRobot (sparse goal on a half-circle, 2 x 100-step episodes per task) at a 2-core CPU's budget: 16
        # meta-episodes per batch, 10 gradient steps per 200-step meta-episode and 100 random meta-episodes before
        # training (the entry, the authors': 32, 40 and 400; 200k updates, about 17 h a run here at 0.15 s an update);
        # this: 6.5k updates, 15-16 min a run (24 with GRU memories). Target: beat ShmPPO's 0.20 (shm_ppo.yml, 1M steps)
        Task(
            "PointRobot-cpu",
            "PointRobot-v0",
            150_000,
            "success",
            eval_episodes=20,
            n_evaluations=15,
            algos=OFF_POLICY_ALGOS,
            overrides=dict(batch_size=16, gradient_steps=10, learning_starts=20_000),
            target=0.2,
        ),
        Task("CartPoleNoVel", "CartPoleNoVel-v1", 100_000, "return", eval_episodes=10),
        Task("PendulumNoVel", "PendulumNoVel-v1", 100_000, "return", eval_episodes=10),
        # POPGym: 300k steps, 1/50 of the paper's 15M (at 1M a RecurrentPPO run takes ~25 min on one core)
        Task("RepeatPreviousEasy", "POPGym-RepeatPreviousEasy-v0", 300_000, "popgym"),
        Task("RepeatPreviousMedium", "POPGym-RepeatPreviousMedium-v0", 300_000, "popgym"),
        Task("AutoencodeEasy", "POPGym-AutoencodeEasy-v0", 300_000, "popgym"),
        Task("CountRecallEasy", "POPGym-CountRecallEasy-v0", 300_000, "popgym"),
    )
}

METRIC_LABELS = {
    "success": "success rate",
    "return": "episode return",
    "popgym": "POPGym normalised return",
}
