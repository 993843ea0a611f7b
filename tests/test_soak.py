"""
Soak test: ShmPPO's memory over one 20,000-step episode of N(0, 1) observations, for the default options and every
documented calibration x clamp (x decay) combination, through ``predict`` (one step per call) and through the
policy's whole-sequence evaluation (``evaluate_actions``, one 20,000-step sequence): finite and within the bound the
docs state (``ShmCell.memory_bound``); where the options give no bound, a warning at construction and, when the memory
overflows, a FloatingPointError naming ``memory_clamp`` instead of a crash in torch's distributions. The last test
does the same for ShmSAC's actor and critic memories (previous action and reward in their input).
"""

import warnings

import numpy as np
import pytest
import torch as th

from sb3_shm import ShmPPO, ShmSAC
from sb3_shm.common.recurrent.type_aliases import ShmReplay, ShmStates

pytestmark = [pytest.mark.soak, pytest.mark.usefixtures("one_torch_thread")]

N_STEPS = 20_000
N_ENVS = 2
# A small policy: the cost is the 20,000 predict calls, not the arithmetic
SMALL = dict(memory_size=8, memory_input_dim=16, net_arch=[16])

BOUNDED = {
    "default (random, clamp 100)": dict(),
    "fixed, clamp 100": dict(calibration="fixed"),
    "none, clamp 100": dict(calibration="none"),
    "none, no clamp (linear)": dict(calibration="none", memory_clamp=None),
    "random, no clamp, decay 0.5 (linear)": dict(memory_clamp=None, memory_decay=0.5),
    "random, no clamp, decay 0.4 (geometric)": dict(memory_clamp=None, memory_decay=0.4),
}
UNBOUNDED = {
    "random, no clamp": dict(memory_clamp=None),
    "fixed, no clamp": dict(calibration="fixed", memory_clamp=None),
}


def make_model(options: dict) -> ShmPPO:
    return ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=16, batch_size=16, seed=0, policy_kwargs=options)


def observations() -> np.ndarray:
    """:return: the episode's observations, (N_STEPS, N_ENVS, 4)"""
    return np.random.default_rng(0).standard_normal((N_STEPS, N_ENVS, 4)).astype(np.float32)


def predict_episode(model: ShmPPO, obs: np.ndarray) -> np.ndarray:
    """:return: max |M| after each step, (N_STEPS,)"""
    state, peaks = None, np.empty(len(obs))
    starts = np.ones(N_ENVS, dtype=bool)
    for t, step_obs in enumerate(obs):
        _, state = model.predict(step_obs, state=state, episode_start=starts if t == 0 else None)
        peaks[t] = np.abs(state[0]).max()
    return peaks


def evaluate_sequence(model: ShmPPO, obs: np.ndarray) -> tuple[th.Tensor, th.Tensor, ShmStates]:
    """
    One sequence of the whole episode per environment, as training recomputes it.

    :return: values and log-probs (N_ENVS * N_STEPS,), and the memories after the last step
    """
    policy = model.policy
    # (T, n_envs, 4) -> (n_envs * T, 4), sequence-major like the rollout buffer's samples
    flat_obs = th.as_tensor(obs.transpose(1, 0, 2).reshape(-1, 4))
    starts = th.zeros(N_ENVS, N_STEPS)
    starts[:, 0] = 1.0
    starts = starts.flatten()
    theta_idx = policy.memory_actor.sample_theta_indices(N_ENVS * N_STEPS)
    initial = policy.initial_state(N_ENVS)
    with th.no_grad():
        values, log_prob, _ = policy.evaluate_actions(
            flat_obs, th.zeros(N_ENVS * N_STEPS), ShmReplay(initial, theta_idx), starts
        )
        _, _, memories = policy._latents(flat_obs, initial, starts, theta_idx)
    return values.flatten(), log_prob, memories


