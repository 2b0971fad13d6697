"""The memory-model check: how much memory a training step needs, and which batch fits.

This module imports torch only inside ``run``; the byte sizes it reads and writes
(:func:`parse_budget`, :func:`format_bytes`) are in ``runtime.units``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from dldoctor.api import Check, ConfigError, Severity, Stage, format_bytes, keys, parse_budget

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.api.measure import MemoryModel, OneSampleDoesNotFit, RealProbe

@dataclasses.dataclass(frozen=True)
class BatchFit:
    """How a batch size compares with a budget.

    Not a :class:`~dldoctor.api.Judgement`: it is a measurement's comparison (bytes and
    batch sizes) that the check words in several ways (the finding, the fixes, the
    largest batch to use), not a finding to be.

    Attributes:
        severity: error (it does not fit), warning (it fits without the safety
            margin only) or info.
        need: predicted peak bytes of a step at the spec's batch.
        capacity: the largest batch that fits the whole budget (0: not even one
            sample; None: memory does not grow with the batch).
        recommended: the largest batch that fits with the safety margin kept free.
    """

    severity: Severity
    need: float
    capacity: int | None
    recommended: int | None


def judge(model: MemoryModel, budget: float, margin: float, real: RealProbe | None = None) -> BatchFit:
    """Compare the spec's batch with ``budget``; a real probe's result beats the prediction."""
    n = model.batch_size
    need = model.peak_bytes(n)
    capacity = model.max_batch(budget)
    recommended = model.max_batch(budget * (1 - margin))
    if real is not None and real.largest_fit > 0:
        proven = max(1, int(real.largest_fit * (1 - margin)))
        if real.smallest_fail is not None:  # bracketed: the real limit replaces the prediction
            capacity, recommended = real.largest_fit, proven
        else:  # only a lower bound (the probe's cap, trials or time ran out)
            capacity = None if capacity is None else max(capacity, real.largest_fit)
            recommended = None if recommended is None else max(recommended, proven)
    if real is not None and real.smallest_fail is not None and n >= real.smallest_fail:
        severity = Severity.ERROR
    elif real is not None and real.largest_fit >= n:
        severity = Severity.WARNING if recommended is not None and n > recommended else Severity.INFO
    elif need > budget:
        severity = Severity.ERROR
    elif need > budget * (1 - margin):
        severity = Severity.WARNING
    else:
        severity = Severity.INFO
    return BatchFit(severity, need, capacity, recommended)


class MemoryModelCheck(Check):
    """Memory of a training step (parameters, gradients, optimiser state, activations); the largest batch that fits.

    Two forward/backward passes of a copy of the model (at the spec's batch and half
    of it) count every tensor allocated and every activation autograd saves for
    backward; one real optimizer.step() measures the optimiser state. The peak is
    linear in the batch size above a fixed part, which gives the largest batch that
    fits the budget (memory_model.budget: by default the CUDA device's free memory,
    else the available RAM). On CUDA, real training steps at growing batch sizes
    confirm it. A spec whose batch needs more than the budget is an out-of-memory.
    """

    name = "memory-model"
    stage = Stage.RUN
    order = 70
    emits = ("out-of-memory",)

    def run(self, ctx):
        budget = parse_budget(ctx.config.get("memory_model.budget"))
        margin = float(ctx.config.get("memory_model.safety_margin"))
        if not 0.0 <= margin < 1.0:
            raise ConfigError(f"memory_model.safety_margin must be in [0, 1), got {margin!r}")
        trace = ctx.forward_trace()
        if trace.crash is not None and not trace.crash.is_oom:
            return []  # the step cannot run: the forward-pass check says why
        from dldoctor.api.measure import memory as probe

        step_ran = trace.crash is None
        measured = ctx.measure(keys.MEMORY_MODEL, lambda: _measure(ctx, step_ran))
        if measured is None:
            return []
        auto = budget is None
        source = f"memory_model.budget = {ctx.config.get('memory_model.budget')!r}"
        if auto:
            found = probe.auto_budget(ctx.device)
            budget, source = found if found is not None else (None, "")
        if isinstance(measured, probe.OneSampleDoesNotFit):
            return [self._nothing_fits(measured, budget, source)]
        real = None
        if (budget is not None and auto and ctx.device.type == "cuda"
                and bool(ctx.config.get("memory_model.real_probe"))):
            real = ctx.measure(keys.MEMORY_REAL_PROBE, lambda: _real_probe(ctx, measured, budget))
        found = self._report(ctx, measured, budget, source, margin, real, step_ran)
        return [found] if found is not None else []

    # -- findings -----------------------------------------------------------------
    def _report(self, ctx, mm: MemoryModel, budget: int | None, source: str, margin: float,
                real: RealProbe | None, step_ran: bool):
        n = mm.batch_size
        evidence = _breakdown(mm)
        metrics = _metrics(mm, budget, source, margin, real)
        _record(ctx, mm)
        if budget is None:  # nothing to judge against: the numbers are the report's measurements
            return None
        verdict = judge(mm, budget, margin, real)
        if verdict.capacity is not None:
            ctx.measured("memory.max_batch", verdict.capacity, unit="samples", better="higher",
                         title=f"the largest batch that fits the {format_bytes(budget)} budget")
        metrics.update(max_batch=verdict.capacity, recommended_batch=verdict.recommended)
        evidence.append(
            f"budget: {format_bytes(budget)} ({source}); the batch size that fits keeps "
            f"{margin:.0%} of it free (memory_model.safety_margin) for allocator overhead and kernel workspaces")
        if real is not None:
            evidence.append(_real_line(real, ctx.device))
        severity = verdict.severity
        if not step_ran:
            severity = Severity.ERROR
            evidence.insert(0, f"the training step at batch {n:,} ran out of memory; the model above was "
                               f"measured at batch {' and '.join(map(str, mm.measured_sizes))}")
        if severity is Severity.INFO:  # it fits with room to spare: measurements, not a finding
            return None
        if verdict.capacity == 0:
            return self._too_big(mm, budget, source, evidence, metrics)
        if severity is Severity.WARNING:
            share = verdict.need / budget
            return self.finding(
                "out-of-memory", Severity.WARNING, 0.5,
                title=f"batch {n:,} needs ≈ {format_bytes(verdict.need)}, {share:.0%} of the "
                      f"{format_bytes(budget)} budget: too close to the limit",
                evidence=evidence, fixes=_batch_fixes(mm, verdict, margin), metrics=metrics,
                location="train_loader")
        if not step_ran and (verdict.need <= budget or verdict.recommended is None):
            # It crashed, yet the model says it fits: the memory is held by something
            # the step does not account for.
            return self.finding(
                "out-of-memory", Severity.ERROR, 0.9,
                title=f"the training step ran out of memory at batch {n:,}, though it should need only "
                      f"≈ {format_bytes(verdict.need)} of {format_bytes(budget)}: something else holds the memory",
                evidence=evidence, metrics=metrics, location="train_loader",
                fixes=["Look for what else holds memory: other processes on the device (nvidia-smi), several "
                       "models or copies of the data set in this process, tensors kept across steps."]
                + list(catalogue_fixes()))
        if not step_ran:
            # A real out-of-memory, and the measured limit: as sure as the crash itself,
            # and more specific (so this title and these fixes lead the merged finding).
            confidence = 0.97
        elif real is not None and real.smallest_fail is not None and n >= real.smallest_fail:
            confidence = 0.95
        else:
            over = verdict.need / budget - 1.0
            confidence = 0.7 + 0.25 * min(1.0, over / 0.5)
        return self.finding(
            "out-of-memory", Severity.ERROR, confidence,
            title=f"batch {n:,} needs ≈ {format_bytes(verdict.need)}, more than the {format_bytes(budget)} "
                  f"budget; at most ~{verdict.recommended:,} samples fit",
            evidence=evidence, fixes=_batch_fixes(mm, verdict, margin), metrics=metrics,
            location="train_loader")

    def _too_big(self, mm: MemoryModel, budget: int, source: str, evidence: list[str], metrics: dict):
        step = mm.peak_bytes(1)
        return self.finding(
            "out-of-memory", Severity.ERROR, 0.9,
            title=f"even one sample needs ≈ {format_bytes(step)} (parameters, gradients, "
                  f"{mm.optimizer_name} state), more than the {format_bytes(budget)} budget",
            evidence=evidence, fixes=_model_fixes(mm.largest_layer, mm.param_bytes, mm), metrics=metrics,
            location=mm.largest_layer.path if mm.largest_layer else "model")

    def _nothing_fits(self, exc: OneSampleDoesNotFit, budget: int | None, source: str):
        largest = exc.largest_layer
        evidence = [f"the training step ran out of memory at the spec's batch and again at batch {exc.size}",
                    f"parameters and buffers: {format_bytes(exc.param_bytes)}"
                    + (f" (largest layer: {largest.label}, {format_bytes(largest.nbytes)})" if largest else "")]
        if budget is not None:
            evidence.append(f"budget: {format_bytes(budget)} ({source})")
        return self.finding(
            "out-of-memory", Severity.ERROR, 0.95,
            title=f"the training step runs out of memory even at batch {exc.size}",
            evidence=evidence, fixes=_model_fixes(largest, exc.param_bytes, None),
            metrics={"param_bytes": exc.param_bytes, "budget_bytes": budget, "max_batch": 0},
            location=largest.path if largest else "model")


def _record(ctx, mm: MemoryModel) -> None:
    """The memory model's numbers, as the report's measurements. The model is measured by
    counting allocations (exact for a given batch), so no noise is attached to the bytes."""
    n = mm.batch_size
    ctx.measured("memory.peak_bytes", mm.peak_bytes(n), unit="B", better="lower",
                 title=f"peak memory of a training step at batch {n:,}")
    ctx.measured("memory.peak_bytes_per_sample", mm.pass_bytes_per_sample, unit="B", better="lower",
                 title="how much the step's peak grows per sample of the batch (measured at batch "
                       f"{' and '.join(map(str, mm.measured_sizes))})")
    ctx.measured("memory.param_bytes", mm.param_bytes, unit="B", better=None,
                 title="parameters and buffers")


def catalogue_fixes() -> tuple[str, ...]:
    from dldoctor.api import lookup

    return lookup("out-of-memory").fixes


# -- measuring (through the context, memoised) ----------------------------------------
def _measure(ctx, step_ran: bool):
    from dldoctor.api.measure import isolated_rng
    from dldoctor.api.measure import memory as probe

    with isolated_rng(ctx.seed):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        try:
            return probe.measure_memory(model, optimizer, ctx.first_batch("train"), ctx.forward_fn,
                                        ctx.spec.loss_fn, grad_clip_norm=ctx.spec.grad_clip_norm,
                                        step_ran=step_ran)
        except probe.OneSampleDoesNotFit as exc:
            return exc
        finally:
            del model, optimizer
            _empty_cache(ctx.device)


def _real_probe(ctx, mm: MemoryModel, budget: int):
    from dldoctor.api.measure import isolated_rng
    from dldoctor.api.measure import memory as probe

    cap = int(ctx.config.get("memory_model.real_probe_max_batch"))
    start = mm.max_batch(budget)
    start = cap if start is None else max(1, start)
    with isolated_rng(ctx.seed):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        try:
            return probe.find_max_batch(
                model, optimizer, ctx.first_batch("train"), ctx.forward_fn, ctx.spec.loss_fn, start,
                grad_clip_norm=ctx.spec.grad_clip_norm, max_batch=cap,
                max_trials=int(ctx.config.get("memory_model.real_probe_max_trials")),
                tolerance=float(ctx.config.get("memory_model.real_probe_tolerance")),
                time_left=ctx.time_left)
        finally:
            del model, optimizer
            _empty_cache(ctx.device)


def _empty_cache(device) -> None:
    """Give the probe's device memory back (on CPU, freed tensors are returned already)."""
    if device.type == "cuda":
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


