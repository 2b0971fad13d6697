#!/usr/bin/env python3
"""What writing every report format costs a run, next to writing the JSON report alone.

Runs ``dldoctor run TARGET`` (default ``examples/digits/train.py``) as a user would, in
rounds that alternate two commands:

* ``--format json --output report.json``;
* every format at once, each to its own file (json, rich, markdown, junit, github,
  sarif, html: the HTML report draws its plots with matplotlib).

and reports the wall time of each and the ratio (the target: every format adds at most
10%). With an HTML report to write, ``dldoctor run`` starts a plot worker process that
loads matplotlib while the checks run (:mod:`dldoctor.render.plot_worker`), so only the
drawing is left for the end. Two whole runs differ by more than the rendering on a
shared machine, so it also times the rendering alone, cold: a fresh process reads the
saved JSON report and renders every format with no worker (matplotlib's import then
counts in full), compared with the run's own ``duration_s``: an upper bound of the cost.

Usage: python benchmarks/format_cost.py [TARGET] [--rounds 1] [--profile standard]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMATS = (("json", "report.json"), ("rich", "report.txt"), ("markdown", "report.md"), ("junit", "report.xml"),
           ("github", "report.github.txt"), ("sarif", "report.sarif"), ("html", "report.html"))

RENDER_ALL = """
import json, sys, time
started = time.perf_counter()
from dldoctor.core.diagnosis import Diagnosis
from dldoctor.render import OutputFormat, render
diagnosis = Diagnosis.from_dict(json.load(open(sys.argv[1])))
loaded = time.perf_counter()
times = {}
for fmt in OutputFormat:
    t = time.perf_counter()
    render(diagnosis, fmt, width=100)
    times[fmt.value] = time.perf_counter() - t
print(json.dumps({"total": time.perf_counter() - started, "load": loaded - started, "formats": times}))
"""


def run(target: str, profile: str, outputs: list[tuple[str, Path]]) -> float:
    args = [sys.executable, "-m", "dldoctor", "run", target, "--profile", profile, "--fail-on", "never"]
    for fmt, path in outputs:
        args += ["--format", fmt, "--output", str(path)]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO)
    took = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"dldoctor exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    missing = [str(p) for _, p in outputs if not p.exists()]
    if missing:
        sys.exit(f"no report written to {', '.join(missing)}:\n{proc.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", default="examples/digits/train.py")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", default="standard")
    args = parser.parse_args()
    json_only, every = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.rounds):
            one = folder / f"json-{i}"
            one.mkdir()
            json_only.append(run(args.target, args.profile, [("json", one / "report.json")]))
            all_dir = folder / f"all-{i}"
            all_dir.mkdir()
            every.append(run(args.target, args.profile, [(fmt, all_dir / name) for fmt, name in FORMATS]))
            print(f"round {i + 1}: json only {json_only[-1]:.1f} s, every format {every[-1]:.1f} s", flush=True)
        saved = folder / "all-0" / "report.json"
        report = json.loads(saved.read_text())
        proc = subprocess.run([sys.executable, "-c", RENDER_ALL, str(saved)], capture_output=True, text=True,
                              check=True, cwd=REPO)
        rendering = json.loads(proc.stdout)
        sizes = {fmt: (folder / "all-0" / name).stat().st_size for fmt, name in FORMATS}
    a, b = statistics.median(json_only), statistics.median(every)
    duration = float(report.get("duration_s", 0.0))
    print(f"\n{args.target} ({args.profile} profile, {args.rounds} round(s), medians)")
    print(f"  dldoctor run --format json:        {a:7.1f} s wall")
    print(f"  dldoctor run, all {len(FORMATS)} formats:      {b:7.1f} s wall  ({b / a - 1:+.1%})")
    print(f"  rendering every format from the saved JSON, fresh process: {rendering['total']:.2f} s "
          f"(imports and reading {rendering['load']:.2f} s) = {rendering['total'] / duration:.1%} of the run's "
          f"duration_s {duration:.1f} s")
    for fmt, seconds in rendering["formats"].items():
        print(f"    {fmt:9s} {seconds * 1e3:8.1f} ms  {sizes.get(fmt, 0) / 1024:8.1f} KiB")
    series = report.get("series") or {}
    print(f"  series in the JSON report: {', '.join(series) or 'none'} "
          f"({len(json.dumps(series)) / 1024:.1f} KiB of {sizes['json'] / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
