"""Read the memory a training run holds, cheaply enough to do after every step.

On CUDA the caching allocator's ``memory_allocated``: bytes of live tensors, exact,
without the blocks it keeps cached. On the CPU the process's resident set is coarse
(freed memory often stays mapped, pages come in 4 KiB steps), so the reader uses
glibc's ``mallinfo2()`` where it works: bytes in chunks the C allocator has handed
out and not got back (``uordblks``, plus ``hblkhd`` for the large chunks it maps
directly). PyTorch's CPU tensors are allocated through it, so a tensor kept alive
shows up to the byte, and a call costs about a microsecond. A calibration
allocation proves it before it is trusted (a process preloaded with jemalloc or
tcmalloc would report nothing through glibc); otherwise the resident set is used.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

import torch

#: A calibration tensor this large (bytes) must show up in the reading, in one of this many tries.
_CALIBRATION_BYTES = 1 << 20
_CALIBRATION_TRIES = 5


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo_reader() -> Callable[[], int] | None:
    """``mallinfo2`` in-use bytes, or None when glibc's allocator does not serve this process."""
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []

    def read() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    # Another thread freeing memory between the two reads (torch's intra-op workers, a
    # garbage collection) can hide the calibration tensor once; an allocator that glibc does
    # not see hides it every time. So: trusted when any of a few tries shows it.
    for _ in range(_CALIBRATION_TRIES):
        try:
            before = read()
            probe = torch.empty(_CALIBRATION_BYTES, dtype=torch.uint8)
            after = read()
            del probe
        except Exception:  # any failure means: do not trust it
            return None
        if after - before >= _CALIBRATION_BYTES:
            return read
    return None


def rss_bytes() -> int:
    """The process's resident set size (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_HOST: tuple[Callable[[], int], str] | None = None


def host_reader() -> tuple[Callable[[], int], str]:
    """The best host-memory reader of this process, and what it reads (chosen once)."""
    global _HOST  # noqa: PLW0603 - chosen once per process, on first use
    if _HOST is None:
        mallinfo = _mallinfo_reader()
        _HOST = (mallinfo, "malloc in-use bytes (glibc mallinfo2)") if mallinfo is not None \
            else (rss_bytes, "resident set size")
    return _HOST


class MemoryReader:
    """Reads the memory in use on the run's device (and, on CUDA, the host's too).

    Attributes:
        read: returns the bytes in use on the device (bound once: it runs after every step).
        read_host: on CUDA, returns the host's bytes in use (leaks of CPU tensors); None
            on the CPU, where ``read`` is the host.
        source: what ``read()`` returns, in words (for evidence).
        host_source: what ``read_host()`` returns ("" on the CPU).
        coarse: ``read()`` is the resident set (pages, and memory freed but kept mapped),
            not a count of bytes in use.
    """

    def __init__(self, device: torch.device):
        self._host, host_source = host_reader()
        if device.type == "cuda":
            self.source = f"CUDA memory_allocated on {device}"
            self.host_source = host_source
        else:
            self.source = host_source
            self.host_source = ""
        self.coarse = device.type != "cuda" and self._host is rss_bytes
        self.read: Callable[[], int] = (functools.partial(torch.cuda.memory_allocated, device)
                                        if device.type == "cuda" else self._host)
        self.read_host: Callable[[], int] | None = self._host if device.type == "cuda" else None
