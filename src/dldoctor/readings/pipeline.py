"""What the input-pipeline check says: the slow part, its numbers, and the fixes in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from dldoctor.probes.resources.loader import ItemTiming
from dldoctor.probes.resources.throughput import StepTiming
from dldoctor.readings.step_split import StepSplit
from dldoctor.runtime.units import format_bytes


def duration(seconds: float) -> str:
    """``850 µs``, ``12.3 ms``, ``1.40 s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


@dataclasses.dataclass(frozen=True)
class Cause:
    """The slow part of a loader's wait.

    ``kind``: ``getitem-read`` (each item reads files: it makes read system calls),
    ``getitem-wait`` (each item waits: its CPU time is far below its wall time: a lock,
    a network, a sleep), ``getitem-cpu`` (per-item computation), ``collate``, ``copy``
    (host-to-device), or ``loader`` (not told apart: an iterable dataset, a sampler,
    worker hand-off). ``share``: the fraction of the loader's time per batch it takes.
    """

    kind: str
    share: float

    @classmethod
    def classify(cls, split: StepSplit, items: ItemTiming | None, batch_size: int, share: float,
                 io_cpu_fraction: float, device_type: str) -> Cause:
        wait = max(split.wait_s, 1e-12)
        if device_type == "cuda" and split.copy_s >= share * wait:
            return cls("copy", split.copy_s / wait)
        if items is not None:
            per_item, collate = shares(items, batch_size, wait)
            # the items (or the collate function), or the larger of the two when together
            # they make up most of the batch
            if per_item >= share or (per_item >= collate and per_item + collate >= share):
                if items.read_calls is not None and items.read_calls >= 1:
                    kind = "getitem-read"
                elif items.cpu_fraction < io_cpu_fraction:
                    kind = "getitem-wait"
                else:
                    kind = "getitem-cpu"
                return cls(kind, min(1.0, per_item))
            if collate >= share or (collate > per_item and per_item + collate >= share):
                return cls("collate", min(1.0, collate))
        return cls("loader", 1.0)

    def location(self, items: ItemTiming | None, loader: Any) -> str:
        if self.kind.startswith("getitem") and items is not None:
            return f"train_loader.dataset: {items.where}"
        if self.kind == "collate":
            fn = getattr(loader, "collate_fn", None)
            return f"train_loader.collate_fn ({getattr(fn, '__qualname__', type(fn).__name__)})"
        if self.kind == "copy":
            return "train_loader (host-to-device copy)"
        return "train_loader"


def shares(items: ItemTiming, batch_size: int, wait: float) -> tuple[float, float]:
    """The shares of the loader's time per batch taken by the items and by the collate function.

    Against the loader's batches timed alongside the items (when it has no workers),
    else against the run's wait. For the items, the larger of the wall-clock and the
    CPU-time share: a process switched out on a busy machine loses wall-clock time
    unevenly between two timings, while an item that sleeps or waits on I/O spends
    wall-clock time without CPU time.
    """
    collate = items.collate_s or 0.0
    if not items.batch_s:
        return items.wall_s * batch_size / wait, collate / wait
    per_item = items.wall_s * batch_size / items.batch_s
    if items.batch_cpu_s:
        per_item = max(per_item, items.cpu_s * batch_size / items.batch_cpu_s)
    return per_item, collate / items.batch_s


def split_text(split: StepSplit, bare: float | None, device_type: str) -> str:
    text = (f"per step of {split.source} ({split.steps} steps, {split.samples:.0f} samples each): "
            f"{duration(split.wait_s)} waiting for the batch ({split.wait_fraction:.0%}), "
            f"{duration(split.compute_s)} in forward, backward and the optimiser step")
    if device_type == "cuda" and split.copy_s > 0.05 * split.wait_s:
        text += f"; copying it to the device takes {duration(split.copy_s)} of the wait"
    if bare is not None:
        text += f"; a DataLoader over the same samples held in memory takes {duration(bare)} per batch"
    return text


def rates_text(split: StepSplit, preloaded: StepTiming | None) -> str:
    text = f"{split.loader_samples_per_s:,.0f} samples/s through the loader"
    if preloaded is not None:
        return text + (f"; {preloaded.samples_per_s:,.0f} samples/s with the batches preloaded in memory "
                       f"(median of {preloaded.steps} steps, {duration(preloaded.step_s)} each)")
    return text + f"; {split.compute_samples_per_s:,.0f} samples/s counting the step alone"


