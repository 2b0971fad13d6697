"""What one rank's watched loop adds for the ddp checks: a plain, JSON-able dict per rank.

The script watcher (:class:`dldoctor.loading.script.watch.Watcher`) calls :meth:`RankProbe.on_step`
from its optimizer-step hook (the first optimizer's steps only, before the update, i.e. after DDP's
gradient all-reduce) and :meth:`RankProbe.on_epoch` when a loader is iterated from the start with
gradients enabled. Nothing is patched here, and nothing is read across ranks: each rank records its own
view, :mod:`.exchange` brings the views together.

Per rank it records:

- ``fingerprints``: per step, a short hash of the first input tensor the trained model was called on
  (its first ``FINGERPRINT_SAMPLES`` samples, at most ``FINGERPRINT_ELEMENTS`` values evenly strided
  over them; a host tensor is hashed at the step, a device tensor's values are copied on their device
  and hashed when the record is made, so no step waits for the device): equal across ranks when ranks
  read the same data, equal across epochs on one rank when the order repeats. Taken at the first
  ``FINGERPRINT_DENSE`` steps of each epoch and every ``FINGERPRINT_EVERY``-th after them (None at the
  others): every rank takes the same steps, and each epoch the same positions, which is what the checks
  compare;
- ``checksums``: at steps 0, 1, 2, 4, 8, ... (and the last one), the float64 sum of absolute values of
  every parameter and of every floating buffer of the watched model, and each tensor's own sum (the
  first ``MAX_TENSORS``), read before the update: replicas in sync have equal ones;
- ``sampler``: the training loader's sampler class, whether it is a ``DistributedSampler``, its
  ``shuffle``, and its ``epoch`` attribute each time the loader was iterated from the start (read with
  ``getattr``: ``set_epoch`` never called leaves it at 0);
- ``ddp``: whether the trained module is a ``DistributedDataParallel`` (and ``ddp_class``: the wrapper's
  class name when it is another known wrapper), ``batch_norm``: its batch-norm layers (class, whether
  ``SyncBatchNorm``), ``per_rank_batch``: samples per step on this rank;
- timings (median step and data-wait seconds, and the median seconds of the model's forward pass,
  timed by the watcher's forward hooks from the second step on), losses and learning rates, from the watched loop;
- ``gradients`` and ``norm_stats``: the :mod:`.step_probes` readings of a few steps (local and stepped
  gradients projected; whether batch-norm layers used their own batch's statistics).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dldoctor.distributed import RankEnv
from dldoctor.distributed.step_probes import PROBED_STEPS, GradientProbe, NormProbe

#: Samples of a batch that its fingerprint reads, and values at most.
FINGERPRINT_SAMPLES = 4
FINGERPRINT_ELEMENTS = 1 << 12
#: Dtypes a host tensor's fingerprint is hashed from at the step, through numpy (bfloat16 has no numpy type).
_NUMPY_DTYPES = frozenset({torch.float16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
                           torch.int32, torch.int64, torch.bool})
#: A fingerprint is taken at the first steps of each epoch, then at one step in this many (by the step's
#: position in its epoch). Hashing a batch right after backward() costs 30-60 us of a 3.4 ms DDP step of the
#: digits CNN (its code runs with cold caches: 7 us warm), and every rank's added time holds every rank's
#: step. The checks need a few steps: three identical of those compared already name the fault, and the
#: first five steps of the second epoch (a watch goes on five steps past an epoch's end) give five.
FINGERPRINT_DENSE = 4
FINGERPRINT_EVERY = 4
#: Per-tensor checksums kept per checksummed step, at most.
MAX_TENSORS = 256


def _first_tensor(value: Any, depth: int = 3) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if depth == 0:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item, depth - 1)
            if found is not None:
                return found
    return None


Head = tuple[torch.Tensor, tuple[int, ...]]
"""A fingerprint's values, not yet hashed (on their device), and the tensor's shape."""


def _head_values(tensor: torch.Tensor) -> torch.Tensor:
    head = (tensor[:FINGERPRINT_SAMPLES] if tensor.dim() else tensor).reshape(-1)
    return head[::_stride(head.numel())]


def _stride(numel: int) -> int:
    """Every n-th value, so that at most ``FINGERPRINT_ELEMENTS`` spread over the samples (not one border)."""
    return max(1, -(-numel // FINGERPRINT_ELEMENTS))


def _hash(data: bytes | memoryview, shape: tuple[int, ...]) -> str:
    hashed = hashlib.blake2b(data, digest_size=8)
    hashed.update(str(shape).encode())
    return hashed.hexdigest()


def batch_head(batch: Any) -> Head | str | None:
    """What a fingerprint is made of, taken at the step: for a host tensor numpy can read, its hash at
    once (a view and a few microseconds, no torch operation); otherwise a copy of the first values of the
    first samples of the first tensor in ``batch`` on its device (no copy to the host, no wait for the
    device), with the tensor's shape, hashed by :func:`digest` when the record is made. None: no tensor.
    Both give the same hash for the same values."""
    tensor = _first_tensor(batch)
    if tensor is None:
        return None
    shape = tuple(tensor.shape)
    if tensor.device.type == "cpu" and not tensor.requires_grad and tensor.dtype in _NUMPY_DTYPES:
        try:
            values = tensor.numpy()
        except (RuntimeError, TypeError):  # a conjugate or negative view, a tensor subclass: the torch path
            pass
        else:
            head = values[:FINGERPRINT_SAMPLES] if values.ndim else values
            if head.size <= FINGERPRINT_ELEMENTS and head.flags.c_contiguous:
                return _hash(head.data, shape)  # the common batch: its first samples' bytes as they lie, no copy
            head = head.reshape(-1)
            return _hash(np.ascontiguousarray(head[::_stride(head.size)]).tobytes(), shape)
    with torch.no_grad():
        return _head_values(tensor.detach()).clone(), shape


def digest(head: Head | str | None) -> str | None:
    """The short hash of a :func:`batch_head` (equal heads, equal hashes, on every rank)."""
    if head is None or isinstance(head, str):
        return head
    values, shape = head
    flat = values.cpu().contiguous()
    if flat.dtype == torch.bfloat16:
        flat = flat.float()
    return _hash(flat.numpy().tobytes() if flat.numel() else b"", shape)


def _allocated_bytes(tensor: torch.Tensor) -> int:
    """What a tensor adds to its device's reading: CUDA's caching allocator hands out blocks of 512 bytes."""
    size = tensor.numel() * tensor.element_size()
    return -(-size // 512) * 512 if tensor.device.type == "cuda" else size


def fingerprint(batch: Any) -> str | None:
    """A short hash of the first samples of the first tensor in ``batch`` (None: no tensor)."""
    return digest(batch_head(batch))


def _unwrapped(model: nn.Module) -> nn.Module:
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) and _wrapper_name(model) else model


def _wrapper_name(model: nn.Module) -> str:
    """The data-parallel wrapper's class name, or "" for a plain module."""
    name = type(model).__name__
    wrappers = ("DistributedDataParallel", "DataParallel", "FullyShardedDataParallel", "_LightningModuleWrapperBase")
    return name if name in wrappers else ""


