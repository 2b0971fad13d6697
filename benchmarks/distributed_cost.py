#!/usr/bin/env python3
"""What distributed script mode costs: the watcher on each rank's DDP steps, and a whole run.

``dldoctor run train.py --nproc-per-node 2`` starts the script in 2 ranks under torch's elastic
launcher (``torch.distributed.run``, the code behind ``torchrun``); each rank runs it as ``__main__``
under a :class:`~dldoctor.loading.script.watch.Watcher` and a per-rank recorder
(:mod:`dldoctor.distributed.rank_record`), rank 0 gathers the records and writes one report. The
script is ``distributed_cost_inputs/digits_ddp.py``: a small CNN on scikit-learn's 8x8 digits, Adam,
cross-entropy, a shuffling ``DistributedSampler`` with ``set_epoch``, 32 samples per rank and step,
wrapped in ``DistributedDataParallel`` (gloo); started without ``RANK``/``WORLD_SIZE`` it is the same
training in one process (batches of 64, no group). Two measurements, both from rounds that alternate
A and B, reported as ratios of medians (these machines are noisy; nothing here is an assertion):

* hooks, per DDP step: the script in 2 ranks under ``python -m torch.distributed.run --standalone``,
  plain (A), against the same 2 ranks under ``dldoctor run --nproc-per-node 2 --watch-steps K
  --select loop-curve`` (B: the watcher stops the loop at K steps; one cheap check afterwards). Both
  train K steps, and the script times its own steps (``--timing-file``: the seconds between
  consecutive iterations of its loop, the batch, forward, backward with DDP's all-reduce and the
  step; written by rank 0). Per round, the median step over steps ``--warmup``..K; reported as the
  median over back-to-back pairs of watched median / plain median - 1 (target: at most 5%);
* end to end: the default ``dldoctor run --nproc-per-node 2 --format json --fail-on never`` against
  the default single-process script mode (``dldoctor run --format json --fail-on never``) on the
  same script, each a fresh process, with the safety limits raised to 1200 s (``--config``) so that
  a loaded machine does not hit them. Reported as median distributed / median single wall time
  (target: at most 2x), with both runs' findings: both should be healthy (no error or warning).

The plain rounds' launcher now and then reports a rank killed by SIGABRT at exit ("terminate called
without an active exception": gloo's threads at interpreter shutdown, after the script's
``destroy_process_group``); when rank 0 had written every step's time the round counts, and the crash
is listed.

* hooks in the same ranks (``--per-rank-batch B``, repeatable): the rounds above differ in more than the
  watching (the launcher, process start-up and placement, and on this 2-core machine the median step
  of a round moved by up to 50% between rounds of the same kind). ``distributed_cost_inputs/ab_ranks.py``
  runs one torchrun job whose 2 ranks alternate blocks of ``--block-steps`` steps (40: what a default
  run watches of this script, 29 steps an epoch), plain and watched (the Watcher, the rank recorder and
  the hang watchdog, as a dldoctor rank has them, each block from its first step), ``--blocks`` pairs,
  with the flight recorder off as in a dldoctor rank; reported as the median over pairs of watched /
  plain block medians - 1 with its 95% bootstrap interval (one pair's ratio varies by some 20% here),
  pooled over every step, the 25th percentiles' ratio, and the milliseconds
  added per step; beside them the same for the main thread's CPU time per step (the watching's own
  work, less moved by the scheduler than wall time, though not by the machine's other tenants).

* instructions (``--instructions PAIRS``, where valgrind is installed): the same A/B blocks under valgrind's
  callgrind (``torch.distributed.run --no-python valgrind ...``), counts zeroed before each block and dumped
  after it, per rank: instructions executed per step, plain and watched. Deterministic (no other tenant
  moves them), so a change to what watching costs shows up here when the timings' noise hides it; it
  does not see what the watching's cold code and data cost in cache misses, which the timings do.

After the rounds, any process still running the input script (a rank left behind) is listed.

Usage: python benchmarks/distributed_cost.py [--watch-steps 100] [--warmup 10] [--rounds 5] [--e2e-rounds 3]
       [--blocks 100] [--block-steps 40] [--per-rank-batch 32 ...] [--threads 1] [--skip-hooks]
       [--skip-in-process] [--skip-e2e] [--instructions PAIRS] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "distributed_cost_inputs" / "digits_ddp.py"
AB_SCRIPT = Path(__file__).resolve().parent / "distributed_cost_inputs" / "ab_ranks.py"
NPROC = 2
SAFETY_LIMITS = "run:\n  check_timeout_s: 1200.0\ntraining:\n  max_seconds: 1200.0\n"
#: A round that takes longer than this is stuck (a rank waiting for a peer that is gone): it is killed.
ROUND_TIMEOUT_S = 1800
#: The one check the watched hook rounds run after their loop (cheap: it reads the recorded losses).
CHEAP_CHECK = "loop-curve"


def environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


def run(command: list[str], env: dict[str, str], what: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``command`` from the repository root in a session of its own (so that a stuck group can be
    killed whole); its wall seconds and the finished process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=ROUND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SystemExit(f"{what}: still running after {ROUND_TIMEOUT_S} s, killed") from None
    seconds = time.perf_counter() - start
    return seconds, subprocess.CompletedProcess(command, proc.returncode, out, err)


def report_of(proc: subprocess.CompletedProcess, what: str) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{what}: no JSON report (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from None


def verdict(report: dict) -> list[str]:
    """The ranked errors and warnings (what decides the status): empty for a healthy run."""
    return [f"{d['id']} ({d['severity']})" for d in report["diagnoses"] if d["severity"] in ("error", "warning")]


def notes(report: dict) -> list[str]:
    """The ranked information-level findings."""
    return [d["id"] for d in report["diagnoses"] if d["severity"] not in ("error", "warning")]


def leftover() -> list[str]:
    """Processes (other than this one) whose command line names the input script: ranks left behind."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(entry.name) != os.getpid() and any(SCRIPT.name in a for a in argv):
            found.append(f"{entry.name}: {' '.join(argv).strip()[:160]}")
    return found


