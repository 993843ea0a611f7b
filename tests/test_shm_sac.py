"""ShmSAC: episode replay buffer, SAC-Discrete losses, recurrent predict, save / load, errors (CPU, fast)."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, IdentityEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_shm import ShmPPO, ShmSAC
from sb3_shm.common.off_policy.buffers import DictEpisodeReplayBuffer, EpisodeReplayBuffer
from sb3_shm.common.off_policy.type_aliases import EpisodeReplayBufferSamples
from sb3_shm.common.recall_env import RecallFirstEnv
from sb3_shm.shm_sac.shm_sac import discrete_soft_value, masked_mean

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


# ------------------------------------------------------------------------------------------------------------
# ShmSAC
# ------------------------------------------------------------------------------------------------------------
class DictObsEnv(gym.Env):
    """RecallFirstEnv's cue in a Dict observation with a second, image-like key."""

    def __init__(self):
        self.inner = RecallFirstEnv(delay=3)
        self.observation_space = spaces.Dict(
            {"cue": self.inner.observation_space, "noise": spaces.Box(0.0, 1.0, (2, 3), np.float32)}
        )
        self.action_space = self.inner.action_space

    def _obs(self, cue: np.ndarray) -> dict[str, np.ndarray]:
        return {"cue": cue, "noise": self.np_random.random((2, 3)).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        obs, info = self.inner.reset(seed=seed)
        return self._obs(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        return self._obs(obs), reward, terminated, truncated, info


class TupleObsEnv(gym.Env):
    observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))
    action_space = spaces.Discrete(2)


FAST = dict(learning_starts=32, sequence_length=8, batch_size=4, buffer_size=1000)
SMALL = dict(memory_size=8, rnn_hidden_size=16, obs_embed_dim=16, action_embed_dim=4, reward_embed_dim=4, net_arch=[16])
MEMORIES = [
    dict(actor_memory_type="shm", critic_memory_type="shm"),
    dict(actor_memory_type="gru", critic_memory_type="shm"),  # the SHM authors' agent
    dict(actor_memory_type="lstm", critic_memory_type="gru", memory_inputs=("action", "reward", "observation")),
]


def recall_env():
    return RecallFirstEnv(delay=3)


def make_model(env=None, policy_kwargs=None, **kwargs) -> ShmSAC:
    return ShmSAC(
        "MlpShmPolicy", env or recall_env(), policy_kwargs={**SMALL, **(policy_kwargs or {})}, seed=0, **{**FAST, **kwargs}
    )


def test_sac_discrete_losses_two_actions():
    """pi = (0.25, 0.75), Q1 = (1, 3), Q2 = (2, 1), alpha = 0.5, by hand."""
    probs = th.tensor([[0.25, 0.75]])
    min_q = th.tensor([[1.0, 1.0]])
    entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    value = discrete_soft_value(probs, probs.log(), min_q, th.tensor(0.5))
    assert value.item() == pytest.approx(1.0 + 0.5 * entropy, rel=1e-6)

    # The same numbers through ShmSAC's target and actor loss: 2 windows of 2 steps, the second window padded
    model = make_model(gamma=0.9)
    q1, q2 = th.tensor([1.0, 3.0]), th.tensor([2.0, 1.0])
    heads = lambda latent, actions=None: (q1.expand(*latent.shape[:-1], 2), q2.expand(*latent.shape[:-1], 2))  # noqa: E731
    model.critic_target.q_values = heads
    model.critic.q_values = heads
    n_seq, n_steps = 2, 2
    batch = EpisodeReplayBufferSamples(
        observations=th.zeros(n_seq, n_steps + 1, 3),
        actions=th.tensor([[[0], [1]], [[1], [0]]]),
        prev_actions=th.zeros(n_seq, n_steps + 1, 1, dtype=th.long),
        prev_rewards=th.zeros(n_seq, n_steps + 1),
        rewards=th.tensor([[0.5, 1.0], [-1.0, 0.0]]),
        dones=th.tensor([[0.0, 1.0], [0.0, 0.0]]),
        mask=th.tensor([[1.0, 1.0], [1.0, 0.0]]),
    )
    pi = (probs.expand(n_seq, n_steps + 1, 2), probs.log().expand(n_seq, n_steps + 1, 2))
    alpha = th.tensor(0.5)
    v = 1.0 + 0.5 * entropy
    targets = model._critic_targets(batch, pi, alpha)
    np.testing.assert_allclose(targets.numpy(), [[0.5 + 0.9 * v, 1.0], [-1.0 + 0.9 * v, 0.9 * v]], rtol=1e-6)
    # Actor: -V(h) averaged over the 3 real steps (the padded one is left out)
    assert model._actor_loss(batch, pi, alpha).item() == pytest.approx(-v, rel=1e-6)
    # Critic: Q_i of the stored actions
    current = model._current_q_values(batch)
    np.testing.assert_allclose(current[0].numpy(), [[1.0, 3.0], [3.0, 1.0]])
    np.testing.assert_allclose(current[1].numpy(), [[2.0, 1.0], [1.0, 2.0]])
    assert masked_mean(th.tensor([[1.0, 2.0], [3.0, 100.0]]), batch.mask).item() == pytest.approx(2.0)


