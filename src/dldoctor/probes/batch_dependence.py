"""Does one sample's output depend on the other samples of the batch?

On a fresh copy of the model in eval mode (so batch norm's legitimate mixing in
training is out of the picture), a small slice of the first batch is run forward
with its per-sample floating inputs as gradient leaves (for integer inputs such as
token ids: the output of the first module that turns them into floats, usually an
embedding). For a few output rows, the gradient of a fixed random projection of
that row is taken with respect to every sample's inputs: a model that treats
samples independently gives exactly zero on every sample but the row's own.

When some row does depend on other samples, two more forwards localise it: the
other samples' inputs are perturbed, and every module call (registered or built
inside ``forward``) is compared between the runs on the probed sample's row; the
first call whose output row changed is where the mixing shows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dldoctor.probes.determinism import CallRecord, CallRecorder, call_label, parent_label
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import batch_size_of


@dataclasses.dataclass(frozen=True)
class RowGradient:
    """The gradient of one output row's projection, by sample.

    ``owner`` is the sample the row belongs to: the row index when the output has
    one row per sample, else the sample with the largest gradient (outputs
    flattened to several rows per sample, e.g. one per token).
    """

    row: int
    owner: int
    norms: tuple[float, ...]

    @property
    def own(self) -> float:
        return self.norms[self.owner]

    def relative(self) -> tuple[float, ...]:
        """Each sample's gradient norm over the owner's (the owner itself gives 1)."""
        if self.own > 0:
            return tuple(n / self.own for n in self.norms)
        return tuple(0.0 if n == 0 else math.inf for n in self.norms)


@dataclasses.dataclass(frozen=True)
class CallChange:
    """One module call compared between the plain and the perturbed forward.

    ``input_change`` / ``output_change``: relative change of the probed sample's row
    of the first input / output; None where that tensor is not laid out with the
    batch first (its leading size is not the number of samples).
    """

    label: str
    path: str
    type_name: str
    registered: bool
    parent_label: str
    training: bool
    mode_dependent: bool
    settings: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_change: float | None
    output_change: float | None


@dataclasses.dataclass(frozen=True)
class BatchDependence:
    """What the batch-independence test measured.

    Attributes:
        status: ``measured``; ``not-applicable`` (``reason`` says why: one sample,
            no per-sample floating entry, an output not laid out by sample);
            ``no-gradient`` (no probed row depends on its own inputs either);
            ``crashed`` (the eval-mode forward or backward raised).
        samples: how many samples the slice has.
        entry: where the gradient is taken: ``inputs`` or ``output of <module>``.
        output_shape: shape of the model output on the slice.
        rows: the probed rows' gradients.
        layout_known: the batch's leading size matched the loader's batch size,
            so dim 0 is the batch (not, e.g., time in a sequence-first layout).
        probed_sample: the sample whose row was compared in the localisation.
        calls: the module calls of the localisation, in completion order (empty
            when no row depended on other samples).
        output_change: the probed sample's row change of the model output there.
    """

    status: str
    reason: str = ""
    samples: int = 0
    entry: str = ""
    output_shape: tuple[int, ...] = ()
    rows: tuple[RowGradient, ...] = ()
    layout_known: bool = False
    probed_sample: int = -1
    calls: tuple[CallChange, ...] = ()
    output_change: float | None = None


def slice_batch(obj: Any, n: int, k: int) -> Any:
    """Keep the first ``k`` of ``n`` samples of every tensor whose leading size is ``n``."""
    if isinstance(obj, torch.Tensor):
        return obj[:k] if obj.dim() > 0 and obj.shape[0] == n else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(slice_batch(v, n, k) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(slice_batch(v, n, k) for v in obj)
    if isinstance(obj, dict):
        return {key: slice_batch(v, n, k) for key, v in obj.items()}
    return obj


def loader_batch_size(loader) -> int | None:
    """The size of the first batch a ``DataLoader`` yields, when it says (else None)."""
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        return None
    try:
        sampler: Any = loader.sampler  # a sampler need not have a length
        return min(int(loader.batch_size), len(sampler))
    except TypeError:
        return int(loader.batch_size)


def choose_samples(batch: Any, n: int, want: int) -> int:
    """How many samples to slice: at most ``want``, and a size no other axis of the batch has.

    The slice's size is how the batch axis is recognised in the model's intermediate
    tensors; a size equal to, say, the image width would make a width axis look
    like the batch (an 8x8 image sliced to 8 samples).
    """
    from dldoctor.runtime.tensors import iter_tensors

    taken = {int(s) for t in iter_tensors(batch) for s in t.shape[1:]}
    top = min(want, n)
    return next((k for k in range(top, 1, -1) if k not in taken), top)


def _map_entries(obj: Any, k: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every floating tensor with ``k`` leading rows (the per-sample inputs)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj) if obj.is_floating_point() and obj.dim() > 0 and obj.shape[0] == k else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map_entries(v, k, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_entries(v, k, fn) for v in obj)
    if isinstance(obj, dict):
        return {key: _map_entries(v, k, fn) for key, v in obj.items()}
    return obj


def _has_integer_entry(obj: Any, k: int) -> bool:
    from dldoctor.runtime.tensors import iter_tensors

    return any(not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool and t.dim() > 0
               and t.shape[0] == k
               for t in iter_tensors(obj))


class _Entry:
    """Where per-sample floats enter the model, and how to replace them.

    ``kind`` is ``inputs`` (the batch's floating tensors with one row per sample) or
    ``embedding`` (the output of the first module, below the model itself, that
    takes integer per-sample inputs and returns per-sample floats). ``run`` gives
    the model ``transform(t)`` in place of each entry tensor ``t``. The embedding
    found on the first run is the one used on later runs.
    """

    def __init__(self, kind: str, k: int):
        self.kind = kind
        self.k = k
        self.found_at: tuple[str, str] | None = None  # (path, type) of the embedding-like call

    @property
    def label(self) -> str:
        if self.kind == "embedding" and self.found_at is not None:
            from dldoctor.probes.forward_trace import display_path

            return f"output of {display_path(self.found_at[0])} ({self.found_at[1]})"
        return "inputs"

    def _replace_output(self, record: CallRecord, output: Any, transform: Callable, done: list[bool]) -> Any:
        if done or record.integer_rows != self.k or (record.registered and record.path == ""):
            return None  # the model as a whole is no entry: nothing inside it would be tested
        if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.dim() == 0 \
                or output.shape[0] != self.k:
            return None
        if self.found_at is not None and self.found_at != (record.path, record.type_name):
            return None
        done.append(True)
        self.found_at = (record.path, record.type_name)
        return transform(output)

    def run(self, model: nn.Module, batch: Any, forward: Callable, transform: Callable[[torch.Tensor], torch.Tensor],
            keep_tensors: bool = False) -> tuple[Any, CallRecorder]:
        """One forward of ``batch`` with the entry replaced; returns the outputs and the recorded calls."""
        done: list[bool] = []
        if self.kind == "embedding":
            hook = lambda record, output: self._replace_output(record, output, transform, done)  # noqa: E731
            model_batch = batch
        else:
            hook, model_batch = None, _map_entries(batch, self.k, transform)
        with CallRecorder(model, keep_tensors=keep_tensors, output_hook=hook) as recorder:
            outputs, _ = forward(model, model_batch)
        return outputs, recorder


def _output_tensor(outputs: Any) -> torch.Tensor | None:
    from dldoctor.runtime.tensors import iter_tensors

    for t in iter_tensors(outputs):
        if t.is_floating_point() and t.dim() > 0:
            return t
    return None


def _spread(n: int, count: int) -> tuple[int, ...]:
    """``count`` indices spread over ``range(n)``, first and last included."""
    if count <= 1 or n <= 1:
        return (0,)
    picks = sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})
    return tuple(int(p) for p in picks)


def _row_gradients(entry: _Entry, model: nn.Module, batch: Any, forward: Callable, k: int, rows: int,
                   seed: int) -> tuple[str, str, tuple[int, ...], tuple[RowGradient, ...]]:
    """One forward on the slice with the entry as leaves, one backward per probed row."""
    leaves: list[torch.Tensor] = []

    def as_leaf(t: torch.Tensor) -> torch.Tensor:
        leaf = t.detach().clone().requires_grad_(True)
        leaves.append(leaf)
        return leaf.clone()  # a non-leaf, so in-place operations in forward stay legal

    # cuDNN's recurrent kernels cannot run backward in eval mode; the native ones can.
    with isolated_rng(seed), torch.backends.cudnn.flags(enabled=False):
        outputs, _ = entry.run(model, batch, forward, as_leaf)
    out = _output_tensor(outputs)
    if not leaves:
        return "not-applicable", "no per-sample floating input reached the model", (), ()
    if out is None or not out.requires_grad:
        return "no-gradient", "the model output does not depend on the inputs through autograd", (), ()
    n_rows = int(out.shape[0])
    if n_rows == k:
        probe_rows = _spread(k, rows)
    elif n_rows > k and n_rows % k == 0:
        probe_rows = _spread(n_rows, rows)
    else:
        return ("not-applicable", f"the output's leading size ({n_rows}) is not a multiple of the {k} samples",
                tuple(out.shape), ())
    gen = torch.Generator().manual_seed(seed)
    grads = []
    for r in probe_rows:
        weights = torch.randn(tuple(out[r].shape), generator=gen).to(device=out.device, dtype=out.dtype)
        with torch.backends.cudnn.flags(enabled=False):
            g = torch.autograd.grad((out[r] * weights).sum(), leaves, retain_graph=True, allow_unused=True)
        sq = torch.zeros(k, dtype=torch.float64, device=out.device)
        for _leaf, gi in zip(leaves, g):
            if gi is not None:
                sq += gi.detach().double().reshape(k, -1).pow(2).sum(dim=1)
        norms = tuple(float(v) for v in sq.sqrt().cpu())
        if not all(math.isfinite(v) for v in norms):
            continue
        owner = r if n_rows == k else max(range(k), key=lambda j: norms[j])
        grads.append(RowGradient(row=r, owner=owner, norms=norms))
    if not grads or all(g.own == 0 and max(g.norms) == 0 for g in grads):
        return "no-gradient", "no probed output row depends on the inputs", tuple(out.shape), tuple(grads)
    return "measured", "", tuple(out.shape), tuple(grads)


def _row_change(a: torch.Tensor | None, b: torch.Tensor | None, k: int, sample: int) -> float | None:
    from dldoctor.probes.determinism import relative_change

    if a is None or b is None or a.dim() == 0 or a.shape[0] != k or a.shape != b.shape:
        return None
    return relative_change(a[sample], b[sample])


def _localise(entry: _Entry, model: nn.Module, batch: Any, forward: Callable, k: int, sample: int,
              seed: int) -> tuple[tuple[CallChange, ...], float | None]:
    """Perturb every sample but ``sample`` and compare each call's row ``sample``."""
    gen = torch.Generator().manual_seed(seed + 1)

    def perturb(t: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(tuple(t.shape), generator=gen).to(device=t.device, dtype=t.dtype)
        scale = float(t.detach().float().std()) if t.numel() > 1 else 1.0
        noise = noise * (scale if math.isfinite(scale) and scale > 0 else 1.0)
        noise[sample] = 0
        return t + noise

    with torch.no_grad():
        with isolated_rng(seed):
            plain_out, plain = entry.run(model, batch, forward, lambda t: t, keep_tensors=True)
        gen.manual_seed(seed + 1)
        with isolated_rng(seed):
            moved_out, moved = entry.run(model, batch, forward, perturb, keep_tensors=True)
    a_calls, b_calls = plain.calls, moved.calls
    changes = []
    if [(c.path, c.type_name) for c in a_calls] == [(c.path, c.type_name) for c in b_calls]:
        for a in plain.in_completion_order():
            b = b_calls[a.index]
            changes.append(CallChange(
                label=call_label(a, a_calls), path=a.path, type_name=a.type_name, registered=a.registered,
                parent_label=parent_label(a, a_calls),
                training=a.training, mode_dependent=a.mode_dependent, settings=a.settings,
                input_shape=tuple(a.input.shape) if a.input is not None else (),
                output_shape=tuple(a.output.shape) if a.output is not None else (),
                input_change=_row_change(a.input, b.input, k, sample),
                output_change=_row_change(a.output, b.output, k, sample),
            ))
    out_change = _row_change(_output_tensor(plain_out), _output_tensor(moved_out), k, sample)
    return tuple(changes), out_change


def measure_batch_dependence(model: nn.Module, batch: Any, forward: Callable[[nn.Module, Any], tuple[Any, Any]],
                             seed: int, samples: int, rows: int, tolerance: float,
                             loader_batch_size: int | None = None) -> BatchDependence:
    """Run the batch-independence test (see the module docstring) on ``model`` (a copy).

    Args:
        model: a fresh copy of the model; it is put in eval mode.
        batch: the first training batch.
        forward: the spec's ``(model, batch) -> (outputs, targets)``.
        seed: the run's seed (random projections, perturbations, the forwards).
        samples: how many samples to slice from the batch.
        rows: how many output rows to backpropagate from.
        tolerance: relative gradient above which a row counts as depending on
            another sample (only decides whether to localise).
        loader_batch_size: the loader's batch size when known: a batch whose
            leading size differs is not batch-first, and the test does not apply.
    """
    n = batch_size_of(batch)
    if n is None or n < 2:
        return BatchDependence("not-applicable", "the batch has fewer than two samples")
    layout_known = loader_batch_size is not None
    if loader_batch_size is not None and n != loader_batch_size:
        return BatchDependence("not-applicable", f"the batch's leading size ({n}) is not the loader's batch size "
                                                 f"({loader_batch_size}), so dim 0 is not the batch")
    k = choose_samples(batch, n, samples)
    small = slice_batch(batch, n, k)
    model.eval()
    status, reason, label = "not-applicable", "", "inputs"
    out_shape: tuple[int, ...] = ()
    grads: tuple[RowGradient, ...] = ()
    kinds = ["inputs"] + (["embedding"] if _has_integer_entry(small, k) else [])
    try:
        for kind in kinds:
            entry = _Entry(kind, k)
            status, reason, out_shape, grads = _row_gradients(entry, model, small, forward, k, rows, seed)
            label = entry.label
            if status == "measured":
                break
        if status != "measured":
            return BatchDependence(status, reason, k, label, out_shape, grads, layout_known)
        worst = max(grads, key=lambda g: max(v for j, v in enumerate(g.relative()) if j != g.owner))
        leak = max(v for j, v in enumerate(worst.relative()) if j != worst.owner)
        calls: tuple[CallChange, ...] = ()
        out_change: float | None = None
        if leak > tolerance:
            calls, out_change = _localise(entry, model, small, forward, k, worst.owner, seed)
    except Exception as exc:  # reported by the check as incomplete, with the user's line
        from dldoctor.loading.user_traceback import exception_line, innermost_user_frame

        where = innermost_user_frame(exc)
        return BatchDependence("crashed", exception_line(exc) + (f" ({where})" if where else ""), k, label,
                               out_shape, grads, layout_known)
    return BatchDependence("measured", "", k, label, out_shape, grads, layout_known, worst.owner, calls, out_change)
