"""``--save best.yaml``: the best hyper-parameters, ready to pass back to the spec function."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dldoctor.core.errors import DldoctorError, UsageError
from dldoctor.tuning.view import gain_line


def best_document(report: Mapping[str, Any]) -> dict[str, Any]:
    """``hparams`` (spec keyword arguments), ``optimizer`` (settings set on the optimiser), ``score``."""
    best = report.get("best")
    if not best:
        raise DldoctorError("--save: no trial completed, so there is no best configuration to save")
    targets = {p["name"]: p["target"] for p in report["params"]}
    hparams = {k: v for k, v in best["params"].items() if targets.get(k) == "spec"}
    optimizer = {k.split(".", 1)[1]: v for k, v in best["params"].items() if targets.get(k) == "optimizer"}
    gain = report.get("gain") or {}
    score = {"metric": report["metric"], "value": best.get("score"),
             "defaults": (report.get("baseline") or {}).get("score"),
             "gain": gain.get("gain"), "gain_se": gain.get("se"), "significant": gain.get("significant")}
    return {"hparams": hparams, "optimizer": optimizer, "score": score}


def best_yaml(report: Mapping[str, Any], target: str) -> str:
    document = best_document(report)
    best = report["best"]
    header = [f"# dldoctor tune {target}: best of study {report['study']} ({report['method']}), trial {best['number']}",
              f"# {gain_line(report)}",
              "# hparams: keyword arguments of dldoctor_spec, e.g.",
              "#   dldoctor_spec(**yaml.safe_load(open('best.yaml'))['hparams'])",
              "# optimizer: settings no spec argument controls; set them on the optimiser's param groups"]
    return "\n".join(header) + "\n" + yaml.safe_dump(document, sort_keys=False)


def save_best(report: Mapping[str, Any], target: str, path: Path) -> None:
    text = best_yaml(report, target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"--save {path}: cannot write it: {exc.strerror or exc}") from None