# -- (a) the watcher on each rank's DDP steps ------------------------------------------------------
def plain_round(steps: int, timing: Path, env: dict[str, str]) -> tuple[list[float], str]:
    """A: the script in ``NPROC`` ranks under torch's launcher alone, ``steps`` steps; rank 0's step seconds,
    and how a rank failed when the launcher says one did after rank 0 had timed every step (gloo's teardown
    aborts a rank now and then on exit, ``terminate called without an active exception``: the steps
    stand, the crash is counted and reported)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(NPROC),
               str(SCRIPT), "--steps", str(steps), "--timing-file", str(timing)]
    _, proc = run(command, env, "plain torchrun round")
    written = Path(str(timing).replace("{world}", str(NPROC)))
    times = json.loads(written.read_text()) if written.is_file() else []
    if proc.returncode == 0:
        return times, ""
    if len(times) != steps:
        raise SystemExit(f"plain torchrun round: exit {proc.returncode}:\n{proc.stderr[-3000:]}")
    failed = re.search(r"failed \(exitcode: (-?\d+)\) local_rank: (\d+)", proc.stderr)
    what = f"local rank {failed[2]} exited with code {failed[1]}" if failed else f"exit {proc.returncode}"
    terminate = re.search(r"terminate called[^\n]*", proc.stderr)
    return times, f"{what} ({terminate[0]})" if terminate else what


def watched_round(steps: int, timing: Path, config: Path, env: dict[str, str]) -> tuple[list[float], dict]:
    """B: the same ranks under ``dldoctor run --nproc-per-node``, stopped by the watcher at ``steps``
    steps, one cheap check; rank 0's step seconds and the report."""
    command = [sys.executable, "-m", "dldoctor", "run", str(SCRIPT), "--nproc-per-node", str(NPROC),
               "--watch-steps", str(steps), "--select", CHEAP_CHECK, "--format", "json", "--fail-on", "never",
               "--config", str(config), "--", "--timing-file", str(timing)]
    _, proc = run(command, env, "watched round")
    report = report_of(proc, "watched round")
    written = Path(str(timing).replace("{world}", str(NPROC)))
    if not written.is_file():
        raise SystemExit(f"watched round: rank 0 wrote no step times (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(written.read_text()), report


def measure_hooks(steps: int, warmup: int, rounds: int, config: Path, folder: Path, env: dict[str, str]) -> dict:
    plain: list[float] = []  # per round: the median step (s) over steps warmup..steps
    hooked: list[float] = []
    plain_all: list[float] = []  # every step of the window, every round
    hooked_all: list[float] = []
    reports = []
    crashes: list[str] = []  # plain rounds whose launcher reported a rank's failure after the last step
    for i in range(rounds):  # A/B, then B/A: neither always runs first
        order = ("plain", "watched") if i % 2 == 0 else ("watched", "plain")
        for kind in order:
            # {world}: the script puts its world size there (the watched run's world-of-one run
            # of the script, for ddp-scaling-mismatch, gets the same arguments and writes w1).
            timing = folder / f"steps-{kind}-{i}-w{{world}}.json"
            if kind == "plain":
                times, crash = plain_round(steps, timing, env)
                if crash:
                    crashes.append(f"round {i + 1}: {crash}")
                    print(f"  round {i + 1} plain: a rank failed after the last step ({crash})", file=sys.stderr)
            else:
                times, report = watched_round(steps, timing, config, env)
                reports.append(report)
                watched = report.get("reports", {}).get("watched_loop", {}).get("steps_watched")
                if watched != steps:
                    raise SystemExit(f"the watcher recorded {watched} steps, not {steps}")
            if len(times) != steps:
                raise SystemExit(f"{kind} round {i + 1}: rank 0 timed {len(times)} steps, not {steps}")
            window = times[warmup:]
            (plain if kind == "plain" else hooked).append(statistics.median(window))
            (plain_all if kind == "plain" else hooked_all).extend(window)
            print(f"  round {i + 1} {kind:7} median step {1e3 * statistics.median(window):6.2f} ms", file=sys.stderr)
    # Each pair ran back to back: the median of the pairs' ratios cancels the machine's slower
    # stretches, which a ratio of the two medians does not.
    ratios = [w / p for p, w in zip(plain, hooked)]
    return {"steps": steps, "warmup": warmup, "rounds": rounds,
            "plain_step_ms": [1e3 * s for s in plain], "watched_step_ms": [1e3 * s for s in hooked],
            "pair_overheads": [r - 1.0 for r in ratios],
            "overhead": statistics.median(ratios) - 1.0,
            "pooled_overhead": statistics.median(hooked_all) / statistics.median(plain_all) - 1.0,
            "step_ms": 1e3 * statistics.median(plain_all), "watched_ms": 1e3 * statistics.median(hooked_all),
            "spread": (max(plain) - min(plain)) / statistics.median(plain),
            "statuses": sorted({r["status"] for r in reports}),
            "findings": sorted({f for r in reports for f in verdict(r)}), "plain_teardown_crashes": crashes}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def median_interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval of the median of ``values`` (seeded: the same numbers give the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


#: Steps after which a watched block is in its steady state (see measure_in_process).
DENSE_STEPS = 40
#: Steps in which rank 0's watcher learns the loop (keeps batches and searches where the model's inputs come from at
#: every step: ``watch.KEPT_WHILE_DIRECT``); the row from here splits what those cost from what the later steps do.
LEARNING_STEPS = 16


#: torch's launcher for the in-process A/B's ranks, each running the program that follows (no "python" prepended).
LAUNCH = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={NPROC}", "--no-python"]


def ab_args(blocks: int, block_steps: int, per_rank_batch: int, out: Path) -> list[str]:
    """``distributed_cost_inputs/ab_ranks.py`` and its arguments."""
    return [str(AB_SCRIPT), "--blocks", str(blocks), "--block-steps", str(block_steps),
            "--per-rank-batch", str(per_rank_batch), "--out", str(out)]


def measure_in_process(blocks: int, block_steps: int, per_rank_batch: int, folder: Path,
                       env: dict[str, str]) -> list[dict]:
    """The same 2 ranks alternate plain and watched blocks of steps (``distributed_cost_inputs/ab_ranks.py``):
    only the watching differs between the blocks of a pair."""
    out = folder / f"ab-{per_rank_batch}.json"
    cmd = [*LAUNCH, sys.executable, *ab_args(blocks, block_steps, per_rank_batch, out)]
    run(cmd, env, "in-process A/B")
    data = json.loads(out.read_text())
    out_rows = []
    # From step 3 of each block (its first steps pay for the switch, and steps 1-2 probe gradients and batch
    # norm once); from step 16 too (after the steps that learn the loop); with blocks of 80 steps or more, from
    # step 40 too: a watcher's first 32 steps read memory every step (then one in 4).
    starts = [min(3, block_steps // 4)] + [s for s in (LEARNING_STEPS, DENSE_STEPS) if block_steps >= 2 * s]
    for skip in starts:
        row: dict = {"blocks": blocks, "block_steps": block_steps, "per_rank_batch": per_rank_batch,
                     "from_step": skip}
        for key, label in (("times", ""), ("cpu", "cpu_")):
            medians: dict[int, dict[str, float]] = {}
            pooled: dict[str, list[float]] = {"plain": [], "watched": []}
            for block in data:
                times = block[key][skip:]
                medians.setdefault(block["pair"], {})[block["kind"]] = statistics.median(times)
                pooled[block["kind"]].extend(times)
            ratios = [m["watched"] / m["plain"] - 1.0 for m in medians.values()]
            plain, watched = pooled["plain"], pooled["watched"]
            row.update({f"{label}overhead": statistics.median(ratios),
                        f"{label}overhead_interval": median_interval(ratios),
                        f"{label}pooled_overhead": statistics.median(watched) / statistics.median(plain) - 1.0,
                        f"{label}p25_overhead": quantile(watched, 0.25) / quantile(plain, 0.25) - 1.0,
                        f"{label}step_ms": 1e3 * statistics.median(plain),
                        f"{label}watched_ms": 1e3 * statistics.median(watched),
                        f"{label}added_ms": 1e3 * (statistics.median(watched) - statistics.median(plain))})
        out_rows.append(row)
    return out_rows


def measure_instructions(blocks: int, block_steps: int, per_rank_batch: int, folder: Path,
                         env: dict[str, str]) -> dict | None:
    """The in-process A/B under valgrind's callgrind: instructions executed per block on each rank (all of
    its threads), which no other tenant of the machine moves. None when valgrind is not installed."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("(--instructions: valgrind and callgrind_control are not installed: skipped)", file=sys.stderr)
        return None
    out = folder / f"cg-ab-{per_rank_batch}.json"
    cmd = [*LAUNCH, "valgrind", "--tool=callgrind", "--instr-atstart=no", "--zero-before=getppid",
           "--dump-before=getpgrp", f"--callgrind-out-file={folder}/cg-%p", sys.executable,
           *ab_args(blocks, block_steps, per_rank_batch, out), "--callgrind"]
    run(cmd, {**env, "PYTHONHASHSEED": "0"}, "in-process A/B under callgrind")
    order = [block["kind"] for block in json.loads(out.read_text())]
    ranks = {}
    for rank in range(NPROC):
        pid = Path(f"{out}.rank{rank}").read_text().strip()
        counts: dict[str, list[int]] = {"plain": [], "watched": []}
        for i, kind in enumerate(order):
            summary = re.search(r"^summary: (\d+)", (folder / f"cg-{pid}.{i + 1}").read_text(), re.M)
            if summary is None:
                raise SystemExit(f"callgrind dump {i + 1} of rank {rank} has no summary line")
            counts[kind].append(int(summary[1]))
        pairs = [w / p - 1.0 for p, w in zip(counts["plain"], counts["watched"])]
        ranks[rank] = {"plain_per_step": statistics.median(counts["plain"]) / block_steps,
                       "watched_per_step": statistics.median(counts["watched"]) / block_steps,
                       "overhead": statistics.median(pairs), "pairs": pairs}
    return {"blocks": blocks, "block_steps": block_steps, "per_rank_batch": per_rank_batch, "ranks": ranks}


# -- (b) a whole run, 2 ranks against one process ---------------------------------------------------
def dldoctor_run(nproc: int, config: Path, env: dict[str, str]) -> tuple[float, dict]:
    command = [sys.executable, "-m", "dldoctor", "run", str(SCRIPT)]
    if nproc > 1:
        command += ["--nproc-per-node", str(nproc)]
    command += ["--format", "json", "--fail-on", "never", "--config", str(config)]
    what = f"dldoctor run ({'distributed' if nproc > 1 else 'single'})"
    seconds, proc = run(command, env, what)
    return seconds, report_of(proc, what)


def measure_e2e(rounds: int, config: Path, env: dict[str, str]) -> dict:
    times: dict[str, list[float]] = {"distributed": [], "single": []}
    own: dict[str, list[float]] = {"distributed": [], "single": []}
    reports: dict[str, dict] = {}
    statuses: dict[str, set[str]] = {"distributed": set(), "single": set()}
    for i in range(rounds):
        order = ("distributed", "single") if i % 2 == 0 else ("single", "distributed")
        for mode in order:
            seconds, report = dldoctor_run(NPROC if mode == "distributed" else 1, config, env)
            times[mode].append(seconds)
            own[mode].append(float(report.get("duration_s") or 0.0))
            reports[mode] = report
            statuses[mode].add(report["status"])
            print(f"  round {i + 1} {mode:11} {seconds:6.1f} s  status {report['status']}", file=sys.stderr)
    summary = {mode: {"wall_s": times[mode], "duration_s": own[mode], "median_wall_s": statistics.median(times[mode]),
                      "median_duration_s": statistics.median(own[mode]), "statuses": sorted(statuses[mode]),
                      "status": reports[mode]["status"], "verdict": verdict(reports[mode]),
                      "information": notes(reports[mode]), "coverage": reports[mode].get("coverage"),
                      "ranks_in_report": "ranks" in reports[mode].get("reports", {})}
               for mode in times}
    return {"rounds": rounds, **summary,
            "ratio": summary["distributed"]["median_wall_s"] / summary["single"]["median_wall_s"],
            "own_ratio": (summary["distributed"]["median_duration_s"]
                          / max(1e-9, summary["single"]["median_duration_s"]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watch-steps", type=int, default=100, help="DDP steps per hook round (K)")
    parser.add_argument("--warmup", type=int, default=10, help="first steps of each hook round left out")
    parser.add_argument("--rounds", type=int, default=5, help="plain/watched round pairs")
    parser.add_argument("--e2e-rounds", type=int, default=3, help="distributed/single `dldoctor run` pairs")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every process (1: less noise)")
    parser.add_argument("--skip-hooks", action="store_true")
    parser.add_argument("--blocks", type=int, default=100,
                        help="in-process plain/watched block pairs (one pair's ratio varies by some 20%% on this "
                             "2-core machine: 100 pairs put the median within about 2%%)")
    parser.add_argument("--block-steps", type=int, default=40,
                        help="DDP steps per in-process block (40: what a default run watches of this script)")
    parser.add_argument("--per-rank-batch", type=int, action="append",
                        help="in-process A/B per-rank batch (repeatable; default 32: the global 64 of the script)")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--instructions", type=int, default=0, metavar="PAIRS",
                        help="also count instructions per block under valgrind's callgrind, PAIRS block pairs "
                             "(deterministic; about 5 minutes for one pair)")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args()
    if not 0 <= args.warmup < args.watch_steps:
        parser.error("--warmup must be below --watch-steps")
    env = environment(args.threads)
    results: dict = {"nproc": NPROC, "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="dldoctor-dist-cost-") as name:
        folder = Path(name)
        config = folder / "safety_limits.yaml"
        config.write_text(SAFETY_LIMITS)
        if not args.skip_hooks:
            r = results["hooks"] = measure_hooks(args.watch_steps, args.warmup, args.rounds, config, folder, env)
            print(f"## Watching overhead per DDP step (digits CNN, {NPROC} ranks, gloo, 32 samples per rank)\n")
            print("| plain step | watched step | per-pair A/B (target <= 5%) | pooled A/B | pairs | plain spread "
                  "| watched runs |")
            print("|---:|---:|---:|---:|---|---:|---|")
            print(f"| {r['step_ms']:.2f} ms | {r['watched_ms']:.2f} ms | {r['overhead']:+.1%} "
                  f"| {r['pooled_overhead']:+.1%} | {', '.join(f'{o:+.0%}' for o in r['pair_overheads'])} "
                  f"| {r['spread']:.0%} | {', '.join(r['statuses'])}; {', '.join(r['findings']) or 'no findings'} |")
            print(f"\nmedian step of rank 0 over steps {args.warmup}..{args.watch_steps} of each round; per-pair A/B: "
                  f"median over back-to-back pairs of watched / plain - 1; pooled: over every step of every round; "
                  f"{args.rounds} rounds each, alternating, OMP_NUM_THREADS={args.threads}\n")
            for crash in r["plain_teardown_crashes"]:
                print(f"plain {crash} (after rank 0 had timed every step: the round counts)\n")
        if not args.skip_in_process:
            rows = results["in_process"] = [row for batch in (args.per_rank_batch or [32])
                                            for row in measure_in_process(args.blocks, args.block_steps, batch,
                                                                          folder, env)]
            print(f"## Watching overhead per DDP step, in the same ranks ({NPROC} ranks, gloo, digits CNN)\n")
            print("| per-rank batch | steps | plain step | watched step | added | per-pair (target <= 5%) | 95% CI "
                  "| pooled | 25th pct | main thread CPU: plain | added | per-pair | 95% CI |")
            print("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
            for r in rows:
                lo, hi = r["overhead_interval"]
                cpu_lo, cpu_hi = r["cpu_overhead_interval"]
                print(f"| {r['per_rank_batch']} | {r['from_step']}..{r['block_steps']} | {r['step_ms']:.2f} ms "
                      f"| {r['watched_ms']:.2f} ms "
                      f"| {r['added_ms']:+.2f} ms | {r['overhead']:+.1%} | {lo:+.1%}..{hi:+.1%} "
                      f"| {r['pooled_overhead']:+.1%} "
                      f"| {r['p25_overhead']:+.1%} | {r['cpu_step_ms']:.2f} ms | {r['cpu_added_ms']:+.2f} ms "
                      f"| {r['cpu_overhead']:+.1%} | {cpu_lo:+.1%}..{cpu_hi:+.1%} |")
            print(f"\n{args.blocks} pairs of {args.block_steps}-step blocks, alternating, in one torchrun job; watched "
                  "blocks run under the Watcher, the rank recorder and the hang watchdog as a dldoctor rank does\n")
        if args.instructions:
            counted = measure_instructions(args.instructions, args.block_steps, (args.per_rank_batch or [32])[0],
                                           folder, env)
            if counted is not None:
                results["instructions"] = counted
                print(f"## Instructions per DDP step under callgrind ({NPROC} ranks, gloo, digits CNN, "
                      f"{counted['per_rank_batch']} per rank)\n")
                print("| rank | plain | watched | added (median over pairs) |")
                print("|---:|---:|---:|---:|")
                for rank, c in counted["ranks"].items():
                    print(f"| {rank} | {c['plain_per_step'] / 1e6:.2f} M | {c['watched_per_step'] / 1e6:.2f} M "
                          f"| {c['overhead']:+.1%} |")
                print(f"\n{args.instructions} pair(s) of {args.block_steps}-step blocks, every step counted (the "
                      "watch's first steps included), all of a rank's threads; valgrind slows the run some 50x, so "
                      "the hang watchdog's twice-a-second stack reads count more often per step than they run\n")
        if not args.skip_e2e:
            r = results["e2e"] = measure_e2e(args.e2e_rounds, config, env)
            print(f"## Default `dldoctor run`: {NPROC} ranks against single-process script mode (same script)\n")
            print("| mode | median wall | median duration_s | status | errors and warnings | information |")
            print("|---|---:|---:|---|---|---|")
            for mode in ("single", "distributed"):
                m = r[mode]
                print(f"| {mode} | {m['median_wall_s']:.1f} s | {m['median_duration_s']:.1f} s "
                      f"| {'/'.join(m['statuses'])} | {', '.join(m['verdict']) or 'none'} "
                      f"| {', '.join(m['information']) or 'none'} |")
            print(f"\ndistributed / single: {r['ratio']:.2f}x wall (target <= 2x), {r['own_ratio']:.2f}x of "
                  f"dldoctor's own duration_s; {args.e2e_rounds} rounds each, alternating (findings: last round)\n")
    left = results["left_running"] = leftover()
    print("## Targets\n")
    if "hooks" in results:
        o = results["hooks"]["overhead"]
        print(f"- watching overhead per DDP step (separate processes): {o:+.1%} (target <= 5%): "
              f"{'met' if o <= 0.05 else 'NOT met'}")
    for row in results.get("in_process", []):
        if row["from_step"] >= LEARNING_STEPS:
            continue  # a part of the watch (its table row): the target is the whole watch's step
        o = row["overhead"]
        lo, hi = row["overhead_interval"]
        print(f"- watching overhead per DDP step (same ranks, {row['per_rank_batch']} per rank, steps "
              f"{row['from_step']}..): {o:+.1%}, 95% CI {lo:+.1%}..{hi:+.1%} "
              f"(target <= 5%): {'met' if o <= 0.05 else 'NOT met'}"
              + ("" if hi <= 0.05 or o > 0.05 else " (the interval reaches past 5%)"))
    for rank, c in results.get("instructions", {}).get("ranks", {}).items():
        print(f"- instructions added per DDP step, rank {rank}: {c['overhead']:+.1%} (deterministic; the target "
              "is time)")
    if "e2e" in results:
        x = results["e2e"]["ratio"]
        print(f"- distributed run / single-process run: {x:.2f}x (target <= 2x): {'met' if x <= 2.0 else 'NOT met'}")
    if left:
        print(f"- processes still running the input script: {'; '.join(left)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
