"""Training steps timed with their batches already in memory: throughput without the loader,
and (on an accelerator) how throughput changes with the batch size.

Each measurement trains a fresh copy of the model (under the run's seed) on batches
the context already holds, so the loader takes no part. On CUDA every step ends with
a synchronisation, so the time is the device's, not the launch queue's.

The number of timed steps is fixed (``steps`` after ``warmup``), not "as many as fit
in a few seconds": a median over the same steps on every machine. These timings are
reported (samples per second, whether the device is saturated) and never decide a
finding's ID or severity. The running check's deadline is a safety limit only:
reaching it raises ``CheckIncomplete``.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from typing import Any

import torch

from dldoctor.core.errors import CheckIncomplete
from dldoctor.probes.resources.memory_model import resize_batch
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import batch_size_of


@dataclasses.dataclass(frozen=True)
class StepTiming:
    """Median seconds of a training step at one batch size (``steps`` timed)."""

    batch_size: int
    step_s: float
    steps: int

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / self.step_s if self.step_s > 0 else float("inf")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(ctx, model, optimizer, batches: list[Any], steps: int, warmup: int, what: str,
                 lower: str) -> list[float]:
    """Seconds of each of ``steps`` training steps after ``warmup`` (all of them, however long)."""
    times: list[float] = []
    slowest = 0.0
    for i in range(warmup + steps):
        if ctx.time_left() < max(2.0, 2 * slowest):
            timeout = ctx.config.get("run.check_timeout_s")
            raise CheckIncomplete(
                f"timing {what} stopped at the check's safety limit (run.check_timeout_s = {timeout:g} s) after "
                f"{len(times)} of {steps} timed steps. Raise run.check_timeout_s, or {lower}.")
        batch = batches[i % len(batches)]
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        outputs, targets = ctx.forward_fn(model, batch)
        loss = ctx.spec.loss_fn(outputs, targets)
        loss.backward()
        if ctx.spec.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.spec.grad_clip_norm)
        optimizer.step()
        _sync(ctx.device)
        seconds = time.perf_counter() - t0
        slowest = max(slowest, seconds)
        if i >= warmup:
            times.append(seconds)
        del outputs, targets, loss
    return times


def preloaded_step(ctx, batches: list[Any], steps: int = 10, warmup: int = 1) -> StepTiming | None:
    """Median step time over ``steps`` steps on ``batches`` (cycled), held in memory on the run's device."""
    if not batches:
        return None
    with isolated_rng(ctx.seed):
        model = ctx.fresh_model()
        optimizer = ctx.make_optimizer(model)
        times = _timed_steps(ctx, model, optimizer, batches, steps, warmup, "steps on preloaded batches",
                             "lower input_pipeline.preloaded_steps")
    if not times:
        return None
    return StepTiming(batch_size_of(batches[0]) or 0, statistics.median(times), len(times))


def batch_scaling(ctx, batch: Any, factors: tuple[int, ...] = (1, 2, 4), steps: int = 5,
                  warmup: int = 1) -> tuple[StepTiming, ...]:
    """Median step time over ``steps`` steps at the batch size times each factor (samples repeated).

    Stops at the first size that fails: out of memory, or a model that cannot take
    another batch size (a hard-coded reshape); the sizes timed until then are kept.
    """
    size = batch_size_of(batch)
    if not size:
        return ()
    out: list[StepTiming] = []
    for factor in factors:
        sized = resize_batch(batch, size, size * factor)
        model = optimizer = None
        try:
            with isolated_rng(ctx.seed):
                model = ctx.fresh_model()
                optimizer = ctx.make_optimizer(model)
                times = _timed_steps(ctx, model, optimizer, [sized], steps, warmup, f"steps at batch {size * factor}",
                                     "set input_pipeline.batch_scaling: false")
        except CheckIncomplete:
            raise
        except Exception:  # out of memory, or a batch size the model cannot take
            break
        finally:
            del model, optimizer, sized
            if ctx.device.type == "cuda":
                gc.collect()
                torch.cuda.empty_cache()
        if times:
            out.append(StepTiming(size * factor, statistics.median(times), len(times)))
    return tuple(out)