def test_discrete_target_entropy():
    model = make_model(target_entropy_ratio=0.5)
    assert model.target_entropy == pytest.approx(0.5 * np.log(2))
    assert make_model(env="Pendulum-v1").target_entropy == -1.0


@pytest.mark.parametrize("policy_kwargs", MEMORIES)
def test_predict_with_state_equals_the_sequence_form(policy_kwargs):
    """Stepping the actor with predict(state) gives the memory outputs of the whole-sequence form (training's)."""
    model = make_model(policy_kwargs={**policy_kwargs, "calibration": "fixed"})
    env = recall_env()
    obs, _ = env.reset(seed=1)
    observations, actions, rewards, state, latents = [obs], [], [0.0], None, []
    actor = model.policy.actor
    for _ in range(4):
        action, state = model.predict(obs, state=state, deterministic=True, reward=np.array([rewards[-1]]))
        obs, reward, _, _, _ = env.step(action)
        observations.append(obs)
        actions.append(int(action))
        rewards.append(reward)
    obs_seq = th.as_tensor(np.array(observations[:4]))[None]
    prev_actions = th.tensor([[0, *actions[:3]]])[..., None]
    prev_rewards = th.tensor([rewards[:4]], dtype=th.float32)
    with th.no_grad():
        latents = actor.latent_sequence(obs_seq, prev_actions, prev_rewards)
        expected = actor.act(latents[0], deterministic=True)[:, 0]
        # And by hand, one memory step at a time
        memory = actor.memory.initial_state(1)
        for t in range(4):
            latent, memory = actor.latent_step(
                obs_seq[:, t], prev_actions[:, t], prev_rewards[:, t], memory, th.tensor([t == 0])
            )
            np.testing.assert_allclose(latent.numpy(), latents[:, t].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(expected.numpy(), actions)
    np.testing.assert_allclose(state[0], memory.numpy(), rtol=1e-5, atol=1e-6)


def test_predict_state_and_episode_start():
    model = make_model()
    env = DummyVecEnv([recall_env, recall_env])
    obs = env.reset()
    actions, state = model.predict(obs)
    assert actions.shape == (2,) and state[0].shape == (2, 8, 8) and state[1].shape == (2, 1)
    # episode_start empties the memory: the same as starting with no state
    th.manual_seed(3)
    fresh, fresh_state = model.predict(obs, deterministic=True)
    th.manual_seed(3)
    started, started_state = model.predict(obs, state=state, episode_start=np.ones(2), deterministic=True)
    np.testing.assert_array_equal(fresh, started)
    np.testing.assert_allclose(fresh_state[0], started_state[0])
    with pytest.raises(ValueError, match=r"expected \(2, 8, 8\)"):
        model.predict(obs, state=(np.zeros((2, 4, 4)), np.zeros((2, 1))))
    with pytest.raises(ValueError, match="state must be a tuple"):
        model.predict(obs, state=(np.zeros((2, 8, 8)),))
    with pytest.raises(ValueError, match="episode_start"):
        model.predict(obs, state=state, episode_start=np.zeros(3))
    reward_model = make_model(policy_kwargs=dict(memory_inputs=("reward", "observation")))
    _, state = reward_model.predict(obs)
    with pytest.raises(ValueError, match="reward="):
        reward_model.predict(obs, state=state)
    reward_model.predict(obs, state=state, reward=np.zeros(2))


@pytest.mark.parametrize("policy_kwargs", MEMORIES)
def test_learn_save_load_continue(tmp_path, policy_kwargs):
    model = make_model(env=DummyVecEnv([recall_env, recall_env]), policy_kwargs=policy_kwargs)
    model.learn(64)
    assert model._n_updates > 0
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    loaded = ShmSAC.load(tmp_path / "model.zip", env=DummyVecEnv([recall_env, recall_env]))
    obs = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    state = None
    for step in range(3):
        # Same draws of SHM's calibration indices (torch's global generator) for both
        th.manual_seed(step)
        expected, expected_state = model.predict(obs, state=state, deterministic=True, reward=np.ones(2))
        th.manual_seed(step)
        actions, loaded_state = loaded.predict(obs, state=state, deterministic=True, reward=np.ones(2))
        np.testing.assert_array_equal(actions, expected)
        np.testing.assert_allclose(loaded_state[0], expected_state[0], rtol=1e-6)
        state = expected_state
    # The rollout's memory is saved with the model; the replay buffer separately
    np.testing.assert_array_equal(loaded._rollout_state.memory, model._rollout_state.memory)
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert loaded.replay_buffer.pos == model.replay_buffer.pos
    np.testing.assert_array_equal(loaded.replay_buffer.episode_ids, model.replay_buffer.episode_ids)
    n_updates = loaded._n_updates
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded._n_updates > n_updates and loaded.num_timesteps == model.num_timesteps + 32


def test_box_and_dict_spaces(tmp_path):
    model = make_model(env="Pendulum-v1", policy_kwargs=dict(memory_inputs=("action", "reward", "observation")))
    model.learn(48)
    action, _ = model.predict(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
    env = DictObsEnv()
    dict_model = ShmSAC("MultiInputShmPolicy", env, policy_kwargs=SMALL, seed=0, **FAST)
    assert isinstance(dict_model.replay_buffer, DictEpisodeReplayBuffer)
    dict_model.learn(48)
    assert dict_model._n_updates > 0


def test_images_and_vec_normalize():
    image_env = FakeImageEnv(action_dim=2, screen_height=36, screen_width=36, discrete=False)
    cnn_model = ShmSAC(
        "CnnShmPolicy", image_env, policy_kwargs=dict(SMALL, features_extractor_kwargs=dict(features_dim=16)), **FAST
    )
    cnn_model.learn(40)
    assert cnn_model._n_updates > 0
    # The buffer keeps raw observations and rewards, sampled through VecNormalize's statistics
    env = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]))
    model = make_model(env=env, policy_kwargs=dict(memory_inputs=("action", "reward", "observation")))
    model.learn(48)
    assert model._n_updates > 0 and np.abs(model.replay_buffer.rewards).max() > 1.0


