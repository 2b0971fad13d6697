"""The shared context of one run: fresh models, optimisers, cached batches, measurements.

Every check gets the same context. It builds the user's model once, under the run's
seed, and keeps that initial state as a template: ``fresh_model()`` hands out deep
copies of it, so experiments start from identical weights and the user's own
objects are never trained. Batches are taken once per split and cached.
Measurements are memoised by key: the first check that needs one pays for it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
from torch import nn

from dldoctor.core.check import CONFIG_REQUIREMENT
from dldoctor.core.config import Config
from dldoctor.core.errors import CheckIncomplete, EntrypointError
from dldoctor.core.finding import Finding
from dldoctor.core.keys import Key, Store
from dldoctor.core.loss_kinds import loss_name, task_of
from dldoctor.core.measurement import Better, Measurement
from dldoctor.core.model_copy import copy_model
from dldoctor.loading.entrypoint import LoadedTarget
from dldoctor.loading.reader import GuardedReader, loader_generators
from dldoctor.loading.user_traceback import format_user_traceback
from dldoctor.runtime.rng import isolated_rng
from dldoctor.runtime.tensors import to_device

if TYPE_CHECKING:  # pragma: no cover
    from dldoctor.loading.script.record import WatchedLoop
    from dldoctor.loading.spec import Spec
    from dldoctor.probes.forward_trace import ForwardTrace
    from dldoctor.probes.gradients import GradFlow

T = TypeVar("T")


#: What a measurement's name may look like: ``memory.max_batch``, ``my_plugin.logit_scale``.
MEASUREMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*)*$")


class BatchFormatError(Exception):
    """The default forward could not unpack a batch into (inputs, targets)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    from dldoctor.core.errors import UsageError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}", hint="Use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine", hint="Use --device cpu")
    return device


def unpack_batch(batch: Any) -> tuple[Any, Any]:
    """Split a batch into ``(inputs, targets)`` as the default forward does."""
    if isinstance(batch, dict):
        raise BatchFormatError(f"the loader yields dicts (keys: {', '.join(map(str, batch))})")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__ + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise BatchFormatError(f"the loader yields a {kind}, not an (inputs, targets) pair")
    inputs, targets = batch
    return inputs, targets


def default_forward(model: nn.Module, batch: Any) -> tuple[Any, Any]:
    """Unpack ``inputs, targets = batch`` and return ``model(inputs), targets``."""
    inputs, targets = unpack_batch(batch)
    return model(inputs), targets


FORWARD_HINT = """Make the Dataset return (inputs, targets), or tell dldoctor how to run a batch:

def dldoctor_spec():
    return {
        ...,
        "forward": lambda model, batch: (model(batch["image"]), batch["label"]),
    }"""


#: Hints for a loader that raises while it is read (``LOADER_HINT``, from the guarded
#: reader), and for one that yields nothing.
EMPTY_LOADER_HINT = "Check that the dataset is not empty and that drop_last does not drop every batch."


