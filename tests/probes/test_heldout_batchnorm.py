"""Batch-norm recalibration before a held-out read: the plain average over the batches, for any layer."""

from __future__ import annotations

import torch
from torch import nn

from dldoctor.probes.overfit.heldout import recalibrate_batchnorm


class OwnBatchNorm(nn.BatchNorm1d):
    """A user's batch norm that updates its running statistics itself with ``lerp_(x, momentum)`` (the
    distributed zoo's CPU sync batch norm does): torch's ``momentum=None`` would make it raise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * x.shape[0] / (x.shape[0] - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def test_running_mean_is_the_average_of_the_batch_means() -> None:
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, generator=g) * (k + 1) + k for k in range(5)]
    expected = torch.stack([b.mean(0) for b in batches]).mean(0)
    for layer in (nn.BatchNorm1d(3, momentum=0.1), OwnBatchNorm(3, momentum=0.1)):
        model = nn.Sequential(layer)
        assert recalibrate_batchnorm(model, lambda m, b: m(b), batches) == 1
        torch.testing.assert_close(layer.running_mean, expected)
        assert layer.momentum == 0.1  # put back
        assert model.training