@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_tensorboard_callbacks_progress_bar(tmp_path):
    callback = CheckpointCallback(save_freq=20, save_path=str(tmp_path / "checkpoints"), name_prefix="shm_sac")
    model = make_model(tensorboard_log=str(tmp_path / "tb"), verbose=0)
    model.learn(60, callback=callback, progress_bar=True)
    assert list((tmp_path / "tb").glob("ShmSAC_1/events.*"))
    assert len(list((tmp_path / "checkpoints").glob("shm_sac_*.zip"))) == 3
    # Saved during the rollout of step 60 (train_freq 1): the checkpoint is a resume point at that rollout's start
    assert ShmSAC.load(tmp_path / "checkpoints" / "shm_sac_60_steps.zip").num_timesteps == 59


def test_seed_reproducible():
    runs = []
    for _ in range(2):
        model = make_model()
        model.learn(48)
        runs.append(model.predict(np.eye(3, dtype=np.float32)[:1], deterministic=True)[0])
    np.testing.assert_array_equal(*runs)


def test_loading_the_other_algorithm_fails(tmp_path):
    ShmPPO("MlpShmPolicy", recall_env(), n_steps=16, batch_size=16).save(tmp_path / "ppo.zip")
    make_model().save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match="not an ShmSAC model"):
        ShmSAC.load(tmp_path / "ppo.zip")
    # ShmPPO's own check (sb3_shm/shm_ppo/shm_ppo.py) refuses it: "not an ShmPPO model" / "not a whole ShmPPO checkpoint"
    with pytest.raises(ValueError, match="ShmPPO"):
        ShmPPO.load(tmp_path / "sac.zip")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(policy_kwargs=dict(actor_memory_type="rnn")),
            r"actor_memory_type 'rnn': choose one of \('shm', 'gru', 'lstm'\)",
        ),
        (dict(policy_kwargs=dict(critic_memory_type="transformer")), "critic_memory_type"),
        (dict(policy_kwargs=dict(calibration="sometimes")), "calibration"),
        (dict(policy_kwargs=dict(memory_size=0)), "memory_size"),
        (dict(policy_kwargs=dict(scan_impl="magic")), "scan_impl"),
        (dict(policy_kwargs=dict(memory_decay=1.5)), "memory decay"),
        (dict(policy_kwargs=dict(memory_inputs=("previous_action",))), "memory_inputs"),
        (dict(learning_starts=4), "learning_starts=4 is smaller than one sequence"),
        (dict(sequence_length=0), "sequence_length"),
        (dict(batch_size=0), "batch_size"),
        (dict(burn_in=-1), "burn_in"),
        (dict(buffer_size=6), "buffer_size=6 holds 6 transitions"),
        (dict(target_entropy_ratio=1.5), "target_entropy_ratio"),
        (dict(replay_buffer_class=ReplayBuffer), "replay_buffer_class"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_unsupported_spaces():
    with pytest.raises(ValueError, match="MultiDiscrete action spaces"):
        ShmSAC("MlpShmPolicy", IdentityEnv(space=spaces.MultiDiscrete([2, 3])), **FAST)
    with pytest.raises(ValueError, match="Tuple observation spaces"):
        ShmSAC("MlpShmPolicy", TupleObsEnv(), **FAST)


@pytest.mark.slow
def test_recall_is_learned():
    """
    RecallFirstEnv with 2 cues: a memoryless policy's expected return is at most 0 (it sees the same query for both
    cues); ShmSAC recalls the cue. Seeds 0, 1, 2 reached 1.00 at 1,200 steps (about 25 s each, one thread).
    """
    env = make_vec_env(lambda: RecallFirstEnv(delay=5), n_envs=1, seed=0)
    model = ShmSAC("MlpShmPolicy", env, learning_starts=200, sequence_length=8, batch_size=32, seed=0)
    model.learn(1200)
    eval_env = make_vec_env(lambda: RecallFirstEnv(delay=5), n_envs=1, seed=100)
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=50, deterministic=True)
    assert mean_reward >= 0.9


