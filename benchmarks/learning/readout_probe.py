"""
Does a trained ShmPPO agent's memory hold VisualMatch's colour when the final phase starts, does it write less
during the distractor, and does the policy use the colour? A look inside trained agents, to tell a memory that lost
the colour from a policy that does not use it.

For each model: episodes of ``VisualMatch-{N}-v0`` with one colour-to-door map (as the benchmark's ``-onemap``
tasks), deterministic unless ``--stochastic``, recording

- the actor memory's write gate ``sigmoid(eta_t)`` at every step;
- at the first step of the final phase: the cell's ``y_t = M_t q_t + shortcut(x_t)`` (the shortcut is the same in
  every episode there: the final room always starts alike), the cell's output ``W_out y_t + b_out`` and the actor's
  hidden layer (the policy MLP's output);
- which door each episode touched, per target door.

A nearest-class-mean classifier, fit on the first half of the episodes, decodes the colour from ``y_t`` on the second
half (1/3 = chance). "Colour separation" is the mean distance of the colour means from their centre over the mean
distance of an episode from its colour's mean: how far apart the colours are, in units of the episode-to-episode
spread, in the cell's output and after the actor's hidden layer. For a tanh actor it also prints the share of hidden
units in saturation (|a| > 0.99).

    python benchmarks/learning/readout_probe.py LOG/shm_ppo/VisualMatch-60-v0_1/VisualMatch-60-v0.zip [more zips]

Prints one block per model.
"""

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from torch import nn

import sb3_shm  # noqa: F401  (registers the environments)
from sb3_shm import ShmPPO


def nearest_mean_accuracy(features: np.ndarray, labels: np.ndarray, n_classes: int = 3) -> float:
    """Fit class means on the first half (standardised features), score on the second half."""
    half = len(labels) // 2
    mean, std = features[:half].mean(0), features[:half].std(0) + 1e-8
    scaled = (features - mean) / std
    centres = np.stack([scaled[:half][labels[:half] == c].mean(0) for c in range(n_classes)])
    predicted = np.argmin(((scaled[half:, None] - centres) ** 2).sum(-1), axis=1)
    return float(np.mean(predicted == labels[half:]))


def colour_separation(features: np.ndarray, labels: np.ndarray, n_classes: int = 3) -> float:
    """:return: mean distance of the class means from their centre / mean distance of a sample from its class mean"""
    means = np.stack([features[labels == c].mean(0) for c in range(n_classes)])
    between = np.linalg.norm(means - means.mean(0), axis=1).mean()
    within = np.linalg.norm(features - means[labels], axis=1).mean()
    return float(between / (within + 1e-8))


def probe(path: str, distractor_length: int, episodes: int, deterministic: bool = True) -> str:
    """:return: a few lines of results for the model saved at ``path``"""
    model = ShmPPO.load(path, device="cpu")
    cell = model.policy.memory_actor
    actor_net = model.policy.mlp_extractor.policy_net
    seen = {}
    # the projection's last output is eta (see ShmCell._project); the output layer's input is y_t = M_t q_t + shortcut
    cell.projection.register_forward_hook(lambda module, inputs, output: seen.update(gate=th.sigmoid(output[..., -1])))
    cell.out.register_forward_hook(lambda module, inputs, output: seen.update(read=inputs[0].detach(), out=output.detach()))
    actor_net.register_forward_hook(lambda module, inputs, output: seen.update(hidden=output.detach()))
    env = gym.make(f"VisualMatch-{distractor_length}-v0", door_colours=[0, 1, 2])
    explore, distractor, _ = env.unwrapped.phase_lengths
    final_start = explore + distractor
    gates = {"explore": [], "distractor": [], "final": []}
    recorded = {"read": [], "out": [], "hidden": []}
    colours, successes = [], []
    doors = np.zeros((3, 4), dtype=int)  # target door (left, middle, right) x touched door (left, middle, right, none)
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        colour = env.unwrapped.target_colour
        state, episode_start, step, done = None, np.ones(1, dtype=bool), 0, False
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=episode_start, deterministic=deterministic)
            episode_start = np.zeros(1, dtype=bool)
            phase = "explore" if step < explore else "distractor" if step < final_start else "final"
            gates[phase].append(float(seen["gate"].ravel()[0]))
            if step == final_start:
                for key, values in recorded.items():
                    values.append(seen[key].numpy().ravel())
                colours.append(colour)
            obs, _, terminated, truncated, info = env.step(int(action[0]))
            done, step = terminated or truncated, step + 1
        touched = env.unwrapped.touched_door
        doors[env.unwrapped.target_door, 3 if touched is None else touched] += 1
        successes.append(float(info.get("is_success", 0.0)))
    colours_array = np.array(colours)
    accuracy = nearest_mean_accuracy(np.array(recorded["read"]), colours_array)
    hidden = np.array(recorded["hidden"])
    gate_text = " ".join(f"{phase} {np.mean(values):.2f}" for phase, values in gates.items())
    saturation = ""
    if any(isinstance(layer, nn.Tanh) for layer in actor_net.modules()):
        saturation = f", {np.mean(np.abs(hidden) > 0.99):.2f} of its tanh units saturated"
    names = ("left", "middle", "right")
    door_rows = "; ".join(f"{name} {'/'.join(map(str, row))}" for name, row in zip(names, doors, strict=True))
    return (
        f"{path}\n  success {np.mean(successes):.2f}, write gate {gate_text}, colour decoded from y_t {accuracy:.2f}\n"
        f"  colour separation: cell output {colour_separation(np.array(recorded['out']), colours_array):.1f}, "
        f"actor hidden layer {colour_separation(hidden, colours_array):.1f}{saturation}\n"
        f"  doors touched (left/middle/right/none) per target door: {door_rows}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="ShmPPO zip files trained on VisualMatch-{N}-v0, one map")
    parser.add_argument("--distractor-length", type=int, default=60)
    parser.add_argument("--episodes", type=int, default=60, help="half fit the classifier, half score it")
    parser.add_argument("--stochastic", action="store_true", help="sample the actions instead of taking the likeliest")
    args = parser.parse_args()
    for path in args.models:
        print(probe(path, args.distractor_length, args.episodes, deterministic=not args.stochastic), flush=True)


if __name__ == "__main__":
    main()
