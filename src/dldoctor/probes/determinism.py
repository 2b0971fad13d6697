"""Is evaluation deterministic, and is each phase run in the mode it needs?

Three measurements on copies of the model, every module call recorded through
process-wide module hooks (so modules built inside ``forward``, which are not
registered in the model and which ``model.eval()`` never reaches, are seen too):

* two eval-mode forwards of the first batch under different RNG seeds: the change
  of the output between them, and the first module call (in completion order)
  whose output changed although its input did not: where the randomness is;
* one train-mode forward: which mode-dependent modules (dropout, batch norm) ran
  with ``training=False``, and whether the forward switched the model to eval;
* the model as the spec builds it: which mode-dependent modules are left in eval.

Tensors stay inside the probe; the results are frozen dataclasses of plain values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import iter_tensors

#: Module types whose forward reads ``self.training`` (dropout, batch/instance norm, RReLU); recurrent
#: and attention layers also do when their ``dropout`` is above 0 (see :func:`is_mode_dependent`).
MODE_DEPENDENT: tuple[type, ...] = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.RReLU,
)

#: Settings shown next to a module's type in evidence.
_SHOWN_SETTINGS = ("dim", "p", "dropout", "batch_first", "num_features")


def is_mode_dependent(module: nn.Module) -> bool:
    """Whether ``module`` behaves differently in train and eval mode (by its type)."""
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return float(module.p) > 0
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention)):  # dropout between layers / on attention weights
        return float(module.dropout) > 0
    return isinstance(module, MODE_DEPENDENT)


def own_frozen(module: nn.Module) -> bool | None:
    """Whether every parameter under ``module`` is frozen (None when it has none)."""
    flags = [p.requires_grad for p in module.parameters()]
    return None if not flags else not any(flags)


def module_settings(module: nn.Module) -> str:
    """A few telling settings of a module, as ``p=0.5, batch_first=False``."""
    shown = []
    for attr in _SHOWN_SETTINGS:
        value = getattr(module, attr, None)
        if value is None and attr == "batch_first" and type(module).__name__.startswith("Transformer"):
            # transformer blocks pass batch_first on to their attention layers
            value = next((m.batch_first for m in module.modules() if isinstance(m, nn.MultiheadAttention)), None)
        if isinstance(value, (bool, int, float)):
            shown.append(f"{attr}={value:g}" if isinstance(value, float) else f"{attr}={value}")
    return ", ".join(shown)


def relative_change(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    """``||a - b|| / ||a||`` (0 when both are zero, inf when the shapes differ or one is missing)."""
    if a is None and b is None:
        return 0.0
    if a is None or b is None or a.shape != b.shape:
        return math.inf
    if not a.is_floating_point() and not a.is_complex():
        return 0.0 if torch.equal(a, b) else math.inf
    with torch.no_grad():
        x = torch.nan_to_num(a.detach().double(), nan=0.0, posinf=0.0, neginf=0.0)
        y = torch.nan_to_num(b.detach().double(), nan=0.0, posinf=0.0, neginf=0.0)
        diff = float((x - y).norm())
        scale = float(x.norm())
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else math.inf


# ----------------------------------------------------------------------------- recorder
@dataclasses.dataclass
class CallRecord:
    """One module call as recorded (holds tensors: internal to probes)."""

    index: int  # start order
    path: str  # registered path ("" is the model itself), or "" for a module not in the model
    type_name: str
    registered: bool
    parent: int | None  # start index of the nearest enclosing registered call
    training: bool
    mode_dependent: bool
    settings: str
    has_params: bool
    integer_rows: int | None = None  # leading size of the first integer input tensor (token ids)
    frozen: bool = False  # its parameters (or, without any, its caller's) are all frozen
    input: torch.Tensor | None = None
    output: torch.Tensor | None = None
    completed: int = -1  # completion order


def first_tensor(obj: Any) -> torch.Tensor | None:
    return next(iter_tensors(obj), None)


def _integer_rows(args: Any) -> int | None:
    for t in iter_tensors(args):
        if not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool and t.dim() > 0:
            return int(t.shape[0])
    return None


class CallRecorder:
    """Records every module call during a ``with`` block, registered in ``model`` or not.

    Process-wide module hooks see modules created inside ``forward`` as well. With
    ``keep_tensors`` the first input (at call time) and first output of each call
    are cloned, so later in-place operations do not alter them. ``output_hook`` may
    return a replacement output for a call (used to make a call's output a leaf).
    """

    def __init__(self, model: nn.Module, keep_tensors: bool = False,
                 output_hook: Callable[[CallRecord, Any], Any] | None = None):
        self.paths: dict[int, str] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(module), name)
        self.keep_tensors = keep_tensors
        self.output_hook = output_hook
        self.calls: list[CallRecord] = []
        self.stack: list[CallRecord] = []
        self._completed = 0
        self._handles: list[Any] = []

    def __enter__(self) -> CallRecorder:
        self._handles = [register_module_forward_pre_hook(self._pre), register_module_forward_hook(self._post)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _pre(self, module: nn.Module, args: Any) -> None:
        registered = id(module) in self.paths
        parent = next((c.index for c in reversed(self.stack) if c.registered), None)
        frozen = own_frozen(module)
        if frozen is None:
            frozen = self.calls[parent].frozen if parent is not None else False
        record = CallRecord(
            index=len(self.calls), path=self.paths.get(id(module), ""), type_name=type(module).__name__,
            registered=registered, parent=parent, training=bool(module.training),
            mode_dependent=is_mode_dependent(module), settings=module_settings(module),
            has_params=any(True for _ in module.parameters(recurse=False)),
            integer_rows=_integer_rows(args), frozen=frozen,
        )
        if self.keep_tensors:
            t = first_tensor(args)
            record.input = t.detach().clone() if t is not None else None
        self.calls.append(record)
        self.stack.append(record)

    def _post(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not self.stack:
            return None
        record = self.stack.pop()
        record.completed = self._completed
        self._completed += 1
        replaced = self.output_hook(record, output) if self.output_hook is not None else None
        if self.keep_tensors:
            t = first_tensor(replaced if replaced is not None else output)
            record.output = t.detach().clone() if t is not None else None
        return replaced

    def in_completion_order(self) -> list[CallRecord]:
        return sorted((c for c in self.calls if c.completed >= 0), key=lambda c: c.completed)

    def label(self, record: CallRecord) -> str:
        """Where a call sits, for users: a path, or what built it for an unregistered module."""
        return call_label(record, self.calls)


def parent_label(record: CallRecord, calls: list[CallRecord]) -> str:
    """The label of the registered module whose forward made the call, or ``spec forward``."""
    if record.parent is None:
        return "spec forward"
    return call_label(calls[record.parent], calls)


def forward_of(label: str) -> str:
    """``model.forward``, or ``the spec's forward function`` for ``spec forward``."""
    return "the spec's forward function" if label == "spec forward" else f"{label}.forward"


def call_label(record: CallRecord, calls: list[CallRecord]) -> str:
    """``model[3]`` / ``encoder.layers.0``, or ``Dropout built in model.forward``."""
    from dldoctor.probes.forward_trace import display_path

    if record.registered:
        return display_path(record.path)
    return f"{record.type_name} built in {forward_of(parent_label(record, calls))}"


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class CallDiff:
    """One module call of the second eval run compared with the same call of the first."""

    label: str
    path: str
    type_name: str
    registered: bool
    parent: str  # where the call was made: the enclosing registered module's label, or "spec forward"
    training: bool
    mode_dependent: bool
    has_params: bool
    settings: str
    input_change: float
    output_change: float


@dataclasses.dataclass(frozen=True)
class ModeUse:
    """A mode-dependent module and the ``training`` flag it had when called."""

    label: str
    type_name: str
    registered: bool
    parent: str  # as in CallDiff
    training: bool
    settings: str
    frozen: bool  # part of a frozen block (all its parameters, or its caller's, have requires_grad=False)


@dataclasses.dataclass(frozen=True)
class Determinism:
    """What the eval- and train-mode forwards showed.

    Attributes:
        status: ``measured``, or ``crashed`` (then ``reason`` says why).
        eval_output_change: relative change of the model output between two
            eval-mode forwards of the same batch under different seeds.
        source: the first call (completion order) whose output changed while its
            input did not; None when nothing changed or the change came from
            outside every module.
        source_after / source_before: for randomness in a module's own forward
            code, the last submodule it called whose output was unchanged, and the
            first whose input had changed ("" when none).
        input_changed_first: the first recorded call already got a changed input
            (randomness before any module, e.g. in the spec's forward).
        same_structure: both eval runs made the same module calls.
        eval_train_mode: mode-dependent modules called with training=True during
            the eval forward (e.g. built inside forward, where eval() cannot reach).
        train_eval_mode: mode-dependent modules called with training=False during
            a train-mode forward.
        train_forward_left_eval: the model's own flag was False after that forward.
        template_eval_mode: mode-dependent modules in eval mode in the model as the
            spec builds it, outside frozen blocks; ``template_training`` the
            model's own flag there.
        overrides_train: the model class overrides ``nn.Module.train`` (it manages
            its modules' modes itself, e.g. frozen batch norm).
    """

    status: str
    reason: str = ""
    eval_output_change: float = 0.0
    source: CallDiff | None = None
    source_after: str = ""
    source_before: str = ""
    input_changed_first: bool = False
    same_structure: bool = True
    eval_train_mode: tuple[ModeUse, ...] = ()
    train_eval_mode: tuple[ModeUse, ...] = ()
    train_forward_left_eval: bool = False
    template_training: bool = True
    template_eval_mode: tuple[str, ...] = ()
    mode_dependent_count: int = 0
    overrides_train: bool = False


# ----------------------------------------------------------------------------- measuring
def _model_output(outputs: Any) -> torch.Tensor | None:
    return first_tensor(outputs)


def _mode_uses(recorder: CallRecorder, training: bool) -> tuple[ModeUse, ...]:
    seen: dict[str, ModeUse] = {}
    for c in recorder.calls:
        if c.mode_dependent and c.training == training:
            label = recorder.label(c)
            seen.setdefault(label, ModeUse(label, c.type_name, c.registered, parent_label(c, recorder.calls),
                                           c.training, c.settings, c.frozen))
    return tuple(seen.values())


def _localise(first: list[CallRecord], second: list[CallRecord], tol: float) -> tuple[CallDiff | None, str, str, bool]:
    """Compare two runs' calls; return (source, after, before, input_changed_first)."""
    diffs: dict[int, tuple[float, float]] = {}
    for a, b in zip(first, second):
        if (a.path, a.type_name, a.registered) != (b.path, b.type_name, b.registered):
            break
        diffs[a.index] = (relative_change(a.input, b.input), relative_change(a.output, b.output))
    input_changed_first = bool(diffs) and diffs[0][0] > tol
    ordered = sorted((c for c in first if c.index in diffs and c.completed >= 0), key=lambda c: c.completed)
    for c in ordered:
        d_in, d_out = diffs[c.index]
        if d_in <= tol and d_out > tol:
            src = CallDiff(call_label(c, first), c.path, c.type_name, c.registered, parent_label(c, first),
                           c.training, c.mode_dependent, c.has_params, c.settings, d_in, d_out)
            children = [k for k in first if k.parent == c.index and k.index in diffs and k is not c]
            after = before = ""
            for k in children:  # start order
                k_in, k_out = diffs[k.index]
                if k_in > tol:
                    before = call_label(k, first)
                    break
                if k_out <= tol:
                    after = call_label(k, first)
            return src, after, before, input_changed_first
    return None, "", "", input_changed_first


def measure_determinism(model_factory: Callable[[], nn.Module], template: nn.Module, batch: Any,
                        forward: Callable[[nn.Module, Any], tuple[Any, Any]], seed: int,
                        tolerance: float) -> Determinism:
    """Run the three measurements (see the module docstring) on fresh copies of the model.

    Args:
        model_factory: returns a fresh copy of the model in train mode.
        template: the model as the spec built it (only its flags are read).
        batch: the first training batch, on the run's device.
        forward: the spec's ``(model, batch) -> (outputs, targets)``.
        seed: the run's seed; the second eval run uses ``seed + 1``.
        tolerance: relative change below which two tensors count as equal.
    """
    overrides = type(template).train is not nn.Module.train
    mode_modules = [name for name, m in template.named_modules() if is_mode_dependent(m)]
    from dldoctor.probes.forward_trace import display_path

    modules = dict(template.named_modules())

    def frozen(name: str) -> bool:
        while True:  # the module's own parameters, else those of its nearest ancestor that has some
            flag = own_frozen(modules[name])
            if flag is not None or not name:
                return bool(flag)
            name = name.rpartition(".")[0]

    template_eval = tuple(display_path(name) for name, m in modules.items()
                          if is_mode_dependent(m) and not m.training and not frozen(name))
    common: dict[str, Any] = dict(template_training=bool(template.training), template_eval_mode=template_eval,
                  mode_dependent_count=len(mode_modules), overrides_train=overrides)
    def eval_runs(keep_tensors: bool):
        runs = []
        for run_seed in (seed, seed + 1):
            model = model_factory()
            model.eval()
            with isolated_rng(run_seed), torch.no_grad(), CallRecorder(model, keep_tensors=keep_tensors) as rec:
                outputs, _ = forward(model, batch)
            runs.append((rec, _model_output(outputs)))
        return runs

    try:
        (rec_a, out_a), (rec_b, out_b) = eval_runs(keep_tensors=False)
        model = model_factory()
        model.train()
        with isolated_rng(seed), torch.no_grad(), CallRecorder(model) as train_rec:
            forward(model, batch)
        left_eval = not model.training
        change = relative_change(out_a, out_b)
        same = [(c.path, c.type_name) for c in rec_a.calls] == [(c.path, c.type_name) for c in rec_b.calls]
        source, after, before, input_first = (None, "", "", False)
        if change > tolerance or not same:
            # Localising needs every call's input and output: run both again, keeping them
            # (the same seeds give the same runs; a healthy model never pays for the copies).
            (rec_a, _), (rec_b, _) = eval_runs(keep_tensors=True)
            source, after, before, input_first = _localise(rec_a.calls, rec_b.calls, tolerance)
    except Exception as exc:  # reported by the check as incomplete, with the user's line
        from dldoctor.loading.user_traceback import exception_line, innermost_user_frame

        where = innermost_user_frame(exc)
        return Determinism(status="crashed", reason=exception_line(exc) + (f" ({where})" if where else ""),
                           **common)
    return Determinism(
        status="measured", eval_output_change=change if math.isfinite(change) else float("inf"), source=source,
        source_after=after, source_before=before, input_changed_first=input_first, same_structure=same,
        eval_train_mode=_mode_uses(rec_a, True), train_eval_mode=_mode_uses(train_rec, False),
        train_forward_left_eval=left_eval, **common,
    )
