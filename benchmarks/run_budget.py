#!/usr/bin/env python3
"""Wall time of the default ``dldoctor run`` (all stages), split per stage.

Runs the real command in a fresh process, as a user would (interpreter start-up and
imports included), and reads each check's duration from its JSON output. Issue
target: the digits example within 60 s on the 2-core development machine. Reported
with the machine's load average, since a loaded machine stretches every figure.

    python benchmarks/run_budget.py [TARGET ...] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("run", "overfit", "compare", "data", "evaluate", "tune")


def one_run(target: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dldoctor", "run", target, "--format", "json"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode == 2:
        raise SystemExit(f"{target}: dldoctor could not run:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["examples/digits/train.py"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| target | wall s | status | " + " | ".join(f"{s} s" for s in STAGES) + " | slowest checks |")
    print("|---|---|---|" + "---|" * len(STAGES) + "---|")
    for target in args.targets:
        runs = [one_run(target) for _ in range(args.repeats)]
        wall, report = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        per_stage = {s: sum(c["duration_s"] for c in report["checks"] if c["stage"] == s) for s in STAGES}
        slow = sorted(report["checks"], key=lambda c: -c["duration_s"])[:3]
        print(f"| {Path(target).parent.name}/{Path(target).name} | {wall:.1f} | {report['status']} | "
              + " | ".join(f"{per_stage[s]:.1f}" for s in STAGES) + " | "
              + ", ".join(f"{c['name']} {c['duration_s']:.1f}" for c in slow) + " |")
        if args.repeats > 1:
            print(f"  (median of {args.repeats}; walls {', '.join(f'{w:.1f}' for w, _ in runs)}; "
                  f"spread {statistics.pstdev([w for w, _ in runs]):.1f} s)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
