"""The forward-pass check: does one training step run at all?"""

from __future__ import annotations

from dldoctor.api import CATALOGUE, Check, Stage
from dldoctor.api.measure import code_location, measure_labels
from dldoctor.api.read import classify, loss_contract


class ForwardPassCheck(Check):
    """One training step (forward, loss, backward) runs; if it crashes, says where and why.

    Runs the first training batch through a copy of the model with every module
    hooked, then the loss and backward. A crash is classified from the failing
    module's settings and the tensors it received (torch's message only where the
    structure is silent), and localised to the module path, with the trace of
    shapes through the modules before it. A crash inside a built-in loss is named by
    the loss's input contract when the traced targets break it (class indices into a
    binary cross-entropy are labels out of its range, whatever torch's message says).
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
        data_location = dataset_location(ctx.spec.train_loader, ctx.user_roots)
        verdict = classify(trace, {k: e.fixes for k, e in CATALOGUE.items()}, shown, data_location=data_location)
        crash = trace.crash
        if crash.phase in ("loss", "backward") and not crash.kind:
            loss = loss_contract.torch_loss_name(ctx.spec.loss_fn) or trace.loss_name
            if loss_contract.binary_loss(loss, crash.message):
                labels = measure_labels(ctx)
                verdict = loss_contract.crash_verdict(trace, loss, labels, data_location, verdict) or verdict
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
