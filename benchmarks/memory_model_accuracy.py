#!/usr/bin/env python3
"""Memory-model benchmark: predicted vs measured peak memory of a training step.

What "peak" means here (prediction and measurement count the same thing): the
high-water mark of tensor bytes allocated by torch during training steps of a fresh
model and optimiser, above what was live before the steps began. The parameters
(and buffers) are live before and are not part of it (the memory model adds them
separately for the budget). Two steps run (forward, loss, backward, optimiser step;
the first step creates the optimiser state, the second is a steady-state step with
that state live), each on its own input batch, created inside the measured region,
as a data loader hands it over: the input batch counts.

The prediction comes from dldoctor's memory model
(:func:`dldoctor.probes.resources.memory_model.measure_memory`), measured once on a copy of the model
at the spec's batch size and half of it, then evaluated at each batch size of the
table (the first size is below both measured sizes, the last far above).

Measurement: on CPU, ``torch.profiler.profile(profile_memory=True)``: the
allocation (+) and free (-) events, in time order, summed into the live bytes, and
their maximum taken; on CUDA, ``torch.cuda.max_memory_allocated()`` after
``reset_peak_memory_stats()``, minus the bytes allocated before the steps.

With ``--device cuda`` the script also runs dldoctor's real probe (training steps at
growing batch sizes until one runs out of memory) under a memory cap set with
``torch.cuda.set_per_process_memory_fraction`` (``--gpu-budget``), and reports the
largest batch it found next to the one the model predicts for the same budget.

Usage:
    python benchmarks/memory_model_accuracy.py [--device cpu|cuda] [--gpu-budget 4GiB]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
TARGET_ERROR = 0.15


# -- the models --------------------------------------------------------------------
def forward(model, batch):
    """The default forward of a spec: ``inputs, targets = batch``."""
    inputs, targets = batch
    return model(inputs), targets


def digits_case():
    spec_path = REPO / "examples" / "digits" / "train.py"
    module_spec = importlib.util.spec_from_file_location("digits_train", spec_path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        import sklearn  # noqa: F401
    except ImportError:  # a bare GPU box: memory depends on shapes and dtypes only
        return _digits_without_sklearn(module_spec, module)
    module_spec.loader.exec_module(module)
    spec = module.dldoctor_spec()
    train, _ = module.load_data()
    pool = next(iter(DataLoader(train, batch_size=512, shuffle=False)))
    return "digits CNN (Adam)", spec["model"], spec["optimizer"], spec["loss_fn"], pool, 64, (16, 64, 256)


def _digits_without_sklearn(module_spec, module):
    """The example's model and optimiser on data of the digits' shapes and dtypes."""
    import types

    stubs = {name: types.ModuleType(name) for name in ("sklearn", "sklearn.datasets", "sklearn.model_selection")}
    stubs["sklearn.datasets"].load_digits = stubs["sklearn.model_selection"].train_test_split = None
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        module_spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    print("(scikit-learn is not installed: the digits model runs on random data of the digits' shapes)")
    g = torch.Generator().manual_seed(0)
    pool = (torch.randn(512, 1, 8, 8, generator=g), torch.randint(0, 10, (512,), generator=g))
    return ("digits CNN (Adam)", lambda: module.DigitsCNN(width=16),
            lambda params: torch.optim.Adam(params, lr=1e-3), nn.CrossEntropyLoss(), pool, 64, (16, 64, 256))


class SmallTransformer(nn.Module):
    """A two-layer pre-norm transformer language model over 128-token sequences."""

    def __init__(self, vocab=2000, d_model=128, heads=4, layers=2, length=128):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(1, length, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.1,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        x = self.encoder(self.embed(tokens) + self.pos[:, : tokens.shape[1]])
        return self.head(x).transpose(1, 2)  # [N, vocab, T] for cross-entropy


def transformer_case():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 2000, (512, 129), generator=g)
    pool = (tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous())
    return ("small transformer LM (AdamW)", SmallTransformer,
            lambda params: torch.optim.AdamW(params, lr=3e-4, weight_decay=0.01),
            nn.CrossEntropyLoss(), pool, 32, (8, 32, 128))


# -- prediction and measurement ------------------------------------------------------
def predict(make_model, make_opt, loss_fn, pool, spec_batch, device):
    from dldoctor.probes.resources.memory_model import measure_memory, resize_batch

    torch.manual_seed(0)
    model = make_model().to(device)
    batch = tuple(t.to(device) for t in resize_batch(pool, len(pool[0]), spec_batch))
    return measure_memory(model, make_opt(model.parameters()), batch, forward, loss_fn)


def _train_steps(model, optimizer, loss_fn, pool, n, device, steps=2):
    from dldoctor.probes.resources.memory_model import resize_batch

    for _ in range(steps):
        x, y = (t.to(device) if t.device != device else t for t in resize_batch(pool, len(pool[0]), n))
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        del x, y, out, loss


def measure_cpu(make_model, make_opt, loss_fn, pool, n):
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = make_model()
    optimizer = make_opt(model.parameters())
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _train_steps(model, optimizer, loss_fn, pool, n, torch.device("cpu"))
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def measure_cuda(make_model, make_opt, loss_fn, pool, n, device):
    torch.manual_seed(0)
    model = make_model().to(device)
    optimizer = make_opt(model.parameters())
    pool = tuple(t.to(device) for t in pool)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    _train_steps(model, optimizer, loss_fn, pool, n, device)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del model, optimizer, pool
    torch.cuda.empty_cache()
    return peak


@contextlib.contextmanager
def _quiet_stderr():
    """Kineto prints start/stop lines on the C-level stderr; keep the table readable."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, io.UnsupportedOperation):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(devnull)
        os.close(saved)