class Context:
    """What checks share during one run.

    Attributes:
        loaded: the user's loaded target (spec, spec function, folders of their code).
        config: the resolved configuration.
        device: where models and batches live.
        seed: the run's seed; every experiment starts from it.
        measurements: memoised results of probes, by typed key (:mod:`dldoctor.probes.keys`).
        reports: what checks add to the JSON report, by typed key (its ``name`` is the
            report's name).
        results: what a check publishes for the checks that declare it in ``after``.
        exhausted: the splits whose loader ended before ``run.cached_batches`` batches.
        findings: findings of the checks that already ran, in run order.
        recorded: what checks measured for the report's ``measurements``, by name
            (:meth:`measured`); ``running_check`` is the check now running (set by the pipeline).
    """

    def __init__(self, loaded: LoadedTarget, config: Config, device: torch.device, seed: int = 0):
        self.loaded = loaded
        # None only in script mode when no spec could be built: then only the watched-loop
        # checks run (the pipeline skips the others), and they do not read it.
        self.spec = cast("Spec", loaded.spec)
        self.config = config
        self.device = device
        self.seed = seed
        self.measurements = Store()
        self.reports = Store()
        self.results = Store()
        self.exhausted: set[str] = set()
        self._failed: dict[Key[Any], BaseException] = {}
        self.findings: list[Finding] = []
        self.recorded: dict[str, Measurement] = {}
        self.running_check = ""
        self.deadline: float | None = None
        self._template: nn.Module | None = None
        self._batches: dict[str, list[Any]] = {}
        self.forward_fn: Callable[[nn.Module, Any], tuple[Any, Any]] = (
            loaded.spec.forward if loaded.spec is not None and loaded.spec.forward else default_forward)
        self.progress: Callable[[str, int, float], None] | None = None
        self.reading: Callable[[str, int, int], None] | None = None
        self.reader = GuardedReader(loaded.user_roots, float(config.get("run.batch_deadline_s")),
                                    float(config.get("run.batch_deadline_factor")))
        self._unusable: dict[str, str] = {}

    @property
    def user_roots(self) -> tuple[Path, ...]:
        """The folders of the user's code (to tell their frames from torch's and ours)."""
        return tuple(self.loaded.user_roots)

    @property
    def watched(self) -> WatchedLoop | None:
        """In script mode, what watching the user's own loop recorded; None in spec mode."""
        return self.loaded.watched

    def report_progress(self, label: str, step: int, loss: float) -> None:
        """Tell a live view how a training experiment is going (no-op without one)."""
        if self.progress is not None:
            self.progress(label, step, loss)

    def report_reading(self, label: str, done: int, total: int) -> None:
        """Tell a live view how far a pass over a data set has got (no-op without one)."""
        if self.reading is not None:
            self.reading(label, done, total)

    # -- the user's objects, copied -------------------------------------------------
    def user_error(self, what: str, exc: BaseException, hint: str = "") -> EntrypointError:
        return EntrypointError(f"{what} raised {type(exc).__name__}: {exc}", hint=hint,
                               user_traceback=format_user_traceback(exc, self.loaded.user_roots))

    def prepare(self) -> None:
        """Build the model template and take the first training batches.

        Raises:
            EntrypointError: when the model factory or the loader raises, or the
                loader yields nothing; the run cannot go on without them.
        """
        if self.loaded.spec is None:  # script mode, nothing to rebuild: only the watched-loop checks run
            return
        self.template_model()
        try:
            batch = self.first_batch("train")
        except CheckIncomplete as exc:  # the first batch hung: as broken as a loader that raises
            raise EntrypointError(exc.reason, hint=self.reader.hang_hint("train"),
                                  user_traceback=exc.user_traceback) from None
        if self.spec.forward is None:
            try:
                unpack_batch(batch)
            except BatchFormatError as exc:
                raise EntrypointError(str(exc), hint=FORWARD_HINT) from None

    def template_model(self) -> nn.Module:
        if self._template is None:
            model = self.spec.model
            with isolated_rng(self.seed):
                try:
                    built = copy_model(model) if isinstance(model, nn.Module) else model()
                except Exception as exc:
                    raise self.user_error("building the model (spec 'model')", exc) from None
            if not isinstance(built, nn.Module):
                raise EntrypointError(f"spec 'model' returned {type(built).__name__}, not an nn.Module",
                                      hint='"model": MyModel,   # or lambda: MyModel(width=64)')
            self._template = built.to(self.device)
        return self._template

    def fresh_model(self) -> nn.Module:
        """A new copy of the model in its initial state, on the run's device, in train mode."""
        model = copy_model(self.template_model())
        model.train()
        return model

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        try:
            optimizer = self.spec.optimizer(model.parameters())
        except Exception as exc:
            raise self.user_error("the spec's optimizer factory", exc) from None
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise EntrypointError(f"spec 'optimizer' returned {type(optimizer).__name__}, not a torch optimizer")
        return optimizer

    # -- data ------------------------------------------------------------------------
    def loader(self, split: str) -> Any:
        """The split's loader (a factory is called), or None when the spec has none or a
        held-out split cannot be used (it hung, or its batches do not fit the model: see
        :meth:`split_problem`), so that checks reading it where they may skip it do."""
        if split != "train" and self.split_problem(split) is not None:
            return None
        return self._spec_loader(split)

    def _spec_loader(self, split: str) -> Any:
        value = getattr(self.spec, f"{split}_loader")
        if value is None:
            return None
        if callable(value) and not hasattr(value, "__iter__"):
            try:
                value = value()
            except Exception as exc:
                raise self.user_error(f"the spec's {split}_loader factory", exc) from None
        return value

    def has_split(self, split: str) -> bool:
        """The spec gives the split, and (for val and test) it can be used."""
        return getattr(self.spec, f"{split}_loader", None) is not None and (
            split == "train" or self.split_problem(split) is None)

    def split_problem(self, split: str) -> str | None:
        """Why a split the spec gives cannot be used (it hung, or a check found its batches
        do not fit the model), or None."""
        hung = self.reader.hung(split)
        if hung is not None:
            return f"the {split}_loader hangs ({hung.reason})"
        return self._unusable.get(split)

    def set_unusable(self, split: str, reason: str) -> None:
        """Record that a held-out split cannot be used: checks requiring it are skipped with
        ``reason``, and optional readers leave it out."""
        if split != "train":
            self._unusable.setdefault(split, reason)

    def read(self, split: str = "train", loader: Any = None, *, source: Callable[[], Any] | None = None,
             what: str | None = None, unit: str = "batch") -> Iterator[Any]:
        """Read ``split`` through the guarded reader (a deadline per batch; see
        :mod:`dldoctor.loading.reader`): one pass of ``loader`` (default: the
        split's), or of what ``source()`` returns (e.g. rows of its dataset fetched by
        index, with ``unit="item"``).

        Raises:
            EntrypointError: the user's loader raised, at whatever batch.
            CheckIncomplete: a batch did not come within its deadline, or the split hung
                before (at once, the same error).
        """
        if loader is None:
            loader = self._spec_loader(split)
        if loader is None and source is None:
            return iter(())
        return self.reader.read(split, source or (lambda: loader), what=what or f"iterating the {split}_loader",
                                unit=unit, loader=loader)

    def batches(self, split: str = "train", n: int | None = None) -> list[Any]:
        """The first ``n`` batches of a split (config ``run.cached_batches``), on the device.

        Taken once, under the run's seed (a shuffling loader draws from the global
        RNG, which is restored afterwards), then served from the cache. Read through
        the guarded reader: a split that hung fails at once.
        """
        want = n or int(self.config.get("run.cached_batches"))
        cached = self._batches.get(split)
        if cached is not None and (len(cached) >= want or split in self.exhausted):
            return cached[:want]
        loader = self._spec_loader(split)
        if loader is None:
            return []
        taken: list[Any] = []
        with isolated_rng(self.seed), restored_generators(loader):
            for batch in self.read(split, loader):
                taken.append(to_device(batch, self.device))
                if len(taken) >= want:
                    break
            else:
                self.exhausted.add(split)
        if not taken:
            raise EntrypointError(f"the {split}_loader yielded no batches", hint=EMPTY_LOADER_HINT)
        self._batches[split] = taken
        return taken[:want]

    def first_batch(self, split: str = "train") -> Any:
        return self.batches(split, 1)[0]

    # -- measurement memo ------------------------------------------------------------
    def measure(self, key: Key[T], fn: Callable[[], T]) -> T:
        """Return the memoised measurement ``key``, computing it with ``fn`` the first time.

        A measurement that could not be taken (the user's code raised or hung, a safety
        limit stopped it) is memoised too: every later check that asks for it gets the
        same error at once, so one stuck loader costs one deadline per run, not one per check.
        """
        if not isinstance(key, Key):
            raise TypeError(f"measure({key!r}, ...): a measurement's key is a dldoctor.api.Key, not "
                            f"{type(key).__name__} (declare one: MY_KEY: Key[MyType] = Key('my_plugin:name'))")
        failed = self._failed.get(key)
        if failed is not None:
            raise failed
        if key not in self.measurements:
            try:
                self.measurements[key] = fn()
            except (CheckIncomplete, EntrypointError) as exc:
                self._failed[key] = exc
                raise
        return self.measurements[key]

    def measured(self, name: str, value: float, *, unit: str = "", noise: float | None = None,
                 better: Better = None, title: str = "") -> Measurement:
        """Record a number for the report's ``measurements`` (see :class:`CheckContext`)."""
        if not isinstance(name, str) or not MEASUREMENT_NAME.match(name):
            raise ValueError(f"measured({name!r}, ...): a measurement's name is lower-case words joined by "
                             "'.', '_' or '-', e.g. 'my_plugin.logit_scale'")
        taken = Measurement(value, unit=unit, noise=noise, better=better, check=self.running_check, title=title)
        self.recorded[name] = taken
        return taken

    def forward_trace(self) -> ForwardTrace:
        """The traced forward/loss/backward of the first training batch (memoised)."""
        from dldoctor.probes import keys
        from dldoctor.probes.forward_trace import trace_step

        def run() -> ForwardTrace:
            batch = self.first_batch("train")
            with isolated_rng(self.seed):
                return trace_step(self.fresh_model(), batch, self.forward_fn, self.spec.loss_fn,
                                  self.loaded.user_roots)

        return self.measure(keys.FORWARD_TRACE, run)

    def grad_flow(self, index: int) -> GradFlow:
        """Forward, loss and backward of training batch ``index`` on a fresh model, watched
        (memoised): gradient-flow reads where gradients stop, numerics whether the loss
        and gradients are finite, from the same pass."""
        from dldoctor.probes import keys
        from dldoctor.probes.gradients import measure_grad_flow

        def run() -> GradFlow:
            with isolated_rng(self.seed):
                return measure_grad_flow(self.fresh_model(), self.batches("train", index + 1)[index],
                                         self.forward_fn, self.spec.loss_fn)

        return self.measure(keys.GRAD_FLOW.at(index), run)

    # -- requirements ----------------------------------------------------------------
    def unmet(self, requirement: str) -> str | None:
        """Why ``requirement`` is not met, or None when it is."""
        if requirement == "forward_pass":
            crash = self.forward_trace().crash
            if crash is not None:
                return f"the training step crashed in the {crash.phase} ({crash.exc_type})"
            return None
        if requirement in ("val_loader", "test_loader"):
            if getattr(self.spec, requirement, None) is None:
                return f"the spec has no {requirement}"
            return self.split_problem(requirement[:-7])
        if requirement in ("classification", "regression"):
            return None if self.task == requirement else f"the task is {self.task}, not {requirement}"
        if requirement == "script":
            return None if self.loaded.watched is not None else "the target is not a watched script (spec mode)"
        if requirement == "reference":
            return None if self.spec.reference else "the spec gives no reference result"
        if requirement == "cuda":
            return None if self.device.type == "cuda" else "the run is not on a CUDA device"
        if requirement.startswith(CONFIG_REQUIREMENT):
            key = requirement.removeprefix(CONFIG_REQUIREMENT)
            if self.config.get(key):
                return None
            return f"{key} is off in this configuration (a profile such as thorough, or --config, turns it on)"
        return f"unknown requirement {requirement!r}"

    # -- what the task is -------------------------------------------------------------
    @property
    def task(self) -> str:
        from dldoctor.probes import keys

        return self.measure(keys.TASK, self._infer_task)

    def _infer_task(self) -> str:
        if self.spec.task:
            return self.spec.task
        task = task_of(loss_name(self.spec.loss_fn))
        if task:
            return task
        trace = self.forward_trace()
        if trace.targets:
            tgt = trace.targets[0]
            if tgt.is_integer:
                return "classification"
            if tgt.is_floating:
                return "regression"
        return "other"

    @property
    def num_classes(self) -> int | None:
        from dldoctor.probes import keys

        return self.measure(keys.NUM_CLASSES, self._infer_num_classes)

    def _infer_num_classes(self) -> int | None:
        if self.spec.num_classes:
            return int(self.spec.num_classes)
        if self.task != "classification":
            return None
        trace = self.forward_trace()
        if trace.outputs and len(trace.outputs[0].shape) >= 2 and trace.outputs[0].shape[1] > 1:
            return int(trace.outputs[0].shape[1])
        if trace.targets and trace.outputs and trace.outputs[0].shape[-1:] in ((1,), ()):
            return 2
        if trace.target_range is not None:
            return int(trace.target_range[1]) + 1
        return None

    # -- time ------------------------------------------------------------------------
    def time_left(self) -> float:
        """Seconds left of the running check's budget (infinite when none is set)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


@contextlib.contextmanager
def restored_generators(loader: Any) -> Iterator[None]:
    """Put back the state of the loader's own random generators after iterating it.

    A ``DataLoader(shuffle=True, generator=g)`` advances ``g`` on every pass: without
    this, a second pass would see other batches (breaking determinism) and the
    user's generator would be left changed.
    """
    generators = [(g, g.get_state()) for g in loader_generators(loader)]
    try:
        yield
    finally:
        for g, state in generators:
            g.set_state(state)


def target_folder(target: str | None) -> Path | None:
    if not target:
        return None
    path = Path(target)
    return path.parent if path.suffix else path
