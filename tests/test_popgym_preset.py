"""The SHM authors' POPGym model as a preset of MlpShmPolicy: TimeEncodingExtractor, memory_output_dim, trunk."""

import copy
import re
import warnings

import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import ConstantSchedule
from torch import nn

from sb3_shm import ShmPPO
from sb3_shm.common.recurrent.policies import ShmActorCriticPolicy
from sb3_shm.common.recurrent.type_aliases import ShmStates
from sb3_shm.common.torch_layers import TimeEncodingExtractor
from sb3_shm.envs import SinePositionalEncoding
from sb3_shm.envs.wrappers import sine_positional_encoding
from sb3_shm.zoo import HYPERPARAMS_FILE
from tests.test_shm_ppo import assert_replay_matches_rollout

# The preset, small where the size does not matter to the test (H 8 instead of 128, W_out 32 instead of 1024)
ENCODING = 16
PRESET = dict(
    features_extractor_class=TimeEncodingExtractor,
    features_extractor_kwargs=dict(features_dim=32, encoding_size=ENCODING),
    memory_input_dim=16,
    memory_size=8,
    calibration="fixed",
    memory_clamp=None,
    critic_memory="joint",
    memory_output_dim=32,
    trunk=[16],
    net_arch=dict(pi=[], vf=[]),
    activation_fn=nn.ReLU,
)
OBS_DIM = 4


def make_policy(**overrides) -> ShmActorCriticPolicy:
    space = spaces.Box(-1, 1, (OBS_DIM + ENCODING,), np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="with memory_clamp=None")  # the authors' unbounded memory
        return ShmActorCriticPolicy(space, spaces.Discrete(3), ConstantSchedule(1e-3), **{**PRESET, **overrides})


def sequence(n_seq: int = 2, length: int = 5) -> tuple[th.Tensor, th.Tensor]:
    """Observations (n_seq * T, obs + encoding) whose encodings count the steps from 0, and episode starts."""
    obs = th.randn(n_seq, length, OBS_DIM)
    encoding = th.as_tensor(np.stack([sine_positional_encoding(t, ENCODING) for t in range(length)]))
    obs = th.cat([obs, encoding.expand(n_seq, -1, -1)], dim=-1).reshape(n_seq * length, -1)
    starts = th.zeros(n_seq, length)
    starts[:, 0] = 1
    return obs, starts.flatten()


def latents(policy: ShmActorCriticPolicy, obs: th.Tensor, starts: th.Tensor, n_seq: int = 2):
    states = policy.initial_state(n_seq)
    return policy._latents(obs, states, starts, th.zeros_like(starts, dtype=th.long))


def test_preset_shapes():
    policy = make_policy()
    obs, starts = sequence()
    features = policy.extract_features(obs)
    assert features.shape == (10, 32)
    assert policy.memory_actor.embed[0].weight.shape == (16, 32)  # features -> memory input
    assert policy.memory_actor.out.weight.shape == (32, 8)  # H -> W_out
    assert policy.mlp_extractor.trunk[0].weight.shape == (16, 32)  # W_out -> trunk
    assert isinstance(policy.mlp_extractor.trunk[1], nn.ReLU)
    assert policy.memory_critic is None  # one memory, one trunk
    latent_pi, latent_vf, _ = latents(policy, obs, starts)
    assert latent_pi.shape == latent_vf.shape == (10, 16)
    assert policy.action_net.in_features == policy.value_net.in_features == 16
    distribution, memory = policy.get_distribution(obs[:2], policy.initial_state(2).pi, starts[:2])
    assert distribution.distribution.logits.shape == (2, 3) and memory.shape == (2, 8, 8)
    assert policy.predict_values(obs[:2], memory, starts[:2]).shape == (2, 1)


