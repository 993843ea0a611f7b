"""
On a CUDA GPU: every scan implementation equals the step loop, ShmPPO trains there with each implementation (ratio
1 before the first update), and a model trained on the GPU predicts the same on the CPU after save / load.

Skipped without a GPU (CI has none). On a GPU machine: ``python -m pytest tests/test_cuda.py tests/test_triton.py -k cuda``.
"""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_shm import ShmPPO
from sb3_shm.common.memory import scan
from sb3_shm.common.memory.scan import select_impl, shm_sequence
from tests.test_shm_ppo import collect_one_rollout
from tests.test_triton import assert_matches_loop, make_inputs

pytestmark = pytest.mark.skipif(not th.cuda.is_available(), reason="no CUDA GPU")
GPU_IMPLS = ["scan", "sequential", "chunked", "triton", "auto"]


def impl(name, clamp):
    if name == "triton" and not scan.triton_available():
        pytest.skip("triton is not installed")
    return lambda *args: shm_sequence(*args, clamp=clamp, impl=name)


@pytest.mark.parametrize("name", GPU_IMPLS)
@pytest.mark.parametrize("dtype", [th.float32, th.float64])
@pytest.mark.parametrize("clamp", [None, 2.0])
@pytest.mark.parametrize(("batch", "n_steps", "size"), [(3, 1, 4), (2, 70, 33), (4, 300, 64), (2, 40, 256)])
def test_impls_equal_loop_cuda(name, dtype, clamp, batch, n_steps, size):
    vectors, keep, memory = make_inputs(batch, n_steps, size, "random", 3.0 if clamp else 1.0, dtype, seed=5, device="cuda")
    result = impl(name, clamp)(*vectors, keep, memory)[0]
    assert result.device.type == "cuda"
    assert_matches_loop(impl(name, clamp), vectors, keep, memory, clamp)


def test_auto_picks_triton_on_cuda():
    if not scan.triton_available():
        pytest.skip("triton is not installed")
    assert select_impl(th.zeros(1, 1, 1, device="cuda")) == "triton"


@pytest.mark.parametrize("scan_impl", ["sequential", "triton", "auto"])
@pytest.mark.parametrize("calibration", ["random", "fixed"])
def test_shm_ppo_ratio_is_one_on_cuda(scan_impl, calibration):
    if scan_impl == "triton" and not scan.triton_available():
        pytest.skip("triton is not installed")
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    policy_kwargs = dict(scan_impl=scan_impl, calibration=calibration)
    model = ShmPPO("MlpShmPolicy", env, n_steps=64, batch_size=64, seed=0, device="cuda", policy_kwargs=policy_kwargs)
    assert model.policy.device.type == "cuda"
    collect_one_rollout(model)
    for data in model.rollout_buffer.get(model.batch_size):
        assert data.observations.device.type == "cuda"
        with th.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(
                data.observations, data.actions.long().flatten(), data.replay, data.episode_starts
            )
        th.testing.assert_close(th.exp(log_prob - data.old_log_prob), th.ones_like(log_prob), rtol=0, atol=1e-5)
        th.testing.assert_close(values.flatten(), data.old_values, rtol=1e-5, atol=1e-5)
    model.learn(512)  # a few updates on the GPU
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_trained_on_gpu_predicts_the_same_on_cpu(tmp_path):
    # fixed calibration: "random" draws its bank indices from the device's generator, which differs between devices
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    policy_kwargs = dict(calibration="fixed", scan_impl="auto")
    model = ShmPPO("MlpShmPolicy", env, n_steps=64, batch_size=64, n_epochs=2, device="cuda", policy_kwargs=policy_kwargs)
    model.learn(256)
    model.save(tmp_path / "model")
    loaded = ShmPPO.load(tmp_path / "model.zip", device="cpu")
    observations = np.random.RandomState(0).randn(20, 2, 3).astype(np.float32)
    states = {"gpu": None, "cpu": None}
    for t, obs in enumerate(observations):
        starts = np.full(2, t in (0, 9))
        gpu_action, states["gpu"] = model.predict(obs, state=states["gpu"], episode_start=starts, deterministic=True)
        cpu_action, states["cpu"] = loaded.predict(obs, state=states["cpu"], episode_start=starts, deterministic=True)
        np.testing.assert_allclose(gpu_action, cpu_action, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(states["gpu"][0], states["cpu"][0], rtol=1e-4, atol=1e-5)
