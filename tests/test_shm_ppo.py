"""ShmPPO: PPO consistency (ratio 1 before the first update), spaces, policy options, callbacks, bad input, learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecNormalize

from sb3_shm import ShmPPO
from sb3_shm.common.recurrent.policies import ShmActorCriticPolicy
from sb3_shm.demo import make_recall_model
from sb3_shm.common.recall_env import RecallFirstEnv


def collect_one_rollout(model: ShmPPO) -> None:
    """Fill the rollout buffer exactly as learn() does before its first train()."""
    _, callback = model._setup_learn(10_000, None)
    callback.init_callback(model)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)


def assert_replay_matches_rollout(model: ShmPPO) -> int:
    """
    Collect one rollout, then recompute every minibatch as train() does: the ratio is 1 and the values match.

    :return: the number of steps checked
    """
    collect_one_rollout(model)
    assert model.rollout_buffer.episode_starts[1:].sum() > 0, "the test needs episode ends inside the rollout"
    seen = 0
    for data in model.rollout_buffer.get(model.batch_size):
        with th.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(
                data.observations, data.actions.long().flatten(), data.replay, data.episode_starts
            )
        th.testing.assert_close(th.exp(log_prob - data.old_log_prob), th.ones_like(log_prob), rtol=0, atol=1e-5)
        th.testing.assert_close(values.flatten(), data.old_values, rtol=1e-5, atol=1e-5)
        seen += len(log_prob)
    return seen


@pytest.mark.parametrize("n_envs", [1, 4])
@pytest.mark.parametrize("batch_size", [16, 64, None])
@pytest.mark.parametrize(
    "policy_kwargs",
    [
        {},
        dict(calibration="fixed"),
        dict(calibration="none", memory_decay=0.8),
        dict(critic_memory="shared"),
        dict(critic_memory="joint"),
    ],
)
def test_ratio_is_one_before_the_first_update(n_envs, batch_size, policy_kwargs):
    # CartPole episodes under a random policy end after about 20 steps: several episodes end inside each sequence
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    model = ShmPPO("MlpShmPolicy", env, n_steps=64, batch_size=batch_size, seed=0, policy_kwargs=policy_kwargs)
    seen = assert_replay_matches_rollout(model)
    assert seen == 64 * n_envs


def test_replaying_other_theta_indices_changes_the_result():
    """The stored calibration indices matter: replaying fresh ones gives other log-probs (the test above can fail)."""
    model = ShmPPO("MlpShmPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=32, batch_size=64, seed=0)
    collect_one_rollout(model)
    data = next(model.rollout_buffer.get(64))
    replay = data.replay._replace(theta_idx=th.randint(0, 128, data.replay.theta_idx.shape))
    with th.no_grad():
        _, log_prob, _ = model.policy.evaluate_actions(
            data.observations, data.actions.long().flatten(), replay, data.episode_starts
        )
    assert (log_prob - data.old_log_prob).abs().max() > 1e-4


ENVS = {
    "Discrete": lambda: IdentityEnv(4),
    "Box": lambda: IdentityEnvBox(eps=0.5),
    "MultiDiscrete": lambda: IdentityEnvMultiDiscrete(2),
    "MultiBinary": lambda: IdentityEnvMultiBinary(3),
}


@pytest.mark.parametrize("action_space", ENVS)
def test_action_spaces_train(action_space):
    model = ShmPPO("MlpShmPolicy", ENVS[action_space](), n_steps=32, batch_size=16, n_epochs=2, seed=0)
    model.learn(128)
    action, state = model.predict(model.env.reset(), deterministic=True)
    assert model.action_space.contains(action[0])
    assert state[0].shape == (1, 32, 32)


def trains(model: ShmPPO, total_timesteps: int = 128) -> None:
    """``model.learn`` updates every parameter that the losses reach, to finite values (a smoke test of one option)."""
    before = [parameter.detach().clone() for parameter in model.policy.parameters()]
    model.learn(total_timesteps)
    after = list(model.policy.parameters())
    assert all(th.isfinite(parameter).all() for parameter in after)
    assert any(not th.equal(old, new) for old, new in zip(before, after, strict=True)), "no parameter changed"
    assert np.isfinite(model.logger.name_to_value["train/loss"])


def test_gsde_trains():
    model = ShmPPO("MlpShmPolicy", "Pendulum-v1", n_steps=32, batch_size=32, n_epochs=1, use_sde=True, sde_sample_freq=4)
    trains(model)


@pytest.mark.parametrize(
    "policy_kwargs",
    [
        dict(memory_size=4, bank_size=3, net_arch=[16]),
        dict(calibration="fixed"),
        dict(calibration="none", memory_clamp=None),
        dict(critic_memory="none"),
        dict(critic_memory="shared"),
        dict(share_features_extractor=False, net_arch=dict(pi=[8], vf=[8]), activation_fn=th.nn.ReLU, ortho_init=False),
        dict(scan_impl="scan"),
        dict(scan_impl="loop"),
    ],
)
def test_policy_options_train(policy_kwargs):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=2, policy_kwargs=policy_kwargs)
    trains(model)


@pytest.mark.parametrize("critic_memory", ["shared", "joint"])
def test_value_loss_reaches_a_shared_memory_only_when_asked(critic_memory):
    policy_kwargs = dict(critic_memory=critic_memory)
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, policy_kwargs=policy_kwargs)
    collect_one_rollout(model)
    data = next(model.rollout_buffer.get(32))
    values, _, _ = model.policy.evaluate_actions(
        data.observations, data.actions.long().flatten(), data.replay, data.episode_starts
    )
    model.policy.zero_grad()
    values.sum().backward()
    gradient = model.policy.memory_actor.projection.weight.grad
    assert (gradient is not None and gradient.abs().sum() > 0) == (critic_memory == "joint")


def test_image_observations():
    env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=1, discrete=True)
    model = ShmPPO(
        "CnnShmPolicy",
        env,
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=32)),
    )
    model.learn(64)


def test_dict_observations():
    model = ShmPPO("MultiInputShmPolicy", SimpleMultiObsEnv(random_start=True), n_steps=16, batch_size=16, n_epochs=1)
    model.learn(64)
    obs = model.env.reset()
    _, state = model.predict(obs, episode_start=np.ones(1, dtype=bool))
    assert state[0].shape == (1, 32, 32)


def test_vecnormalize_eval_callback_tensorboard_progress_bar(tmp_path):
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    eval_env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=1), training=False)
    callback = EvalCallback(eval_env, eval_freq=64, n_eval_episodes=2, log_path=str(tmp_path), warn=False)
    model = ShmPPO("MlpShmPolicy", env, n_steps=32, batch_size=32, n_epochs=1, tensorboard_log=str(tmp_path))
    model.learn(256, callback=callback, progress_bar=True)
    assert (tmp_path / "evaluations.npz").exists()
    assert list(tmp_path.glob("ShmPPO_1/events.out.tfevents.*"))
    mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=2)
    assert mean_reward > 0


def test_timeout_bootstrapping_uses_the_critic():
    """A truncated episode's reward is bootstrapped with the value of its terminal observation."""
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0, env_kwargs=dict(max_episode_steps=5))
    model = ShmPPO("MlpShmPolicy", env, n_steps=32, batch_size=32, seed=0)
    collect_one_rollout(model)
    rewards = model.rollout_buffer.rewards
    assert np.any(np.abs(rewards - 1.0) > 1e-6), "truncated steps should carry gamma * V(terminal obs)"