# -- words ------------------------------------------------------------------------------
def _breakdown(mm: MemoryModel) -> list[str]:
    largest = mm.largest_layer
    opt = (f"{format_bytes(mm.optimizer_state_bytes)} ({mm.optimizer_name}, measured after one optimizer.step())"
           if mm.optimizer_state_measured else f"not measured ({mm.optimizer_name}.step() needs more than gradients)")
    lines = [
        f"parameters and buffers: {format_bytes(mm.param_bytes)}"
        + (f" (largest layer: {largest.label}, {format_bytes(largest.nbytes)})" if largest else "")
        + f"; gradients: {format_bytes(mm.grad_bytes)}; optimiser state: {opt}",
    ]
    act = mm.largest_activation
    lines.append(
        f"activations saved for backward: {format_bytes(mm.saved_bytes_per_sample)} per sample"
        + (f" (most: {act.label}, {format_bytes(act.nbytes)} per sample)" if act else "")
        + f"; input batch: {format_bytes(mm.input_bytes_per_sample)} per sample")
    how = ("with the CUDA allocator's peak" if mm.tracked and mm.device.startswith("cuda")
           else "counting every tensor allocated" if mm.tracked
           else "from the saved activations, input and gradients (the allocation count could not run)")
    sizes = " and ".join(f"{s:,}" for s in mm.measured_sizes)
    lines.append(
        f"the step's peak grows by {format_bytes(mm.pass_bytes_per_sample)} per sample above a fixed "
        f"{format_bytes(mm.param_bytes + mm.optimizer_state_bytes + max(0.0, mm.pass_fixed_bytes))} "
        f"(measured at batch {sizes}, {how}); at batch {mm.batch_size:,} it is reached in the "
        f"{mm.peak_in(mm.batch_size)}")
    return lines


