"""Save / load round trips, continued training, and clear errors for files that are not ShmPPO checkpoints."""

import io
import stat
import subprocess
import sys
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
    dict(memory_size=8, calibration="fixed", critic_memory="none"),
    dict(memory_size=8, calibration="none", critic_memory="shared", memory_clamp=None),
    dict(memory_size=8, critic_memory="joint"),
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


def rewrite_zip(source, target, drop=(), replace=None):
    """Copy a zip with entries dropped or replaced (a damaged checkpoint)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name not in drop:
                new.writestr(name, (replace or {}).get(name, old.read(name)))


def test_load_names_damaged_entries(tmp_path):
    ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "model.zip")
    rewrite_zip(tmp_path / "model.zip", tmp_path / "no_optimizer.zip", drop=("policy.optimizer.pth",))
    with pytest.raises(ValueError, match=r"not a whole ShmPPO checkpoint \(no policy.optimizer.pth entry\)"):
        ShmPPO.load(tmp_path / "no_optimizer.zip")
    rewrite_zip(tmp_path / "model.zip", tmp_path / "bad_json.zip", replace={"data": "{not json"})
    with pytest.raises(ValueError, match="'data' entry is not valid JSON"):
        ShmPPO.load(tmp_path / "bad_json.zip")
    rewrite_zip(tmp_path / "model.zip", tmp_path / "list_json.zip", replace={"data": "[1, 2]"})
    with pytest.raises(ValueError, match="'data' entry is not a JSON object"):
        ShmPPO.load(tmp_path / "list_json.zip")


def test_load_with_custom_objects_does_not_unpickle_them(models_with_missing_module):
    model, folder = models_with_missing_module
    with pytest.raises(ValueError, match=r"'learning_rate', 'lr_schedule' were pickled with code from gone_module"):
        ShmPPO.load(folder / "schedule.zip")
    loaded = ShmPPO.load(folder / "schedule.zip", custom_objects={"learning_rate": 1e-4, "lr_schedule": lambda _: 1e-4})
    assert loaded.learning_rate == 1e-4
    th.testing.assert_close(
        th.nn.utils.parameters_to_vector(loaded.policy.parameters()),
        th.nn.utils.parameters_to_vector(model.policy.parameters()),
    )


def test_save_writes_through_a_symlink_and_keeps_the_mode(tmp_path):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    target = tmp_path / "store" / "model.zip"
    model.save(target)
    target.chmod(0o640)
    link = tmp_path / "latest.zip"
    link.symlink_to(target)
    before = target.read_bytes()
    model.learn(32)
    model.save(link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_bytes() != before, "the link's target got the new model"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    ShmPPO.load(link)


def test_save_refuses_a_read_only_file(tmp_path):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    model.save(tmp_path / "model.zip")
    (tmp_path / "model.zip").chmod(0o444)
    before = (tmp_path / "model.zip").read_bytes()
    with pytest.raises(PermissionError, match="read-only file"):
        model.save(tmp_path / "model.zip")
    assert (tmp_path / "model.zip").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


def test_save_removes_temporary_files_of_killed_saves(tmp_path):
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.zip.{int(dead.stdout)}.tmp"
    stale.write_bytes(b"half a model")
    other = tmp_path / f".other.zip.{int(dead.stdout)}.tmp"  # another target's: not ours to remove
    other.write_bytes(b"half a model")
    model.save(tmp_path / "model.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "model.zip"]


def test_load_without_unpickling_anything(tmp_path, monkeypatch):
    """custom_objects for every pickled entry (pickled_entries lists them): loading then runs no code from the file."""
    import cloudpickle
    from stable_baselines3.common.utils import ConstantSchedule

    from sb3_shm import MlpShmPolicy
    from sb3_shm.common.checkpoint import pickled_entries

    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32)
    model.save(tmp_path / "model.zip")
    replacements = {
        "policy_class": MlpShmPolicy,
        "observation_space": model.observation_space,
        "action_space": model.action_space,
        "clip_range": ConstantSchedule(0.2),
        "lr_schedule": ConstantSchedule(3e-4),
    }
    entries = pickled_entries(tmp_path / "model.zip")
    assert set(replacements) <= set(entries)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled an entry of the file")

    monkeypatch.setattr(cloudpickle, "loads", no_unpickling)
    loaded = ShmPPO.load(tmp_path / "model.zip", custom_objects={name: replacements.get(name) for name in entries})
    th.testing.assert_close(
        th.nn.utils.parameters_to_vector(loaded.policy.parameters()),
        th.nn.utils.parameters_to_vector(model.policy.parameters()),
    )
