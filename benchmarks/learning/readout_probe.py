"""
Does a trained ShmPPO agent's memory hold VisualMatch's colour when the final phase starts, and does it write less
during the distractor? A look inside trained agents, to tell a memory that lost the colour from a policy that does not
use it.

For each model: deterministic episodes of ``VisualMatch-{N}-v0`` with one colour-to-door map (as the benchmark's
``-onemap`` tasks), recording the actor memory's write gate ``sigmoid(eta_t)`` at every step and its read
``M_t q_t`` at the first step of the final phase. A nearest-class-mean classifier, fit on the first half of the
episodes, decodes the colour from the read on the second half (1/3 = chance).

    python benchmarks/learning/readout_probe.py LOG/shm_ppo/VisualMatch-60-v0_1/VisualMatch-60-v0.zip [more zips]

Prints one line per model: success rate, mean write gate per phase, decoding accuracy.
"""

import argparse

import gymnasium as gym
import numpy as np
import torch as th

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


def probe(path: str, distractor_length: int, episodes: int) -> str:
    """:return: one line of results for the model saved at ``path``"""
    model = ShmPPO.load(path, device="cpu")
    cell = model.policy.memory_actor
    seen = {}
    # the projection's last output is eta (see ShmCell._project); the output layer's input is the read M_t q_t
    cell.projection.register_forward_hook(lambda module, inputs, output: seen.update(gate=th.sigmoid(output[..., -1])))
    cell.out.register_forward_hook(lambda module, inputs, output: seen.update(read=inputs[0].detach()))
    env = gym.make(f"VisualMatch-{distractor_length}-v0", door_colours=[0, 1, 2])
    explore, distractor, _ = env.unwrapped.phase_lengths
    final_start = explore + distractor
    gates = {"explore": [], "distractor": [], "final": []}
    reads, colours, successes = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        colour = env.unwrapped.target_colour
        state, episode_start, step, done = None, np.ones(1, dtype=bool), 0, False
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=episode_start, deterministic=True)
            episode_start = np.zeros(1, dtype=bool)
            phase = "explore" if step < explore else "distractor" if step < final_start else "final"
            gates[phase].append(float(seen["gate"].ravel()[0]))
            if step == final_start:
                reads.append(seen["read"].numpy().ravel())
                colours.append(colour)
            obs, _, terminated, truncated, info = env.step(int(action[0]))
            done, step = terminated or truncated, step + 1
        successes.append(float(info.get("is_success", 0.0)))
    accuracy = nearest_mean_accuracy(np.array(reads), np.array(colours))
    gate_text = " ".join(f"{phase} {np.mean(values):.2f}" for phase, values in gates.items())
    return f"{path}: success {np.mean(successes):.2f}, write gate {gate_text}, colour decoded from the read {accuracy:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="ShmPPO zip files trained on VisualMatch-{N}-v0, one map")
    parser.add_argument("--distractor-length", type=int, default=60)
    parser.add_argument("--episodes", type=int, default=60, help="half fit the classifier, half score it")
    args = parser.parse_args()
    for path in args.models:
        print(probe(path, args.distractor_length, args.episodes), flush=True)


if __name__ == "__main__":
    main()
