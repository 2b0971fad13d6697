#!/usr/bin/env python3
"""Bug-zoo benchmark: does dldoctor rank the right root cause first?

Every ``*.py`` file in the zoo folder starts with a header

    # EXPECT: <diagnosis-id>      (or: # EXPECT: healthy)
    # ALSO: <id>, <id>            (optional: acceptable alternatives)
    # ARGS: --epochs 3            (optional: the script's own arguments, given after --)
    # STAGES: run, data           (optional, healthy controls: the stages it is a control for)
    # NPROC: 2                    (optional, the distributed zoo: run with --nproc-per-node 2)

The script runs ``dldoctor run FILE --format json`` on each file (a fresh process
each, as a user would), takes the ranked error/warning findings, and reports per
case whether the expected ID is ranked first (top-1) or among the first three
(top-3); for healthy controls, whether anything at warning or above was reported
(a false alarm). A healthy control that names its stages (``# STAGES:``, as the test
suite runs it) is healthy for those stages: what a full run finds in the others is
listed but not counted (a subject-split data control may well over-fit, a padded-text
control for stage 1 need not beat every baseline). Usage:

    python benchmarks/diagnosis_accuracy.py [FOLDER] [--profile quick] [--config FILE] [--json OUT] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HEADER = re.compile(r"^#\s*EXPECT:\s*([\w-]+)\s*$", re.M)
ALSO = re.compile(r"^#\s*ALSO:\s*(.+)$", re.M)
ARGS = re.compile(r"^#\s*ARGS:\s*(.+)$", re.M)
STAGES = re.compile(r"^#\s*STAGES:\s*(.+)$", re.M)
NPROC = re.compile(r"^#\s*NPROC:\s*(\d+)\s*$", re.M)


@dataclass
class Case:
    path: str
    expect: str
    also: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    """A healthy control's stages (empty: every stage)."""
    ranked: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    """A stage control's findings from other stages: shown, not counted."""
    nproc: int = 1
    """Processes to launch (``# NPROC: N``, the distributed zoo): ``--nproc-per-node N`` when above 1."""
    exit_code: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """The case's process's user + system CPU time: steadier than wall time on a busy machine."""
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.expect == "healthy"

    @property
    def accepted(self) -> set[str]:
        return {self.expect, *self.also}

    @property
    def top1(self) -> bool:
        if self.healthy:
            return not self.ranked and not self.error
        return bool(self.ranked) and self.ranked[0] in self.accepted

    @property
    def top3(self) -> bool:
        if self.healthy:
            return self.top1
        return bool(self.accepted.intersection(self.ranked[:3]))


def read_header(path: Path) -> Case | None:
    head = "\n".join(path.read_text().splitlines()[:5])
    match = HEADER.search(head)
    if not match:
        return None
    also = ALSO.search(head)
    args = ARGS.search(head)
    stages = STAGES.search(head)
    nproc = NPROC.search(head)
    return Case(str(path), match.group(1), [a.strip() for a in also.group(1).split(",")] if also else [],
                shlex.split(args.group(1)) if args else [],
                [s.strip() for s in stages.group(1).split(",")] if stages and match.group(1) == "healthy" else [],
                nproc=int(nproc.group(1)) if nproc else 1)


def run_case(case: Case, extra: list[str], timeout: float) -> Case:
    cmd = [sys.executable, "-m", "dldoctor", "run", case.path, "--format", "json", "--fail-on", "never", *extra]
    if case.nproc > 1:
        cmd += ["--nproc-per-node", str(case.nproc)]
    if case.args:
        cmd += ["--", *case.args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read both pipes beside the wait; reap the child with wait4 to get its own CPU time.
    streams: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n=name, f=pipe: streams.__setitem__(n, f.read()), daemon=True)
               for name, pipe in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    case.seconds = time.perf_counter() - start
    case.cpu_seconds = usage.ru_utime + usage.ru_stime
    if case.seconds >= timeout and proc.returncode < 0:
        case.error = f"timed out after {timeout:g}s"
        return case
    case.exit_code = proc.returncode
    try:
        report = json.loads(streams.get("out", ""))
    except json.JSONDecodeError:
        case.error = (streams.get("err", "").strip().splitlines() or ["no JSON output"])[-1]
        return case
    alarms = [d for d in report["diagnoses"] if d["severity"] in ("error", "warning")]
    case.ranked = [d["id"] for d in alarms if not case.stages or d.get("stage") in case.stages]
    case.outside = [d["id"] for d in alarms if case.stages and d.get("stage") not in case.stages]
    return case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="examples/bugs")
    parser.add_argument("--profile", default=None, help="passed to dldoctor run --profile")
    parser.add_argument("--config", default=None,
                        help="passed to dldoctor run --config (e.g. longer safety limits on a loaded machine: "
                             "verdicts come from work budgets, so only the time changes)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every case passes top-1")
    parser.add_argument("-k", dest="pattern", default="", help="only files whose name contains this")
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel (each is its own process)")
    args = parser.parse_args(argv)

    extra = ["--profile", args.profile] if args.profile else []
    extra += ["--config", args.config] if args.config else []
    files = sorted(p for p in Path(args.folder).glob("*.py") if args.pattern in p.name)
    todo = []
    for path in files:
        case = read_header(path)
        if case is None:
            print(f"skipping {path}: no '# EXPECT:' header", file=sys.stderr)
            continue
        todo.append(case)

    def report(case: Case) -> None:
        mark = "ok " if case.top1 else ("~3 " if case.top3 else "MISS")
        got = ", ".join(case.ranked[:3]) or ("(error: " + case.error + ")" if case.error else "(nothing)")
        print(f"{mark} {Path(case.path).name:<44} expect {case.expect:<26} got {got:<60} "
              f"{case.seconds:6.1f}s {case.cpu_seconds:6.1f}s cpu", flush=True)
        if case.outside:
            print(f"     (a control for stages {', '.join(case.stages)}; other stages found: "
                  f"{', '.join(case.outside)})", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, case, extra, args.timeout) for case in todo]
        cases: list[Case] = []
        for future in futures:
            cases.append(future.result())
            report(cases[-1])

    bugs = [c for c in cases if not c.healthy]
    healthy = [c for c in cases if c.healthy]
    top1 = sum(c.top1 for c in bugs)
    top3 = sum(c.top3 for c in bugs)
    alarms = sum(not c.top1 for c in healthy)
    median = statistics.median(c.seconds for c in cases) if cases else 0.0
    median_cpu = statistics.median(c.cpu_seconds for c in cases) if cases else 0.0
    print()
    print("| cases | top-1 | top-3 | false alarms (healthy) | median s/case | median CPU s/case |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(bugs)} bugs + {len(healthy)} healthy | {top1}/{len(bugs)} ({top1 / max(1, len(bugs)):.0%}) "
          f"| {top3}/{len(bugs)} ({top3 / max(1, len(bugs)):.0%}) | {alarms}/{len(healthy)} | {median:.1f} "
          f"| {median_cpu:.1f} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"cases": [asdict(c) | {"top1": c.top1, "top3": c.top3} for c in cases],
             "top1": top1, "top3": top3, "bugs": len(bugs), "healthy": len(healthy), "false_alarms": alarms,
             "median_seconds": median,
             "median_cpu_seconds": median_cpu}, indent=2))
    if args.strict and (top1 < len(bugs) or alarms):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
