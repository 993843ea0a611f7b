"""Saves killed at random points (SIGKILL, nothing runs after it) never leave the target unloadable."""

import os
import signal
import sys
import time

import numpy as np
import pytest
import torch as th

from sb3_shm import ShmPPO

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork (Linux)")


def save_forever(model: ShmPPO, path) -> None:
    """In a forked child: save in a loop until killed, then exit without running the parent's cleanup."""
    try:
        while True:
            model.save(path)
    finally:
        os._exit(0)


def test_killed_saves_leave_a_loadable_file_and_no_temporaries(tmp_path, one_torch_thread):
    # A few MB, so that a save takes long enough to be killed in the middle of writing
    model = ShmPPO("MlpShmPolicy", "CartPole-v1", n_steps=32, batch_size=32, policy_kwargs=dict(net_arch=[512, 512]))
    target = tmp_path / "model.zip"
    start = time.perf_counter()
    model.save(target)
    save_time = time.perf_counter() - start
    expected = th.nn.utils.parameters_to_vector(model.policy.parameters())

    rng = np.random.default_rng(0)
    killed_mid_write = 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            save_forever(model, target)
        time.sleep(rng.uniform(0.0, 3.0 * save_time))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        killed_mid_write += any(path.name.endswith(".tmp") for path in tmp_path.iterdir())
        loaded = ShmPPO.load(target)
        th.testing.assert_close(th.nn.utils.parameters_to_vector(loaded.policy.parameters()), expected)
    assert killed_mid_write >= 5, f"only {killed_mid_write} of 20 kills hit a save in the middle of writing"

    model.save(target)
    assert [path.name for path in tmp_path.iterdir()] == ["model.zip"], "the next save removes the killed saves' files"