def test_seed_makes_training_and_predict_deterministic():
    def train(seed):
        model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=2, seed=seed)
        model.learn(128)
        set_random_seed(seed)
        obs = np.zeros((1, 4), dtype=np.float32)
        actions, state = [], None
        for _ in range(10):
            action, state = model.predict(obs, state=state, episode_start=np.zeros(1, dtype=bool))
            actions.append(action)
        return th.nn.utils.parameters_to_vector(model.policy.parameters()), np.array(actions), state

    params_a, actions_a, state_a = train(3)
    params_b, actions_b, state_b = train(3)
    params_c, _, _ = train(4)
    assert th.equal(params_a, params_b)
    np.testing.assert_array_equal(actions_a, actions_b)
    np.testing.assert_array_equal(state_a[0], state_b[0])
    assert not th.equal(params_a, params_c)


def test_entropy_coefficient_schedule(tmp_path):
    """A schedule's value enters the loss at each update (a constant schedule trains as the number); save keeps it."""

    class Decay:  # a callable object, as user schedules often are
        def __call__(self, progress_remaining: float) -> float:
            return 0.5 * progress_remaining

    seen = []

    def train(ent_coef):
        model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=2, ent_coef=ent_coef, seed=0)
        original_train = model.train

        def train_and_read_the_log():
            original_train()
            seen.append((model.logger.name_to_value["train/ent_coef"], model._current_progress_remaining))

        model.train = train_and_read_the_log
        model.learn(128)
        return model, th.nn.utils.parameters_to_vector(model.policy.parameters())

    _, as_number = train(0.5)
    _, as_constant = train(lambda _: 0.5)
    assert th.equal(as_number, as_constant)
    seen.clear()
    decayed, as_decay = train(Decay())
    assert not th.equal(as_number, as_decay)
    assert len(seen) == 4 and all(value == pytest.approx(0.5 * progress) for value, progress in seen)
    assert [value for value, _ in seen] == sorted(value for value, _ in seen)[::-1] and seen[-1][0] < 0.5
    assert callable(decayed.ent_coef), "train() puts the schedule back"
    decayed.save(tmp_path / "model.zip")
    assert ShmPPO.load(tmp_path / "model.zip").ent_coef(0.5) == pytest.approx(0.25)


