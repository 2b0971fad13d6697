"""The forward-pass check: does one training step run at all?"""

from __future__ import annotations

from dldoctor.api import CATALOGUE, Check, Stage
from dldoctor.api.measure import code_location
from dldoctor.api.read import classify


class ForwardPassCheck(Check):
    """One training step (forward, loss, backward) runs; if it crashes, says where and why.

    Runs the first training batch through a copy of the model with every module
    hooked, then the loss and backward. A crash is classified from the failing
    module's settings and the tensors it received (torch's message only where the
    structure is silent), and localised to the module path, with the trace of
    shapes through the modules before it.
    """

    name = "forward-pass"
    stage = Stage.RUN
    order = 0
    emits = ("shape-mismatch", "dtype-mismatch", "device-mismatch", "label-out-of-range", "out-of-memory",
             "loss-input-probabilities", "no-gradient-flow", "entrypoint-error")

    def run(self, ctx):
        trace = ctx.forward_trace()
        if trace.crash is None:
            return []
        shown = int(ctx.config.get("forward_pass.trace_modules_shown"))
        verdict = classify(trace, {k: e.fixes for k, e in CATALOGUE.items()}, shown,
                           data_location=dataset_location(ctx.spec.train_loader, ctx.user_roots))
        return [self.judged(verdict)]


def dataset_location(loader, roots=()) -> str:
    """``file:line`` of the user's Dataset ``__getitem__`` behind a DataLoader (through
    ``Subset``-like wrappers), or "" (a factory, a library dataset, no dataset)."""
    dataset = getattr(loader, "dataset", None)
    for _ in range(4):
        if dataset is None:
            return ""
        getitem = getattr(type(dataset), "__getitem__", None)
        where = code_location(getitem, roots) if getitem is not None else ""
        if where:
            return where
        dataset = getattr(dataset, "dataset", None)
    return ""
