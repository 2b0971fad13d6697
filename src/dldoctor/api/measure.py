"""Measurements and experiments a check may take: the probes, and the context's helpers.

Probes run the user's model on copies and record plain numbers; the shared ones
memoise themselves on the context under a key of :mod:`dldoctor.api.keys` (the first
check that asks pays). Built-in checks take every measurement through this module.

Modules, for the families of runs:
    experiments  the overfit stage's single-batch runs (``baseline``, ``run(ctx, Setup(...))``,
                 ``regularization``, ``larger_model``).
    variants     one-change reruns of the short run (``lr_variants``, ``NO_REGULARIZATION``,
                 ``output_activation``; run one with ``training.variant_run``).
    training     the evaluate stage's short training runs (``main_run``, ``fraction_run``,
                 ``zero_input_run``).
    data         the data stage's samples and measurements (``train``, ``held_out``,
                 ``duplicates``, ``label_noise``, ``shifts``, ``scaled``, ...).
    memory       the memory model of a training step (``measure_memory``, ``find_max_batch``).
    world_of_one a distributed script run again as a group of one rank, for two steps
                 (``run_world_of_one``: per-rank batch and learning rate at world size 1).
"""

from __future__ import annotations

from dldoctor.core.context import BatchFormatError as BatchFormatError
from dldoctor.core.context import restored_generators as restored_generators
from dldoctor.core.context import unpack_batch as unpack_batch
from dldoctor.distributed import world_of_one as world_of_one
from dldoctor.probes.baselines import BaselineScores as BaselineScores
from dldoctor.probes.baselines import baselines as baselines
from dldoctor.probes.batch_dependence import BatchDependence as BatchDependence
from dldoctor.probes.batch_dependence import CallChange as CallChange
from dldoctor.probes.batch_dependence import RowGradient as RowGradient
from dldoctor.probes.batch_dependence import loader_batch_size as loader_batch_size
from dldoctor.probes.batch_dependence import measure_batch_dependence as measure_batch_dependence
from dldoctor.probes.batch_dependence import slice_batch as slice_batch
from dldoctor.probes.data import measurements as data
from dldoctor.probes.data.sample import SplitSample as SplitSample
from dldoctor.probes.data.shift import Shift as Shift
from dldoctor.probes.data.shift import auc_null_se as auc_null_se
from dldoctor.probes.determinism import Determinism as Determinism
from dldoctor.probes.determinism import ModeUse as ModeUse
from dldoctor.probes.determinism import forward_of as forward_of
from dldoctor.probes.determinism import measure_determinism as measure_determinism
from dldoctor.probes.forward_trace import ForwardTrace as ForwardTrace
from dldoctor.probes.forward_trace import ModuleCall as ModuleCall
from dldoctor.probes.forward_trace import OutputSummary as OutputSummary
from dldoctor.probes.forward_trace import code_location as code_location
from dldoctor.probes.forward_trace import display_path as display_path
from dldoctor.probes.forward_trace import trace_step as trace_step
from dldoctor.probes.gradients import GradFlow as GradFlow
from dldoctor.probes.gradients import OptimizerCoverage as OptimizerCoverage
from dldoctor.probes.gradients import optimizer_coverage as optimizer_coverage
from dldoctor.probes.init_stats import InitStats as InitStats
from dldoctor.probes.init_stats import LayerInit as LayerInit
from dldoctor.probes.init_stats import LossAtInit as LossAtInit
from dldoctor.probes.init_stats import measure_init as measure_init
from dldoctor.probes.input_stats import FeatureStats as FeatureStats
from dldoctor.probes.input_stats import InputStats as InputStats
from dldoctor.probes.input_stats import measure_inputs as measure_inputs
from dldoctor.probes.loss_probe import LabelCounts as LabelCounts
from dldoctor.probes.loss_probe import LabelSummary as LabelSummary
from dldoctor.probes.loss_probe import LossProbe as LossProbe
from dldoctor.probes.loss_probe import TrainedOutputs as TrainedOutputs
from dldoctor.probes.loss_probe import loss_kind as loss_kind
from dldoctor.probes.loss_probe import measure_labels as measure_labels
from dldoctor.probes.loss_probe import measure_loss as measure_loss
from dldoctor.probes.loss_probe import trained_outputs as trained_outputs
from dldoctor.probes.lr_sweep import Sweep as Sweep
from dldoctor.probes.lr_sweep import lr_sweep as lr_sweep
from dldoctor.probes.nonfinite import DataNonFinite as DataNonFinite
from dldoctor.probes.nonfinite import Localisation as Localisation
from dldoctor.probes.nonfinite import Origin as Origin
from dldoctor.probes.nonfinite import StepOutcome as StepOutcome
from dldoctor.probes.nonfinite import StepSymptoms as StepSymptoms
from dldoctor.probes.nonfinite import localise as localise
from dldoctor.probes.nonfinite import scan_batch as scan_batch
from dldoctor.probes.nonfinite import step_then_forward as step_then_forward
from dldoctor.probes.nonfinite import step_then_localise as step_then_localise
from dldoctor.probes.nonfinite import symptoms_of as symptoms_of
from dldoctor.probes.optimizer_contract import OptimizerContract as OptimizerContract
from dldoctor.probes.optimizer_contract import measure_optimizer_contract as measure_optimizer_contract
from dldoctor.probes.overfit import experiments as experiments
from dldoctor.probes.overfit.experiments import regularization as regularization
from dldoctor.probes.overfit.one_batch import Curve as Curve
from dldoctor.probes.overfit.one_batch import Setup as Setup
from dldoctor.probes.parameter_effect import loss_changes as loss_changes
from dldoctor.probes.resources import memory_model as memory
from dldoctor.probes.resources.loader import ItemTiming as ItemTiming
from dldoctor.probes.resources.loader import bare_loader_seconds as bare_loader_seconds
from dldoctor.probes.resources.loader import time_items as time_items
from dldoctor.probes.resources.memory_model import MemoryModel as MemoryModel
from dldoctor.probes.resources.memory_model import OneSampleDoesNotFit as OneSampleDoesNotFit
from dldoctor.probes.resources.memory_model import RealProbe as RealProbe
from dldoctor.probes.resources.memory_model import auto_budget as auto_budget
from dldoctor.probes.resources.throughput import StepTiming as StepTiming
from dldoctor.probes.resources.throughput import batch_scaling as batch_scaling
from dldoctor.probes.resources.throughput import preloaded_step as preloaded_step
from dldoctor.probes.training import runs as training
from dldoctor.probes.training import variants as variants
from dldoctor.probes.training.short import TrainingRun as TrainingRun
from dldoctor.runtime.rng import isolated_rng as isolated_rng
from dldoctor.runtime.tensors import batch_size_of as batch_size_of
from dldoctor.runtime.tensors import trainable_count as trainable_count

