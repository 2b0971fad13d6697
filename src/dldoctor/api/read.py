"""Readings a check may use: pure interpretation of measurements, and their wording.

A reading never runs the model; it turns the numbers of :mod:`dldoctor.api.measure`
into shapes, verdicts and sentences. Built-in checks read through this module.

Modules:
    curves    single-batch loss curves: ``reading``, ``fixes_curve``, ``sparkline``, ...
    data      the data checks' wording (``words`` in those checks).
    pipeline  the input-pipeline report and wording.
    nonfinite     a localised NaN/Inf in words (operation family, cause, fixes).
    loss_contract the input contracts of torch's losses, judged from measured ranges.
"""

from __future__ import annotations

from dldoctor.readings import curves as curves
from dldoctor.readings import data as data
from dldoctor.readings import loss_contract as loss_contract
from dldoctor.readings import nonfinite as nonfinite
from dldoctor.readings import pipeline as pipeline
from dldoctor.readings import shortfall as shortfall
from dldoctor.readings.bias_variance import decomposition_findings as decomposition_findings
from dldoctor.readings.crash import classify as classify
from dldoctor.readings.curves import CurveReading as CurveReading
from dldoctor.readings.decomposition import Errors as Errors
from dldoctor.readings.decomposition import RemedyContext as RemedyContext
from dldoctor.readings.decomposition import decompose as decompose
from dldoctor.readings.epochs import read_epochs as read_epochs
from dldoctor.readings.generalisation import gap_standard_error as gap_standard_error
from dldoctor.readings.generalisation import training_loss_left as training_loss_left
from dldoctor.readings.lr import LrReading as LrReading
from dldoctor.readings.lr import read_sweep as read_sweep
from dldoctor.readings.lr import verdict as verdict
from dldoctor.readings.memory_leak import leak_judgement as leak_judgement
from dldoctor.readings.outputs import label_list as label_list
from dldoctor.readings.outputs import output_producer as output_producer
from dldoctor.readings.shortfall import difference_noise as difference_noise
from dldoctor.readings.step_split import StepSplit as StepSplit
from dldoctor.readings.step_split import split_steps as split_steps
from dldoctor.readings.step_split import split_watched as split_watched

__all__ = [
    "CurveReading",
    "Errors",
    "LrReading",
    "RemedyContext",
    "StepSplit",
    "classify",
    "curves",
    "data",
    "decompose",
    "decomposition_findings",
    "difference_noise",
    "gap_standard_error",
    "label_list",
    "leak_judgement",
    "loss_contract",
    "nonfinite",
    "output_producer",
    "pipeline",
    "read_epochs",
    "read_sweep",
    "shortfall",
    "split_steps",
    "split_watched",
    "training_loss_left",
    "verdict",
]
