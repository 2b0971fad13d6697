"""Every built-in key, typed: measurements (``ctx.measure``), reports (``ctx.reports``) and the
results one check publishes for another (``ctx.results``).

The measurement keys are declared in :mod:`dldoctor.probes.keys` (the probes that take
them memoise under them) and re-exported here; the reports and results, whose values
are check-level data, are declared below. A plugin declares its own keys the same way,
in its own module: ``MY_KEY: Key[MyType] = Key("my_plugin:name", "one line")``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dldoctor.core.keys import Key
from dldoctor.probes.keys import (
    BARE_LOADER,
    BASELINES,
    BATCH_DEPENDENCE,
    BATCH_SCALING,
    DATA_SAMPLE,
    DETERMINISM,
    DUPLICATES,
    FORWARD_TRACE,
    GRAD_FLOW,
    GROUP_OVERLAPS,
    INIT_STATS,
    INPUT_STATS,
    ITEM_TIMING,
    LABEL_NOISE,
    LABEL_SUMMARY,
    LARGER_MODEL,
    LOSS_PROBE,
    MEMORY_MODEL,
    MEMORY_REAL_PROBE,
    NONFINITE_AFTER_SMALL_STEP,
    NONFINITE_AFTER_STEP,
    NONFINITE_DATA,
    NONFINITE_LOCALISE,
    NUM_CLASSES,
    OPTIMIZER_CONTRACT,
    OPTIMIZER_COVERAGE,
    OUTPUT_ACTIVATION,
    OVERFIT_RUN,
    PARAMETER_EFFECT,
    PRELOADED_STEP,
    REGULARIZATION,
    SHIFTS,
    SPEC_LR,
    STEP_GFLOP,
    TASK,
    TIGHT_CLUSTERS,
    TRAINING_FRACTION,
    TRAINING_LARGER,
    TRAINING_MAIN,
    TRAINING_VARIANT,
    TRAINING_ZERO_INPUTS,
)

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.probes.lr_sweep import Sweep
    from dldoctor.readings.curves import CurveReading
    from dldoctor.readings.lr import LrReading

# -- measurements a check takes itself --------------------------------------------------------
LR_RANGE: Key[tuple[Sweep, LrReading]] = Key("lr_range", "the learning-rate range test and its reading")

# -- reports: sections of the JSON report's ``reports`` (the key's name is the section's) -----
BIAS_VARIANCE_REPORT: Key[dict[str, Any]] = Key("bias_variance", "the error decomposition (bias-variance)")
LR_RANGE_REPORT: Key[dict[str, Any]] = Key("lr_range", "the learning-rate sweep, its reading and summary")
THROUGHPUT_REPORT: Key[dict[str, Any]] = Key("throughput", "step time split into waiting for data and computing")


# -- results: what a check publishes for the checks that declare it in ``after`` ---------------
@dataclasses.dataclass(frozen=True)
class SingleBatchFit:
    """What ``overfit-batch`` concluded about fitting one batch.

    Attributes:
        reading: the reading of the baseline single-batch curve.
        explained: the batch does not fit and ``overfit-batch`` reported why, or could
            not finish finding out; a check that learns through the same fit should
            then not judge through it.
    """

    reading: CurveReading
    explained: bool


SINGLE_BATCH_FIT: Key[SingleBatchFit] = Key("overfit:reading", "overfit-batch's reading of the single-batch fit")

__all__ = [
    "BARE_LOADER",
    "BASELINES",
    "BATCH_DEPENDENCE",
    "BATCH_SCALING",
    "BIAS_VARIANCE_REPORT",
    "DATA_SAMPLE",
    "DETERMINISM",
    "DUPLICATES",
    "FORWARD_TRACE",
    "GRAD_FLOW",
    "GROUP_OVERLAPS",
    "INIT_STATS",
    "INPUT_STATS",
    "ITEM_TIMING",
    "LABEL_NOISE",
    "LABEL_SUMMARY",
    "LARGER_MODEL",
    "LOSS_PROBE",
    "LR_RANGE",
    "LR_RANGE_REPORT",
    "MEMORY_MODEL",
    "MEMORY_REAL_PROBE",
    "NONFINITE_AFTER_SMALL_STEP",
    "NONFINITE_AFTER_STEP",
    "NONFINITE_DATA",
    "NONFINITE_LOCALISE",
    "NUM_CLASSES",
    "OPTIMIZER_CONTRACT",
    "OPTIMIZER_COVERAGE",
    "OUTPUT_ACTIVATION",
    "OVERFIT_RUN",
    "PARAMETER_EFFECT",
    "PRELOADED_STEP",
    "REGULARIZATION",
    "SHIFTS",
    "SINGLE_BATCH_FIT",
    "SPEC_LR",
    "STEP_GFLOP",
    "TASK",
    "THROUGHPUT_REPORT",
    "TIGHT_CLUSTERS",
    "TRAINING_FRACTION",
    "TRAINING_LARGER",
    "TRAINING_MAIN",
    "TRAINING_VARIANT",
    "TRAINING_ZERO_INPUTS",
    "Key",
    "SingleBatchFit",
]
