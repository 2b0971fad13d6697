"""Spec mode with ``"distributed": {"world_size": N}``: the training loop each rank runs, watched.

``dldoctor run spec.py`` on a spec whose ``distributed.world_size`` is 2 or more starts the ranks as
``--nproc-per-node N`` does (:mod:`.launch`), and each rank runs script mode on this module
(``dldoctor run -m dldoctor.distributed.spec_loop -- spec.py --backend gloo``): a plain DDP training loop
over the spec's own objects, which the script watcher records as it records a user's script, and
which rank 0 diagnoses with every rank's record (see :mod:`dldoctor.cli.run`).

What each rank does (:func:`main`):

1. ``init_process_group(backend)`` from the launcher's environment (``RANK``, ``WORLD_SIZE``,
   ``MASTER_ADDR``...); nccl puts the rank on ``cuda:LOCAL_RANK``, gloo on the CPU;
2. calls the spec function, *after* the group exists, so that the spec can build a
   ``DistributedSampler`` (which reads ``dist.get_rank()``);
3. moves the model to the rank's device and wraps it in ``DistributedDataParallel`` (a model the spec
   already wrapped is used as it is, and a line on stderr says so);
4. trains over the spec's ``train_loader`` AS GIVEN, with its ``optimizer``, ``loss_fn``, ``forward``,
   ``grad_clip_norm`` and ``scheduler``, calling ``sampler.set_epoch(epoch)`` where the loader's
   sampler has it, for more epochs than any step budget: the watcher stops the loop from inside
   ``optimizer.step()`` (a ``BaseException``, never caught here);
5. destroys the process group, whatever happened.

A plain loader gives every rank the same batches: that is the spec's setup, and ``ddp-duplicate-data``
says so.

The launching side (:func:`mentions_distributed`, :func:`read_launch`, :func:`loop_args`) decides
whether to start ranks at all: it reads the spec in the launching process, under a one-rank process
group (so a spec that builds a ``DistributedSampler`` loads there too).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dldoctor.loading.spec import Spec

#: What the ranks run: ``python -m dldoctor run -m MODULE ...``.
MODULE = "dldoctor.distributed.spec_loop"
#: The loop stops by itself after this many optimizer steps at most (the watcher's budget stops it long
#: before: 200 steps by default, ``script.max_steps``); it only bounds a loop run without the watcher.
MAX_STEPS = 100_000
#: The word :func:`mentions_distributed` looks for in the spec's file.
WORD = "distributed"


@dataclasses.dataclass(frozen=True)
class SpecLaunch:
    """What the spec's ``distributed`` key asks for, resolved: ranks, their backend, watched steps."""

    world_size: int
    backend: str
    steps: int | None = None


# -- the launching side ------------------------------------------------------------------------------------


def _spec_file(target: str | None, spec_ref: str | None) -> Path | None:
    """The file that holds the spec function (None: a ``package.module:NAME``, found only by importing)."""
    if spec_ref:
        left, sep, _ = spec_ref.rpartition(":")
        if sep and (left.endswith(".py") or "/" in left or "\\" in left):
            return Path(left)
        if sep:
            return None
    return Path(target) if target else None


def mentions_distributed(target: str | None, spec_ref: str | None) -> bool:
    """Whether the spec may hold a ``distributed`` key: its file mentions the word (or it lives in a module
    that only importing finds).

    The cheap gate before :func:`read_launch`: every other spec-mode run would otherwise import the user's
    file and call the spec function twice (here, and again to diagnose it).
    """
    if not target and not spec_ref:
        return False
    path = _spec_file(target, spec_ref)
    if path is None:
        return True
    try:
        return WORD in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # no such file: the diagnosis says so


