"""The search space: the spec's ``search_space``, checked against ``dldoctor_spec``'s signature.

A range is ``{"low", "high"}`` with optional ``"log": True`` and ``"int": True``; a
list is a categorical choice. Every key must be a keyword argument of the spec
function (or the function takes ``**kwargs``). Without a ``search_space`` the
tuner searches the optimiser's learning rate (and its weight decay where it is
set) around their current values, through a spec argument when one is measured
to drive them (:func:`optimizer_driver`), else set on the optimiser directly.

No torch or Optuna at import time.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.spec import spec_parameters

SPEC = "spec"
OPTIMIZER = "optimizer"
RANGE_KEYS = ("low", "high", "log", "int")
PLAIN = (str, int, float, bool, type(None))
EXAMPLE = '"search_space": {"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "width": [32, 64, 128]}'


@dataclasses.dataclass(frozen=True)
class Param:
    """One hyper-parameter to search.

    Attributes:
        name: the spec function's keyword argument, or ``optimizer.lr`` /
            ``optimizer.weight_decay`` for a value set on the optimiser directly.
        kind: "float", "int" or "categorical".
        default: its value when the spec function is called with no arguments.
        target: "spec" (a keyword argument) or "optimizer" (set on the param groups).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    default: Any = None
    target: str = SPEC
    has_default: bool = True

    @property
    def key(self) -> str:
        """The name of the optimiser setting (``lr``) or of the spec argument."""
        return self.name.split(".", 1)[1] if self.target == OPTIMIZER else self.name

    @property
    def ordinal(self) -> bool:
        """A categorical list of numbers: searched by position (neighbours are alike)."""
        return self.kind == "categorical" and all(
            isinstance(c, numbers.Real) and not isinstance(c, bool) for c in self.choices)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if not _is_number(value):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        low, high = self.bounds()
        return low <= value <= high

    def grid(self, points: int) -> list[Any]:
        """``points`` evenly spaced values (in log space for log ranges); a list's choices as they are."""
        if self.kind == "categorical":
            return list(self.choices)
        low, high = self.bounds()
        lo, hi = (math.log(low), math.log(high)) if self.log else (low, high)
        values = [lo + (hi - lo) * i / max(1, points - 1) for i in range(points)]
        values = [min(high, max(low, math.exp(v) if self.log else v)) for v in values]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return values

    def bounds(self) -> tuple[float, float]:
        """A range's low and high (a list of choices has neither)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name} is a list of choices, not a range")
        return self.low, self.high

    def describe(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        scale = "log-uniform" if self.log else "uniform"
        return f"{'integer ' if self.kind == 'int' else ''}{scale} in [{self.low:g}, {self.high:g}]"


def _is_number(value: Any) -> bool:
    """A real number, bools excluded (True is an int to Python, not to a search space)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _fail(problem: str, hint: str = EXAMPLE) -> EntrypointError:
    return EntrypointError(problem, hint=hint)


def _range(name: str, body: Mapping[str, Any], default: Any) -> Param:
    unknown = [k for k in body if k not in RANGE_KEYS]
    if unknown:
        raise _fail(f"search_space[{name!r}] has an unknown key {unknown[0]!r}",
                    hint=f"A range takes {', '.join(RANGE_KEYS)}, "
                         'e.g. {"low": 1e-5, "high": 1e-1, "log": True}')
    low: Any = body.get("low")  # user input: checked here
    high: Any = body.get("high")
    for bound in (low, high):
        if not _is_number(bound) or not math.isfinite(bound):
            raise _fail(f"search_space[{name!r}]: low and high must be finite numbers, got {low!r} and {high!r}")
    if not low < high:
        raise _fail(f"search_space[{name!r}]: low must be below high, got {low} and {high}")
    log, as_int = bool(body.get("log", False)), bool(body.get("int", False))
    if log and low <= 0:
        raise _fail(f"search_space[{name!r}]: a log range needs low > 0, got {low}")
    if as_int and (int(low) != low or int(high) != high):
        raise _fail(f"search_space[{name!r}]: an integer range needs whole-number bounds, got {low} and {high}")
    if as_int:
        return Param(name, "int", int(low), int(high), log, default=default)
    return Param(name, "float", float(low), float(high), log, default=default)


