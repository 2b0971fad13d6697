"""Compare the short run with a known result the user supplied (paper, official code)."""

from __future__ import annotations

from dldoctor.api import Check, Severity, Stage, canonical
from dldoctor.api.measure import training as training_run


def _measured(run, key: str) -> float | None:
    last = run.last
    split, _, metric = key.partition("_")
    score = getattr(last, split, None) if last else None
    if score is None:
        return None
    if metric == "loss":
        return score.loss
    if score.error is None:
        return None
    return 1.0 - score.error if metric == "acc" else score.error


class ReferenceCheck(Check):
    """The model is on track to match the known result the spec names (``reference``).

    Compares the short run's metric with each reference entry. The short budget is not
    the full training, so the verdict reads "on track / behind for the budget": a gap
    while the validation error is still falling is reported as info with how far along
    the run is; a gap with a flat curve as a warning.
    """

    name = "reference"
    stage = Stage.COMPARE
    order = 20
    requires = ("forward_pass", "reference")
    emits = ("below-reference",)

    def run(self, ctx):
        tolerance = float(ctx.config.get("reference.tolerance"))
        refs = ctx.spec.reference if isinstance(ctx.spec.reference, (list, tuple)) else [ctx.spec.reference]
        run = training_run.main_run(ctx)
        findings = []
        for ref in refs:
            key = canonical(str(ref["metric"]))
            value = float(ref["value"])
            if key is None or key == "epoch":
                findings.append(self.finding("below-reference", Severity.INFO, 0.2,
                                             title=f"reference metric {ref['metric']!r} is not one dldoctor measures",
                                             evidence=["use val_accuracy, val_error, val_loss, test_accuracy, ..."]))
                continue
            measured = _measured(run, key)
            if measured is None:
                continue
            if key.endswith("_acc") and value > 1.0:
                value /= 100.0
            higher_better = key.endswith("_acc")
            gap = (value - measured) if higher_better else (measured - value)
            if gap <= tolerance:
                continue
            errors = run.val_errors()
            # For accuracy/error references the gap is in the units of the validation error
            # curve, so the last epoch's pace says whether a longer run could close it.
            improving = run.may_close(gap, tolerance / 4) if key.endswith(("_acc", "_error")) \
                else run.still_improving(tolerance / 4)
            source = f" ({ref['source']})" if ref.get("source") else ""
            progress = (f"after {run.last.epoch} epoch(s), {run.last.steps} steps ({run.last.seconds:.0f} s): the "
                        f"short budget, not the full training")
            findings.append(self.finding(
                "below-reference", Severity.INFO if improving else Severity.WARNING, 0.4 if improving else 0.7,
                title=f"{ref['metric']} {measured:.3f} vs the reference {value:.3f}{source}: "
                      + ("behind for now, but improving fast enough to close the gap in a longer run" if improving
                         else "behind: at its last epoch's pace a run twice as long would not close the gap"),
                evidence=[progress, f"validation error per epoch: {', '.join(f'{e:.3f}' for e in errors)}"],
                metrics={"metric": key, "measured": measured, "reference": value, "gap": gap, "improving": improving},
                location="model",
            ))
        return findings
