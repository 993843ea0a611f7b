"""Save / load round trips, continued training, and clear errors for files that are not ShmPPO checkpoints."""

import io
import zipfile

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import set_random_seed

from sb3_shm import ShmPPO

POLICY_KWARGS = [
    dict(memory_size=8),
    dict(memory_size=8, calibration="fixed", enable_critic_memory=False),
    dict(memory_size=8, calibration="none", shared_memory=True, enable_critic_memory=False, memory_clamp=None),
    dict(memory_size=8, shared_memory=True, enable_critic_memory=False, critic_trains_memory=True),
]


def predict_sequence(model: ShmPPO, seed: int, n_envs: int = 2, n_steps: int = 12):
    """Actions and states for a fixed observation sequence, with an episode start in the middle."""
    set_random_seed(seed)
    observations = np.random.RandomState(0).randn(n_steps, n_envs, 4).astype(np.float32)
    state, starts, actions, states = None, np.ones(n_envs, dtype=bool), [], []
    for t, obs in enumerate(observations):
        action, state = model.predict(obs, state=state, episode_start=starts)
        starts = np.full(n_envs, t == 5)
        actions.append(action)
        states.append(state[0].copy())
    return np.array(actions), np.array(states)


@pytest.mark.parametrize("policy_kwargs", POLICY_KWARGS)
def test_save_load_predicts_identically(tmp_path, policy_kwargs):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, policy_kwargs=policy_kwargs, seed=0)
    model.learn(64)
    actions, states = predict_sequence(model, seed=7)
    model.save(tmp_path / "model")
    loaded = ShmPPO.load(tmp_path / "model.zip")
    loaded_actions, loaded_states = predict_sequence(loaded, seed=7)
    np.testing.assert_array_equal(actions, loaded_actions)
    np.testing.assert_array_equal(states, loaded_states)
    assert loaded.policy.memory_actor.calibration == model.policy.memory_actor.calibration
    assert loaded.policy.memory_actor.decay == model.policy.memory_actor.decay
    assert loaded.sequence_length == model.sequence_length
    # predict is reproducible under set_random_seed, and really depends on the drawn indices
    np.testing.assert_array_equal(states, predict_sequence(loaded, seed=7)[1])
    if policy_kwargs.get("calibration", "random") == "random":
        assert not np.array_equal(states, predict_sequence(loaded, seed=8)[1])


def test_continue_training_after_load(tmp_path):
    model = ShmPPO("MlpShmPolicy", make_vec_env("CartPole-v1", n_envs=2), n_steps=32, batch_size=32, n_epochs=1)
    model.learn(64)
    model.save(tmp_path / "model.zip")
    loaded = ShmPPO.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2))
    before = th.nn.utils.parameters_to_vector(loaded.policy.parameters()).clone()
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128
    assert not th.equal(before, th.nn.utils.parameters_to_vector(loaded.policy.parameters()))


def test_save_to_file_object():
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = ShmPPO.load(buffer)
    th.testing.assert_close(
        th.nn.utils.parameters_to_vector(loaded.policy.parameters()),
        th.nn.utils.parameters_to_vector(model.policy.parameters()),
    )


def test_load_rejects_a_recurrent_ppo_checkpoint(tmp_path):
    RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "lstm.zip")
    with pytest.raises(ValueError, match="RecurrentActorCriticPolicy, not an ShmPPO model"):
        ShmPPO.load(tmp_path / "lstm.zip")


def test_load_rejects_truncated_and_foreign_files(tmp_path):
    ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "model.zip")
    content = (tmp_path / "model.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match="truncated"):
        ShmPPO.load(tmp_path / "truncated.zip")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="truncated or not a zip file"):
        ShmPPO.load(tmp_path / "notes.txt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme", "not a model")
    with pytest.raises(ValueError, match="not a whole ShmPPO checkpoint"):
        ShmPPO.load(tmp_path / "other.zip")
    with pytest.raises(FileNotFoundError, match="No ShmPPO checkpoint"):
        ShmPPO.load(tmp_path / "missing")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    model.save(tmp_path / "model.zip")
    good = (tmp_path / "model.zip").read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("stable_baselines3.common.base_class.save_to_zip_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "model.zip")
    assert (tmp_path / "model.zip").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"], "no temporary file is left behind"
