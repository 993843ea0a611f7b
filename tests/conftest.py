"""Fixtures shared by several test modules."""

import pytest
import torch as th


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one thread, and do not fight over the shared CI cores (opt in per module)."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)