def _absolute_sums(tensors: list[torch.Tensor]) -> list[float]:
    """Each tensor's float64 sum of absolute values: one fused operation for all of them where torch has it."""
    if not tensors:
        return []
    try:
        return [float(v) for v in torch._foreach_norm(tensors, 1, dtype=torch.float64)]
    except (AttributeError, RuntimeError, TypeError):  # an older torch, sparse or mixed layouts
        return [float(t.double().abs().sum()) for t in tensors]


def checksums(model: nn.Module) -> dict[str, Any]:
    """The float64 sums of absolute values of the model's parameters and floating buffers, in all and per
    tensor (absolute: a tensor whose values cancel out still has a sum of its own size)."""
    with torch.no_grad():
        per_param = _absolute_sums(list(model.parameters()))
        per_buffer = _absolute_sums([b for b in model.buffers() if b.is_floating_point()])
    return {"params": sum(per_param), "buffers": sum(per_buffer),
            "per_param": per_param[:MAX_TENSORS], "per_buffer": per_buffer[:MAX_TENSORS]}


def _checksum_step(n: int) -> bool:
    """Steps 0, 1, 2, 4, 8, 16...: a few, early and spread out."""
    return n < 3 or (n & (n - 1)) == 0


class RankProbe:
    """One rank's recorder (see the module doc); the watcher holds it as ``rank_probe``."""

    def __init__(self, env: RankEnv) -> None:
        self.env = env
        self.heads: list[Head | str | None] = []  # device heads hashed in record()
        self.held_bytes = 0
        """Bytes the device heads hold until the record: dldoctor's, not the loop's (the watcher takes them
        out of the memory series, or up to 16 kB a step would read as the loop's leak)."""
        self.checksums: dict[int, dict[str, Any]] = {}
        self.epochs: dict[int, list[Any]] = {}  # loader id -> sampler epoch at each start
        self.samplers: dict[int, dict[str, Any]] = {}  # loader id -> what its sampler is
        self.last_model: nn.Module | None = None
        self.gradients = GradientProbe()
        self.norms = NormProbe()
        self.forward_s: list[float] = []
        self._forward_started: float | None = None

    # -- fed by the watcher ----------------------------------------------------------------------------
    def on_epoch(self, loader: Any) -> None:
        sampler = getattr(loader, "sampler", None)
        batch_sampler = getattr(loader, "batch_sampler", None)
        inner = getattr(batch_sampler, "sampler", None)
        if inner is not None and not _is_distributed_sampler(sampler) and _is_distributed_sampler(inner):
            sampler = inner
        if id(loader) not in self.samplers:
            self.samplers[id(loader)] = {
                "class": type(sampler).__name__ if sampler is not None else "",
                "distributed": _is_distributed_sampler(sampler),
                "shuffle": getattr(sampler, "shuffle", None) if _is_distributed_sampler(sampler)
                else (type(sampler).__name__ == "RandomSampler" if sampler is not None else None),
                "num_replicas": getattr(sampler, "num_replicas", None),
                "rank": getattr(sampler, "rank", None),
            }
        epoch = getattr(sampler, "epoch", None)
        self.epochs.setdefault(id(loader), []).append(epoch if isinstance(epoch, int) else None)

    def on_step(self, model: nn.Module | None, model_calls: list[Any], step: int,
                params: Sequence[torch.Tensor] = (), position: int | None = None) -> None:
        """At the first optimizer's step ``step`` (0-based among them), before the update; ``params``: the
        parameters that optimizer updates; ``position``: the step's place in its epoch (None: ``step``)."""
        at = step if position is None else position
        taken = at < FINGERPRINT_DENSE or at % FINGERPRINT_EVERY == 0
        call = next((c for c in reversed(model_calls) if model is None or c.module is model), None) if taken else None
        if call is None:
            self.heads.append(None)
        else:  # the model's first input, most often a tensor itself
            first = call.args[0] if call.args and isinstance(call.args[0], torch.Tensor) else (call.args, call.kwargs)
            head = batch_head(first)
            self.heads.append(head)
            if isinstance(head, tuple):
                self.held_bytes += _allocated_bytes(head[0])
        if model is None:
            return
        self.last_model = model
        if _checksum_step(step):
            self.checksums[step] = checksums(model)
        if step in PROBED_STEPS:
            self.gradients.read(step)
            self.norms.read(step)
        if step + 1 in PROBED_STEPS:
            self.gradients.arm(params)
            self.norms.arm(model)

    def forward_began(self, module: nn.Module) -> None:
        """The watcher's forward pre-hook saw ``module`` called: timed when it is the model of the steps so far
        (from the second step on; the watcher's own hooks, as two more on the model would cost every call)."""
        if module is self.last_model:
            self._forward_started = time.perf_counter()

    def forward_ended(self, module: nn.Module) -> None:
        """The watcher's forward hook saw the call of ``module`` return."""
        if self._forward_started is not None and module is self.last_model:
            self.forward_s.append(time.perf_counter() - self._forward_started)
            self._forward_started = None

    def close(self) -> None:
        """Remove every hook (the watched loop has stopped)."""
        self.gradients.disarm()
        self.norms.disarm()

    # -- the record --------------------------------------------------------------------------------------
    def record(self, watcher: Any) -> dict[str, Any]:
        """This rank's record, from what the probe and the watcher saw (plain data)."""
        self.close()
        loop = watcher.record
        first = [s for s in loop.steps if s.optimizer == 0]
        model: nn.Module | None = watcher.model
        if model is not None and model is self.last_model and first and (len(first) - 1) not in self.checksums:
            self.checksums[len(first) - 1] = checksums(model)  # the last step (after its update, if any)
        source = watcher.source_loader
        sampler = self.samplers.get(id(source), {}) if source is not None else {}
        resources = loop.resources
        inner = _unwrapped(model) if model is not None else None
        norms = [{"name": name, "class": type(m).__name__, "sync": type(m).__name__ == "SyncBatchNorm"}
                 for name, m in (inner.named_modules() if inner is not None else ())
                 if isinstance(m, nn.modules.batchnorm._NormBase)
                 and not isinstance(m, nn.modules.instancenorm._InstanceNorm)]
        return {
            "rank": self.env.rank,
            "world_size": self.env.world_size,
            "local_rank": self.env.local_rank,
            "steps": len(first),
            "stopped": loop.stopped,
            "error": loop.error,
            "fingerprints": [digest(head) for head in self.heads],
            "epoch_starts": list(loop.epoch_starts),
            "checksums": {str(k): v for k, v in sorted(self.checksums.items())},
            "sampler": {**sampler, "epochs": list(self.epochs.get(id(source), [])) if source is not None else []},
            "ddp": any(isinstance(m, nn.parallel.DistributedDataParallel)
                       for m in (model, getattr(watcher, "wrapper", None)) if m is not None),
            "wrapper": next((_wrapper_name(m) for m in (getattr(watcher, "wrapper", None), model)
                             if m is not None and _wrapper_name(m)), ""),
            "model": type(inner).__name__ if inner is not None else "",
            "batch_norm": norms,
            "per_rank_batch": int(getattr(watcher, "_samples", 0) or 0),
            "lr": [list(s.lr) for s in first[:1]] + ([list(first[-1].lr)] if len(first) > 1 else []),
            "losses": [s.loss for s in first],
            "step_s": _median(resources.compute_s, resources.wait_s) if resources is not None else None,
            "wait_s": _median(resources.wait_s) if resources is not None else None,
            "forward_s": statistics.median(self.forward_s) if self.forward_s else None,
            "forward_calls": len(self.forward_s),
            "gradients": list(self.gradients.readings),
            "norm_stats": list(self.norms.readings),
            "loss_scale": getattr(watcher, "loss_scale", None),
            "backwards": [s.backwards for s in first[:8]],
            "backward_line": loop.backward_line,
            "step_line": loop.step_line,
        }


def _is_distributed_sampler(sampler: Any) -> bool:
    from torch.utils.data.distributed import DistributedSampler

    return isinstance(sampler, DistributedSampler)


def _median(*series: tuple[float, ...]) -> float | None:
    totals = [sum(values) for values in zip(*series, strict=True)]
    return statistics.median(totals) if totals else None
