"""Run code under a fixed seed and put every RNG back as it was afterwards."""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator

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
    cuda_on = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda_on else None
    try:
        if seed is not None:
            seeded = _seeded(seed)
            random.setstate(seeded[0])
            np.random.set_state(seeded[1])
            torch.random.set_rng_state(seeded[2])
            if cuda_on:
                torch.cuda.manual_seed_all(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


@functools.lru_cache(maxsize=8)
def _seeded(seed: int) -> tuple:
    """The Python, NumPy and torch CPU generator states right after seeding with ``seed``.

    Seeding from scratch costs a fraction of a millisecond per generator; checks enter
    this context dozens of times per run, so the seeded states are made once and set.
    """
    outer = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.random.default_generator.manual_seed(seed)
        return random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    finally:
        random.setstate(outer[0])
        np.random.set_state(outer[1])
        torch.random.set_rng_state(outer[2])
