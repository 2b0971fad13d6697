#!/usr/bin/env python3
"""How the data stage's cost grows with the data: ``dldoctor data`` on synthetic sets.

For each size n (training rows; validation is n / 5) and width d (features), a spec
file holding a TensorDataset of Gaussian blobs (10 classes) is written to a temporary
folder, and the data checks run on it in a fresh process, once with every row read
(``--max-samples`` = n, the algorithms' own scaling) and once with the default cap
(what a user gets). Reported: wall time of the whole command, time in the data
checks, microseconds per row, and the growth exponent between consecutive sizes
(log t2/t1 / log n2/n1: 1.0 is linear; n log n from 10k to 200k is about 1.1).

    python benchmarks/data_scaling.py [--sizes 10000,50000,200000] [--dims 64,784] [--modes "all rows,default cap"]
                                      [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SPEC = textwrap.dedent('''\
    import os
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    N, D = int(os.environ["BENCH_N"]), int(os.environ["BENCH_D"])


    def blobs(n, seed):
        g = torch.Generator().manual_seed(seed)
        centres = torch.randn(10, D, generator=torch.Generator().manual_seed(99))
        y = torch.randint(0, 10, (n,), generator=g)
        return TensorDataset(centres[y] + 2.0 * torch.randn(n, D, generator=g), y)


    def dldoctor_spec():
        return {
            "model": lambda: nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, 10)),
            "train_loader": DataLoader(blobs(N, 0), batch_size=256, shuffle=True,
                                       generator=torch.Generator().manual_seed(0)),
            "val_loader": DataLoader(blobs(N // 5, 1), batch_size=1024),
            "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
        }
''')


def run_case(folder: Path, n: int, d: int, cap: int | None) -> dict:
    env = {**os.environ, "BENCH_N": str(n), "BENCH_D": str(d)}
    cmd = [sys.executable, "-m", "dldoctor", "data", str(folder / "spec.py"), "--format", "json", "--device", "cpu",
           "--fail-on", "never"]
    if cap is not None:
        cmd += ["--max-samples", str(cap)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"dldoctor data failed (n={n}, d={d}):\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    checks = {c["name"]: c["duration_s"] for c in report["checks"] if c["stage"] == "data"}
    return {"n": n, "d": d, "cap": cap or "default", "wall_s": wall, "data_s": sum(checks.values()),
            "checks": checks, "alarms": [f["id"] for f in report["diagnoses"] if f["severity"] != "info"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--dims", default="64,784")
    parser.add_argument("--modes", default="all rows,default cap",
                        help="'all rows' (--max-samples = every row) and/or 'default cap'")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    dims = [int(s) for s in args.dims.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.py").write_text(SPEC)
        for d in dims:
            for mode in args.modes.split(","):
                previous = None
                for n in sizes:
                    row = run_case(folder, n, d, n + n // 5 if mode == "all rows" else None)
                    row["mode"] = mode
                    row["growth"] = (math.log(row["data_s"] / previous["data_s"]) / math.log(n / previous["n"])
                                     if previous and previous["data_s"] > 0 else None)
                    rows.append(row)
                    previous = row
                    slowest = max(row["checks"], key=row["checks"].get)
                    print(f"d={d:4d} {mode:11s} n={n:7d}: wall {row['wall_s']:6.1f} s, data checks "
                          f"{row['data_s']:6.1f} s ({1e6 * row['data_s'] / n:6.1f} us/row), growth "
                          + (f"{row['growth']:.2f}" if row["growth"] is not None else "  - ")
                          + f", slowest {slowest} {row['checks'][slowest]:.1f} s, alarms {row['alarms']}",
                          flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