__all__ = [
    "BaselineScores",
    "BatchDependence",
    "BatchFormatError",
    "CallChange",
    "Curve",
    "DataNonFinite",
    "Determinism",
    "FeatureStats",
    "ForwardTrace",
    "GradFlow",
    "InitStats",
    "InputStats",
    "ItemTiming",
    "LabelCounts",
    "LabelSummary",
    "LayerInit",
    "Localisation",
    "LossAtInit",
    "LossProbe",
    "MemoryModel",
    "ModeUse",
    "ModuleCall",
    "OneSampleDoesNotFit",
    "OptimizerContract",
    "OptimizerCoverage",
    "Origin",
    "OutputSummary",
    "RealProbe",
    "RowGradient",
    "Setup",
    "Shift",
    "SplitSample",
    "StepOutcome",
    "StepSymptoms",
    "StepTiming",
    "Sweep",
    "TrainedOutputs",
    "TrainingRun",
    "auc_null_se",
    "auto_budget",
    "bare_loader_seconds",
    "baselines",
    "batch_scaling",
    "batch_size_of",
    "code_location",
    "data",
    "display_path",
    "experiments",
    "forward_of",
    "isolated_rng",
    "loader_batch_size",
    "localise",
    "loss_changes",
    "loss_kind",
    "lr_sweep",
    "measure_batch_dependence",
    "measure_determinism",
    "measure_init",
    "measure_inputs",
    "measure_labels",
    "measure_loss",
    "measure_optimizer_contract",
    "memory",
    "optimizer_coverage",
    "preloaded_step",
    "regularization",
    "restored_generators",
    "scan_batch",
    "slice_batch",
    "step_then_forward",
    "step_then_localise",
    "symptoms_of",
    "time_items",
    "trace_step",
    "trainable_count",
    "trained_outputs",
    "training",
    "unpack_batch",
    "variants",
]