def test_save_is_atomic_and_load_names_what_is_wrong(tmp_path):
    """ShmSAC saves and checks checkpoints with the package's shared code (sb3_shm.common.checkpoint)."""
    import zipfile

    model = ShmSAC("MlpShmPolicy", "Pendulum-v1", learning_starts=16, sequence_length=8, batch_size=2)
    model.save(tmp_path / "model")
    (tmp_path / "model.zip").chmod(0o444)
    with pytest.raises(PermissionError, match="read-only file"):
        model.save(tmp_path / "model.zip")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.zip"]
    with zipfile.ZipFile(tmp_path / "model.zip") as old, zipfile.ZipFile(tmp_path / "partial.zip", "w") as new:
        for name in old.namelist():
            if name != "critic.optimizer.pth":
                new.writestr(name, old.read(name))
    with pytest.raises(ValueError, match=r"not a whole ShmSAC checkpoint \(no critic.optimizer.pth entry\)"):
        ShmSAC.load(tmp_path / "partial.zip")


def test_save_replay_buffer_is_atomic(tmp_path, monkeypatch):
    """A save that fails half-way leaves the previous buffer file whole (SB3 writes it in place)."""
    import io
    import pickle

    from stable_baselines3.common import save_util

    model = ShmSAC("MlpShmPolicy", "Pendulum-v1", learning_starts=8, sequence_length=4, batch_size=2, seed=0)
    model.learn(12)
    model.save_replay_buffer(tmp_path / "buffer")  # no suffix: ".pkl" as in SB3
    good = (tmp_path / "buffer.pkl").read_bytes()
    model.learn(4, reset_num_timesteps=False)

    def fail_half_way(obj, file, protocol=None):
        file.write(pickle.dumps(obj, protocol=protocol)[:100])
        raise OSError("No space left on device")

    monkeypatch.setattr(save_util.pickle, "dump", fail_half_way)
    with pytest.raises(OSError, match="No space left"):
        model.save_replay_buffer(tmp_path / "buffer.pkl")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["buffer.pkl"]
    assert (tmp_path / "buffer.pkl").read_bytes() == good
    monkeypatch.undo()
    model.load_replay_buffer(tmp_path / "buffer.pkl")
    assert model.replay_buffer.pos == 12
    file = io.BytesIO()  # a file object is written as it is
    model.save_replay_buffer(file)
    assert pickle.loads(file.getvalue()).pos == 12


