"""Fixtures shared by several test modules."""

import importlib
import sys

import pytest
import torch as th


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one thread, and do not fight over the shared CI cores (opt in per module)."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.fixture
def models_with_missing_module(tmp_path, monkeypatch):
    """
    Two checkpoints pickled with code from a module that is gone at load time: ``schedule.zip`` (its learning-rate
    schedule) and ``activation.zip`` (its policy's activation function).

    :return: the schedule model, and the folder of the two files
    """
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    code = "import torch\n\ndef schedule(progress):\n    return 3e-4 * progress\n\n"
    code += "class Activation(torch.nn.ReLU):\n    pass\n"
    (module_dir / "gone_module.py").write_text(code)
    monkeypatch.syspath_prepend(str(module_dir))
    import gone_module

    from sb3_shm import ShmPPO

    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, learning_rate=gone_module.schedule)
    model.save(tmp_path / "schedule.zip")
    kwargs = dict(activation_fn=gone_module.Activation)
    ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, policy_kwargs=kwargs).save(tmp_path / "activation.zip")
    monkeypatch.delitem(sys.modules, "gone_module")
    (module_dir / "gone_module.py").unlink()
    importlib.invalidate_caches()
    return model, tmp_path
