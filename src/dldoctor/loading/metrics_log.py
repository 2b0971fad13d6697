"""Read a per-epoch metrics log (CSV, JSON or JSON lines) from the user's own training run.

Accepted column names: a split, then a metric, joined by ``_``, ``/``, ``-``, ``.`` or
a space, in any case:

- splits: ``train`` (``training``, ``tr``), ``val`` (``valid``, ``validation``, ``dev``,
  ``eval``), ``test``, ``train_val`` (``trainval``, ``train-val``: a split held out
  from the training distribution, for distribution shift);
- metrics: ``loss``; ``acc`` (``accuracy``; fractions or percentages); ``error``
  (``err``, ``error_rate``);
- plus ``epoch`` (or ``step``/``iteration``); a bare ``loss``/``acc``/``accuracy``/``error``
  means the training split;
- an accuracy or error column may say it holds percentages: ``pct``, ``percent`` or
  ``%`` in its name (``val_acc_pct``, ``val accuracy (%)``).

Errors are fractions: accuracy becomes ``1 - accuracy``. The scale of accuracies and
errors is one decision for the whole input (every accuracy and error column, plus
the command line's ``--irreducible``), see :func:`decide_scale`:

1. every value must lie in [0, 100] (an empty cell is missing, not a value);
2. percentages when the user says so: ``--percent``, or columns named as percentages;
3. otherwise read from the values: all within [0, 1] are fractions; all above 1
   (zeros aside: 0 is 0 on either scale) are percentages;
4. anything else mixes the scales (0.95 beside 93: a fraction beside a percentage) and
   is refused, naming one value of each; so is a column not named as percentages
   holding values within [0, 1] beside columns that are.

Losses are not bounded (a loss of 3.2 or -0.5 is taken as it is). JSON may be a list
of row objects, an object of column lists, or one object per line (JSON lines).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dldoctor.core.errors import UsageError

SPLITS = {
    "train_val": ("train_val", "trainval", "train-val", "train val"),
    "train": ("train", "training", "tr"),
    "val": ("val", "valid", "validation", "dev", "eval"),
    "test": ("test",),
}
METRICS = {"loss": ("loss",), "acc": ("acc", "accuracy"), "error": ("error", "err", "error_rate", "errorrate")}
EPOCH = ("epoch", "epochs", "step", "iteration", "iter")


#: A percentage marker in a column name: ``pct``/``percent``/``percentage`` as a word, or ``%``.
_PERCENT = re.compile(r"%|(?<![a-z])(?:pct|percent|percentage)(?![a-z])")


def says_percent(name: str) -> bool:
    """True when a column's name marks it as percentages (``val_acc_pct``, ``acc (%)``)."""
    return bool(_PERCENT.search(name.strip().lower()))


def canonical(name: str) -> str | None:
    """``val/accuracy`` -> ``val_acc``; ``val_acc_pct`` -> ``val_acc``; ``epoch`` -> ``epoch``; unknown -> None."""
    # The percentage marker and brackets around it say how to read the values, not which.
    text = re.sub(r"[()\[\]]", " ", _PERCENT.sub(" ", name.strip().lower()))
    text = re.sub(r"[\s/.\-_]+", "_", text).strip("_")
    if text in EPOCH:
        return "epoch"
    for split, split_aliases in SPLITS.items():
        for alias in sorted(split_aliases, key=len, reverse=True):
            alias = re.sub(r"[\s/.\-]+", "_", alias)
            for metric, metric_aliases in METRICS.items():
                for m in metric_aliases:
                    if text in (f"{alias}_{m}", f"{m}_{alias}"):
                        return f"{split}_{metric}"
    for metric, metric_aliases in METRICS.items():
        if text in metric_aliases:
            return f"train_{metric}"
    return None


@dataclasses.dataclass(frozen=True)
class Reading:
    """One accuracy or error value of the input, with where it came from.

    Attributes:
        value: the number as written (a fraction or a percentage: not decided yet).
        where: how to find it: ``--train``, ``line 4, column 'val_acc'``.
        declared_percent: its name says it is a percentage (a ``*_pct`` column).
    """

    value: float
    where: str
    declared_percent: bool = False