def real_probe(make_model, make_opt, loss_fn, pool, spec_batch, device, budget):
    """Predicted vs found largest batch under a memory cap of ``budget`` bytes for new tensors."""
    from dldoctor.probes.resources.memory_model import find_max_batch, resize_batch

    mm = predict(make_model, make_opt, loss_fn, pool, spec_batch, device)
    predicted = mm.max_batch(budget)
    batch = tuple(t.to(device) for t in resize_batch(pool, len(pool[0]), spec_batch))
    torch.cuda.empty_cache()
    device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    cap = torch.cuda.memory_allocated(device) + budget
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), device)
    try:
        torch.manual_seed(0)
        model = make_model().to(device)
        found = find_max_batch(model, make_opt(model.parameters()), batch, forward, loss_fn,
                               start=predicted or 1, max_batch=1 << 22, max_trials=12, tolerance=0.01)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
    return predicted, found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--gpu-budget", default="4GiB", help="memory cap for the real probe on CUDA")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    from dldoctor.runtime.units import format_bytes, parse_budget

    cases = [digits_case(), transformer_case()]
    rows = []
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {device_name}, torch {torch.__version__}")
    print("peak = tensor bytes allocated during two training steps of a fresh model and optimiser, "
          "above the parameters")
    print()
    print("| model | batch | predicted MB | measured MB | error % |")
    print("|---|---|---|---|---|")
    for name, make_model, make_opt, loss_fn, pool, spec_batch, sizes in cases:
        mm = predict(make_model, make_opt, loss_fn, pool, spec_batch, device)
        for n in sizes:
            predicted = mm.step_bytes(n)
            if device.type == "cuda":
                measured = measure_cuda(make_model, make_opt, loss_fn, pool, n, device)
            else:
                measured = measure_cpu(make_model, make_opt, loss_fn, pool, n)
            error = (predicted - measured) / measured
            rows.append(abs(error))
            print(f"| {name} | {n} | {predicted / 1e6:.2f} | {measured / 1e6:.2f} | {100 * error:+.1f} |",
                  flush=True)
    worst = max(rows)
    print()
    print(f"worst |error| {100 * worst:.1f}% (target: within {100 * TARGET_ERROR:.0f}% at every size): "
          f"{'PASS' if worst <= TARGET_ERROR else 'FAIL'}")
    if device.type == "cuda":
        budget = parse_budget(args.gpu_budget)
        print()
        print(f"real probe under a {format_bytes(budget)} cap (torch.cuda.set_per_process_memory_fraction):")
        print("| model | predicted largest batch | found largest batch | smallest that failed | trials |")
        print("|---|---|---|---|---|")
        for name, make_model, make_opt, loss_fn, pool, spec_batch, _ in cases:
            predicted, found = real_probe(make_model, make_opt, loss_fn, pool, spec_batch, device, budget)
            print(f"| {name} | {predicted} | {found.largest_fit} | {found.smallest_fail} | "
                  f"{len(found.trials)} ({found.stopped}) |", flush=True)
    return 0 if worst <= TARGET_ERROR else 1


if __name__ == "__main__":
    sys.exit(main())
