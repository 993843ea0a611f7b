"""
Train ShmPPO on Visual Match with a short distractor phase, then evaluate its success rate.

The agent sees a colour in the first room, eats apples in a second room for ``--distractor-length`` steps, then must
walk to the door of the colour it saw: chance is 1/3, a memoryless agent cannot do better. The settings are the
package's ``VisualMatch-v0`` entry: one memory for actor and critic trained by both losses (``critic_memory="joint"``,
at half SB3's default value-loss weight), ReLU MLPs, and one colour-to-door map for every env (``door_colours``, the
source's training task, now the registered default; ``--map-per-env`` gives each env its own map, which no agent
learned here).
See docs/results.md for what the benchmark measured with these settings (VisualMatch-15-onemap).

    python examples/train_visual_match.py                    # 1.5M steps
    python examples/train_visual_match.py --timesteps 100000 # a quick run: still at chance
"""

import argparse
import time

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

import sb3_shm  # noqa: F401  (registers VisualMatch-v0)
from sb3_shm import ShmPPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=1_500_000, help="training steps")
    parser.add_argument("--distractor-length", type=int, default=15, help="steps in the apple room")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map-per-env", action="store_true", help="each env draws its own colour-to-door map")
    parser.add_argument("--save-path", default=None, help="where to save the model (default: not saved)")
    args = parser.parse_args()

    env_kwargs = dict(distractor_length=args.distractor_length, door_colours=None if args.map_per_env else [0, 1, 2])
    env = make_vec_env("VisualMatch-v0", n_envs=8, seed=args.seed, env_kwargs=env_kwargs)
    episode_length = 15 + args.distractor_length + 10
    # Training sequences must hold the whole dependency (cue -> door): n_steps = sequence_length >= episode length
    n_steps = max(64, 2 ** int(np.ceil(np.log2(episode_length))))
    model = ShmPPO(
        "MlpShmPolicy",
        env,
        n_steps=n_steps,
        batch_size=2 * n_steps,
        sequence_length=n_steps,
        n_epochs=4,
        ent_coef=0.01,
        learning_rate=3e-4,
        vf_coef=0.25,  # the value loss trains the shared memory; at 0.5 it slowed the policy (docs/results.md)
        policy_kwargs=dict(
            net_arch=dict(pi=[64], vf=[64]),
            activation_fn=nn.ReLU,
            memory_size=32,
            calibration="random",
            critic_memory="joint",
        ),
        seed=args.seed,
        verbose=0,
    )
    start = time.time()
    model.learn(args.timesteps)
    print(f"trained {model.num_timesteps} steps in {time.time() - start:.0f} s")

    # evaluate_policy carries the memory between steps and resets it at episode starts
    eval_env = make_vec_env("VisualMatch-v0", n_envs=4, seed=args.seed + 1000, env_kwargs=env_kwargs)
    successes: list[bool] = []

    def record_success(locals_: dict, _globals: dict) -> None:
        if locals_["done"]:
            successes.append(bool(locals_["info"].get("is_success", False)))

    mean_return, std_return = evaluate_policy(
        model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True, callback=record_success
    )
    print(f"return {mean_return:.2f} +/- {std_return:.2f}, success rate {np.mean(successes):.2f} (chance 0.33)")
    if args.save_path:
        model.save(args.save_path)
        print(f"saved to {args.save_path}")


if __name__ == "__main__":
    main()