def test_time_encoding_extractor():
    space = spaces.Box(-1, 1, (OBS_DIM + ENCODING,), np.float32)
    extractor = TimeEncodingExtractor(space, features_dim=32, encoding_size=ENCODING)
    assert extractor.strength.item() == 0.5
    obs, _ = sequence(n_seq=1, length=3)
    out = extractor(obs)
    # the same observation at another step: other features, in the first encoding_size entries only
    moved = obs.clone()
    moved[:, OBS_DIM:] = obs[[2, 0, 1], OBS_DIM:]
    difference = (extractor(moved) - out).abs()
    assert difference[:, :ENCODING].amax() > 0.1 and difference[:, ENCODING:].amax() == 0
    # x * (1 - s) + pe * s with x the LayerNorm (no affine) of the linear map
    x = nn.functional.layer_norm(extractor.linear(obs[:, :OBS_DIM]), (32,))
    th.testing.assert_close(out[:, :ENCODING], 0.5 * x[:, :ENCODING] + 0.5 * obs[:, OBS_DIM:])
    th.testing.assert_close(out[:, ENCODING:], 0.5 * x[:, ENCODING:])
    out.square().sum().backward()
    assert extractor.strength.grad is not None and extractor.strength.grad.abs() > 0
    # the strength is used clamped to [0, 1]
    with th.no_grad():
        extractor.strength.fill_(1.5)
    th.testing.assert_close(extractor(obs)[:, :ENCODING], obs[:, OBS_DIM:])


def test_time_encoding_extractor_refuses_other_spaces():
    with pytest.raises(ValueError, match="1-D Box"):
        TimeEncodingExtractor(spaces.Discrete(4))
    with pytest.raises(ValueError, match="1-D Box"):
        TimeEncodingExtractor(spaces.Box(0, 1, (2, 130)))
    with pytest.raises(ValueError, match=r"not more than encoding_size=128.*SinePositionalEncoding"):
        TimeEncodingExtractor(spaces.Box(0, 1, (128,)))


def test_wrapper_encoding_is_popgyms():
    """SinePositionalEncoding(size=128, max_period=1024) computes popgym's positional_encoding(1024, 128) table."""
    embeddings = pytest.importorskip("popgym.baselines.models.embeddings")
    table = embeddings.positional_encoding(1024, 128).numpy()
    ours = np.stack([sine_positional_encoding(t, 128, 1024) for t in range(1024)])
    # popgym computes in float32: step * frequency rounds at large steps
    np.testing.assert_allclose(ours, table, rtol=0, atol=2e-4)


@pytest.mark.parametrize("loss", ["value", "log_prob"])
def test_one_trunk_trained_by_both_losses(loss):
    policy = make_policy()
    obs, starts = sequence()
    latent_pi, latent_vf, _ = latents(policy, obs, starts)
    if loss == "value":
        policy.value_net(latent_vf).sum().backward()
    else:
        policy._get_action_dist_from_latent(latent_pi).log_prob(th.zeros(10)).sum().backward()
    for module in (policy.mlp_extractor.trunk, policy.memory_actor, policy.features_extractor):
        gradients = [p.grad for p in module.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in gradients), module
    assert policy.features_extractor.strength.grad.abs() > 0


@pytest.mark.parametrize("critic_memory", ["separate", "shared", "none", None])
def test_trunk_needs_the_joint_memory(critic_memory):
    with pytest.raises(ValueError, match=r"trunk=\[16\].*critic_memory='joint'"):
        make_policy(critic_memory=critic_memory)


def test_bad_options():
    with pytest.raises(ValueError, match="memory_output_dim"):
        make_policy(memory_output_dim=0)
    with pytest.raises(ValueError, match="trunk"):
        make_policy(trunk=[16, 0.5])


def test_defaults_keep_the_old_network():
    """Without the new options the state dict has the keys of checkpoints saved before them."""
    policy = ShmActorCriticPolicy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), ConstantSchedule(1e-3))
    assert not any("trunk" in key for key in policy.state_dict())
    assert policy.memory_actor.output_dim == policy.memory_size == policy.mlp_extractor.policy_net[0].in_features
    data = policy._get_constructor_parameters()
    assert data["trunk"] == [] and data["memory_output_dim"] == policy.memory_size
    # an old checkpoint's constructor parameters lack the new options: the defaults apply
    del data["trunk"], data["memory_output_dim"]
    old = ShmActorCriticPolicy(**data)
    old.load_state_dict(policy.state_dict())


def wrapped_cartpole(n_envs: int = 2):
    kwargs = dict(size=ENCODING, max_period=1024)
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=0, wrapper_class=SinePositionalEncoding, wrapper_kwargs=kwargs)