def test_buffer_stores_memory_only_at_sequence_starts():
    model = ShmPPO("MlpShmPolicy", make_vec_env("CartPole-v1", n_envs=3), n_steps=64, batch_size=32)
    assert model.sequence_length == 32
    assert model.rollout_buffer.memory_pi.shape == (2, 3, 32, 32)
    assert model.rollout_buffer.theta_indices.shape == (64, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sequence_length=48), "must divide n_steps"),
        (dict(sequence_length=32, batch_size=48), "must be a multiple of sequence_length"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(n_steps=0), "n_steps must be an integer >= 1"),
        (dict(policy_kwargs=dict(memory_size=0)), "memory_size must be an integer >= 1"),
        (dict(policy_kwargs=dict(bank_size=0)), "bank_size must be an integer >= 1"),
        (dict(policy_kwargs=dict(calibration="learned")), "Unknown calibration mode"),
        (dict(policy_kwargs=dict(memory_decay=-0.1)), "decay must be a number in"),
        (dict(policy_kwargs=dict(critic_memory="both")), "Unknown critic_memory 'both'"),
        (dict(policy_kwargs=dict(shared_memory=True, enable_critic_memory=True)), "is not a valid critic memory"),
        (dict(policy_kwargs=dict(critic_trains_memory=True)), "is not a valid critic memory"),
        (dict(policy_kwargs=dict(critic_memory="joint", shared_memory=True)), "Pass critic_memory alone"),
        (dict(ent_coef="lin_0.05"), "ent_coef must be a number or a schedule"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    kwargs = {"n_steps": 64, **kwargs}
    with pytest.raises(ValueError, match=message):
        ShmPPO("MlpShmPolicy", "CartPole-v1", **kwargs)


def test_short_automatic_sequences_warn():
    with pytest.warns(UserWarning, match="memory gradients are cut every 4 steps"):
        ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=100, batch_size=64)


class TupleActionEnv(IdentityEnv):
    def __init__(self):
        super().__init__(2)
        self.action_space = gym.spaces.Tuple([gym.spaces.Discrete(2), gym.spaces.Discrete(2)])


class TupleObservationEnv(IdentityEnv):
    def __init__(self):
        super().__init__(2)
        self.observation_space = gym.spaces.Tuple([gym.spaces.Discrete(2)])