def _choices(name: str, values: Any, default: Any) -> Param:
    if not values:
        raise _fail(f"search_space[{name!r}] is an empty list")
    bad = [v for v in values if not isinstance(v, PLAIN)]
    if bad:
        raise _fail(f"search_space[{name!r}]: choices must be numbers, strings, booleans or None; got "
                    f"{type(bad[0]).__name__}",
                    hint="Name the choice instead, e.g. \"activation\": [\"relu\", \"gelu\"], and build the object "
                         "inside dldoctor_spec from the name.")
    if len(set(map(repr, values))) != len(values):
        raise _fail(f"search_space[{name!r}] lists a choice twice")
    return Param(name, "categorical", choices=tuple(values), default=default)


def parse_space(raw: Mapping[str, Any] | None, spec_fn: Callable[..., Any]) -> tuple[Param, ...]:
    """Validate ``raw`` against the spec function's keyword arguments; return the parameters.

    Raises:
        EntrypointError: naming the offending key and showing how to write it.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise _fail("spec key 'search_space' must be a non-empty dict of hyper-parameter name -> range or list")
    defaults = spec_parameters(spec_fn)
    try:
        takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(spec_fn).parameters.values())
    except (TypeError, ValueError):
        takes_any = False
    params = []
    for name, body in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise _fail(f"search_space key {name!r} is not a keyword-argument name")
        if name not in defaults and not takes_any:
            raise _fail(f"search_space[{name!r}] is not a keyword argument of {spec_fn.__name__}()",
                        hint=f"Its keyword arguments: {', '.join(defaults) or '(none)'}. Add one with a default, "
                             f"e.g. def {spec_fn.__name__}({name}=..., ...): and use it inside.")
        if isinstance(body, Mapping):
            param = _range(name, body, defaults.get(name))
        elif isinstance(body, (list, tuple)):
            param = _choices(name, list(body), defaults.get(name))
        else:
            raise _fail(f"search_space[{name!r}] must be a list of choices or a {{'low', 'high'}} range, "
                        f"got {type(body).__name__}")
        params.append(dataclasses.replace(param, has_default=name in defaults))
    return tuple(params)


def default_space(settings: Mapping[str, float], lr_param: str | None, span: float,
                  suggestion: float | None = None) -> tuple[Param, ...]:
    """The space searched without a ``search_space``: learning rate and weight decay around their values.

    ``settings`` holds the optimiser's current ``lr`` and ``weight_decay`` (first
    group); ``lr_param`` is the spec argument measured to drive the learning rate,
    if any. Each is searched log-uniformly within ``span`` x either side of its value
    (widened to reach 10x around a range-test suggestion); a weight decay of 0 is left
    alone (the user chose none).
    """
    out = []
    lr = float(settings.get("lr") or 0.0)
    if lr > 0:
        low, high = lr / span, lr * span
        if suggestion:
            low, high = min(low, suggestion / 10), max(high, suggestion * 10)
        name, target = (lr_param, SPEC) if lr_param else ("optimizer.lr", OPTIMIZER)
        out.append(Param(name, "float", low, high, True, default=lr, target=target))
    wd = float(settings.get("weight_decay") or 0.0)
    if wd > 0:
        out.append(Param("optimizer.weight_decay", "float", wd / span, wd * span, True, default=wd, target=OPTIMIZER))
    return tuple(out)


def split_values(params: tuple[Param, ...], values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a configuration into spec keyword arguments and optimiser settings."""
    hparams: dict[str, Any] = {}
    optimizer: dict[str, Any] = {}
    for p in params:
        if p.name in values:
            (optimizer if p.target == OPTIMIZER else hparams)[p.key] = values[p.name]
    return hparams, optimizer