@contextlib.contextmanager
def _one_rank_group() -> Iterator[None]:
    """A one-rank gloo group while the block runs (when torch has one and none exists), so that a spec that
    builds a ``DistributedSampler`` or reads ``dist.get_rank()`` can be called in the launching process."""
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        yield
        return
    try:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    except (RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _on_cuda(model: Any, device: str) -> bool:
    """Whether the spec's model runs on CUDA: a model instance's parameters say; for a factory, ``--device``
    (``auto``: CUDA when torch sees one)."""
    import torch

    if isinstance(model, torch.nn.Module):
        first = next(iter(model.parameters()), None)
        if first is not None:
            return first.device.type == "cuda"
    if device == "auto":
        return torch.cuda.is_available()
    try:
        return torch.device(device).type == "cuda"
    except RuntimeError:
        return False  # an unknown device: the diagnosis reports it


def read_launch(target: str | None, spec_ref: str | None, device: str = "auto") -> SpecLaunch | None:
    """Load the spec in the launching process and read its ``distributed`` key: the ranks to start, or None
    for a plain spec-mode run (no key, a world of one, or a spec that does not load: the diagnosis then
    reports why, as for any spec).

    What the user's file prints goes to stderr (stdout is the report's); the random streams are put back.

    Raises:
        UsageError: nccl asked for (or chosen for a model on CUDA) with fewer GPUs than ranks.
    """
    import torch

    from dldoctor.core.errors import EntrypointError, UsageError
    from dldoctor.loading.entrypoint import load_target
    from dldoctor.runtime.rng import isolated_rng

    try:
        with isolated_rng(None), _one_rank_group(), contextlib.redirect_stdout(sys.stderr):
            spec = load_target(target, spec_ref).spec
    except EntrypointError:
        return None
    asked = spec.distributed if spec is not None else None
    if spec is None or not asked or int(asked["world_size"]) < 2:
        return None
    world = int(asked["world_size"])
    backend = asked.get("backend") or ("nccl" if _on_cuda(spec.model, device) else "gloo")
    if backend == "nccl":
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus < world:
            raise UsageError(f"the spec's distributed runs {world} ranks on nccl, which needs one GPU per rank; "
                             f"this machine has {gpus}",
                             hint=f'"distributed": {{"world_size": {max(gpus, 2)}}},   '
                                  '# or "backend": "gloo" to run the ranks on the CPU')
    steps = asked.get("steps")
    return SpecLaunch(world, backend, int(steps) if steps is not None else None)


def loop_args(target: str | None, spec_ref: str | None, backend: str) -> list[str]:
    """The arguments of this module in each rank: the spec file (absolute), ``--spec REF``, the backend."""
    args = [str(Path(target).resolve())] if target else []
    if spec_ref:
        left, sep, name = spec_ref.rpartition(":")
        if sep and (left.endswith(".py") or "/" in left or "\\" in left):
            spec_ref = f"{Path(left).resolve()}:{name}"
        args += ["--spec", spec_ref]
    return args + ["--backend", backend]


# -- each rank ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description="One rank of a spec-mode distributed run (started by dldoctor).")
    parser.add_argument("target", nargs="?", default=None, help="the file that defines dldoctor_spec()")
    parser.add_argument("--spec", default=None, help="NAME, FILE.py:NAME or package.module:NAME")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    parser.add_argument("--epochs", type=int, default=None, help="default: more than any step budget")
    return parser


def _say(message: str) -> None:
    print(f"dldoctor: {message}", file=sys.stderr, flush=True)


def _default_forward(model: Any, batch: Any) -> tuple[Any, Any]:
    """``inputs, targets = batch``; ``model(inputs), targets`` (the spec's default ``forward``, as
    ``dldoctor.core.context.default_forward`` runs it; that module sits a layer above this one)."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__ + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(f"the train_loader yields a {kind}, not an (inputs, targets) pair: give the spec a "
                        '"forward": lambda model, batch: (model(batch["x"]), batch["y"])')
    inputs, targets = batch
    return model(inputs), targets


def _built(value: Any) -> Any:
    """A loader, or what a zero-argument loader factory returns."""
    return value() if callable(value) and not hasattr(value, "__iter__") else value


def _samplers(loader: Any) -> list[Any]:
    """The loader's samplers that have ``set_epoch`` (its sampler, or its batch sampler's), each once."""
    found = [getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    out: list[Any] = []
    for sampler in found:
        if callable(getattr(sampler, "set_epoch", None)) and all(sampler is not s for s in out):
            out.append(sampler)
    return out


def _epochs(loader: Any, asked: int | None) -> int:
    if asked is not None:
        return asked
    try:
        return max(2, math.ceil(MAX_STEPS / max(len(loader), 1)))
    except TypeError:
        return MAX_STEPS


def _wrapped(model: Any) -> bool:
    return type(model).__name__ in ("DistributedDataParallel", "FullyShardedDataParallel")


def train(spec: Spec, device: Any, epochs: int | None = None) -> None:
    """The DDP loop over the spec's objects (see the module doc); returns when the epochs are done."""
    import torch
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from dldoctor.runtime.tensors import to_device

    model = spec.model if isinstance(spec.model, nn.Module) else spec.model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"the spec's model factory returned {type(model).__name__}, not an nn.Module")
    if _wrapped(model):
        _say(f"the spec's model is already a {type(model).__name__}: trained as it is, not wrapped again")
    else:
        model = model.to(device)
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    loss_fn = spec.loss_fn.to(device) if isinstance(spec.loss_fn, nn.Module) else spec.loss_fn
    forward: Callable[[Any, Any], tuple[Any, Any]] = spec.forward or _default_forward
    optimizer = spec.optimizer(model.parameters())
    scheduler = spec.scheduler(optimizer) if spec.scheduler is not None else None
    loader = _built(spec.train_loader)
    samplers = _samplers(loader)
    for epoch in range(_epochs(loader, epochs)):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        model.train()
        batches = 0
        for batch in loader:
            batches += 1
            batch = to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            outputs, targets = forward(model, batch)
            loss = loss_fn(outputs, targets)
            loss.backward()
            if spec.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(spec.grad_clip_norm))
            optimizer.step()  # the watcher's step budget raises here (a BaseException): not caught
            if scheduler is not None:
                scheduler.step()
        if not batches:
            raise RuntimeError(f"the spec's train_loader yielded no batches in epoch {epoch}")


def main(argv: Sequence[str] | None = None) -> None:
    """One rank: the group, the spec, the loop, the group destroyed (see the module doc)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    if not args.target and not args.spec:
        _parser().error("give the spec file (or --spec package.module:NAME)")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        _parser().error("run under torch's launcher: dldoctor run SPEC.py starts it for a spec whose "
                        'dldoctor_spec() returns "distributed": {"world_size": N}')
    import torch
    import torch.distributed as dist

    from dldoctor.loading.entrypoint import load_target

    local_rank = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if args.backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(args.backend)
    try:
        spec = load_target(args.target, args.spec).built_spec()  # after the group: a DistributedSampler works
        train(spec, device, args.epochs)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
