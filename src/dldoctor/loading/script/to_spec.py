"""Build the spec for the staged checks from what watching the script captured.

The model is the trained module with the weights it had before the first optimizer
step; the optimizer factory rebuilds the optimizer's class with its parameter groups'
hyper-parameters; the loss is the loss function behind the scalar given to
``backward()`` (with its keyword arguments, its sign and scale, and the reshape between
the model's output and the loss); the data are the training loader itself when the
model and the loss read its batches as they come, else the batches the watched steps
fed the model.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from dldoctor.core.errors import EntrypointError
from dldoctor.loading.script.watch import LossCall, Watcher
from dldoctor.loading.spec import SPEC_SNIPPET, Spec, validate_spec

#: Hyper-parameters a param group carries that are not constructor arguments to pass back.
_GROUP_ONLY = frozenset({"params", "initial_lr", "param_names"})


def _hparams(group: dict[str, Any], accepted: Callable[[str], bool]) -> dict[str, Any]:
    """A group's hyper-parameters as the optimizer was built with them: a scheduler's
    ``initial_lr`` (the rate before any warm-up or decay) replaces the current ``lr``, and
    keys the class sets itself (AdamW's ``decoupled_weight_decay``) are left out."""
    values = {k: v for k, v in group.items() if k not in _GROUP_ONLY and accepted(k)}
    if "initial_lr" in group:
        values["lr"] = group["initial_lr"]
    return values


def _constructor_takes(cls: type) -> Callable[[str], bool]:
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return lambda name: True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return lambda name: True
    return lambda name: name in parameters


def optimizer_factory(watcher: Watcher) -> Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]:
    """``params -> optimizer`` of the first optimizer's class and groups; a fresh copy of the
    trained module's parameters are put in the groups by position, and the ones the user's
    optimizer did not hold are left out, as in the user's loop."""
    optimizer = watcher.optimizers[0] if watcher.optimizers else watcher.created_optimizer()
    assert optimizer is not None  # checked by build_spec
    cls = type(optimizer)
    accepted = _constructor_takes(cls)
    groups = [_hparams(g, accepted) for g in optimizer.param_groups]
    model = watcher.model
    where: dict[int, int] = {}
    for i, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            where[id(p)] = i
    positions = [where.get(id(p), -1) for p in model.parameters()] if model is not None else []
    if not any(g >= 0 for g in positions):
        positions = []  # an optimizer over another instance: the staged runs train this one (see the finding)

    def make(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        params = list(params)
        if len(params) != len(positions):
            return cls(params, **groups[0])
        grouped = [{"params": [p for p, g in zip(params, positions) if g == i], **hp} for i, hp in enumerate(groups)]
        return cls([g for g in grouped if g["params"]], **groups[0])

    return make


def loss_function(call: LossCall, scale: float | None) -> Callable[..., Any]:
    """``(outputs, targets) -> loss`` as the user's loop computed it from what it gave the loss
    (the spec's forward reshapes the model's output as the loop did)."""
    fn = call.fn
    if call.kwargs:
        fn = functools.partial(fn, **call.kwargs)
    if scale is None or scale == 1.0:
        return fn
    factor = scale

    def loss(outputs: torch.Tensor, targets: Any) -> torch.Tensor:
        return fn(outputs, targets) * factor

    loss.__name__ = getattr(call.fn, "__name__", type(call.fn).__name__)
    return loss


def _forward(model: nn.Module, batch: Any, called: bool, key: str | int | None,
             view: tuple[int, ...] | None) -> tuple[Any, Any]:
    """The model's output as the loop gave it to the loss: picked from a mapping or tuple
    (``key``) and reshaped (``view``, a squeeze or a flatten). ``called``: the batch is
    ``(args, kwargs, target)`` as the loop called the model, else ``(inputs, target)``."""
    if called:
        args, kwargs, target = batch
        output = model(*args, **kwargs)
    else:
        inputs, target = batch
        output = model(inputs)
    if key is not None:
        output = output[key]
    return (output.reshape(view) if view else output), target


def _rebuild_model(watcher: Watcher) -> nn.Module:
    model = watcher.model
    assert model is not None
    if watcher.initial_state is not None:
        model.load_state_dict(watcher.initial_state)
    for p in model.parameters():
        p.grad = None
    model.train()
    # A DistributedDataParallel wrapper's forward runs collectives with the other ranks, which do not
    # take part in dldoctor's own runs: those run on the module it wraps (same parameters, same weights).
    inner = getattr(model, "module", None)
    if type(model).__name__ == "DistributedDataParallel" and isinstance(inner, nn.Module):
        return inner
    return model


def build_spec(watcher: Watcher) -> Spec:
    """The spec of what the script trains, or an :class:`EntrypointError` saying what is missing."""
    record = watcher.record
    hint = "Or write the spec by hand in the script (spec mode):\n" + SPEC_SNIPPET
    if not watcher.optimizers and watcher.created_optimizer() is None:
        raise EntrypointError(
            f"{record.script}: no torch.optim optimizer stepped while it ran ({_how_it_ended(watcher)})",
            hint="dldoctor watches the loop's optimizer.step() calls; a script whose optimizer is not a "
                 "torch.optim.Optimizer, or that trains only under a flag, cannot be watched. " + hint)
    if watcher.model is None:
        raise EntrypointError(f"{record.script}: no module was called with gradients enabled before the "
                              "optimizer stepped: dldoctor could not tell which model is trained", hint=hint)
    if watcher.loss_call is None:
        raise EntrypointError(
            f"{record.script}: the scalar given to backward() did not come from a torch loss function "
            "(an nn loss module or torch.nn.functional), so dldoctor cannot rebuild the loss for its own runs",
            hint=hint)
    if watcher.output_view is None:
        raise EntrypointError(f"{record.script}: the loss does not read the model's output as it comes (nor "
                              "reshaped): dldoctor cannot rebuild how a batch is run", hint=hint)
    if not watcher.kept and not watcher.direct:
        raise EntrypointError(f"{record.script}: no training batch could be kept", hint=hint)
    raw: dict[str, Any] = {
        "model": _rebuild_model(watcher),
        "optimizer": optimizer_factory(watcher),
        "loss_fn": loss_function(watcher.loss_call, watcher.loss_scale),
    }
    if watcher.grad_clip_norm is not None:
        raw["grad_clip_norm"] = watcher.grad_clip_norm
    key, view = watcher.output_key, watcher.output_view or None
    if key is not None or view:
        raw["forward"] = functools.partial(_forward, called=False, key=key, view=view)
    if watcher.direct and watcher.train_loader is not None:
        raw["train_loader"] = whole_data(watcher.train_loader, record.notes, "training")
        if watcher.val_loader is not None:
            raw["val_loader"] = whole_data(watcher.val_loader, record.notes, "validation")
    elif all(len(k.args) == 1 and not k.kwargs for k in watcher.kept):
        raw["train_loader"] = [(k.args[0], k.target) for k in watcher.kept]
        record.notes.append(f"dldoctor's own runs use the {len(watcher.kept)} batches the watched steps fed the "
                            "model (the script prepares its batches itself)")
    else:
        raw["train_loader"] = [(k.args, k.kwargs, k.target) for k in watcher.kept]
        raw["forward"] = functools.partial(_forward, called=True, key=key, view=view)
        record.notes.append(f"dldoctor's own runs use the {len(watcher.kept)} batches the watched steps fed the "
                            "model, called as the script called it")
    return validate_spec(raw, origin=f"{record.script} (watched)")


def whole_data(loader: Any, notes: list[str], split: str) -> Any:
    """A loader like ``loader`` over its whole data set when a ``DistributedSampler`` gives this rank a
    shard of it; ``loader`` itself otherwise.

    The model the ranks train together learns from every rank's shard: dldoctor's own runs (on rank 0)
    read all of it, as the script's single-process version would, so that a shard of 1/N does not read
    as too little data or as variance. Same batch size, collate function, workers and shuffling (the
    sampler's seed); the user's loader and sampler are left as they are.
    """
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

    if not isinstance(loader, DataLoader):
        return loader
    sampler = loader.sampler
    if not isinstance(sampler, DistributedSampler):
        inner = getattr(loader.batch_sampler, "sampler", None)
        if type(loader.batch_sampler) is not BatchSampler or not isinstance(inner, DistributedSampler):
            return loader
        sampler = inner
    if sampler.num_replicas < 2:
        return loader
    generator = torch.Generator().manual_seed(int(sampler.seed))
    whole = DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=bool(sampler.shuffle),
                       generator=generator if sampler.shuffle else None, num_workers=loader.num_workers,
                       collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                       drop_last=bool(loader.drop_last or sampler.drop_last),
                       worker_init_fn=loader.worker_init_fn, timeout=loader.timeout)
    size = len(sampler.dataset)  # type: ignore[arg-type]  # a DistributedSampler's data set is sized
    notes.append(f"dldoctor's own runs read the whole {split} set ({size:,} samples, batches of "
                 f"{loader.batch_size}): the script's DistributedSampler gives each of its {sampler.num_replicas} "
                 "ranks a shard")
    return whole


def _how_it_ended(watcher: Watcher) -> str:
    record = watcher.record
    if record.stopped == "budget":
        return f"stopped after {watcher.budget.max_backwards} backward() calls"
    if record.stopped == "raised":
        return f"it raised {record.error}"
    return "it ended by itself"
