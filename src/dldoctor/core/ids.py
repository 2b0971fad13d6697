"""The fixed vocabulary of diagnosis IDs. Members are never renamed or removed.

Each member's value is the public ID (kebab-case); the catalogue
(:mod:`dldoctor.core.catalogue`) holds the title, explanation and fixes.
"""

from __future__ import annotations

import enum


class Family(str, enum.Enum):
    """The family of root causes an ID belongs to."""

    CRASH = "crashes"
    WIRING = "silent wiring bugs"
    OPTIMISATION = "optimisation dynamics"
    DATA = "data"
    EVALUATION = "evaluation"
    RESOURCES = "resources"
    COVERAGE = "coverage"
    DISTRIBUTED = "distributed training"


class DiagnosisId(str, enum.Enum):
    """Every diagnosis ID dldoctor can report."""

    # Crashes: get it running
    SHAPE_MISMATCH = "shape-mismatch"
    DTYPE_MISMATCH = "dtype-mismatch"
    DEVICE_MISMATCH = "device-mismatch"
    OUT_OF_MEMORY = "out-of-memory"
    LABEL_OUT_OF_RANGE = "label-out-of-range"
    ENTRYPOINT_ERROR = "entrypoint-error"
    # Silent wiring bugs
    LOSS_INPUT_PROBABILITIES = "loss-input-probabilities"
    LOSS_BROADCAST = "loss-broadcast"
    BATCH_MIXING = "batch-mixing"
    LOSS_SIGN_FLIPPED = "loss-sign-flipped"
    NO_GRADIENT_FLOW = "no-gradient-flow"
    INPUT_NOT_NORMALIZED = "input-not-normalized"
    LABELS_CORRUPTED = "labels-corrupted"
    WRONG_MODE = "wrong-mode"
    STALE_GRADIENTS = "stale-gradients"
    BAD_INITIALIZATION = "bad-initialization"
    # Optimisation dynamics
    LR_TOO_HIGH = "lr-too-high"
    LR_TOO_LOW = "lr-too-low"
    NUMERICAL_INSTABILITY = "numerical-instability"
    EXPLODING_GRADIENTS = "exploding-gradients"
    VANISHING_GRADIENTS = "vanishing-gradients"
    DEAD_ACTIVATIONS = "dead-activations"
    OVER_REGULARIZATION = "over-regularization"
    MODEL_TOO_SMALL = "model-too-small"
    # Data
    CLASS_IMBALANCE = "class-imbalance"
    TOO_LITTLE_DATA = "too-little-data"
    LABEL_NOISE = "label-noise"
    TRAIN_VAL_LEAKAGE = "train-val-leakage"
    DISTRIBUTION_SHIFT = "distribution-shift"
    # Evaluation
    UNDERFITTING = "underfitting"
    OVERFITTING = "overfitting"
    VAL_OVERFITTING = "val-overfitting"
    WORSE_THAN_BASELINE = "worse-than-baseline"
    BELOW_REFERENCE = "below-reference"
    # Resources
    MEMORY_LEAK = "memory-leak"
    INPUT_PIPELINE_BOTTLENECK = "input-pipeline-bottleneck"
    # Coverage: what dldoctor could not check
    CHECK_INCOMPLETE = "check-incomplete"
    # Distributed training (torchrun / DistributedDataParallel)
    DDP_DUPLICATE_DATA = "ddp-duplicate-data"
    DDP_SAME_ORDER = "ddp-same-order"
    DDP_REPLICAS_DIVERGED = "ddp-replicas-diverged"
    DDP_GRADIENTS_NOT_AVERAGED = "ddp-gradients-not-averaged"
    DDP_UNSYNCED_BATCHNORM = "ddp-unsynced-batchnorm"
    DDP_HANG = "ddp-hang"
    DDP_STRAGGLER = "ddp-straggler"
    DDP_SCALING_MISMATCH = "ddp-scaling-mismatch"

    def __str__(self) -> str:
        return self.value
