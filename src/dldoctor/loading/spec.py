"""The ``Spec``: what the user's ``dldoctor_spec()`` returns, validated.

This module does not import torch at import time (``dldoctor.Spec`` is part of the
public API the CLI imports); validation imports it when it runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from dldoctor.core.errors import EntrypointError

TASKS = ("classification", "regression", "other")

SPEC_SNIPPET = '''\
def dldoctor_spec():
    return {
        "model": MyModel,                  # an nn.Module class, or a function returning a fresh one
        "train_loader": train_loader,      # a DataLoader (or a function returning one)
        "loss_fn": nn.CrossEntropyLoss(),  # (outputs, targets) -> scalar tensor
        "optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),
    }'''


@dataclasses.dataclass
class Spec:
    """What dldoctor examines. Return one (or a dict with the same keys) from ``dldoctor_spec()``.

    See docs/entrypoint.md for the meaning of every field.
    """

    model: Any
    train_loader: Any
    loss_fn: Callable[..., Any]
    optimizer: Callable[..., Any]
    val_loader: Any = None
    test_loader: Any = None
    forward: Callable[..., Any] | None = None
    grad_clip_norm: float | None = None
    scheduler: Callable[..., Any] | None = None
    task: str | None = None
    num_classes: int | None = None
    reference: Any = None
    irreducible_error: float | None = None
    search_space: Mapping[str, Any] | None = None
    groups: Any = None
    accept: Mapping[str, str] | None = None
    distributed: Mapping[str, Any] | None = None


REQUIRED = tuple(f.name for f in dataclasses.fields(Spec) if f.default is dataclasses.MISSING)
ALL_KEYS = tuple(f.name for f in dataclasses.fields(Spec))


def _is_real(value: Any) -> bool:
    """isinstance(value, numbers.Real), without narrowing ``value`` for mypy (numbers.Real has no
    comparison operators in typeshed, the values checked here do)."""
    return isinstance(value, numbers.Real)


def _fail(problem: str, hint: str = "") -> EntrypointError:
    return EntrypointError(problem, hint=hint)


def _check_loader(key: str, value: Any) -> None:
    import torch

    if value is None:
        return
    if isinstance(value, torch.utils.data.DataLoader):
        return
    if isinstance(value, (str, bytes, torch.Tensor)):
        raise _fail(f"spec key {key!r} must be a DataLoader or an iterable of batches, got {type(value).__name__}",
                    hint=f'"{key}": DataLoader(TensorDataset(inputs, targets), batch_size=64)')
    if callable(value) and not hasattr(value, "__iter__"):
        return  # a zero-argument factory; called (and checked) when batches are taken
    if not hasattr(value, "__iter__"):
        raise _fail(f"spec key {key!r} must be a DataLoader, an iterable of batches, or a function returning one; "
                    f"got {type(value).__name__}")
    try:
        if iter(value) is value:
            raise _fail(
                f"spec key {key!r} is a one-shot iterator ({type(value).__name__}): dldoctor iterates the data "
                "several times",
                hint=f'Pass the DataLoader itself, a list of batches, or a function: "{key}": lambda: make_loader()',
            )
    except EntrypointError:
        raise
    except Exception:
        return  # iter() raised: reported with the user's traceback when batches are taken


def _check_model(value: Any) -> None:
    import torch

    if isinstance(value, torch.nn.Module):
        return
    if not callable(value):
        raise _fail(f"spec key 'model' must be an nn.Module or a function returning one, got {type(value).__name__}",
                    hint='"model": MyModel,   # the class itself, called with no arguments for a fresh model')


def _written(cls: type) -> str:
    """How the user most likely wrote ``cls``: ``nn.CrossEntropyLoss`` for torch's, else its name."""
    module = getattr(cls, "__module__", "") or ""
    return f"nn.{cls.__name__}" if module.startswith("torch.nn.") else cls.__name__


def _instances_are_callable(cls: type) -> bool:
    """Whether ``cls()`` would be a callable object (an ``nn.Module`` or a class with ``__call__``)."""
    import torch

    if issubclass(cls, torch.nn.Module):
        return True
    return any("__call__" in vars(k) for k in cls.__mro__ if k is not object)