def items_text(items: ItemTiming, batch_size: int) -> str:
    text = (f"{items.where}: {duration(items.wall_s)} per item ({duration(items.cpu_s)} of it CPU time; "
            f"mean of {items.items}), {duration(items.wall_s * batch_size)} per batch of {batch_size}")
    if items.read_calls is not None and items.read_calls >= 1:
        text += f"; each item reads {format_bytes(items.read_bytes or 0)} in {items.read_calls:.0f} read calls"
    if items.collate_s is not None:
        text += f"; the collate function: {duration(items.collate_s)} per batch"
    if items.batch_s is not None:
        text += f"; timed alongside, one batch of the loader takes {duration(items.batch_s)}"
    return text


def machinery_text(split: StepSplit) -> str:
    """Why a mostly waiting step is not called a bottleneck: the wait is the DataLoader's own."""
    return (f"the step waits {split.wait_fraction:.0%} of its time, but nearly all of it is the DataLoader's own "
            "per-item indexing and collation, which a faster pipeline would not remove: with a step this short, "
            "a data set held in memory is loaded faster by indexing its tensors a whole batch at a time "
            "(e.g. a BatchSampler passed as the sampler, with batch_size=None)")


def throughput_title(split: StepSplit, preloaded: StepTiming | None) -> str:
    text = f"throughput: {split.loader_samples_per_s:,.0f} samples/s through the loader"
    if preloaded is not None:
        text += f", {preloaded.samples_per_s:,.0f} with batches preloaded in memory"
    return text + f"; {split.wait_fraction:.0%} of each step waits for data"


def bottleneck_title(split: StepSplit, cause: Cause, items: ItemTiming | None, batch_size: int) -> str:
    text = f"the training step waits on data loading {split.wait_fraction:.0%} of the time"
    if cause.kind.startswith("getitem") and items is not None:
        name = items.where.split(" (")[0]
        how = {"getitem-read": "reading files", "getitem-wait": "waiting"}.get(cause.kind, "computing")
        return text + (f": {name} spends {duration(items.wall_s)} per item {how} "
                       f"({duration(items.wall_s * batch_size)} per batch of {batch_size})")
    if cause.kind == "collate" and items is not None and items.collate_s is not None:
        return text + f": the collate function takes {duration(items.collate_s)} per batch"
    if cause.kind == "copy":
        return text + f": copying each batch to the device takes {duration(split.copy_s)}"
    return text + f" ({duration(split.wait_s)} per batch against {duration(split.compute_s)} of compute)"


def _workers_fix(workers: int | None, needed: int, cpus: int, io: bool, compute_s: float) -> str:
    suggested = needed if io else min(needed, cpus)
    why = (f"about {needed} workers keep up with a {duration(compute_s)} step; this machine has {cpus} cores"
           + ("; workers that wait on I/O may outnumber the cores" if io else ""))
    if not workers:
        return (f"Load batches in parallel with the step: DataLoader(..., num_workers={suggested}, "
                f"persistent_workers=True) ({why}).")
    return f"Raise DataLoader(num_workers=...) from {workers} to about {suggested} ({why})."


