"""A budgeted training run of a fresh model on the full training data.

Evaluates train, validation and (if given) test error at the end of each epoch,
and records, per step, how long the loop waited for the next batch versus how long
the step itself took, and the memory in use after it (for the resource checks).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Iterable

import torch
from torch import nn

from dldoctor.core.context import restored_generators, unpack_batch
from dldoctor.probes.overfit import zero_inputs
from dldoctor.probes.resource_holders import roots_of
from dldoctor.probes.resource_monitor import ResourceRecord, StepMonitor
from dldoctor.probes.rng import isolated_rng
from dldoctor.probes.tensors import batch_size_of, iter_tensors, to_device, trainable_count


@dataclasses.dataclass(frozen=True)
class SplitScore:
    """Loss and error of a model on (a capped part of) one split."""

    loss: float
    error: float | None
    samples: int


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    epoch: int
    steps: int
    seconds: float
    train: SplitScore | None
    val: SplitScore | None
    test: SplitScore | None


@dataclasses.dataclass(frozen=True)
class Budget:
    epochs: int
    steps: int
    seconds: float
    data_fraction: float = 1.0


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """The record of one budgeted run.

    Attributes:
        epochs: per-epoch evaluation (the last one may be partial).
        stopped_by: "epochs" when the planned epochs ran, else "steps", "seconds", "nan" or
            "caller" (``on_epoch`` asked to stop).
        error_name: what ``error`` means: "1 - accuracy" or "relative MSE" (MSE over the
            variance of the training targets: 1.0 is the mean predictor).
        parameters: trainable parameter count of the model.
        resources: the per-step resource record (time waiting for the loader and in the
            step, memory in use, snapshots of what the model, loss and dataset hold) for
            the resource checks.
    """

    epochs: tuple[EpochRecord, ...]
    stopped_by: str
    error_name: str
    parameters: int
    budget: Budget
    resources: ResourceRecord = ResourceRecord()

    @property
    def last(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None

    def val_errors(self) -> list[float]:
        return [e.val.error for e in self.epochs if e.val is not None and e.val.error is not None]

    def still_improving(self, step: float) -> bool:
        """Validation error fell by more than ``step`` in the last epoch: the budget cut a run in progress."""
        errors = self.val_errors()
        return len(errors) >= 2 and errors[-2] - errors[-1] > step

    def may_close(self, gap: float, step: float) -> bool:
        """Still improving fast enough that a gap of ``gap`` may be a matter of budget.

        Extrapolates the last epoch's fall in validation error over another run as long
        as this one. Learning curves flatten, so this is generous to the model: a gap it
        cannot close even so is not explained by the short budget.
        """
        errors = self.val_errors()
        return self.still_improving(step) and (errors[-2] - errors[-1]) * len(errors) >= gap


def _batches(loader: Iterable, limit: int | None = None):
    for i, batch in enumerate(loader):
        if limit is not None and i >= limit:
            return
        yield batch


def _score(ctx, model: nn.Module, loader, max_batches: int, task: str, target_var: float | None,
           transform: Callable[[Any], Any] | None) -> SplitScore | None:
    if loader is None:
        return None
    model.eval()
    total_loss = 0.0
    correct = 0.0
    sq = 0.0
    n = 0
    with torch.no_grad():
        for batch in _batches(loader, max_batches):
            batch = to_device(batch, ctx.device)
            if transform is not None:
                batch = transform(batch)
            outputs, targets = ctx.forward_fn(model, batch)
            loss = ctx.spec.loss_fn(outputs, targets)
            out = next(iter_tensors(outputs))
            tgt = next(iter_tensors(targets))
            k = int(tgt.shape[0]) if tgt.dim() > 0 else 1
            total_loss += float(loss) * k
            n += k
            if task == "classification":
                if out.dim() >= 2 and out.shape[1] > 1:
                    correct += float((out.argmax(dim=1) == tgt).float().sum())
                else:
                    threshold = 0.5 if float(out.min()) >= 0 and float(out.max()) <= 1 else 0.0
                    correct += float(((out.reshape(-1) > threshold).float() == tgt.reshape(-1).float()).float().sum())
            elif task == "regression" and out.numel() == tgt.numel():
                sq += float(((out.reshape(-1).float() - tgt.reshape(-1).float()) ** 2).sum()) / max(1, out[0].numel())
    model.train()
    if n == 0:
        return None
    error = None
    if task == "classification":
        error = 1.0 - correct / n
    elif task == "regression" and target_var:
        error = (sq / n) / target_var
    return SplitScore(total_loss / n, error, n)


def target_variance(ctx, loader, max_batches: int) -> float | None:
    values = []
    for batch in _batches(loader, max_batches):
        batch = to_device(batch, ctx.device)
        with torch.no_grad():
            if ctx.spec.forward is not None:
                return None
            _, targets = unpack_batch(batch)
        values.append(next(iter_tensors(targets)).float().reshape(-1))
    if not values:
        return None
    v = torch.cat(values)
    return float(v.var()) if v.numel() > 1 else None


def zero_inputs_transform(ctx) -> Callable[[Any], Any]:
    """Zero every input tensor of a batch, leaving the targets (see ``probes.overfit.zero_inputs``)."""
    return lambda batch: zero_inputs(batch, ctx)


def short_training(ctx, budget: Budget, eval_batches: int, transform: Callable[[Any], Any] | None = None,
                   label: str = "short training",
                   on_epoch: Callable[[EpochRecord], bool] | None = None) -> TrainingRun:
    """Train a fresh model on the training loader within ``budget``; evaluate each epoch.

    ``on_epoch``, when given, sees each epoch's record and may stop the run by
    returning True (``stopped_by`` is then "caller"): the tuner's pruning uses it.
    """
    task = ctx.task
    train_loader = ctx.loader("train")
    val_loader = ctx.loader("val")
    test_loader = ctx.loader("test")
    try:
        per_epoch = len(train_loader)
    except TypeError:
        per_epoch = None
    limit = None if per_epoch is None else max(1, int(math.ceil(per_epoch * budget.data_fraction)))
    var = target_variance(ctx, train_loader, eval_batches) if task == "regression" else None
    records: list[EpochRecord] = []
    stopped_by = "epochs"
    start = time.perf_counter()
    with isolated_rng(ctx.seed), restored_generators(train_loader):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        scheduler = ctx.spec.scheduler(optimizer) if ctx.spec.scheduler else None
        params = trainable_count(model)
        monitor = StepMonitor(ctx.device, lambda: roots_of(model, ctx.spec.loss_fn, ctx.spec.forward, optimizer,
                                                           getattr(train_loader, "dataset", None)))
        steps = 0
        for epoch in range(1, budget.epochs + 1):
            model.train()
            iterator = iter(_batches(train_loader, limit))
            while True:
                t0 = time.perf_counter()
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                fetched = time.perf_counter()
                batch = to_device(batch, ctx.device)
                if transform is not None:
                    batch = transform(batch)
                t1 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                outputs, targets = ctx.forward_fn(model, batch)
                loss = ctx.spec.loss_fn(outputs, targets)
                if not torch.isfinite(loss.detach()):
                    stopped_by = "nan"
                    break
                loss.backward()
                if ctx.spec.grad_clip_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.spec.grad_clip_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                t2 = time.perf_counter()
                size = batch_size_of(targets) or 0
                monitor.step(t1 - t0, t2 - t1, size, copy_s=t1 - fetched)
                steps += 1
                if steps % 20 == 0:
                    ctx.report_progress(f"{label}, epoch {epoch}", steps, float(loss.detach()))
                if steps >= budget.steps:
                    stopped_by = "steps"
                    break
                if time.perf_counter() - start > budget.seconds or ctx.time_left() < 5.0:
                    stopped_by = "seconds"
                    break
            with isolated_rng(ctx.seed + epoch):
                records.append(EpochRecord(
                    epoch=epoch, steps=steps, seconds=time.perf_counter() - start,
                    train=_score(ctx, model, ctx.loader("train"), eval_batches, task, var, transform),
                    val=_score(ctx, model, val_loader, eval_batches, task, var, transform),
                    test=_score(ctx, model, test_loader, eval_batches, task, var, transform),
                ))
            if stopped_by != "epochs":
                break
            if on_epoch is not None and on_epoch(records[-1]):
                stopped_by = "caller"
                break
    error_name = "1 - accuracy" if task == "classification" else "relative MSE" if var else "loss"
    res = monitor.finish()
    return TrainingRun(tuple(records), stopped_by, error_name, params, budget, res)
