#!/usr/bin/env python3
"""Cost of ``dldoctor probe`` (stage 1) in training-step equivalents.

For each target, in one process: the median wall time of one training step of the
same model and batch (forward, loss, backward, optimiser step; after warm-up), and
the wall time of the stage-1 pipeline (``dldoctor probe`` without interpreter start-up
and the torch import, which do not grow with the model). The ratio is the cost in
step-equivalents; the issue's target is at most 30. Both are measured at one torch
thread and at torch's default thread count (a multi-threaded step is shorter, while
the probe's Python work is not, so the ratio is higher there). The per-check split
shows where the time goes. Also reported: the full ``dldoctor probe`` command wall time.

    python benchmarks/probe_cost.py [TARGET ...] [--repeats 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from dldoctor.core.config import load_config
from dldoctor.core.context import Context
from dldoctor.core.runner import RunOptions, diagnose
from dldoctor.core.stage import Stage
from dldoctor.loading.entrypoint import load_target

DEFAULT_TARGETS = ["examples/digits/train.py", "examples/transformer/train.py"]


def median_step_seconds(target: str, steps: int = 30, warmup: int = 5) -> float:
    ctx = Context(load_target(target), load_config(), torch.device("cpu"), seed=0)
    ctx.prepare()
    model = ctx.fresh_model()
    optimizer = ctx.make_optimizer(model)
    batch = ctx.first_batch()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        outputs, targets = ctx.forward_fn(model, batch)
        ctx.spec.loss_fn(outputs, targets).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=DEFAULT_TARGETS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts for the step and the probe alike (default: 1 and torch's own "
                             "default on this machine; on a shared 2-core machine a second busy process makes "
                             "multi-threaded small steps erratic, so both are reported)")
    args = parser.parse_args(argv)
    threads = args.threads or sorted({1, torch.get_num_threads()})
    print("| target | threads | step ms | probe s (in-process) | step-equivalents | `dldoctor probe` command s "
          "| slowest checks |")
    print("|---|---|---|---|---|---|---|")
    for count in threads:
        torch.set_num_threads(count)
        for target in args.targets:
            diagnose(RunOptions(target=target, device="cpu", stages=(Stage.RUN,), command="probe"))  # warm caches
            step = median_step_seconds(target)
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                diagnosis = diagnose(RunOptions(target=target, device="cpu", stages=(Stage.RUN,), command="probe"))
                runs.append((time.perf_counter() - start, diagnosis))
            wall, diagnosis = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
            slow = sorted(diagnosis.checks, key=lambda c: -c.duration_s)[:3]
            split = ", ".join(f"{c.name} {c.duration_s / step:.1f}" for c in slow)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dldoctor", "probe", target, "--format", "json"],
                           capture_output=True, check=False, env={**os.environ, "OMP_NUM_THREADS": str(count)})
            command = time.perf_counter() - start
            print(f"| {Path(target).parent.name}/{Path(target).name} | {count} | {step * 1e3:.2f} | {wall:.3f} | "
                  f"{wall / step:.1f} | {command:.2f} | {split} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
