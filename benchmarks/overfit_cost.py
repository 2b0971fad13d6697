#!/usr/bin/env python3
"""Cost of the overfit stage (stage 2) in training-step equivalents.

For each target, in one process: the median wall time of one training step of the
same model and batch (as in ``probe_cost.py``), and the summed wall time of the
overfit stage's checks in a ``dldoctor overfit-batch`` run (stages 1 and 2; stage 1's
time is reported separately and not counted). The ratio is the stage's cost in
step-equivalents. Issue targets: a healthy model (one run, no experiments) at most
250; a full differential diagnosis (a plateau that needs experiments) at most 1,000.

    python benchmarks/overfit_cost.py [TARGET ...] [--lr LR] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_cost import median_step_seconds

from dldoctor.core.runner import RunOptions, diagnose
from dldoctor.core.stage import Stage

#: (target, learning-rate override for the overfit stage or 0 for the spec's own)
DEFAULT_CASES = [
    ("examples/digits/train.py", 0.0),                   # healthy: converges, no experiment
    ("examples/digits/train.py", 1e-5),                  # the same CNN stuck on a plateau at lr=1e-5
    ("examples/bugs/fit_lr_low_mlp_sgd.py", 0.0),        # plateau on a tiny MLP: lr x10/x100 experiments
    ("examples/bugs/fit_small_bottleneck_mlp.py", 0.0),  # decreasing: lr, larger-model experiments
]


def stage_seconds(diagnosis, stage: Stage) -> float:
    return sum(c.duration_s for c in diagnosis.checks if c.stage == stage.label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="default: the digits example, healthy and at lr=1e-5, "
                                                   "and two zoo cases")
    parser.add_argument("--lr", type=float, default=0.0, help="overfit-stage learning rate for the given targets")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the step and the stage alike")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = [(t, args.lr) for t in args.targets] or DEFAULT_CASES
    print("| target | step ms | stage-2 s | stage-2 step-equivalents | training runs (baseline included) "
          "| top finding |")
    print("|---|---|---|---|---|---|")
    for target, lr in cases:
        measurements: dict = {}
        overrides = (("overfit.lr", lr),) if lr else ()
        diagnosis = diagnose(RunOptions(target=target, device="cpu", stages=(Stage.RUN, Stage.OVERFIT),
                                        command="overfit-batch", overrides=overrides), measurements=measurements)
        step = median_step_seconds(target)
        seconds = stage_seconds(diagnosis, Stage.OVERFIT)
        runs = sum(1 for k, v in measurements.items() if k.startswith("overfit:")
                   and (hasattr(v, "losses") or (k == "overfit:larger_model" and v is not None)))
        top = next((f"{f.id} ({f.severity.value})" for f in diagnosis.diagnoses
                    if f.severity.value in ("error", "warning")), "none")
        name = f"{Path(target).parent.name}/{Path(target).name}" + (f" at lr={lr:g}" if lr else "")
        print(f"| {name} | {step * 1e3:.2f} | {seconds:.2f} | {seconds / step:.0f} | "
              f"{runs} | {top} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