def fixes(cause: Cause, items: ItemTiming | None, batch_size: int, workers: int | None, needed: int, cpus: int,
          pinned: bool, device_type: str, compute_s: float) -> list[str]:
    """The fixes in the order the measurement makes most useful."""
    pin = ("Set DataLoader(pin_memory=True) and copy with batch.to(device, non_blocking=True), so the copy "
           "overlaps the step.")
    cache = ("If an item is the same every epoch, cache it after its first load (a dict in the Dataset, or "
             "functools.lru_cache on a helper), or save the processed data set once and load that.")
    out: list[str] = []
    if cause.kind == "copy":
        out.append(pin if not pinned else "Copy with non_blocking=True and keep the batch small in bytes "
                   "(uint8 images normalised on the device, not float32 on the host).")
    if cause.kind == "getitem-cpu" and items is not None:
        out.append(f"Do the work of {items.where} once, before training, not per item: it takes "
                   f"{duration(items.wall_s)} per item ({duration(items.wall_s * batch_size)} per batch of "
                   f"{batch_size}). Precompute the processed tensors in the Dataset's __init__ (or in a "
                   "preprocessing script that saves them) and keep only cheap random augmentation per item.")
    if cause.kind == "getitem-read" and items is not None:
        out.append(f"Read the data once, not per item: {items.where} reads {format_bytes(items.read_bytes or 0)} "
                   f"from files for every item ({duration(items.wall_s)}). Load the table or files into memory "
                   "in the Dataset's __init__, or convert them once to one array file (np.save / torch.save) "
                   "that is loaded once (np.load(..., mmap_mode='r') if it does not fit in memory).")
    if cause.kind == "getitem-wait" and items is not None:
        out.append(f"{items.where} waits {duration(items.wall_s)} per item and computes only "
                   f"{items.cpu_fraction:.0%} of it "
                   "(a network call, a lock, a sleep): fetch in bulk instead of one request per item: all "
                   "rows once before training, or a whole batch per request (give the Dataset a "
                   "__getitems__(indices) method, which the DataLoader calls with a batch's indices).")
    if cause.kind == "collate" and items is not None and items.collate_s is not None:
        out.append(f"The collate function takes {duration(items.collate_s)} per batch: vectorise it (stack "
                   "tensors, pad once per batch with torch.nn.utils.rnn.pad_sequence) or do the work in "
                   "preprocessing.")
    out.append(_workers_fix(workers, needed, cpus, cause.kind in ("getitem-read", "getitem-wait"), compute_s))
    if cause.kind.startswith("getitem"):
        out.append(cache)
    if device_type == "cuda" and not pinned and cause.kind != "copy":
        out.append(pin)
    if cause.kind == "loader":
        out.append("Move expensive pre-processing out of the per-sample path: decode and transform once and "
                   "cache the result, or use batched transforms on the device.")
        out.append(cache)
    return out


def scaling_text(timings: Sequence[StepTiming], unsaturated_growth: float) -> str:
    if len(timings) < 2:
        return ""
    parts = "; ".join(f"batch {t.batch_size:,}: {duration(t.step_s)}/step ({t.samples_per_s:,.0f} samples/s)"
                      for t in timings)
    a, b = timings[0], timings[1]
    growth = b.step_s / a.step_s if a.step_s > 0 else float("inf")
    factor = b.batch_size / a.batch_size
    if growth <= unsaturated_growth:
        best = max(timings, key=lambda t: t.samples_per_s)
        verdict = (f"the step time grows only {growth:.2f}x for {factor:.0f}x the batch: the device is not "
                   f"saturated at batch {a.batch_size:,}; batch {best.batch_size:,} gives "
                   f"{best.samples_per_s / a.samples_per_s:.1f}x the throughput (re-tune the learning rate "
                   "with the batch size)")
    else:
        verdict = (f"the step time grows {growth:.2f}x for {factor:.0f}x the batch: the device is saturated at "
                   f"batch {a.batch_size:,}, a larger batch would not raise throughput")
    return f"batch size scaling with preloaded batches: {parts}; {verdict}"


def report(split: StepSplit, bare: float | None, preloaded: StepTiming | None, scaling: Sequence[StepTiming],
           device_type: str) -> dict[str, Any]:
    """The throughput report (plain data, ``report:throughput``)."""
    return {
        "device": device_type,
        "steps": split.steps,
        "samples_per_step": split.samples,
        "samples_per_s_loader": split.loader_samples_per_s,
        "samples_per_s_preloaded": preloaded.samples_per_s if preloaded else None,
        "samples_per_s_compute": split.compute_samples_per_s,
        "wait_s_per_step": split.wait_s,
        "copy_s_per_step": split.copy_s,
        "compute_s_per_step": split.compute_s,
        "wait_fraction": split.wait_fraction,
        "bare_loader_s_per_batch": bare,
        "epoch_start_extra_s": split.epoch_start_extra_s,
        "batch_scaling": [{"batch_size": t.batch_size, "step_s": t.step_s, "samples_per_s": t.samples_per_s}
                          for t in scaling],
    }


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The report's scalars, for a finding's metrics."""
    out = {k: v for k, v in report.items() if not isinstance(v, list)}
    if report.get("batch_scaling"):
        out["batch_scaling"] = ", ".join(f"{r['batch_size']}:{r['samples_per_s']:.0f}/s"
                                         for r in report["batch_scaling"])
    return out
