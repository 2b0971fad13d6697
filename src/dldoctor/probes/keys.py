"""Every built-in measurement's key, with the type of its value, declared once.

``ctx.measure(KEY, fn)`` memoises a measurement under its key (the first check that
asks pays for it), so a key is the contract between whoever takes a measurement and
whoever reads it. The names are the strings the measurements had before keys were
typed, so ``diagnose(measurements=...)`` gives tools the same names. Check authors
import these from :mod:`dldoctor.api.keys`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dldoctor.core.keys import Key

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.probes.baselines import BaselineScores
    from dldoctor.probes.batch_dependence import BatchDependence
    from dldoctor.probes.data.duplicates import Duplicates
    from dldoctor.probes.data.groups import GroupOverlap
    from dldoctor.probes.data.noise import NoiseReport
    from dldoctor.probes.data.sample import SplitSample
    from dldoctor.probes.data.shift import Shift
    from dldoctor.probes.data.tight_clusters import TightClusters
    from dldoctor.probes.determinism import Determinism
    from dldoctor.probes.forward_trace import ForwardTrace
    from dldoctor.probes.gradients import GradFlow, OptimizerCoverage
    from dldoctor.probes.init_stats import InitStats
    from dldoctor.probes.input_stats import InputStats
    from dldoctor.probes.loss_probe import LabelSummary, LossProbe, TrainedOutputs
    from dldoctor.probes.nonfinite import DataNonFinite, Localisation, StepOutcome
    from dldoctor.probes.optimizer_contract import OptimizerContract
    from dldoctor.probes.overfit.capacity import Variant
    from dldoctor.probes.overfit.one_batch import Curve
    from dldoctor.probes.resources.loader import ItemTiming
    from dldoctor.probes.resources.memory_model import MemoryModel, OneSampleDoesNotFit, RealProbe
    from dldoctor.probes.resources.throughput import StepTiming
    from dldoctor.probes.training.short import TrainingRun
    from dldoctor.probes.training.variants import OutputActivation

# -- the context's own -------------------------------------------------------------------
TASK: Key[str] = Key("task", "classification, regression or other (the spec's, else inferred)")
NUM_CLASSES: Key[int | None] = Key("num_classes", "the number of classes (the spec's, else inferred), or None")
FORWARD_TRACE: Key[ForwardTrace] = Key("forward_trace", "the traced forward, loss and backward of the first batch")
GRAD_FLOW: Key[GradFlow] = Key("grad_flow", "a watched backward pass; .at(batch index)")

# -- running: one step, watched ------------------------------------------------------------
LOSS_PROBE: Key[LossProbe] = Key("loss_probe", "what the loss does with the outputs and targets")
TRAINED_OUTPUTS: Key[TrainedOutputs | None] = Key(
    "trained_outputs", "the outputs on the first batch after a few steps of training on it")
LABEL_SUMMARY: Key[LabelSummary] = Key("label_summary", "the labels seen in the batches and the dataset")
DETERMINISM: Key[Determinism] = Key("determinism", "the model's forward in train and eval mode, twice each")
OPTIMIZER_COVERAGE: Key[OptimizerCoverage] = Key("optimizer_coverage", "the parameters the optimiser holds")
OPTIMIZER_CONTRACT: Key[OptimizerContract] = Key(
    "optimizer_contract", "what the optimiser's zero_grad() left and its first step did to the loss")
PARAMETER_EFFECT: Key[dict[str, float]] = Key(
    "parameter_effect", "the loss's relative change when a parameter is perturbed; .at(names)")
INIT_STATS: Key[InitStats] = Key("init_stats", "activations, gradients and loss at initialisation")
BATCH_DEPENDENCE: Key[BatchDependence] = Key("batch_dependence", "whether a sample's output depends on the others")
INPUT_STATS: Key[InputStats | None] = Key("input_stats", "per-feature statistics of the inputs")
NONFINITE_DATA: Key[tuple[DataNonFinite, ...]] = Key("nonfinite:data", "non-finite values in a batch; .at(index)")
NONFINITE_LOCALISE: Key[Localisation] = Key(
    "nonfinite:localise", "where the first non-finite value appears; .at(batch index) or .at('after_step')")
NONFINITE_AFTER_STEP: Key[StepOutcome] = Key("nonfinite:after_step", "the next loss after one optimiser step")
NONFINITE_AFTER_SMALL_STEP: Key[StepOutcome] = Key(
    "nonfinite:after_small_step", "the same after a step at a smaller learning rate")
MEMORY_MODEL: Key[MemoryModel | OneSampleDoesNotFit | None] = Key(
    "memory_model", "the step's memory as a function of the batch size")
MEMORY_REAL_PROBE: Key[RealProbe | None] = Key("memory_model.real_probe", "the largest batch that fits on the GPU")

# -- overfit: one batch --------------------------------------------------------------------
SPEC_LR: Key[float | None] = Key("spec_lr", "the learning rate of the spec's optimiser")
REGULARIZATION: Key[dict[str, float]] = Key("overfit:regularization", "weight decay and the largest dropout")
OVERFIT_RUN: Key[Curve] = Key("overfit", "a single-batch run; .at(setup key, steps, held-out)")
LARGER_MODEL: Key[tuple[Variant, Curve] | None] = Key("overfit:larger_model", "the same run with a larger model")

# -- evaluate, compare, resources: a short training run ----------------------------------
TRAINING_MAIN: Key[TrainingRun] = Key("training:main", "the user's model trained for the budget's steps")
TRAINING_FRACTION: Key[TrainingRun] = Key("training:fraction", "the same on a fraction of the data; .at(fraction)")
TRAINING_ZERO_INPUTS: Key[TrainingRun] = Key("training:zero_inputs", "the same with every input zeroed")
TRAINING_VARIANT: Key[TrainingRun] = Key("training:variant", "the same with one change; .at(variant name)")
TRAINING_LARGER: Key[tuple[Variant, TrainingRun] | None] = Key(
    "training:larger", "the same with the spec's capacity argument scaled up (None without one)")
OUTPUT_ACTIVATION: Key[OutputActivation | None] = Key(
    "training:output_activation", "the bounded activation module that produces the model's output, if any")
STEP_GFLOP: Key[float | None] = Key("training:step_gflop", "GFLOP of one training step")
BASELINES: Key[BaselineScores | None] = Key("baselines", "constant and linear baselines on validation")
BARE_LOADER: Key[float | None] = Key("input_pipeline:bare_loader", "seconds per batch of a bare DataLoader")
PRELOADED_STEP: Key[StepTiming | None] = Key("input_pipeline:preloaded", "a step on batches held on the device")
BATCH_SCALING: Key[tuple[StepTiming, ...]] = Key("input_pipeline:batch_scaling", "step time at larger batches")
ITEM_TIMING: Key[ItemTiming | None] = Key("input_pipeline:items", "the dataset's __getitem__ and collate, timed")

# -- data ----------------------------------------------------------------------------------
DATA_SAMPLE: Key[SplitSample | None] = Key("data:sample", "a sample of a split; .at(split)")
DUPLICATES: Key[Duplicates | None] = Key("data:duplicates", "training rows repeated in the held-out splits")
GROUP_OVERLAPS: Key[list[GroupOverlap] | None] = Key(
    "data:group_overlaps", "the spec's groups (subjects) each held-out split shares with training")
TIGHT_CLUSTERS: Key[TightClusters | None] = Key(
    "data:tight_clusters", "tight clusters of training samples and how often held-out samples fall inside them")
LABEL_NOISE: Key[NoiseReport | None] = Key("data:label_noise", "labels that disagree with their neighbours")
SHIFTS: Key[list[Shift]] = Key("data:shift", "train vs each held-out split")
