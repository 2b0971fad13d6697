"""Measurements: numbers a run takes of a model that is not necessarily broken.

A finding says something is wrong (or at risk); a measurement only says how much: the
bytes a step needs per sample, the samples per second, the validation error of the
short run. Measurements go to the report's top-level ``measurements`` object, by
name, so that two reports can be compared (``dldoctor diff``) without mistaking a
number for a diagnosis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

Better = Literal["higher", "lower"] | None

#: The directions a measurement may improve in (None: neither is better).
BETTER_VALUES: tuple[str | None, ...] = ("higher", "lower", None)


def _finite_or_none(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if number < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return number


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One measured number of a run.

    Attributes:
        value: the number.
        unit: its unit in words or symbols (``B``, ``samples/s``, ``steps``, ``error``), or "".
        noise: one standard error of ``value``, or the resolution of the measurement when
            it is not a mean (a step count read every k steps); None when unknown.
        better: which direction is an improvement, ``higher``, ``lower``, or None.
        check: the check that took it.
        title: one line saying what it is, for people.
    """

    value: float
    unit: str = ""
    noise: float | None = None
    better: Better = None
    check: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise TypeError(f"a measurement's value is a number, not {type(self.value).__name__}") from None
        if not math.isfinite(value):
            raise ValueError(f"a measurement's value must be finite, got {value!r} (leave it out instead)")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "noise", _finite_or_none(self.noise, "a measurement's noise"))
        if self.better not in BETTER_VALUES:
            raise ValueError(f"a measurement's 'better' is 'higher', 'lower' or None, not {self.better!r}")
        object.__setattr__(self, "unit", str(self.unit))
        object.__setattr__(self, "title", str(self.title))

    def to_dict(self) -> dict[str, Any]:
        value: float | int = self.value
        if self.value == int(self.value) and abs(self.value) < 2**53:
            value = int(self.value)
        return {"value": value, "unit": self.unit, "noise": self.noise, "better": self.better,
                "check": self.check, "title": self.title}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(value=float(data["value"]), unit=data.get("unit", "") or "", noise=data.get("noise"),
                   better=data.get("better"), check=data.get("check", "") or "", title=data.get("title", "") or "")


def _number(value: float, unit: str, digits: int = 4) -> str:
    if unit == "B":
        from dldoctor.runtime.units import format_bytes

        return format_bytes(value)
    if unit.startswith("share"):
        return f"{value:.{min(digits, 3) - 2}%}" if digits < 3 else f"{value:.1%}"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    return f"{value:,.0f}" if magnitude >= 100 else f"{value:.{digits}g}"


def format_value(value: float, unit: str = "", noise: float | None = None) -> str:
    """``value`` with its unit and, when known, ``± noise``, for people (``6,207 samples/s ± 322``)."""
    text = _number(value, unit)
    if noise is not None:
        text += f" ± {_number(noise, unit, digits=2)}"
    if unit.startswith("share"):
        return text + unit[len("share"):]
    return text if unit in ("", "B") else f"{text} {unit}"


def rows(measurements: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """``(name, value with unit ± noise, title)`` per measurement of a report, sorted by name."""
    out = []
    for name in sorted(measurements):
        m = measurements[name]
        try:
            text = format_value(float(m["value"]), str(m.get("unit") or ""), m.get("noise"))
        except (KeyError, TypeError, ValueError):
            text = str(m.get("value"))
        out.append((name, text, str(m.get("title") or "")))
    return out
