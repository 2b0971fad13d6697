#!/usr/bin/env python3
"""What script mode costs: the watcher's hooks on the user's own steps, and a whole run.

Script mode (``dldoctor run train.py`` on a file without ``dldoctor_spec``) runs the
user's script as ``__main__`` under a :class:`~dldoctor.loading.script.watch.Watcher`:
global optimizer-step and module-forward hooks and patches of ``Tensor.backward``, the
DataLoader iterators and the functional losses. Two measurements, both as ratios of
medians over rounds that alternate A and B (these machines are noisy):

* hooks: a digits CNN (scikit-learn's 8x8 digits as 1x8x8 images, Adam, batch 64,
  ``F.cross_entropy``) trained ``--steps`` steps by a plain loop, against the same loop
  with a Watcher installed (its step budget out of reach, so it never stops the loop).
  Reported as the median over back-to-back pairs of watched round / plain round - 1
  (target: at most 5%), and self-timed: the seconds inside the watcher's hooks over the
  rest of the round's seconds, from a third round per pair that times each hook. The
  self-timed share is not a bound either way: torch's dispatch to the hooks and the
  patched methods' wrappers are not in it, but the first tensor operation after
  ``backward()`` pays a fixed cost (about 25 us here) that the optimizer step pays when
  the watcher's gradient read does not come first, and the hook timing counts it.
  ``--profile`` then runs one watched round under cProfile and lists what of the watcher
  costs most;
* end to end: ``dldoctor run --format json --fail-on never`` in script mode on
  ``script_cost_inputs/digits_script.py`` against spec mode on
  ``script_cost_inputs/digits_spec.py`` (the same model, optimizer, loss and data), each
  a fresh process, with the safety limits raised to 1200 s so that a loaded machine does
  not hit them. Reported as median script / median spec wall time (target: at most
  1.5x), and both runs' findings: the verdicts (errors and warnings) should be equal,
  both healthy; the information-level findings are listed too.

Usage: python benchmarks/script_cost.py [--steps 200] [--rounds 7] [--e2e-rounds 3] [--threads 1] [--profile]
       [--skip-hooks] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dldoctor.loading.script.record import WatchedLoop
from dldoctor.loading.script.watch import Budget, Watcher
from dldoctor.probes.resources.monitor import StepMonitor

ROOT = Path(__file__).resolve().parents[1]
INPUTS = Path(__file__).resolve().parent / "script_cost_inputs"
#: A step budget the loop never reaches: the watcher records every step and stops nothing.
NEVER = Budget(min_steps=10**9, max_steps=10**9, after_boundary=0, max_backwards=10**9)
SAFETY_LIMITS = "run:\n  check_timeout_s: 1200.0\ntraining:\n  max_seconds: 1200.0\n"


# -- (a) the hooks on the user's own steps ---------------------------------------------------------
def digits_loader(batch_size: int = 64) -> DataLoader:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    X = (X - X.mean()) / X.std()
    return DataLoader(TensorDataset(X, torch.tensor(y)), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


def digits_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, steps: int,
          step_times: list[float] | None = None) -> float:
    """Seconds for ``steps`` steps of an ordinary loop (the loader's batches included);
    each step's seconds (from the end of the previous one) are appended to ``step_times``."""
    start = last = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            done += 1
            if step_times is not None:
                now = time.perf_counter()
                step_times.append(now - last)
                last = now
            if done == steps:
                break
    return time.perf_counter() - start


def unpreempted_mean(step_times: list[float]) -> tuple[float, float]:
    """The mean step time without the steps the machine interrupted (over 2x the median),
    and the share of steps left out. The watcher's periodic work (a memory read every 4th
    step, the gradient norms read every 32nd) costs well under 2x a step: it stays in."""
    cap = 2 * statistics.median(step_times)
    kept = [t for t in step_times if t <= cap]
    return statistics.fmean(kept), 1 - len(kept) / len(step_times)


#: The watcher's methods that torch's hooks and its patches call (the step's recording runs
#: inside ``_pre_step``): timing them gives the seconds spent in the watcher itself.
HOOKS = ("_pre_step", "_post_step", "_forward_pre", "_forward_post", "_before_backward")


def watched(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, steps: int,
            self_timed: bool = False, step_times: list[float] | None = None) -> tuple[float, int, float]:
    """Seconds for the same loop with a Watcher installed, as ``watch_script`` installs it
    (a context manager around the script, timing the steps and reading memory); the steps
    it recorded; and, when ``self_timed``, the seconds spent inside its hooks (0.0 otherwise)."""
    record = WatchedLoop(script=Path(__file__).name, argv=[__file__])
    watcher = Watcher(record, NEVER, (Path(__file__).resolve().parent,), step_monitor=StepMonitor)
    inside = [0.0]
    if self_timed:
        for name in HOOKS:
            setattr(watcher, name, _timed(getattr(watcher, name), inside))
    with watcher:
        seconds = train(model, optimizer, loader, steps, step_times)
    return seconds, len(record.steps), inside[0]


def _timed(method, total: list[float]):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - start

    return timed


def measure_hooks(steps: int, rounds: int) -> dict:
    model, loader = digits_cnn(), digits_loader()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train(model, optimizer, loader, 20)  # warm-up: optimiser state, allocator
    watched(model, optimizer, loader, 20)
    plain, hooked, inside, per_step = [], [], [], []
    plain_steps: list[float] = []
    hooked_steps: list[float] = []
    for i in range(rounds):  # A/B, then B/A: neither always runs first
        order = ("plain", "watched") if i % 2 == 0 else ("watched", "plain")
        for kind in order:
            if kind == "plain":
                plain.append(train(model, optimizer, loader, steps, plain_steps))
            else:
                seconds, recorded, _ = watched(model, optimizer, loader, steps, step_times=hooked_steps)
                assert recorded == steps, f"the watcher recorded {recorded} of {steps} steps"
                hooked.append(seconds)
        # A third round, not in the A/B: the seconds inside the watcher's hooks, timed by themselves.
        seconds, _, hooks = watched(model, optimizer, loader, steps, self_timed=True)
        inside.append(hooks / max(1e-12, seconds - hooks))
        per_step.append(hooks / steps)
    a, b = statistics.median(plain), statistics.median(hooked)
    # Each pair ran back to back: the median of the pairs' ratios cancels the machine's slower
    # stretches, which a ratio of the two medians does not.
    ratio = statistics.median(w / p for p, w in zip(plain, hooked))
    (plain_mean, plain_out), (hooked_mean, hooked_out) = unpreempted_mean(plain_steps), unpreempted_mean(hooked_steps)
    return {"step_ms": 1e3 * a / steps, "watched_step_ms": 1e3 * b / steps, "overhead": ratio - 1.0,
            "step_overhead": hooked_mean / plain_mean - 1.0, "left_out": max(plain_out, hooked_out),
            "self": statistics.median(inside), "us_per_step": 1e6 * statistics.median(per_step),
            "spread": (max(plain) - min(plain)) / a}


def profile_hooks(steps: int, top: int = 12) -> str:
    """One watched round under cProfile: the watcher's functions (and what they call) by
    cumulative time, and the same round's plain-loop total for scale."""
    model, loader = digits_cnn(), digits_loader()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train(model, optimizer, loader, 20)
    profiler = cProfile.Profile()
    profiler.enable()
    train(model, optimizer, loader, steps)
    profiler.disable()
    plain_total = pstats.Stats(profiler).total_tt
    profiler = cProfile.Profile()
    profiler.enable()
    watched(model, optimizer, loader, steps)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"profiled: plain round {plain_total:.3f} s, watched round {stats.total_tt:.3f} s "
              f"({steps} steps, times inflated by the profiler)\n")
    stats.sort_stats("tottime").print_stats(r"loading/script/watch\.py", top)
    # What the recording calls (torch's reductions and copies show up here, not above).
    stats.sort_stats("cumulative").print_callees(r"_record_step|_before_backward|_keep_batch")
    return out.getvalue()


