"""ShmSAC: episode replay buffer, SAC-Discrete losses, recurrent predict, save / load, errors (CPU, fast)."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_shm.common.off_policy.buffers import DictEpisodeReplayBuffer, EpisodeReplayBuffer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ------------------------------------------------------------------------------------------------------------
# Episode replay buffer. Every stored observation is (episode id, step in episode), so a window tells what it read.
# ------------------------------------------------------------------------------------------------------------
OBS_SPACE = spaces.Box(-1.0, 1e6, (2,), np.float32)


def fill(buffer, lengths: list[list[int]], n_steps: int, truncate: bool = False) -> np.ndarray:
    """
    Add ``n_steps`` steps to every env; env ``e`` runs episodes of lengths ``lengths[e]`` (cycled). The last step of an
    episode is a truncation when ``truncate`` (else a termination). Observations are (episode id + 1, step), so that
    padding (zeros) never looks like an episode. Returns the observations added, (n_steps, n_envs, 2).
    """
    n_envs = buffer.n_envs
    episode = list(range(n_envs))
    next_id = n_envs
    step = [0] * n_envs
    count = [0] * n_envs
    log = []
    for _ in range(n_steps):
        obs = np.array([[episode[e] + 1, step[e]] for e in range(n_envs)], dtype=np.float32)
        next_obs = obs + np.array([0, 1], dtype=np.float32)
        done = np.array([step[e] == lengths[e][count[e] % len(lengths[e])] - 1 for e in range(n_envs)])
        infos = [{"TimeLimit.truncated": bool(truncate and done[e])} for e in range(n_envs)]
        actions = np.array([step[e] % 3 for e in range(n_envs)])
        rewards = np.array([float(step[e]) for e in range(n_envs)], dtype=np.float32)
        buffer.add(obs, next_obs, actions, rewards, done, infos)
        log.append(obs)
        for e in range(n_envs):
            if done[e]:
                episode[e], next_id, step[e], count[e] = next_id, next_id + 1, 0, count[e] + 1
            else:
                step[e] += 1
    return np.array(log)


def check_windows(samples, sequence_length: int, burn_in: int = 0) -> None:
    """Each window reads one episode, consecutive steps, no padding in the loss, inputs shifted by one."""
    obs = samples.observations.numpy()  # (n_seq, S + 1, 2)
    mask = samples.mask.numpy()
    actions = samples.actions.numpy()[..., 0]
    prev_actions = samples.prev_actions.numpy()[..., 0]
    prev_rewards = samples.prev_rewards.numpy()
    rewards = samples.rewards.numpy()
    for i in range(obs.shape[0]):
        episode, first_step = obs[i, 0]
        n_real = int((obs[i, 1:, 0] == episode).sum())
        real = np.zeros(mask.shape[1], dtype=bool)
        real[:n_real] = True
        # The window's steps: one episode, consecutive, then zero padding
        np.testing.assert_array_equal(obs[i, : n_real + 1, 0], episode)
        np.testing.assert_array_equal(obs[i, : n_real + 1, 1], first_step + np.arange(n_real + 1))
        assert (obs[i, n_real + 1 :] == 0).all() and (mask[i, ~real] == 0).all()
        # Loss steps: inside the chunk of sequence_length steps, after the burn-in
        steps = first_step + np.arange(mask.shape[1])
        chunk_first = steps[mask[i] == 1].min()
        assert chunk_first % sequence_length == 0 and (mask[i] == 1).sum() <= sequence_length
        assert first_step >= chunk_first - burn_in
        np.testing.assert_array_equal(mask[i], (real & (steps >= chunk_first) & (steps < chunk_first + sequence_length)))
        # Stored action a_j = step % 3, reward r_j = step; the memory reads them one position later
        np.testing.assert_array_equal(actions[i, :n_real], steps[:n_real] % 3)
        np.testing.assert_array_equal(rewards[i, :n_real], steps[:n_real])
        np.testing.assert_array_equal(prev_actions[i, 1 : n_real + 1], actions[i, :n_real])
        np.testing.assert_array_equal(prev_rewards[i, 1 : n_real + 1], rewards[i, :n_real])
        expected_first = (first_step - 1) if first_step > 0 else 0.0
        assert prev_rewards[i, 0] == expected_first and prev_actions[i, 0] == (expected_first % 3 if first_step > 0 else 0)


@pytest.mark.parametrize("burn_in", [0, 3])
def test_buffer_windows_stay_in_one_episode(burn_in):
    buffer = EpisodeReplayBuffer(400, OBS_SPACE, spaces.Discrete(3), "cpu", n_envs=2, sequence_length=8, burn_in=burn_in)
    fill(buffer, [[3, 20, 8], [9, 1, 17]], 150)
    samples = buffer.sample(256)
    assert samples.observations.shape == (256, burn_in + 8 + 1, 2)
    assert samples.mask.shape == samples.rewards.shape == samples.dones.shape == (256, burn_in + 8)
    check_windows(samples, 8, burn_in)
    # Burn-in steps are read but not trained on: some windows start before their loss steps
    starts_early = (samples.mask[:, 0] == 0) & (samples.observations[:, 0, 1] > 0)
    assert bool(starts_early.any()) == (burn_in > 0)
    # Terminations end episodes: a done can only be on a window's last real step (where its episode ends)
    episodes = samples.observations[:, :, 0].numpy()
    n_real = (episodes[:, 1:] == episodes[:, :1]).sum(axis=1)
    for i in range(256):
        assert samples.dones[i, : n_real[i] - 1].sum() == 0 and samples.dones[i, n_real[i] :].sum() == 0


@pytest.mark.parametrize("handle_timeout_termination", [True, False])
def test_buffer_truncation_vs_termination(handle_timeout_termination):
    for truncate in (True, False):
        buffer = EpisodeReplayBuffer(
            64, OBS_SPACE, spaces.Discrete(3), "cpu", sequence_length=8, handle_timeout_termination=handle_timeout_termination
        )
        fill(buffer, [[5]], 30, truncate=truncate)
        samples = buffer.sample(64)
        last = samples.observations[:, 0, 1] + samples.mask.sum(1) - 1 == 4  # windows holding step 4, the episode end
        assert bool(last.all())  # episodes of 5 steps fit in one window of 8
        expected = 0.0 if (truncate and handle_timeout_termination) else 1.0
        dones_at_end = samples.dones[th.arange(64), samples.mask.sum(1).long() - 1]
        assert bool((dones_at_end == expected).all())
        # The truncated step's next observation is stored (the bootstrap reads it), then padding
        np.testing.assert_array_equal(samples.observations[:, 5, 1].numpy(), 5)


def test_buffer_ring_wrap_around():
    n_slots = 50
    buffer = EpisodeReplayBuffer(2 * n_slots, OBS_SPACE, spaces.Discrete(3), "cpu", n_envs=2, sequence_length=6)
    log = fill(buffer, [[7, 13, 2, 30], [4, 45, 9]], 333)
    assert buffer.full
    samples = buffer.sample(512)
    check_windows(samples, 6)
    # Every sampled window's episode still has its first step among the last n_slots steps of its env
    recent = log[-n_slots:].reshape(-1, 2)
    sampled = set(samples.observations[:, 0, 0].numpy())
    assert sampled <= set(recent[recent[:, 1] == 0, 0])
    # The remainder of an overwritten episode (started before the ring's oldest slot) is never sampled
    overwritten = set(recent[:, 0]) - set(recent[recent[:, 1] == 0, 0])
    assert overwritten and not (sampled & overwritten)


def test_buffer_dict_observations():
    space = spaces.Dict({"a": OBS_SPACE, "b": spaces.Box(0, 1, (3, 2), np.float32)})
    buffer = DictEpisodeReplayBuffer(100, space, spaces.Box(-1, 1, (2,)), "cpu", n_envs=2, sequence_length=5)
    for step in range(30):
        obs = {"a": np.full((2, 2), step, np.float32), "b": np.full((2, 3, 2), step / 100, np.float32)}
        next_obs = {key: value + (1 if key == "a" else 0.01) for key, value in obs.items()}
        buffer.add(obs, next_obs, np.full((2, 2), 0.5), np.ones(2), np.array([step % 10 == 9] * 2), [{}, {}])
    samples = buffer.sample(16)
    assert samples.observations["a"].shape == (16, 6, 2) and samples.observations["b"].shape == (16, 6, 3, 2)
    real = samples.mask.sum(1).long()
    for i in range(16):
        steps = samples.observations["a"][i, : real[i] + 1, 0]
        np.testing.assert_allclose(samples.observations["b"][i, : real[i] + 1, 0, 0], steps / 100, rtol=1e-5)
    assert samples.actions.dtype == th.float32 and samples.prev_actions.shape == (16, 6, 2)


def test_buffer_bad_window():
    with pytest.raises(ValueError, match="sequence_length"):
        EpisodeReplayBuffer(100, OBS_SPACE, spaces.Discrete(3), "cpu", sequence_length=0)
    with pytest.raises(ValueError, match="buffer_size"):
        EpisodeReplayBuffer(100, OBS_SPACE, spaces.Discrete(3), "cpu", n_envs=4, sequence_length=20, burn_in=10)
    with pytest.raises(ValueError, match="empty"):
        EpisodeReplayBuffer(100, OBS_SPACE, spaces.Discrete(3), "cpu").sample(4)
