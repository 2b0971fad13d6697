"""Run code under a fixed seed and put every RNG back as it was afterwards."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def isolated_rng(seed: int | None) -> Iterator[None]:
    """Seed Python, NumPy and torch (CPU and initialised CUDA devices), restore on exit.

    The user's process sees the same random streams afterwards as before, so a
    dldoctor run inside a notebook or a test changes nothing downstream.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % (2**32))
            torch.manual_seed(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
