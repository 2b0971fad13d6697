#!/usr/bin/env python3
"""GPU check of the memory model: run once on a CUDA machine, read the printout.

1. The accuracy table on CUDA (``memory_model_accuracy.py --device cuda``): predicted
   vs ``torch.cuda.max_memory_allocated`` peaks, and the real probe's largest batch
   under a memory cap vs the predicted one.
2. The ``memory-model`` check end to end on the shipped examples (auto budget: the
   device's free memory; the real probe confirms the prediction up to its cap).
3. A spec whose batch does not fit the GPU at all: a full-resolution convolution
   stack on 256x256 images at batch 2048 (about half a terabyte of activations).
   The training step really runs out of memory; the forward-pass check reports the
   crash, and the memory-model check measures 1 and 2 samples, predicts the largest
   batch that fits, and the real probe searches from that prediction.

Needs only torch (and numpy) besides dldoctor's source: PyYAML for the config, where
missing, can be put on PYTHONPATH. Usage:

    PYTHONPATH=src python benchmarks/gpu_memory_probe.py
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

OOM_SPEC = '''\
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
images = torch.randn(2048, 3, 256, 256, generator=g)
labels = torch.randint(0, 10, (2048,), generator=g)


def make_model(width=64, depth=8):
    layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def dldoctor_spec():
    return {
        "model": make_model,
        "train_loader": DataLoader(TensorDataset(images, labels), batch_size=2048),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    }
'''


def show(target: str, select: tuple[str, ...]) -> None:
    from dldoctor.core.runner import RunOptions, diagnose

    began = time.perf_counter()
    diagnosis = diagnose(RunOptions(target=target, device="cuda", select=select))
    print(f"\n## {target}  ({time.perf_counter() - began:.1f} s)")
    for check in diagnosis.checks:
        if check.name in select:
            print(f"check {check.name}: {check.status.value} in {check.duration_s:.1f} s {check.reason}")
    for finding in diagnosis.diagnoses:
        print(f"[{finding.severity.value}] {finding.id} ({finding.check}): {finding.title}")
        for line in finding.evidence:
            print(f"    - {line.splitlines()[0] if line.startswith('Traceback') else line}")
        for fix in finding.fixes[:2]:
            print(f"    fix: {fix}")


def compare_meters() -> None:
    """The dispatch-mode tensor count (used off CUDA) against the CUDA allocator's peak."""
    from memory_model_accuracy import transformer_case

    from dldoctor.probes.resources.memory_model import CudaPeak, LiveBytes

    _, make_model, _, loss_fn, pool, _, _ = transformer_case()
    device = torch.device("cuda")
    model = make_model().to(device)
    x, y = (t[:32].to(device) for t in pool)
    loss_fn(model(x), y).backward()  # warm-up: cuBLAS handles and workspaces
    model.zero_grad(set_to_none=True)
    with CudaPeak(device) as allocator:
        loss_fn(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    counted = LiveBytes()
    with counted:
        loss_fn(model(x), y).backward()
    counted.close()
    print(f"\nforward/backward peak of the small transformer at batch 32 on CUDA: allocator "
          f"{allocator.peak / 1e6:.2f} MB, tensor count {counted.peak / 1e6:.2f} MB")


def main() -> int:
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.cuda.is_available()}")
    if not torch.cuda.is_available():
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, free/total "
          f"{[round(b / 2**30, 1) for b in torch.cuda.mem_get_info()]} GiB")
    import memory_model_accuracy

    status = attempt(memory_model_accuracy.main, ["--device", "cuda", "--gpu-budget", "4GiB"])
    attempt(compare_meters)
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("PyYAML is missing: the end-to-end part needs dldoctor's config loader")
        return status
    for example in ("examples/digits/train.py", "examples/transformer/train.py"):
        attempt(show, str(REPO / example), ("memory-model",))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.py"
        path.write_text(textwrap.dedent(OOM_SPEC))
        attempt(show, str(path), ("forward-pass", "memory-model"))
    return status


def attempt(fn, *args):
    """Run one part; print its traceback and go on, so one run shows every part."""
    import traceback

    try:
        return fn(*args)
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
