#!/usr/bin/env python3
"""What the per-step resource measurement costs a training step.

The training runs (the overfit stage's single-batch runs, the evaluate stage's short
training) call ``StepMonitor.step`` after every step: it appends the step's times,
reads the memory in use (CUDA's ``memory_allocated``, or glibc's ``mallinfo2``) and,
at doubling steps, snapshots what the model, loss and optimiser hold. This script
trains a few small models on a batch held in memory, in rounds that alternate a plain
loop and the same loop with the monitor, and reports two ratios:

* self-timed: the seconds spent inside the monitor over the seconds of the steps
  (precise; the number the issue's "< 2% of a step" is about), also shown as
  microseconds per step (the cost is nearly fixed: a sub-millisecond step pays the
  largest share);
* A/B: the median instrumented round over the median plain round, minus one (the
  end-to-end view, noisy on a shared machine: read it with its spread).

Usage: python benchmarks/measurement_overhead.py [--steps 300] [--rounds 5] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
from torch import nn

from dldoctor.probes.resources.holders import roots_of
from dldoctor.probes.resources.monitor import StepMonitor


def tiny_mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2)), (torch.randn(32, 16),
                                                                           torch.randint(0, 2, (32,)))


def digits_cnn():
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    return model, (torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,)))


def small_transformer():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(64, 64)
            layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, 2)
            self.head = nn.Linear(64, 4)

        def forward(self, x):
            return self.head(self.encoder(self.embed(x)).mean(dim=1))

    return Net(), (torch.randint(0, 64, (64, 24)), torch.randint(0, 4, (64,)))


def deep_mlp():
    layers = []
    for _ in range(40):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10)), (torch.randn(64, 64), torch.randint(0, 10, (64,)))


MODELS = {"tiny MLP": tiny_mlp, "digits CNN": digits_cnn, "small transformer": small_transformer,
          "deep MLP (81 modules)": deep_mlp}


def train(model, optimizer, batch, steps: int, device, monitor: StepMonitor | None) -> float:
    """Seconds for ``steps`` steps (the loop of ``short_training``, loader wait excluded)."""
    loss_fn = nn.CrossEntropyLoss()
    x, y = batch
    start = time.perf_counter()
    for _ in range(steps):
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        if monitor is not None:
            monitor.step(0.0, t2 - t1, len(y))
    if monitor is not None:
        monitor.finish()
    return time.perf_counter() - start


def measure(name: str, steps: int, rounds: int, device) -> dict:
    model, batch = MODELS[name]()
    model.to(device)
    batch = tuple(t.to(device) for t in batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train(model, optimizer, batch, 10, device, None)  # warm-up: optimiser state, allocator
    plain, instrumented, self_ratio, per_step = [], [], [], []
    for _ in range(rounds):
        plain.append(train(model, optimizer, batch, steps, device, None))
        monitor = StepMonitor(device, lambda: roots_of(model, loss_fn, None, optimizer))
        seconds = train(model, optimizer, batch, steps, device, monitor)
        instrumented.append(seconds)
        record = monitor.finish()
        self_ratio.append(record.overhead_s / max(1e-12, sum(record.compute_s)))
        per_step.append(record.overhead_s / steps)
    a, b = statistics.median(plain), statistics.median(instrumented)
    spread = (max(plain) - min(plain)) / a
    return {"model": name, "step_ms": 1e3 * a / steps, "self": statistics.median(self_ratio),
            "us_per_step": 1e6 * statistics.median(per_step),
            "ab": b / a - 1.0, "spread": spread}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: less noise on a shared machine)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    print(f"{'model':24} {'step':>9} {'monitor/step':>13} {'self-timed':>11} {'A/B':>8} {'plain spread':>13}")
    for name in MODELS:
        r = measure(name, args.steps, args.rounds, device)
        print(f"{r['model']:24} {r['step_ms']:7.3f}ms {r['us_per_step']:11.1f}us {r['self']:10.2%} {r['ab']:+8.2%} "
              f"{r['spread']:12.1%}")
    print(f"device {device}, {args.steps} steps x {args.rounds} rounds, torch threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