@pytest.mark.parametrize("options", BOUNDED.values(), ids=BOUNDED.keys())
def test_bounded_options_stay_within_their_bound(options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no bound" warning for these options
        model = make_model({**SMALL, **options})
    cell = model.policy.memory_actor
    obs = observations()
    # |M| <= memory_bound(n) after every step n: a constant, or (C <= 1) u * n, capped by the clamp if any; float32
    # rounding of the bound's inputs allowed for
    peaks = predict_episode(model, obs)
    assert np.isfinite(peaks).all()
    bound = cell.memory_bound(N_STEPS)
    linear = bound > cell.memory_bound(1) * (1 + 1e-6)
    allowed = np.minimum(bound, cell.write_bound() * np.arange(1, N_STEPS + 1)) if linear else np.full(N_STEPS, bound)
    assert (peaks <= allowed * (1 + 1e-5)).all(), f"max |M| / bound: {(peaks / allowed).max():.3f}"

    values, log_prob, memories = evaluate_sequence(model, obs)
    assert th.isfinite(values).all() and th.isfinite(log_prob).all()
    for memory, cell in ((memories.pi, model.policy.memory_actor), (memories.vf, model.policy.memory_critic)):
        assert memory.abs().max().item() <= cell.memory_bound(N_STEPS) * (1 + 1e-5)


@pytest.mark.parametrize("options", UNBOUNDED.values(), ids=UNBOUNDED.keys())
def test_unbounded_options_warn_then_fail_clearly(options):
    """
    The issue's case (default sizes: the memory input embedding, H = 32): with random calibration and no clamp, max
    |M| reached 2e2 at step 500, 1.8e10 at 2,000 and inf at 8,229, then a crash in torch's distributions. Now a
    warning up front, then a FloatingPointError (inf at step 5,917 and 745 with the fixed row, in another run).
    """
    with pytest.warns(UserWarning, match="memory_clamp=None.*no bound"):
        model = make_model(options)
    obs = observations()
    with pytest.raises(FloatingPointError, match=r"memory is not finite.*it overflowed: with memory_clamp=None"):
        predict_episode(model, obs)
    with pytest.raises(FloatingPointError, match=r"memory is not finite.*it overflowed: with memory_clamp=None"):
        evaluate_sequence(model, obs)


@pytest.mark.parametrize("calibration", ["random", "fixed"])
def test_shm_sac_memory_stays_bounded_over_a_long_episode(calibration):
    """
    ShmSAC's actor memory (the same ShmCell, fed embeddings of the previous action, the previous reward and the
    observation) over one 20,000-step episode: through ``predict`` (one step per call), and as training runs it (one
    window of the whole episode, ``latent_sequence``'s path) for the actor and the critic: finite and within the
    documented bound. With the fixed calibration row both paths see the same cell, so their last memories agree.
    """
    model = ShmSAC(
        "MlpShmPolicy",
        "Pendulum-v1",
        learning_starts=16,
        sequence_length=8,
        batch_size=2,
        seed=0,
        device="cpu",
        policy_kwargs=dict(
            memory_size=8,
            obs_embed_dim=16,
            net_arch=[16],
            memory_inputs=("action", "reward", "observation"),
            calibration=calibration,
        ),
    )
    policy = model.policy
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((N_STEPS, 1, 3)).astype(np.float32)
    rewards = rng.uniform(-16.0, 0.0, (N_STEPS, 1)).astype(np.float32)  # Pendulum's range
    state, peaks = None, np.empty(N_STEPS)
    prev_actions = np.zeros((N_STEPS, 1, 1), dtype=np.float32)  # what the memory read as the previous action
    for t in range(N_STEPS):
        if state is not None:
            prev_actions[t] = state[1]
        _, state = model.predict(obs[t], state=state, reward=rewards[t - 1] if t else None)
        peaks[t] = np.abs(state[0]).max()
    assert np.isfinite(peaks).all()
    assert peaks.max() <= policy.actor.memory.cell.memory_bound(N_STEPS) * (1 + 1e-5)

    prev_rewards = np.concatenate([np.zeros((1, 1), np.float32), rewards[:-1]])
    for network in (policy.actor, policy.critic):
        cell = network.memory.cell
        with th.no_grad():
            features = network.extract_features(th.as_tensor(obs[:, 0]), network.features_extractor)[None]
            x, _ = network._inputs(features, th.as_tensor(prev_actions[None, :, 0]), th.as_tensor(prev_rewards.T))
            theta_idx = cell.sample_theta_indices(1, N_STEPS)
            output, last = cell(x, cell.initial_state(1), th.zeros(1, N_STEPS), theta_idx)
        assert th.isfinite(output).all()
        assert last.abs().max().item() <= cell.memory_bound(N_STEPS) * (1 + 1e-5)
        if network is policy.actor and calibration == "fixed":
            difference = (last[0] - th.as_tensor(state[0][0])).abs().max().item()
            print(f"largest difference of the last memories, predict vs whole sequence: {difference:.3g}")
            assert difference <= 1e-4  # measured 1.4e-6 on CPU (float32)
