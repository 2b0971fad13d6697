"""The time split of a training run's steps: waiting for data versus computing."""

from __future__ import annotations

import dataclasses
import statistics

from dldoctor.loading.script.record import WatchedLoop
from dldoctor.probes.resources.monitor import ResourceRecord
from dldoctor.probes.training.short import TrainingRun


@dataclasses.dataclass(frozen=True)
class StepSplit:
    """Mean seconds per step, away from the epochs' first steps.

    Attributes:
        steps: steps averaged (every step but the first of each epoch, which also
            starts the loader's iterator).
        wait_s: waiting for the next batch (loading, collating, copying to the device).
        copy_s: the part of ``wait_s`` spent copying the batch to the device.
        compute_s: forward, loss, backward and the optimiser step.
        samples: samples per step.
        epoch_start_extra_s: how much longer the first step of an epoch waits.
        typical_wait_s, typical_step_s: the medians over the same steps of the wait and of
            the whole step (wait + compute): a machine busy with other work stalls a few
            steps at random, which moves the means, not the medians.
    """

    steps: int
    wait_s: float
    copy_s: float
    compute_s: float
    samples: float
    epoch_start_extra_s: float
    typical_wait_s: float = 0.0
    typical_step_s: float = 0.0
    source: str = "the short training run"
    """Whose steps these are, in words."""
    watched: bool = False
    """The steps are the user's own loop, watched in script mode (not dldoctor's run)."""
    step_se_s: float | None = None
    """One standard error of the mean step (wait + compute), from the spread of the steps."""
    wait_fraction_se: float | None = None
    """One standard error of the share of the step spent waiting, from the spread of the steps."""

    @property
    def step_s(self) -> float:
        return self.wait_s + self.compute_s

    @property
    def wait_fraction(self) -> float:
        return self.wait_s / self.step_s if self.step_s > 0 else 0.0

    @property
    def loader_samples_per_s(self) -> float:
        return self.samples / self.step_s if self.step_s > 0 else 0.0

    @property
    def compute_samples_per_s(self) -> float:
        return self.samples / self.compute_s if self.compute_s > 0 else 0.0


def split_steps(run: TrainingRun, min_steps: int) -> StepSplit | None:
    """The run's step split, or None with fewer than ``min_steps`` steady steps."""
    return split_record(run.resources, {0, *(e.steps for e in run.epochs[:-1])}, min_steps)


def split_watched(loop: WatchedLoop, min_steps: int) -> StepSplit | None:
    """The split of the steps of a script's own loop (script mode), or None with fewer
    than ``min_steps`` steady steps. Each timed interval runs from the end of one optimizer
    step to the end of the next, the loader's ``__next__`` in it counted as the wait; an
    interval that fetched an epoch's first batch (the iterator starting) is counted apart."""
    rec = loop.resources
    if rec is None or len(loop.monitored_steps) != rec.steps:
        return None
    starts = set(loop.epoch_starts)
    firsts = {i for i, step in enumerate(loop.monitored_steps) if step in starts}
    return split_record(rec, firsts, min_steps, "the script's own loop", watched=True)


def split_record(rec: ResourceRecord, firsts: set[int], min_steps: int,
                 source: str = "the short training run", watched: bool = False) -> StepSplit | None:
    """The split of a resource record's steps, leaving out ``firsts`` (epochs' first steps)."""
    steady = [i for i in range(rec.steps) if i not in firsts]
    if len(steady) < min_steps:
        return None
    mean = lambda xs: statistics.fmean(xs) if xs else 0.0  # noqa: E731
    wait = mean([rec.wait_s[i] for i in steady])
    starts = [rec.wait_s[i] for i in sorted(firsts) if i < rec.steps]
    totals = [rec.wait_s[i] + rec.compute_s[i] for i in steady]
    shares = [rec.wait_s[i] / t for i, t in zip(steady, totals, strict=True) if t > 0]
    se = lambda xs: statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) >= 2 else None  # noqa: E731
    return StepSplit(
        step_se_s=se(totals), wait_fraction_se=se(shares),
        steps=len(steady), wait_s=wait, copy_s=mean([rec.copy_s[i] for i in steady]),
        compute_s=mean([rec.compute_s[i] for i in steady]), samples=mean([rec.samples[i] for i in steady]),
        epoch_start_extra_s=max(0.0, mean(starts) - wait),
        typical_wait_s=statistics.median(rec.wait_s[i] for i in steady),
        typical_step_s=statistics.median(rec.wait_s[i] + rec.compute_s[i] for i in steady),
        source=source,
        watched=watched,
    )
