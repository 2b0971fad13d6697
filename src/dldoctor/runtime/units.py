"""Byte sizes: read a memory budget (``8GiB``, ``500MB``) and write a number of bytes.

No torch here: the configuration's validation and the CLI use these.
"""

from __future__ import annotations

import re
from typing import Any

from dldoctor.core.errors import ConfigError

# Units with an "i" and bare letters are powers of 1024 (as GPU tools and `docker -m`
# read them); kB/MB/GB/TB are powers of 1000. Case does not matter: "mb" is bytes.
_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10**3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10**6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10**12,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_budget(text: Any) -> int | None:
    """Bytes of a memory budget such as ``8GiB``, ``500MB``, ``2.5G`` or ``1073741824``.

    Returns:
        The number of bytes, or None for the empty string (automatic budget).

    Raises:
        ConfigError: when the text is not a positive size.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ConfigError(f"memory_model.budget must be a size such as '8GiB', got {text!r}")
    if not text.strip():
        return None
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(
            f"memory budget {text!r} is not a size",
            hint="Write bytes or a number with a unit: 1073741824, 8GiB, 500MB, 2.5G "
                 "(KiB/MiB/GiB/TiB and K/M/G/T are powers of 1024, kB/MB/GB/TB powers of 1000).",
        )
    value = float(match.group(1)) * _UNITS[unit]
    if value < 1:
        raise ConfigError(f"memory budget {text!r} must be at least one byte",
                          hint="For example --memory-budget 8GiB")
    return int(value)


def format_bytes(n: float) -> str:
    """``412 MB``, ``15.2 GB``, ``3.9 kB``, ``512 B`` (powers of 1000)."""
    n = float(n)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"
    return f"{n:.0f} B"