def _real_line(real: RealProbe, device) -> str:
    tried = ", ".join(f"{n:,} {'ok' if ok else 'OOM'}" for n, ok in real.trials)
    if real.largest_fit == 0 and real.smallest_fail is None:
        return f"real probe on {device} could not run ({real.stopped})"
    fail = f", {real.smallest_fail:,} ran out of memory" if real.smallest_fail is not None else ""
    capped = " (the probe's cap, memory_model.real_probe_max_batch)" if real.stopped == "cap" else ""
    return (f"real probe on {device}: batch {real.largest_fit:,} ran a full training step{capped}{fail} "
            f"(searched from the predicted {real.start:,}: {tried})")


def _metrics(mm: MemoryModel, budget: int | None, source: str, margin: float, real: RealProbe | None) -> dict:
    metrics = {
        "batch_size": mm.batch_size, "peak_bytes": mm.peak_bytes(mm.batch_size), "param_bytes": mm.param_bytes,
        "grad_bytes": mm.grad_bytes, "optimizer": mm.optimizer_name,
        "optimizer_state_bytes": mm.optimizer_state_bytes,
        "activation_bytes_per_sample": mm.saved_bytes_per_sample,
        "input_bytes_per_sample": mm.input_bytes_per_sample,
        "step_bytes_per_sample": mm.pass_bytes_per_sample, "step_fixed_bytes": mm.pass_fixed_bytes,
        "optimizer_step_bytes": mm.optimizer_step_bytes,
        "measured_sizes": ",".join(map(str, mm.measured_sizes)), "tracked": mm.tracked,
        "largest_layer": mm.largest_layer.path if mm.largest_layer else "",
        "largest_layer_bytes": mm.largest_layer.nbytes if mm.largest_layer else 0,
        "budget_bytes": budget, "budget_source": source, "safety_margin": margin,
    }
    if real is not None:
        metrics.update(real_probe_largest_fit=real.largest_fit, real_probe_smallest_fail=real.smallest_fail,
                       real_probe_trials=len(real.trials))
    return metrics