def _takes(fn: Callable[..., Any], n: int) -> bool | None:
    """Whether ``fn`` can be called with ``n`` positional arguments (None: cannot tell)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*([None] * n))
    except TypeError:
        return False
    return True


def _check_loss_fn(value: Any) -> None:
    if isinstance(value, type) and _instances_are_callable(value):
        name = _written(value)
        raise _fail(
            f"spec key 'loss_fn' is the class {name}, not a loss object: write {name}() (with parentheses)",
            hint=f'Create the loss object once: "loss_fn": {name}(),   '
                 f'# the class itself, called as loss_fn(outputs, targets), would build a new loss',
        )
    if not callable(value):
        raise _fail(f"spec key 'loss_fn' must be callable, (outputs, targets) -> scalar tensor; "
                    f"got {type(value).__name__}", hint='"loss_fn": nn.CrossEntropyLoss(),')
    import torch

    called = value.forward if isinstance(value, torch.nn.Module) else value  # a module's __call__ takes anything
    if _takes(called, 2) is False:
        accepts = _takes(called, 0)
        raise _fail(
            "spec key 'loss_fn' cannot be called as loss_fn(outputs, targets)"
            + (": it takes no arguments (a factory of the loss?)" if accepts else ""),
            hint='"loss_fn": nn.CrossEntropyLoss(),   # or: lambda outputs, targets: F.mse_loss(outputs, targets)',
        )


def _check_forward(value: Any) -> None:
    if not callable(value):
        raise _fail(f"spec key 'forward' must be callable, got {type(value).__name__}",
                    hint='"forward": lambda model, batch: (model(batch["image"]), batch["label"]),')
    if _takes(value, 2) is False:
        raise _fail("spec key 'forward' cannot be called as forward(model, batch)",
                    hint='"forward": lambda model, batch: (model(batch["image"]), batch["label"]),')


def _check_optimizer(value: Any) -> None:
    import torch

    if isinstance(value, torch.optim.Optimizer):
        raise _fail(
            "spec key 'optimizer' is an optimiser instance; dldoctor needs a function of the parameters, "
            "so that every experiment gets a fresh optimiser for a fresh model",
            hint='"optimizer": lambda params: torch.optim.Adam(params, lr=1e-3),',
        )
    if not callable(value):
        raise _fail(f"spec key 'optimizer' must be a function (params) -> optimizer, got {type(value).__name__}",
                    hint='"optimizer": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),')


def _check_reference(value: Any) -> None:
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, Mapping) or "metric" not in item or "value" not in item:
            raise _fail("spec key 'reference' must be a dict (or list of dicts) with 'metric' and 'value'",
                        hint='"reference": {"metric": "val_accuracy", "value": 0.98, "source": "paper / repo"},')
        if not isinstance(item["value"], numbers.Real) or isinstance(item["value"], bool):
            raise _fail(f"reference value for {item['metric']!r} must be a number, got {item['value']!r}")


def _check_search_space(value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _fail("spec key 'search_space' must be a dict of hyper-parameter name -> range or list")
    for name, space in value.items():
        if isinstance(space, (list, tuple)):
            if not space:
                raise _fail(f"search_space[{name!r}] is an empty list")
        elif isinstance(space, Mapping):
            if "low" not in space or "high" not in space:
                raise _fail(f"search_space[{name!r}] needs 'low' and 'high'",
                            hint=f'"{name}": {{"low": 1e-5, "high": 1e-1, "log": True}}')
            if not space["low"] < space["high"]:
                raise _fail(f"search_space[{name!r}]: low must be below high, got {space['low']} and {space['high']}")
            if space.get("log") and space["low"] <= 0:
                raise _fail(f"search_space[{name!r}]: a log range needs low > 0")
        else:
            raise _fail(f"search_space[{name!r}] must be a list of choices or a {{'low', 'high'}} range")


def _check_accept(value: Any) -> None:
    """The shape of ``accept``: diagnosis ID -> non-empty reason. (Whether each ID exists is
    checked against the catalogue once the run starts: :func:`dldoctor.core.baseline.check_accept`.)"""
    example = '"accept": {"class-imbalance": "labels are 1:20 by design"},'
    if not isinstance(value, Mapping):
        raise _fail(f"spec key 'accept' must be a dict of diagnosis ID -> reason, got {type(value).__name__}",
                    hint=example)
    for key, reason in value.items():
        if not isinstance(key, str) or not key.strip():
            raise _fail(f"spec key 'accept': {key!r} is not a diagnosis ID", hint=example)
        if not isinstance(reason, str) or not reason.strip():
            raise _fail(f"spec key 'accept': the reason for {key!r} must be a non-empty string, got {reason!r}",
                        hint=example)


#: The keys of the spec key ``distributed``, and the process-group backends it may name.
DISTRIBUTED_KEYS = ("world_size", "backend", "steps")
DISTRIBUTED_BACKENDS = ("gloo", "nccl")


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_distributed(value: Any) -> None:
    """The shape of ``distributed``: ``{"world_size": N >= 1}``, with an optional ``"backend"`` (gloo or
    nccl) and ``"steps"`` (watched optimizer steps, >= 1). See :mod:`dldoctor.distributed.spec_loop`."""
    example = '"distributed": {"world_size": 2},   # optional: "backend": "gloo" or "nccl", "steps": 40'
    if not isinstance(value, Mapping):
        raise _fail(f"spec key 'distributed' must be a dict such as {{\"world_size\": 2}}, got {type(value).__name__}",
                    hint=example)
    for key in value:
        if key not in DISTRIBUTED_KEYS:
            close = difflib.get_close_matches(str(key), DISTRIBUTED_KEYS, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(f"spec key 'distributed': unknown key {key!r}{guess}",
                        hint="Its keys: " + ", ".join(DISTRIBUTED_KEYS) + "\n" + example)
    if "world_size" not in value:
        raise _fail("spec key 'distributed' needs 'world_size', the number of ranks to run", hint=example)
    world = value["world_size"]
    if not _is_whole(world) or world < 1:
        raise _fail(f"spec key 'distributed': 'world_size' must be a whole number >= 1, got {world!r}", hint=example)
    backend = value.get("backend")
    if backend is not None and backend not in DISTRIBUTED_BACKENDS:
        raise _fail(f"spec key 'distributed': 'backend' must be one of {', '.join(DISTRIBUTED_BACKENDS)}, "
                    f"got {backend!r}", hint='"distributed": {"world_size": 2, "backend": "gloo"},   '
                                             '# or leave it out: nccl for a model on CUDA, else gloo')
    steps = value.get("steps")
    if steps is not None and (not _is_whole(steps) or steps < 1):
        raise _fail(f"spec key 'distributed': 'steps' (optimizer steps watched) must be a whole number >= 1, "
                    f"got {steps!r}", hint='"distributed": {"world_size": 2, "steps": 40},')


def validate_spec(raw: Any, origin: str = "dldoctor_spec()") -> Spec:
    """Turn what the spec function returned into a validated :class:`Spec`.

    Raises:
        EntrypointError: naming the key and showing the line to write.
    """
    if isinstance(raw, Spec):
        values = {k: getattr(raw, k) for k in ALL_KEYS}
    elif isinstance(raw, Mapping):
        values = dict(raw)
    else:
        raise _fail(f"{origin} returned {type(raw).__name__}; it must return a dict (or dldoctor.Spec)",
                    hint=SPEC_SNIPPET)
    unknown = [k for k in values if k not in ALL_KEYS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), ALL_KEYS, n=1)
        raise _fail(f"{origin} returned an unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                    hint="Known keys: " + ", ".join(ALL_KEYS))
    missing = [k for k in REQUIRED if values.get(k) is None]
    if missing:
        raise _fail(f"{origin} is missing the required key{'s' if len(missing) > 1 else ''} "
                    + ", ".join(repr(k) for k in missing), hint=SPEC_SNIPPET)
    _check_model(values["model"])
    for key in ("train_loader", "val_loader", "test_loader"):
        _check_loader(key, values.get(key))
    _check_loss_fn(values["loss_fn"])
    if values.get("forward") is not None:
        _check_forward(values["forward"])
    if values.get("scheduler") is not None and not callable(values["scheduler"]):
        raise _fail(f"spec key 'scheduler' must be callable, got {type(values['scheduler']).__name__}")
    _check_optimizer(values["optimizer"])
    clip = values.get("grad_clip_norm")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, numbers.Real) or clip <= 0):
        raise _fail(f"spec key 'grad_clip_norm' must be a positive number, got {clip!r}")
    task = values.get("task")
    if task is not None and task not in TASKS:
        raise _fail(f"spec key 'task' must be one of {', '.join(TASKS)}; got {task!r}")
    num_classes = values.get("num_classes")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
                                    or num_classes < 1):
        raise _fail(f"spec key 'num_classes' must be a positive whole number, got {num_classes!r}")
    if values.get("reference") is not None:
        _check_reference(values["reference"])
    irreducible = values.get("irreducible_error")
    if irreducible is not None and (not _is_real(irreducible) or not 0 <= irreducible < 1):
        raise _fail(f"spec key 'irreducible_error' must be a fraction in [0, 1), got {irreducible!r}")
    if values.get("search_space") is not None:
        _check_search_space(values["search_space"])
    if values.get("accept") is not None:
        _check_accept(values["accept"])
    if values.get("distributed") is not None:
        _check_distributed(values["distributed"])
    if values.get("groups") is not None:
        from dldoctor.loading.groups import check_groups

        check_groups(values["groups"], {split: values.get(f"{split}_loader") for split in ("train", "val", "test")})
    return Spec(**values)


def spec_parameters(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword hyper-parameters of a spec function and their defaults."""
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.default is not param.empty:
            out[name] = param.default
    return out