#: How to state the scale, under a mixed-scale error.
SCALE_HINT = ("State the scale once: write every accuracy and error as a fraction (0.08), or every one as a "
              "percentage (8) and pass --percent (or name the log's columns *_pct).")
#: Under a value outside [0, 100].
RANGE_HINT = ("Accuracies and errors are fractions in [0, 1] or percentages in [0, 100] (0.08 or 8); "
              "losses, which are not bounded, go in *_loss columns.")


def _shown(reading: Reading) -> str:
    return f"{reading.where} = {reading.value:g}"


def decide_scale(readings: Sequence[Reading], percent: bool = False, source: str = "",
                 hint: str = SCALE_HINT) -> float:
    """The one scale of a whole input's accuracies and errors: 1 (fractions) or 100 (percentages).

    The rule (see the module docstring): values must lie in [0, 100]; ``percent`` or
    columns named as percentages say percentages; otherwise all values within [0, 1]
    are fractions and all non-zero values above 1 percentages; a mix is refused.

    Args:
        readings: every accuracy and error value of the input (a log's missing cells left out).
        percent: the user said all values are percentages (``--percent``).
        source: prefix of the messages (the log's path), or "" for the command line.
        hint: how to fix a mix, shown under the message.

    Returns:
        The divisor that turns each value into a fraction.

    Raises:
        UsageError: a value outside [0, 100] (or not a number), naming it; or mixed
            scales, naming one value read as a fraction and one read as a percentage.
    """
    at = f"{source}: " if source else ""
    present = list(readings)
    for r in present:
        if not 0.0 <= r.value <= 100.0:  # NaN and infinities fail this too
            raise UsageError(
                f"{at}{r.where} = {r.value:g} is out of range: an accuracy or error must be a fraction in [0, 1] "
                "or a percentage in [0, 100]", hint=RANGE_HINT)
    if percent:
        return 100.0
    declared = [r for r in present if r.declared_percent]
    # 0 reads the same on both scales, so it says nothing about which one is meant.
    undeclared = [r for r in present if not r.declared_percent and r.value != 0.0]
    small = [r for r in undeclared if r.value <= 1.0]
    large = [r for r in undeclared if r.value > 1.0]
    if declared:
        if small:
            raise UsageError(
                f"{at}mixed scales: {_shown(small[0])} reads as a fraction, but {_shown(declared[0])} is in "
                "a column named as percentages", hint=hint)
        return 100.0
    if small and large:
        raise UsageError(
            f"{at}mixed scales: {_shown(small[0])} reads as a fraction but "
            f"{_shown(large[0])} as a percentage", hint=hint)
    return 100.0 if large else 1.0


@dataclasses.dataclass(frozen=True)
class MetricsLog:
    """Per-epoch series by canonical name (``train_error``, ``val_loss``, ...); NaN where missing.

    Accuracy and error series are kept as written; ``scale`` (1 or 100, decided once
    for the whole log by :func:`decide_scale`) turns them into fractions.
    """

    series: dict[str, tuple[float, ...]]
    epochs: tuple[float, ...]
    source: str
    ignored: tuple[str, ...] = ()
    scale: float = 1.0

    def errors(self, split: str) -> tuple[float, ...] | None:
        """Error per epoch for a split, as fractions: from an error column, from accuracy, or None."""
        if f"{split}_error" in self.series:
            return tuple(e / self.scale if math.isfinite(e) else math.nan for e in self.series[f"{split}_error"])
        acc = self.series.get(f"{split}_acc")
        if acc is None:
            return None
        return tuple(1.0 - a / self.scale if math.isfinite(a) else math.nan for a in acc)

    def losses(self, split: str) -> tuple[float, ...] | None:
        return self.series.get(f"{split}_loss")