def _batch_fixes(mm: MemoryModel, verdict: BatchFit, margin: float) -> list[str]:
    n, rec = mm.batch_size, verdict.recommended or 1
    fixes = [f"Set the train_loader's batch_size to at most {rec:,} (≈ {format_bytes(mm.peak_bytes(rec))} per "
             f"step, keeping {margin:.0%} of the budget free)."]
    k = math.ceil(n / rec)
    if k > 1:
        fixes.append(f"To keep the effective batch of {n:,}, accumulate gradients over {k} micro-batches of "
                     f"{math.ceil(n / k):,}: call optimizer.step() and zero_grad() every {k} backward passes "
                     f"and divide the loss by {k}.")
    act = mm.largest_activation
    fixes.append("Trade compute for memory with activation checkpointing (torch.utils.checkpoint.checkpoint)"
                 + (f" around the blocks that save the most for backward ({act.label} saves "
                    f"{format_bytes(act.nbytes)} per sample)." if act else " on the largest blocks."))
    fixes.append("Train in mixed precision with torch.autocast(device_type, dtype=torch.bfloat16 or "
                 "torch.float16) (with torch.amp.GradScaler for float16): activations take half the bytes.")
    return fixes


def _model_fixes(largest, param_bytes: int, mm: MemoryModel | None) -> list[str]:
    fixes = []
    if largest is not None and param_bytes:
        fixes.append(f"Shrink {largest.label}: its parameters alone take {format_bytes(largest.nbytes)} "
                     f"({largest.nbytes / param_bytes:.0%} of the model); pool or stride before it so it gets "
                     f"fewer input features, or give it fewer units.")
    if mm is not None and mm.optimizer_state_bytes > mm.param_bytes:
        fixes.append(f"{mm.optimizer_name} keeps {format_bytes(mm.optimizer_state_bytes)} of state "
                     f"({mm.optimizer_state_bytes / max(1, mm.param_bytes):.1f}x the parameters); "
                     f"torch.optim.SGD(momentum=0.9) keeps one buffer per parameter instead of two.")
    fixes.append("Train in mixed precision (torch.autocast with bfloat16) or keep the weights in bfloat16 to "
                 "halve the parameter and gradient bytes.")
    return fixes
