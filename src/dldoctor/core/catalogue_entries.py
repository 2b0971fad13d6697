"""Catalogue text for every diagnosis ID (see :mod:`dldoctor.core.catalogue`)."""

from __future__ import annotations

from dldoctor.core.catalogue import Entry
from dldoctor.core.ids import DiagnosisId as D, Family as F

ENTRIES: tuple[Entry, ...] = (
    Entry(
        id=D.SHAPE_MISMATCH,
        family=F.CRASH,
        title="A layer gets a tensor of a shape it cannot take",
        explanation=(
            "The forward pass or the loss raised because a tensor's shape does not fit the "
            "operation: a convolution's output was not flattened before a linear layer, a "
            "layer's in_features or in_channels does not match what the previous layer "
            "produces, or outputs and targets disagree on the batch size."
        ),
        evidence=(
            "the module that raised, the shape it received and the shape it expects",
            "the trace of shapes through the modules that ran before it",
        ),
        fixes=(
            "Flatten after the last convolution (torch.flatten(x, 1)) before the first linear layer.",
            "Set the layer's in_features / in_channels to what the previous layer produces.",
            "Check that outputs and targets have the same batch size.",
        ),
    ),
)
