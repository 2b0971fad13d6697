"""Small readings of a traced step and of label counts that several checks share
(each check is one module and imports no other check)."""

from __future__ import annotations

import math

from dldoctor.probes.forward_trace import ForwardTrace, ModuleCall
from dldoctor.probes.loss_probe import LabelCounts


def output_producer(trace: ForwardTrace) -> ModuleCall | None:
    """The last leaf module whose output *is* the model output (same values), if any."""
    s = trace.output_summary
    if s is None or not trace.outputs:
        return None
    numel = math.prod(trace.outputs[0].shape)
    for call in reversed(trace.leaf_calls()):
        if call.stats is None or not call.outputs:
            continue
        if math.prod(call.outputs[0].shape) == numel and call.stats.min == s.min and call.stats.max == s.max:
            return call
        return None  # the last leaf module ran but the output was computed after it
    return None


def label_list(counts: LabelCounts, limit: int = 12) -> str:
    """The labels seen, as ``{0, 1, 2}`` (the first and last few of many; the range of none)."""
    labels = counts.labels
    if not labels:
        return f"{counts.minimum:g}..{counts.maximum:g}"
    if len(labels) <= limit:
        return "{" + ", ".join(map(str, labels)) + "}"
    return "{" + ", ".join(map(str, labels[:5])) + ", ..., " + ", ".join(map(str, labels[-3:])) + "}"