def _number(value: Any, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() in ("", "nan", "NaN", "null", "None")):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {value!r} is not a number") from None


def _rows_from_json(text: str, path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a JSON log and where each is (``line 3`` for JSON lines, else ``row 3``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        rows, where = [], []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}: line {i} is not JSON: {exc.msg}",
                                 hint="Use a JSON list of rows, an object of columns, or one JSON object per line.") \
                    from None
            if not isinstance(row, dict):
                raise UsageError(f"{path}: line {i} is not a JSON object") from None
            rows.append(row)
            where.append(f"line {i}")
        return rows, where
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{path}: a JSON list must hold one object per epoch")
        return data, [f"row {i}" for i in range(1, len(data) + 1)]
    if isinstance(data, dict):
        if "history" in data and isinstance(data["history"], (dict, list)):
            return _rows_from_json(json.dumps(data["history"]), path)
        columns = {k: v for k, v in data.items() if isinstance(v, list)}
        if not columns:
            raise UsageError(f"{path}: expected columns as lists, e.g. {{\"train_loss\": [...], \"val_acc\": [...]}}")
        length = max(len(v) for v in columns.values())
        return ([{k: (v[i] if i < len(v) else None) for k, v in columns.items()} for i in range(length)],
                [f"item {i}" for i in range(1, length + 1)])
    raise UsageError(f"{path}: expected a JSON list or object")


def _rows_from_csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a CSV log and the line each ends on (the header is line 1)."""
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows, where = [], []
    for row in reader:
        rows.append(row)
        where.append(f"line {reader.line_num}")
    return rows, where


def parse_metrics(path: Path, percent: bool = False, extra: Sequence[Reading] = ()) -> MetricsLog:
    """Read and validate a metrics log; raise :class:`UsageError` with a clear message.

    Args:
        path: a CSV, JSON or JSON-lines file.
        percent: every accuracy and error is a percentage (``--percent``).
        extra: other values of the same input that share the scale decision (the
            command line's ``--irreducible``).

    Returns:
        The series, with ``scale`` decided once for all accuracies, errors and ``extra``.

    Raises:
        UsageError: an unreadable file, no usable column, a cell that is not a number,
            an accuracy or error outside [0, 100], or mixed scales (naming the line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"metrics file not found: {path}")
    text = path.read_text()
    if not text.strip():
        raise UsageError(f"{path} is empty")
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in "[{":
        rows, where = _rows_from_json(text, path)
    else:
        rows, where = _rows_from_csv(text)
    if not rows:
        raise UsageError(f"{path}: no rows")
    names = list(dict.fromkeys(k for row in rows for k in row if k is not None))
    mapping = {n: canonical(str(n)) for n in names}
    known = {n: c for n, c in mapping.items() if c}
    if not any(c.startswith(("train_", "val_")) for c in known.values()):
        raise UsageError(
            f"{path}: no training or validation metric among the columns {', '.join(map(str, names))}",
            hint="Name columns like train_loss, val_loss, train_acc, val_acc, test_acc, epoch (see README).")
    series: dict[str, list[float]] = {}
    readings: list[Reading] = []
    for name, key in known.items():
        if key in series:
            raise UsageError(f"{path}: columns {name!r} and another both mean {key}")
        series[key] = [_number(row.get(name), f"{path}: {at}, column {name!r}") for row, at in zip(rows, where)]
        if key.endswith(("_acc", "_error")):  # bounded; losses are not
            declared = says_percent(str(name))
            # An empty cell (NaN) is a missing value, not one to judge.
            readings += [Reading(v, f"{at}, column {name!r}", declared) for v, at in zip(series[key], where)
                         if not math.isnan(v)]
    scale = decide_scale([*readings, *extra], percent, str(path))
    epochs = series.pop("epoch", None) or [float(i + 1) for i in range(len(rows))]
    return MetricsLog({k: tuple(v) for k, v in series.items()}, tuple(epochs), str(path),
                      tuple(str(n) for n, c in mapping.items() if not c), scale)
