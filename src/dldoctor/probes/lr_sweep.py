"""The learning-rate range test, measured: an exponential sweep on a fresh model.

From the context's initial weights, train with the spec's optimiser while the
learning rate grows exponentially from ``low`` to ``high`` (one step per value), and
record the loss of each step. Stop when the loss turns NaN/Inf or its running
average climbs far above its best (the run has diverged: higher rates say nothing
more). Everything runs on copies under the run's seed, the loader's own generators
are put back, and the user's objects are left as they were. Plain numbers only:
the judgement is in :mod:`dldoctor.readings.lr`.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from dldoctor.core.context import restored_generators
from dldoctor.core.errors import CheckIncomplete
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import to_device


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The record of one range test.

    Attributes:
        lrs: the learning rate of the first parameter group at each step (other
            groups keep their ratio to it).
        losses: the training loss of each step, before its update.
        base_lr: the spec optimiser's own learning rate (first group).
        stopped_by: "end", "diverged" (running loss above ``diverge_factor`` x its
            best), "nan", or "empty" (the loader yielded nothing). Never the clock:
            the sweep's steps are fixed, and a sweep that reaches the running check's
            deadline raises ``CheckIncomplete``.
        seconds: wall-clock time of the sweep.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    base_lr: float
    low: float
    high: float
    planned_steps: int
    stopped_by: str
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sweep_bounds(base_lr: float, low: float, high: float, margin: float) -> tuple[float, float]:
    """The sweep's range: ``[low, high]`` widened to reach ``margin`` x either side of the spec's rate."""
    if base_lr > 0 and math.isfinite(base_lr):
        return min(low, base_lr / margin), max(high, base_lr * margin)
    return low, high


def _cycle(ctx, loader):
    """Batches of the training loader (through the context's guarded reader), restarting it when it runs out."""
    while True:
        empty = True
        for batch in ctx.read("train", loader):
            empty = False
            yield batch
        if empty:
            return


def lr_sweep(ctx, low: float, high: float, steps: int, diverge_factor: float, smoothing: float,
             margin: float = 100.0) -> Sweep:
    """Run the range test on a fresh copy of the model; see the module docstring."""
    start = time.perf_counter()
    loader = ctx.loader("train")
    with isolated_rng(ctx.seed), restored_generators(loader):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        base = [float(g.get("lr", 0.0)) for g in optimizer.param_groups]
        lo, hi = sweep_bounds(base[0] if base else 0.0, low, high, margin)
        ratios = [b / base[0] if base[0] > 0 else 1.0 for b in base]
        growth = (hi / lo) ** (1.0 / max(1, steps - 1))
        lrs: list[float] = []
        losses: list[float] = []
        stopped_by = "end"
        running = best = None
        batches = _cycle(ctx, loader)
        slowest = 0.0
        for step in range(steps):
            step_began = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                stopped_by = "empty"
                break
            lr = lo * growth ** step
            for group, ratio in zip(optimizer.param_groups, ratios):
                group["lr"] = lr * ratio
            batch = to_device(batch, ctx.device)
            optimizer.zero_grad(set_to_none=True)
            outputs, targets = ctx.forward_fn(model, batch)
            loss = ctx.spec.loss_fn(outputs, targets)
            value = float(loss.detach())
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                stopped_by = "nan"
                break
            # A causal running average decides when to stop; the analysis later
            # smooths the whole curve without lag.
            running = value if running is None else smoothing * running + (1 - smoothing) * value
            best = running if best is None else min(best, running)
            if step > 5 and running - best > diverge_factor * max(abs(best), 1e-12):
                stopped_by = "diverged"
                break
            loss.backward()
            if ctx.spec.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.spec.grad_clip_norm)
            optimizer.step()
            slowest = max(slowest, time.perf_counter() - step_began)
            if step % 10 == 0:
                ctx.report_progress("learning-rate range test", step, value)
            if step + 1 < steps and ctx.time_left() < max(2.0, 2 * slowest):
                # A safety limit, not a budget: a sweep cut short would read its top
                # learning rates as missing, and the suggestion would move with the
                # machine's speed.
                timeout = ctx.config.get("run.check_timeout_s")
                raise CheckIncomplete(
                    f"the learning-rate range test stopped at the check's safety limit (run.check_timeout_s = "
                    f"{timeout:g} s) after {step + 1} of {steps} steps. Raise run.check_timeout_s, or lower "
                    f"lr_finder.steps.")
    return Sweep(tuple(lrs), tuple(losses), base[0] if base else 0.0, lo, hi, steps, stopped_by,
                 time.perf_counter() - start)
