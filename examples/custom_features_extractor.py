"""
A custom features extractor in front of the memory: a small CNN over Visual Match's image observations.

The policy is ``obs -> features extractor -> SHM memory -> MLPs -> action / value``. SB3's default CNN (NatureCNN)
needs images of 36x36 or more; Visual Match's view is a 5x5 grid of cells, so this extractor works on the grid
itself (``image_scale=1``: one pixel per cell) with 3x3 convolutions.

    python examples/custom_features_extractor.py --timesteps 200000
"""

import argparse

import gymnasium as gym
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

import sb3_shm  # noqa: F401  (registers VisualMatch-v0)
from sb3_shm import ShmPPO


class GridCNN(BaseFeaturesExtractor):
    """
    Two 3x3 convolutions over a small grid image, then a linear layer.

    :param observation_space: channel-first image space (SB3 transposes HWC images before the policy sees them)
    :param features_dim: size of the output features
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 64):
        super().__init__(observation_space, features_dim)
        n_channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(n_channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with th.no_grad():  # size of the flattened CNN output, (1, C, H, W) -> (1, n_flatten)
            n_flatten = self.cnn(th.as_tensor(observation_space.sample()[None]).float()).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """:param observations: (batch, C, H, W) in [0, 1]; :return: (batch, features_dim)"""
        return self.linear(self.cnn(observations))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=200_000, help="training steps")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env_kwargs = dict(obs_mode="image", image_scale=1)  # uint8 (5, 5, 3) images
    env = make_vec_env("VisualMatch-v0", n_envs=8, seed=args.seed, env_kwargs=env_kwargs)
    model = ShmPPO(
        "CnnShmPolicy",
        env,
        n_steps=64,
        batch_size=128,
        sequence_length=64,  # one 40-step episode fits in a training sequence
        n_epochs=4,
        ent_coef=0.01,
        policy_kwargs=dict(
            features_extractor_class=GridCNN,
            features_extractor_kwargs=dict(features_dim=64),
            net_arch=dict(pi=[64], vf=[64]),
            memory_size=32,
        ),
        seed=args.seed,
    )
    print(model.policy.features_extractor)
    model.learn(args.timesteps)

    eval_env = make_vec_env("VisualMatch-v0", n_envs=4, seed=args.seed + 1000, env_kwargs=env_kwargs)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes)
    print(f"return {mean_return:.2f} +/- {std_return:.2f} after {model.num_timesteps} steps")


if __name__ == "__main__":
    main()