def preset_model(env, **kwargs) -> ShmPPO:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="with memory_clamp=None")
        return ShmPPO("MlpShmPolicy", env, seed=0, policy_kwargs=PRESET, **kwargs)


def test_save_load_round_trip(tmp_path):
    model = preset_model(wrapped_cartpole(), n_steps=16, batch_size=32, n_epochs=1)
    model.learn(32)
    model.save(tmp_path / "preset.zip")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="with memory_clamp=None")
        loaded = ShmPPO.load(tmp_path / "preset.zip", device="cpu")
    assert loaded.policy.trunk == [16] and loaded.policy.memory_actor.output_dim == 32
    assert isinstance(loaded.policy.features_extractor, TimeEncodingExtractor)
    obs = model.env.reset()
    starts = np.ones(2, dtype=bool)
    state, loaded_state = None, None
    for _ in range(5):
        action, state = model.predict(obs, state, starts, deterministic=True)
        loaded_action, loaded_state = loaded.predict(obs, loaded_state, starts, deterministic=True)
        np.testing.assert_array_equal(action, loaded_action)
        np.testing.assert_allclose(state[0], loaded_state[0])
        obs, _, dones, _ = model.env.step(action)
        starts = dones


@pytest.mark.parametrize("batch_size", [32, None])
def test_ratio_is_one_before_the_first_update(batch_size):
    """As tests/test_shm_ppo.py's test of the same name, with the preset: rollout and train-time log-probs agree."""
    model = preset_model(wrapped_cartpole(), n_steps=64, batch_size=batch_size)
    seen = assert_replay_matches_rollout(model)
    assert seen == 128


def test_yml_preset_learns_repeat_previous():
    """ShmPPO.learn on POPGym-RepeatPreviousEasy-v0 with the yml entry's wrapper and policy_kwargs (evaluated as the zoo)."""
    pytest.importorskip("popgym")
    import importlib  # noqa: F401  (the entry's policy_kwargs import the extractor with it)

    entry = copy.deepcopy(yaml.safe_load(HYPERPARAMS_FILE.read_text())["POPGym-RepeatPreviousEasy-v0"])
    policy_kwargs = eval(entry["policy_kwargs"])  # as rl_zoo3's ExperimentManager does
    assert policy_kwargs["features_extractor_class"] is TimeEncodingExtractor
    assert re.search(r"memory_size=128\b", entry["policy_kwargs"])
    ((wrapper, wrapper_kwargs),) = entry["env_wrapper"][0].items()
    assert wrapper == "sb3_shm.envs.SinePositionalEncoding" and wrapper_kwargs == dict(size=128, max_period=1024)
    env = make_vec_env(
        "POPGym-RepeatPreviousEasy-v0", n_envs=2, seed=0, wrapper_class=SinePositionalEncoding, wrapper_kwargs=wrapper_kwargs
    )
    hyperparams = {key: entry[key] for key in ("gamma", "gae_lambda", "clip_range", "vf_coef", "ent_coef", "learning_rate")}
    with pytest.warns(UserWarning, match="with memory_clamp=None"):  # the authors' unbounded memory, said once
        model = ShmPPO("MlpShmPolicy", env, n_steps=64, batch_size=64, n_epochs=2, policy_kwargs=policy_kwargs, **hyperparams)
    trained = (model.policy.features_extractor.linear.weight, model.policy.memory_actor.projection.weight)
    trained += (model.policy.mlp_extractor.trunk[0].weight, model.policy.action_net.weight, model.policy.value_net.weight)
    before = [p.detach().clone() for p in trained]
    model.learn(256)
    assert model.num_timesteps >= 256 and np.isfinite(model.logger.name_to_value["train/loss"])
    assert all(not th.equal(old, new) for old, new in zip(before, trained, strict=True))
    assert model.policy.memory_actor.memory_size == 128 and model.policy.mlp_extractor.trunk[0].in_features == 1024


def test_states_are_the_memory_alone():
    """The step count lives in the observation: predict's state is the memory only, as without the preset."""
    policy = make_policy()
    obs, _ = sequence(n_seq=1, length=1)
    _, state = policy.predict(obs.numpy(), None, np.ones(1, dtype=bool))
    assert len(state) == 1 and state[0].shape == (1, 8, 8)
    assert isinstance(policy.initial_state(1), ShmStates)