def test_unsupported_spaces():
    with pytest.raises(ValueError, match="does not support Tuple action spaces"):
        ShmPPO("MlpShmPolicy", TupleActionEnv())
    with pytest.raises(ValueError, match="does not support Tuple observation spaces"):
        ShmPPO("MlpShmPolicy", TupleObservationEnv())
    with pytest.raises(TypeError, match="needs an SHM policy"):
        ShmPPO(ShmActorCriticPolicy.__base__, "CartPole-v1")


def test_predict_rejects_wrong_states():
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, policy_kwargs=dict(memory_size=8))
    obs = np.zeros((2, 4), dtype=np.float32)
    _, state = model.predict(obs)
    assert state[0].shape == (2, 8, 8)
    with pytest.raises(ValueError, match=r"expected \(3, 8, 8\)"):
        model.predict(np.zeros((3, 4), dtype=np.float32), state=state)
    with pytest.raises(ValueError, match="must be a tuple"):
        model.predict(obs, state=state[0])
    with pytest.raises(ValueError, match="must be a tuple"):
        model.predict(obs, state=(state[0], state[0]))
    with pytest.raises(ValueError, match="one per environment"):
        model.predict(obs, state=state, episode_start=np.zeros(3, dtype=bool))


def test_episode_start_resets_predict_memory():
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0)
    obs = np.random.randn(1, 4).astype(np.float32)
    _, busy_state = model.predict(obs, state=None)
    for _ in range(5):
        _, busy_state = model.predict(obs, state=busy_state)
    th.manual_seed(1)
    _, fresh = model.predict(obs, state=None, episode_start=np.ones(1, dtype=bool))
    th.manual_seed(1)
    _, reset = model.predict(obs, state=busy_state, episode_start=np.ones(1, dtype=bool))
    np.testing.assert_allclose(reset[0], fresh[0])


def test_dict_observations_need_the_multi_input_policy():
    """Refused at construction, like SB3's PPO, instead of ``'dict' object has no attribute 'flatten'`` at the first step."""
    for policy in ("MlpShmPolicy", "CnnShmPolicy"):
        with pytest.raises(ValueError, match="You must use `MultiInputShmPolicy` when working with dict observation"):
            ShmPPO(policy, SimpleMultiObsEnv(), n_steps=16, batch_size=16)


def test_numpy_memory_size_and_refused_types():
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=16, batch_size=16, policy_kwargs=dict(memory_size=np.int64(8)))
    model.learn(32)
    assert model.policy.memory_size == 8 and model.predict(np.zeros(4, dtype=np.float32))[1][0].shape == (1, 8, 8)
    for kwargs, message in [
        (dict(memory_size=True), "memory_size must be an integer >= 1, got True"),
        (dict(memory_clamp="100"), "clamp must be a positive number or None"),
        (dict(memory_input_dim=True), "memory_input_dim must be an integer >= 1 or None"),
    ]:
        with pytest.raises(ValueError, match=message):
            ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=16, batch_size=16, policy_kwargs=kwargs)


def test_unbounded_memory_options_warn():
    with pytest.warns(UserWarning, match="memory_clamp=None.*no bound") as record:
        ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=16, batch_size=16, policy_kwargs=dict(memory_clamp=None))
    assert len([warning for warning in record if "no bound" in str(warning.message)]) == 1, "one warning, not one per cell"


class NanObservationEnv(gym.Env):
    """Box observations; ``bad_step`` returns one with a NaN (or inf) in entry 1, or in the Dict key ``"b"``."""

    def __init__(self, bad_step: int = 3, value: float = float("nan"), dict_obs: bool = False):
        box = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.observation_space = gym.spaces.Dict(a=box, b=box) if dict_obs else box
        self.action_space = gym.spaces.Discrete(2)
        self.bad_step, self.value, self.dict_obs, self.t = bad_step, value, dict_obs, 0

    def _obs(self):
        obs = np.zeros(3, dtype=np.float32)
        if self.t == self.bad_step:
            obs[1] = self.value
        return dict(a=np.zeros(3, dtype=np.float32), b=obs) if self.dict_obs else obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, self.t >= 50, False, {}