# -- (b) a whole run, script mode against spec mode ------------------------------------------------
def dldoctor_run(target: Path, config: Path) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                       os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dldoctor", "run", str(target), "--format", "json",
                           "--fail-on", "never", "--config", str(config)],
                          capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{target.name}: no JSON report (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from None
    return seconds, report


def verdict(report: dict) -> list[str]:
    """The ranked errors and warnings (what decides the status): empty for a healthy run."""
    return [f"{d['id']} ({d['severity']})" for d in report["diagnoses"] if d["severity"] in ("error", "warning")]


def notes(report: dict) -> list[str]:
    """The ranked information-level findings."""
    return [d["id"] for d in report["diagnoses"] if d["severity"] not in ("error", "warning")]


def measure_e2e(rounds: int) -> dict:
    script, spec = INPUTS / "digits_script.py", INPUTS / "digits_spec.py"
    times: dict[str, list[float]] = {"script": [], "spec": []}
    own: dict[str, list[float]] = {"script": [], "spec": []}
    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "safety_limits.yaml"
        config.write_text(SAFETY_LIMITS)
        for i in range(rounds):
            order = ("script", "spec") if i % 2 == 0 else ("spec", "script")
            for mode in order:
                seconds, report = dldoctor_run(script if mode == "script" else spec, config)
                times[mode].append(seconds)
                own[mode].append(float(report.get("duration_s") or 0.0))
                reports[mode] = report
                print(f"  round {i + 1} {mode:6} {seconds:6.1f} s  status {report['status']}", file=sys.stderr)
    return {"times": times, "own": own, "reports": reports,
            "ratio": statistics.median(times["script"]) / statistics.median(times["spec"]),
            "own_ratio": statistics.median(own["script"]) / max(1e-9, statistics.median(own["spec"]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per hook round")
    parser.add_argument("--rounds", type=int, default=7, help="plain/watched round pairs")
    parser.add_argument("--e2e-rounds", type=int, default=3, help="script/spec `dldoctor run` pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: less noise on a shared machine)")
    parser.add_argument("--profile", action="store_true", help="also profile one watched round (cProfile)")
    parser.add_argument("--skip-hooks", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.skip_hooks:
        r = measure_hooks(args.steps, args.rounds)
        print("## Hook overhead on the user's steps (digits CNN, Adam, batch 64)\n")
        print("| plain step | watched step | per-step A/B (target <= 5%) | per-round A/B | self-timed hooks "
              "| hooks / step | plain spread |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {r['step_ms']:.3f} ms | {r['watched_step_ms']:.3f} ms | {r['step_overhead']:+.1%} "
              f"| {r['overhead']:+.1%} | {r['self']:.1%} | {r['us_per_step']:.0f} us | {r['spread']:.1%} |")
        print(f"\nper-step A/B: mean step time watched / plain - 1 over every step of the rounds, "
              f"leaving out steps the machine interrupted (over 2x the median: {r['left_out']:.1%} at most)")
        print(f"\n{args.steps} steps x {args.rounds} rounds each, alternating, torch threads {args.threads}\n")
        if args.profile:
            print("```\n" + profile_hooks(args.steps).rstrip() + "\n```\n")
    if not args.skip_e2e:
        r = measure_e2e(args.e2e_rounds)
        print("## `dldoctor run`: script mode against spec mode (digits CNN)\n")
        print("| mode | median wall | median duration_s | status | errors and warnings | information |")
        print("|---|---:|---:|---|---|---|")
        for mode in ("spec", "script"):
            report = r["reports"][mode]
            print(f"| {mode} | {statistics.median(r['times'][mode]):.1f} s | {statistics.median(r['own'][mode]):.1f} s "
                  f"| {report['status']} | {', '.join(verdict(report)) or 'none'} | {', '.join(notes(report))} |")
        script, spec = r["reports"]["script"], r["reports"]["spec"]
        same = verdict(script) == verdict(spec) and script["status"] == spec["status"]
        print(f"\nscript / spec: {r['ratio']:.2f}x wall (target <= 1.5x), {r['own_ratio']:.2f}x of dldoctor's own "
              f"duration_s; verdicts {'equal' if same else 'DIFFERENT'}, information findings "
              f"{'equal' if notes(script) == notes(spec) else 'different'} (last round); "
              f"{args.e2e_rounds} rounds each, alternating")
    return 0


if __name__ == "__main__":
    sys.exit(main())
