"""
Load a pretrained ShmPPO agent and run it, carrying its memory from step to step.

By default the agent shipped in ``rl-trained-agents/shm_ppo/CartPoleNoVel-v1_1`` (100k steps: about 485
of the maximum 500) with the observation statistics it was trained with (``vecnormalize.pkl``).
``--repo-id ORG/shm_ppo-CartPoleNoVel-v1`` loads a model from the Hugging Face Hub instead (needs
``pip install "sb3-shm[zoo]"`` and ``TRUST_REMOTE_CODE=True``: loading unpickles data).

CartPoleNoVel-v1 (CartPole without the velocities) is registered by RL Zoo: ``import rl_zoo3.import_envs``.

    python examples/load_pretrained.py --episodes 10
"""

import argparse
from pathlib import Path

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_shm import ShmPPO

PRETRAINED = Path(__file__).resolve().parent.parent / "rl-trained-agents/shm_ppo/CartPoleNoVel-v1_1/CartPoleNoVel-v1.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=PRETRAINED, help="a ShmPPO zip")
    parser.add_argument("--repo-id", default=None, help="load from the Hugging Face Hub instead of --path")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=None, help="stop after this many steps (default: no limit)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        import rl_zoo3.import_envs  # noqa: F401  (registers CartPoleNoVel-v1)
    except ImportError as error:
        raise SystemExit('CartPoleNoVel-v1 is registered by RL Zoo: pip install "sb3-shm[zoo]"') from error

    if args.repo_id:
        from sb3_shm.hub import load_from_hub

        model = load_from_hub(args.repo_id, trust_remote_code=True)
    else:
        model = ShmPPO.load(args.path)

    env = make_vec_env("CartPoleNoVel-v1", n_envs=1, seed=args.seed)
    # The zoo saves the normalisation statistics beside the model (hyperparameter `normalize: true`)
    stats = args.path.parent / args.path.stem / "vecnormalize.pkl"
    if not args.repo_id and stats.exists():
        env = VecNormalize.load(str(stats), env)
        env.training, env.norm_reward = False, False
    obs = env.reset()
    state = None  # the memory; None starts with an empty one
    episode_starts = np.ones((env.num_envs,), dtype=bool)  # True resets the memory
    returns, current, steps = [], 0.0, 0
    while len(returns) < args.episodes and (args.timesteps is None or steps < args.timesteps):
        action, state = model.predict(obs, state=state, episode_start=episode_starts, deterministic=True)
        obs, rewards, dones, _infos = env.step(action)
        episode_starts = dones
        current += float(rewards[0])
        steps += 1
        if dones[0]:
            returns.append(current)
            current = 0.0
    if returns:
        print(f"{len(returns)} episodes: return {np.mean(returns):.1f} +/- {np.std(returns):.1f} ({steps} steps)")
    else:
        print(f"{steps} steps, no episode finished yet (return so far {current:.1f})")


if __name__ == "__main__":
    main()