@pytest.mark.parametrize("dict_obs", [False, True])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_observations_are_named(dict_obs, value):
    """In rollouts (environment 1 of 2 goes bad) and in predict, with the environment index and the Dict key."""
    policy = "MultiInputShmPolicy" if dict_obs else "MlpShmPolicy"
    name = r"observation\['b'\]" if dict_obs else "observation"
    env = make_vec_env(NanObservationEnv, n_envs=2, env_kwargs=dict(value=value, dict_obs=dict_obs))
    env.envs[0].unwrapped.bad_step = -1
    model = ShmPPO(policy, env, n_steps=16, batch_size=16)
    with pytest.raises(ValueError, match=rf"The {name} of environment\(s\) \[1\] holds NaN or inf"):
        model.learn(32)
    obs = NanObservationEnv(bad_step=0, value=value, dict_obs=dict_obs).reset()[0]
    with pytest.raises(ValueError, match=rf"The {name} of environment\(s\) \[0\] holds NaN or inf"):
        model.predict(obs)


def test_observation_check_can_be_turned_off():
    """Without it, the memory's own check still stops the NaN (a FloatingPointError), and old saves load with it on."""
    kwargs = dict(check_observations=False)
    model = ShmPPO("MlpShmPolicy", NanObservationEnv(), n_steps=16, batch_size=16, policy_kwargs=kwargs)
    with pytest.raises(FloatingPointError, match="its input is not finite"):
        model.predict(NanObservationEnv(bad_step=0).reset()[0])
    data = model.policy._get_constructor_parameters()
    assert data.pop("check_observations") is False
    assert ShmActorCriticPolicy(**data).check_observations, "a saved policy without the option gets the default"


@pytest.mark.slow
def test_learns_a_memory_task_that_ppo_cannot():
    """Recall a cue after 5 blank steps: ShmPPO reaches return 1 (measured ~15 s); memoryless PPO stays at ~0."""
    env = make_vec_env(RecallFirstEnv, n_envs=8, seed=0, env_kwargs=dict(delay=5))
    eval_env = make_vec_env(RecallFirstEnv, n_envs=4, seed=123, env_kwargs=dict(delay=5))
    model = make_recall_model(env, seed=0)
    model.learn(20_000)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=100)
    assert mean_return > 0.9


@pytest.mark.parametrize(
    "flags, mode",
    [
        (dict(enable_critic_memory=True), "separate"),
        (dict(shared_memory=True, enable_critic_memory=False), "shared"),
        (dict(shared_memory=True), "shared"),
        (dict(shared_memory=True, enable_critic_memory=False, critic_trains_memory=True), "joint"),
        (dict(enable_critic_memory=False), "none"),
    ],
)
def test_deprecated_critic_flags_map_to_critic_memory(tmp_path, flags, mode):
    """The three flags critic_memory replaced still build the same policy (with a DeprecationWarning), and a model
    saved with them (as every model before critic_memory) loads and predicts as the one saved."""
    with pytest.warns(DeprecationWarning, match=f"use critic_memory='{mode}'"):
        model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, policy_kwargs=flags)
    assert model.policy.critic_memory == mode
    reference = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, policy_kwargs={"critic_memory": mode})
    assert {name for name, _ in model.policy.named_parameters()} == {name for name, _ in reference.policy.named_parameters()}
    model.save(tmp_path / "model.zip")
    with pytest.warns(DeprecationWarning):
        loaded = ShmPPO.load(tmp_path / "model.zip")
    obs = np.random.RandomState(0).randn(3, 4).astype(np.float32)
    for policy in (model, loaded):
        policy.set_random_seed(0)
    np.testing.assert_array_equal(
        model.predict(obs, episode_start=np.ones(3, dtype=bool))[1][0],
        loaded.predict(obs, episode_start=np.ones(3, dtype=bool))[1][0],
    )
