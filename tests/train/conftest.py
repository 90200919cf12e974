"""One intra-op thread for the trainer tests: on a shared 2-core machine OpenMP's spinning threads
make tiny models ~10x slower. Subprocesses get OMP_NUM_THREADS=1 (train_helpers.env)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")  # module: before module-scoped references
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
