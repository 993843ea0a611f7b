"""
ShmPPO with VecNormalize, EvalCallback and CheckpointCallback, on Pendulum without its angular velocity.

Hiding the velocity makes the task partially observable: the memory has to infer it from successive angles.
The script saves checkpoints (model + VecNormalize statistics), evaluates periodically on a separate environment
whose normalisation follows the training one, and reloads the best model with its statistics at the end.

    python examples/vecnormalize_callbacks.py --timesteps 100000 --log-dir runs/pendulum_novel
"""

import argparse
import os

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_shm import ShmPPO


class MaskVelocity(gym.ObservationWrapper):
    """Pendulum's observation is (cos(theta), sin(theta), theta_dot): keep only the angle."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        low, high = env.observation_space.low[:2], env.observation_space.high[:2]
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[:2].astype(np.float32)


def make_env(n_envs: int, seed: int) -> VecNormalize:
    env = make_vec_env("Pendulum-v1", n_envs=n_envs, seed=seed, wrapper_class=MaskVelocity)
    return VecNormalize(env, gamma=0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=100_000, help="training steps")
    parser.add_argument("--log-dir", default="runs/shm_pendulum_novel", help="checkpoints, best model, evaluations")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="evaluate every this many steps (all envs)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n_envs = 4
    env = make_env(n_envs, args.seed)
    # Evaluation: same wrappers, no reward normalisation, statistics copied from `env` by EvalCallback
    eval_env = make_env(1, args.seed + 1000)
    eval_env.training, eval_env.norm_reward = False, False

    # Callback frequencies count calls, i.e. steps of the vectorised env: divide by n_envs
    freq = max(args.eval_freq // n_envs, 1)
    checkpoint = CheckpointCallback(
        save_freq=freq, save_path=os.path.join(args.log_dir, "checkpoints"), name_prefix="shm_ppo", save_vecnormalize=True
    )
    evaluation = EvalCallback(
        eval_env,
        eval_freq=freq,
        n_eval_episodes=args.eval_episodes,
        best_model_save_path=args.log_dir,
        log_path=args.log_dir,  # evaluations.npz
        deterministic=True,
    )

    model = ShmPPO(
        "MlpShmPolicy",
        env,
        n_steps=128,
        batch_size=128,
        n_epochs=10,
        gamma=0.9,
        learning_rate=1e-3,
        policy_kwargs=dict(ortho_init=False, net_arch=dict(pi=[64], vf=[64]), memory_size=32),
        seed=args.seed,
    )
    model.learn(args.timesteps, callback=[checkpoint, evaluation])
    model.save(os.path.join(args.log_dir, "final_model"))
    env.save(os.path.join(args.log_dir, "vecnormalize.pkl"))

    # Reload the best model (the final one if no evaluation ran) with the normalisation statistics
    best_path = os.path.join(args.log_dir, "best_model.zip")
    model = ShmPPO.load(best_path if os.path.exists(best_path) else os.path.join(args.log_dir, "final_model.zip"))
    raw_env = make_vec_env("Pendulum-v1", n_envs=1, seed=args.seed + 2000, wrapper_class=MaskVelocity)
    test_env = VecNormalize.load(os.path.join(args.log_dir, "vecnormalize.pkl"), raw_env)
    test_env.training, test_env.norm_reward = False, False
    mean_return, std_return = evaluate_policy(model, test_env, n_eval_episodes=args.eval_episodes)
    print(f"best evaluation {evaluation.best_mean_reward:.1f}; reloaded model: {mean_return:.1f} +/- {std_return:.1f}")


if __name__ == "__main__":
    main()
