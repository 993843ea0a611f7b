"""
The README's main job: train ShmPPO on a memory task that memoryless PPO cannot solve, and report the result.

Run ``python -m sb3_shm.demo``. The task: recall a cue seen 5 steps earlier (return 1 when recalled, about 0 without
memory). Takes about a minute on 2 CPU cores.
"""

import argparse
import time

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_shm import ShmPPO
from sb3_shm.common.recall_env import RecallFirstEnv


def make_recall_model(env: VecEnv, seed: int = 0, verbose: int = 0) -> ShmPPO:
    """
    ShmPPO with the settings that learn the recall task (also used by the test suite).

    :param env: vectorised RecallFirstEnv
    :param seed: random seed
    :param verbose: SB3 verbosity
    :return: an untrained model
    """
    return ShmPPO(
        "MlpShmPolicy",
        env,
        n_steps=32,
        batch_size=128,
        n_epochs=4,
        learning_rate=1e-3,
        seed=seed,
        verbose=verbose,
        policy_kwargs=dict(memory_size=16, net_arch=[32]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=30_000, help="training steps")
    parser.add_argument("--delay", type=int, default=5, help="steps between the cue and the question")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = make_vec_env(RecallFirstEnv, n_envs=8, seed=args.seed, env_kwargs=dict(delay=args.delay))
    model = make_recall_model(env, seed=args.seed, verbose=1)
    start = time.time()
    model.learn(args.timesteps, progress_bar=True)
    eval_env = make_vec_env(RecallFirstEnv, n_envs=4, seed=args.seed + 1000, env_kwargs=dict(delay=args.delay))
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=100)
    print(f"ShmPPO, recall after {args.delay} steps: return {mean_return:.2f} +- {std_return:.2f} (1 = always recalled, ")
    print(f"0 = chance) after {args.timesteps} steps in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
