"""Read a per-epoch metrics log (CSV, JSON or JSON lines) from the user's own training run.

Accepted column names: a split, then a metric, joined by ``_``, ``/``, ``-``, ``.`` or
a space, in any case:

- splits: ``train`` (``training``, ``tr``), ``val`` (``valid``, ``validation``, ``dev``,
  ``eval``), ``test``, ``train_val`` (``trainval``, ``train-val``: a split held out
  from the training distribution, for distribution shift);
- metrics: ``loss``; ``acc`` (``accuracy``; fractions or percentages); ``error``
  (``err``, ``error_rate``);
- plus ``epoch`` (or ``step``/``iteration``); a bare ``loss``/``acc``/``accuracy``/``error``
  means the training split.

Errors are fractions: accuracy becomes ``1 - accuracy`` (percentages are divided by
100). JSON may be a list of row objects, an object of column lists, or one object per
line (JSON lines).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
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


def canonical(name: str) -> str | None:
    """``val/accuracy`` -> ``val_acc``; ``epoch`` -> ``epoch``; unknown -> None."""
    text = re.sub(r"[\s/.\-]+", "_", name.strip().lower())
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
class MetricsLog:
    """Per-epoch series by canonical name (``train_error``, ``val_loss``, ...); NaN where missing."""

    series: dict[str, tuple[float, ...]]
    epochs: tuple[float, ...]
    source: str
    ignored: tuple[str, ...] = ()

    def errors(self, split: str) -> tuple[float, ...] | None:
        """Error per epoch for a split: from accuracy, an error column, or None."""
        if f"{split}_error" in self.series:
            return self.series[f"{split}_error"]
        acc = self.series.get(f"{split}_acc")
        if acc is None:
            return None
        finite = [a for a in acc if math.isfinite(a)]
        scale = 100.0 if finite and max(finite) > 1.0 else 1.0
        return tuple(1.0 - a / scale if math.isfinite(a) else math.nan for a in acc)

    def losses(self, split: str) -> tuple[float, ...] | None:
        return self.series.get(f"{split}_loss")


def _number(value: Any, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() in ("", "nan", "NaN", "null", "None")):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {value!r} is not a number") from None


def _rows_from_json(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        rows = []
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
                raise UsageError(f"{path}: line {i} is not a JSON object")
            rows.append(row)
        return rows
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{path}: a JSON list must hold one object per epoch")
        return data
    if isinstance(data, dict):
        if "history" in data and isinstance(data["history"], (dict, list)):
            return _rows_from_json(json.dumps(data["history"]), path)
        columns = {k: v for k, v in data.items() if isinstance(v, list)}
        if not columns:
            raise UsageError(f"{path}: expected columns as lists, e.g. {{\"train_loss\": [...], \"val_acc\": [...]}}")
        length = max(len(v) for v in columns.values())
        return [{k: (v[i] if i < len(v) else None) for k, v in columns.items()} for i in range(length)]
    raise UsageError(f"{path}: expected a JSON list or object")


def parse_metrics(path: Path) -> MetricsLog:
    """Read and validate a metrics log; raise :class:`UsageError` with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"metrics file not found: {path}")
    text = path.read_text()
    if not text.strip():
        raise UsageError(f"{path} is empty")
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in "[{":
        rows = _rows_from_json(text, path)
    else:
        try:
            dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    if not rows:
        raise UsageError(f"{path}: no rows")
    names = list(dict.fromkeys(k for row in rows for k in row if k is not None))
    mapping = {n: canonical(n) for n in names}
    known = {n: c for n, c in mapping.items() if c}
    if not any(c.startswith(("train_", "val_")) for c in known.values()):
        raise UsageError(
            f"{path}: no training or validation metric among the columns {', '.join(map(str, names))}",
            hint="Name columns like train_loss, val_loss, train_acc, val_acc, test_acc, epoch (see README).")
    series: dict[str, list[float]] = {}
    for name, key in known.items():
        if key in series:
            raise UsageError(f"{path}: columns {name!r} and another both mean {key}")
        series[key] = [_number(row.get(name), f"{path}: row {i + 1}, column {name!r}") for i, row in enumerate(rows)]
    epochs = series.pop("epoch", None) or [float(i + 1) for i in range(len(rows))]
    return MetricsLog({k: tuple(v) for k, v in series.items()}, tuple(epochs), str(path),
                      tuple(n for n, c in mapping.items() if not c))
