"""Reading a trained experiment model on held-out samples the way a finished model is read.

A model trained for a few steps has batch-norm running statistics that are mostly
their initial values (each step moves them by the layer's momentum, 0.1 by default and
0.01 in Keras-style ports), so in eval mode it normalises with statistics of no real
data and its held-out predictions are near chance whatever it learned. Before a
held-out evaluation the running statistics are therefore recomputed as the plain
average over the batches the model trained on (the "precise batch norm" practice),
in training mode with dropout off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def recalibrate_batchnorm(model: nn.Module, forward: Callable[[nn.Module, Any], Any], batches: Sequence[Any]) -> int:
    """Running statistics of every tracking batch-norm layer = their average over ``batches``.

    Returns the number of layers recalibrated. Leaves the model in training mode, as the
    experiment left it; momenta are restored.
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers or not batches:
        return 0
    momenta = [m.momentum for m in layers]
    dropout = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    try:
        for layer in layers:
            layer.reset_running_stats()
        model.train()
        for module in dropout:
            module.eval()
        with torch.no_grad():
            for k, batch in enumerate(batches):
                # A cumulative average: the k-th batch (from 0) weighs 1/(k+1). Set as a number rather
                # than torch's momentum=None, which a layer of the user's own (a batch-norm subclass
                # that updates its statistics itself) may not handle.
                for layer in layers:
                    layer.momentum = 1.0 / (k + 1)
                forward(model, batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train()
    return len(layers)
