"""The test process's own settings (tests/conftest.py), which keep the suite fast on a busy machine."""
from __future__ import annotations

import os
import subprocess
import sys


def test_torch_and_blas_run_one_thread_unless_the_user_says_otherwise():
    # Tiny models on a loaded 2-core machine: a second intra-op thread waits for a time slice at
    # every small op (decode steps took 10x longer), so the suite runs each process single-threaded.
    import torch

    wanted = int(os.environ.get("OMP_NUM_THREADS", "0"))
    assert wanted >= 1, "conftest.py sets OMP_NUM_THREADS when the user has not"
    assert torch.get_num_threads() == wanted
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert os.environ.get(name), f"{name} is set for numpy/scipy too"
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert int(child.stdout) == wanted, "commands a test starts inherit the setting"
