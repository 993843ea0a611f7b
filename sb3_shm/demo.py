"""
The README's main job: show that the memory learns a task that memoryless PPO cannot solve.

Run ``python -m sb3_shm.demo``. The task: recall a cue seen 5 steps earlier (return +1 when recalled, -1 when not, so
0 at chance). ShmPPO and memoryless PPO (Stable-Baselines3's ``PPO``) train on the same task with the same budget,
then a table compares them. Takes about 20 s on one CPU core.
"""

import argparse
import sys
import time
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_shm import ShmPPO
from sb3_shm.common.recall_env import RecallFirstEnv

# Settings shared by both agents (ShmPPO's that learn the task; PPO gets the same rollout and optimizer settings)
SHARED_KWARGS: dict[str, Any] = dict(n_steps=32, batch_size=128, n_epochs=4, learning_rate=1e-3)


def make_recall_model(env: VecEnv, seed: int = 0, verbose: int = 0) -> ShmPPO:
    """
    ShmPPO with the settings that learn the recall task (also used by the test suite).

    :param env: vectorised RecallFirstEnv
    :param seed: random seed
    :param verbose: SB3 verbosity
    :return: an untrained model
    """
    policy_kwargs = dict(memory_size=16, net_arch=[32])
    return ShmPPO("MlpShmPolicy", env, seed=seed, verbose=verbose, policy_kwargs=policy_kwargs, **SHARED_KWARGS)


def make_memoryless_model(env: VecEnv, seed: int = 0, verbose: int = 0) -> PPO:
    """
    Memoryless PPO (Stable-Baselines3's ``PPO`` with an MLP policy) with the same rollout, optimizer and layer sizes
    as :func:`make_recall_model`: the baseline of the demo.

    :param env: vectorised RecallFirstEnv
    :param seed: random seed
    :param verbose: SB3 verbosity
    :return: an untrained model
    """
    return PPO("MlpPolicy", env, seed=seed, verbose=verbose, policy_kwargs=dict(net_arch=[32]), **SHARED_KWARGS)


class DemoResult(NamedTuple):
    """One agent's line of the demo's table."""

    agent: str
    mean_return: float
    success_rate: float
    seconds: float


def train_and_evaluate(
    agent: str, timesteps: int, delay: int, seed: int, n_eval_episodes: int = 100, n_cues: int = 2
) -> DemoResult:
    """
    Train one agent on the recall task and evaluate it (deterministic actions).

    :param agent: "ShmPPO" or "PPO"
    :param timesteps: training steps
    :param delay: steps between the cue and the question
    :param seed: random seed (evaluation uses ``seed + 1000``)
    :param n_eval_episodes: evaluation episodes
    :param n_cues: number of cues (chance: success 1 / n_cues)
    :return: the agent's mean return, success rate and training + evaluation time
    """
    makers = {"ShmPPO": make_recall_model, "PPO": make_memoryless_model}
    if agent not in makers:
        raise ValueError(f"unknown agent {agent!r}: choose one of {', '.join(makers)}")
    env_kwargs = dict(delay=delay, n_cues=n_cues)
    start = time.perf_counter()
    model: BaseAlgorithm = makers[agent](make_vec_env(RecallFirstEnv, n_envs=8, seed=seed, env_kwargs=env_kwargs), seed)
    model.learn(timesteps)
    eval_env = make_vec_env(RecallFirstEnv, n_envs=4, seed=seed + 1000, env_kwargs=env_kwargs)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=n_eval_episodes, return_episode_rewards=True)
    episode_returns = np.asarray(returns, dtype=float)
    # An episode returns +1 (recalled) or -1 (not)
    return DemoResult(agent, float(episode_returns.mean()), float((episode_returns > 0).mean()), time.perf_counter() - start)


def format_table(results: list[DemoResult], n_cues: int = 2) -> str:
    """
    The demo's table: one line per agent, and the chance level a memoryless policy cannot beat.

    :param results: the agents' results
    :param n_cues: number of cues of the task
    :return: the table, several lines
    """
    chance_return, chance_success = 2 / n_cues - 1, 1 / n_cues
    lines = [f"{'agent':<8} {'success':>8} {'return':>7} {'chance (success / return)':>26} {'time':>7}"]
    for result in results:
        lines.append(
            f"{result.agent:<8} {result.success_rate:>8.0%} {result.mean_return:>+7.2f} "
            f"{f'{chance_success:.0%} / {chance_return:+.2f}':>26} {result.seconds:>6.0f}s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[DemoResult]:
    """
    Train and evaluate ShmPPO and memoryless PPO on the recall task, print a progress line per agent and the table.

    :param argv: command line arguments (default: ``sys.argv[1:]``)
    :return: the agents' results
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=30_000, help="training steps of each agent")
    parser.add_argument("--delay", type=int, default=5, help="steps between the cue and the question")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=100, help="evaluation episodes of each agent")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    print(f"Recall a cue seen {args.delay} steps earlier (2 cues): {args.timesteps} training steps per agent", flush=True)
    results = []
    for agent in ("ShmPPO", "PPO"):
        label = "ShmPPO (memory)" if agent == "ShmPPO" else "PPO (memoryless)"
        print(f"training {label} ...", end=" ", flush=True)
        result = train_and_evaluate(agent, args.timesteps, args.delay, args.seed, args.eval_episodes)
        print(f"done in {result.seconds:.0f} s", flush=True)
        results.append(result)
    print()
    print(format_table(results))
    print("\nsuccess: share of episodes whose cue was recalled; return: +1 recalled, -1 not (deterministic actions)")
    return results


if __name__ == "__main__":
    main()