@pytest.mark.slow
def test_continuous_recall_is_learned():
    """
    SAC's Box-action branch learns a memory task: RecallFirstEnv(continuous=True) pays ``action * sign`` with the
    sign named by the first observation, so a memoryless policy earns 0 at best in expectation; ShmSAC recalls it.
    Measured at 2,000 steps (50 deterministic episodes): 0.61 / 0.62 / 0.61 for seeds 0 / 1 / 2 (about 30 s each, one
    thread); below 1 because the entropy bonus keeps the tanh-squashed mean action off +-1, not because of wrong signs.
    """
    env = make_vec_env(lambda: RecallFirstEnv(delay=5, continuous=True), n_envs=1, seed=0)
    model = ShmSAC("MlpShmPolicy", env, learning_starts=200, sequence_length=8, batch_size=32, seed=0)
    model.learn(2000)
    eval_env = make_vec_env(lambda: RecallFirstEnv(delay=5, continuous=True), n_envs=1, seed=100)
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=50, deterministic=True)
    assert mean_reward >= 0.4


def test_continuous_recall_env_pays_the_sign_named_by_the_cue():
    with pytest.raises(ValueError, match="continuous=True needs n_cues=2"):
        RecallFirstEnv(n_cues=3, continuous=True)
    env = RecallFirstEnv(delay=2, continuous=True)
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        sign = 1.0 if obs[1] == 1.0 else -1.0  # cue 1: +1, cue 0: -1
        for _ in range(env.delay):  # the blank steps, then the query
            assert env.step(np.ones(1, dtype=np.float32))[1] == 0.0
        _, reward, terminated, _, info = env.step(np.array([0.5 * sign], dtype=np.float32))
        assert terminated and reward == 0.5 and info["is_success"]
