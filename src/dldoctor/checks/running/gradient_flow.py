"""The gradient-flow check: does every trainable parameter get a gradient and an update?"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from torch import nn

from dldoctor.api import Check, Judgement, Severity, Stage, keys, lookup
from dldoctor.api.measure import (
    GradFlow,
    OptimizerCoverage,
    Setup,
    display_path,
    experiments,
    loss_changes,
    optimizer_coverage,
)
from dldoctor.api.read import curves

ID = "no-gradient-flow"


@dataclasses.dataclass(frozen=True)
class ParamState:
    """One parameter across the batches looked at.

    ``grads`` holds, per batch, ``none`` (.grad is None), ``zero`` (exactly zero),
    ``ok`` or ``nonfinite``; ``in_optimizer`` is None when the optimiser could not
    be inspected.
    """

    name: str
    module_path: str
    numel: int
    requires_grad: bool
    grads: tuple[str, ...]
    in_optimizer: bool | None = None
    shape: tuple[int, ...] = ()
    values_zero: bool = False

    @property
    def never_grad(self) -> bool:
        return self.requires_grad and all(g in ("none", "zero") for g in self.grads)

    @property
    def all_none(self) -> bool:
        return all(g == "none" for g in self.grads)


def _num(n: int) -> str:
    return f"{n:,}"


def _listed(names: Sequence[str], limit: int) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _under(name: str, prefix: str) -> bool:
    return prefix in ("", name) or name.startswith(prefix + ".")


def _ancestors(path: str) -> Iterable[str]:
    while path:
        yield path
        path = path.rpartition(".")[0]
    yield ""


def frozen_layout(params: Sequence[ParamState], module_types: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Sort frozen (requires_grad=False) parameters into what was frozen.

    Returns ``(units, systematic, partial)``: ``units`` are the largest sub-modules
    whose every parameter is frozen (or a lone frozen parameter), ``systematic``
    the modules where the same parameter is frozen in every module of that type
    (e.g. all ``Linear.weight``, as in bias-only fine-tuning), ``partial`` the
    modules whose own parameters are part frozen, part trainable, irregularly.
    """
    direct: dict[str, list[ParamState]] = defaultdict(list)
    for p in params:
        direct[p.module_path].append(p)

    def fully_frozen(prefix: str) -> bool:
        return all(not p.requires_grad for p in params if _under(p.name, prefix))

    def mixed(path: str) -> bool:
        flags = {p.requires_grad for p in direct[path]}
        return len(flags) == 2

    by_kind: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for path, ps in direct.items():
        for p in ps:
            by_kind[(module_types.get(path, ""), p.name.rpartition(".")[2])].append(p.requires_grad)

    units: list[str] = []
    systematic: list[str] = []
    partial: list[str] = []
    for p in params:
        if p.requires_grad:
            continue
        path = p.module_path
        if mixed(path):
            kind = by_kind[(module_types.get(path, ""), p.name.rpartition(".")[2])]
            bucket = systematic if len(kind) >= 2 and not any(kind) else partial
            if path not in bucket:
                bucket.append(path)
            continue
        top = None
        for a in _ancestors(path):
            if not fully_frozen(a):
                break
            top = a
        unit = top if top is not None else p.name
        if unit not in units:
            units.append(unit)
    systematic = [s for s in systematic if s not in partial]
    return units, systematic, partial


def cover(names: Sequence[str], members: set[str]) -> list[str]:
    """The fewest module paths (or parameter names) that hold exactly the parameters ``members``.

    A module whose every parameter is a member stands for all of them: with
    ``a.0.weight``, ``a.0.bias``, ``a.1.weight`` as members of ``a.0.*, a.1.weight,
    a.1.bias``, the cover is ``["a.0", "a.1.weight"]``.
    """
    def full(prefix: str) -> bool:
        return all(n in members for n in names if _under(n, prefix))

    out: list[str] = []
    for name in names:
        if name not in members:
            continue
        top = name
        for a in _ancestors(name.rpartition(".")[0]):
            if not full(a):
                break
            top = a
        if top not in out:
            out.append(top)
    return out


def _state(has_grad: bool, zero: bool, nonfinite: bool) -> str:
    if not has_grad:
        return "none"
    if nonfinite:
        return "nonfinite"
    return "zero" if zero else "ok"


def combine(trace_grads, flows: Sequence[GradFlow], coverage: OptimizerCoverage | None) -> list[ParamState]:
    """Per-parameter states from the trace's gradients and further batches' flows."""
    later = [{f.name: f for f in flow.params} for flow in flows if not flow.error]
    held = None if coverage is None or coverage.error else coverage.param_names
    out = []
    for g in trace_grads:
        zero = g.has_grad and not g.grad_nonfinite and g.grad_norm == 0.0 and g.grad_abs_max == 0.0
        states = [_state(g.has_grad, zero, g.grad_nonfinite)]
        for flow in later:
            f = flow.get(g.name)
            if f is not None:
                states.append(_state(f.has_grad, f.grad_zero, f.grad_nonfinite))
        out.append(ParamState(g.name, g.module_path, g.numel, g.requires_grad, tuple(states),
                              None if held is None else g.name in held, tuple(g.shape), g.param_norm == 0.0))
    return out


def _code_ref(path: str) -> str:
    """How the user's code reaches a module: ``model.encoder``, ``model[2]``."""
    shown = display_path(path)
    return shown if shown.startswith("model") else f"model.{shown}"


@dataclasses.dataclass(frozen=True)
class _Facts:
    """What every part of the judgement needs: the parameters and how to describe them."""

    params: tuple[ParamState, ...]
    flows: tuple[GradFlow, ...]
    module_types: dict[str, str]
    limit: int

    @property
    def trainable(self) -> list[ParamState]:
        return [p for p in self.params if p.requires_grad]

    @property
    def total(self) -> int:
        return sum(p.numel for p in self.trainable) or 1

    @property
    def n_batches(self) -> int:
        return max((len(p.grads) for p in self.params), default=1)

    @property
    def on(self) -> str:
        return f"on {self.n_batches} batches" if self.n_batches > 1 else "on the first batch"

    def share(self, ps: Sequence[ParamState]) -> tuple[int, float]:
        n = sum(p.numel for p in ps)
        return n, n / self.total

    def summary(self, ps: Sequence[ParamState], what: str, units: Sequence[str] | None = None) -> str:
        n, frac = self.share(ps)
        shown = [display_path(u) for u in units] if units is not None else [p.name for p in ps]
        return (f"{len(ps)} of {len(self.trainable)} trainable parameter tensors ({_num(n)} of {_num(self.total)} "
                f"values, {frac:.1%}) {what}: {_listed(shown, self.limit)}")

    def label(self, path: str) -> str:
        kind = self.module_types.get(path, "")
        return f"{display_path(path)} ({kind})" if kind else display_path(path)

    def flow_of(self, path: str):
        return next((f.module_flow(path) for f in self.flows if f.module_flow(path) is not None), None)


_WHY_NONE = {
    "unused": "defined but never called in forward {on}, so its {n} parameter values get no gradient",
    "no_grad": "runs with gradient tracking off (inside torch.no_grad() or torch.inference_mode()), so its {n} "
               "parameter values get no gradient",
    "cut": "runs and its output requires grad, but no gradient flows back into it from the loss, so its {n} "
           "parameter values never train: its output is cut from the graph on the way to the loss (.detach(), "
           ".data, .item(), .numpy(), a new tensor built from its values) or not used",
    "other": "its {n} parameter values get no gradient although the code around it runs: used through .data / "
             ".detach(), or not at all",
}
_FIX_NONE = {
    "cut": "Make the output of {refs} reach the loss: remove the .detach() / .data / .item() applied to it or to "
           "anything computed from it; in a loop over layers, feed each layer's output to the next (x = layer(x)).",
    "no_grad": "Take the call to {refs} out of the torch.no_grad() block in forward(); keep no_grad for evaluation "
               "only.",
    "other": "Use {refs} directly in forward(), not through .data or .detach().",
    "unused": "Call {refs} in forward(), or delete it from __init__; if it is meant to stay unused, freeze it "
              "(.requires_grad_(False)) and leave it out of the optimiser.",
}
_TITLE_NONE = {
    "unused": "{first} is defined but never used in forward: its parameters never train",
    "no_grad": "{first} runs under torch.no_grad(): its parameters never train",
    "cut": "The gradient never reaches {first}: the graph is cut after it",
    "other": "{count} trainable parameter tensors get no gradient",
}


def _no_gradient(facts: _Facts, none: list[ParamState], called: frozenset[str], majority: float) -> list[Judgement]:
    """Trainable parameters whose .grad stays None: why, per module."""
    if not none:
        return []
    names = [p.name for p in facts.params]
    owner = {p.name: p.module_path for p in facts.params}
    numel = {p.name: p.numel for p in facts.params}
    units = cover(names, {p.name for p in none})
    kinds: dict[str, str] = {}
    for unit in units:
        path = unit if unit in facts.module_types or unit == "" else owner[unit]
        flow = facts.flow_of(path)
        if path not in called and flow is None:
            kinds[unit] = "unused"
        elif flow is not None and flow.ran_without_grad:
            kinds[unit] = "no_grad"
        elif flow is not None and flow.output_requires_grad and not flow.output_got_grad:
            kinds[unit] = "cut"
        else:
            kinds[unit] = "other"
    limit = facts.limit
    evidence = [facts.summary(none, f"have .grad None after backward {facts.on}", units)]
    for unit in units[:limit]:
        n = _num(sum(numel[name] for name in names if _under(name, unit)))
        evidence.append(f"{facts.label(unit)}: " + _WHY_NONE[kinds[unit]].format(on=facts.on, n=n))
    if len(units) > limit:
        evidence.append(f"... and {len(units) - limit} more: {_listed(units[limit:], limit)}")
    trained = cover(names, {p.name for p in facts.trainable if not p.never_grad})
    if trained:
        evidence.append("what does get gradients: " + _listed([display_path(m) for m in trained], limit))
    fixes = []
    for kind in ("cut", "no_grad", "other", "unused"):
        refs = [_code_ref(u) for u in units if kinds[u] == kind]
        if refs:
            fixes.append(_FIX_NONE[kind].format(refs=_listed(refs, limit)))
    n_none, frac = facts.share(none)
    head = next((k for k in ("cut", "no_grad", "other") if k in kinds.values()), "unused")
    first = next(unit for unit in units if kinds[unit] == head)
    definite = head != "unused"
    return [Judgement(
        ID, Severity.ERROR if definite or frac >= majority else Severity.WARNING, 0.9 if definite else 0.75,
        _TITLE_NONE[head].format(first=display_path(first), count=len(none)), tuple(evidence), tuple(fixes),
        {"params_without_grad": len(none), "values_without_grad": n_none, "fraction_without_grad": round(frac, 4),
         "batches": facts.n_batches, "cause": head},
        display_path(first))]


def _zero_gradient(facts: _Facts, zero: list[ParamState], dead_layer: str | None) -> list[Judgement]:
    """Trainable parameters whose gradient is exactly zero, when no dead layer or zero weight explains it."""
    # A weight matrix or scalar gate initialised to exactly zero (a zero-initialised head,
    # a ReZero gate) zeroes every gradient behind it until its first update: transient.
    zero_gate = any(p.values_zero and (len(p.shape) >= 2 or p.numel == 1) and "ok" in p.grads
                    for p in facts.trainable)
    if not zero or dead_layer is not None or zero_gate:
        return []
    n_zero, frac = facts.share(zero)
    first = zero[0].module_path
    evidence = (facts.summary(zero, f"get a gradient that is exactly zero {facts.on} (whole tensors, not single "
                                    "rows)"),
                "no layer's input or output is all zeros, so this is not dead ReLUs: the path from them to the "
                "loss is multiplied by zero or goes through an operation whose derivative is zero (round, sign, "
                "argmax, a comparison or hard threshold, a constant mask)")
    fixes = (f"Find the zero-derivative step between {_code_ref(first)} and the loss and make it differentiable "
             "(softmax instead of argmax, a straight-through estimator x + (x.round() - x).detach() for rounding), "
             "or remove the zero factor.",) + lookup(ID).fixes[:1]
    return [Judgement(ID, Severity.WARNING, 0.7,
                      f"{len(zero)} trainable parameter tensors get an exactly-zero gradient", evidence, fixes,
                      {"params_zero_grad": len(zero), "values_zero_grad": n_zero,
                       "fraction_zero_grad": round(frac, 4), "batches": facts.n_batches},
                    display_path(first))]


def _no_effect(facts: _Facts, inert: list[ParamState], changes: Mapping[str, float]) -> list[Judgement]:
    """Exactly-zero gradients of parameters the loss does not depend on at all: information only."""
    if not inert:
        return []
    largest = max(changes.get(p.name, 0.0) for p in inert)
    first = inert[0].module_path
    evidence = (facts.summary(inert, f"get a gradient that is exactly zero {facts.on}"),
                f"perturbing each of them on a copy (noise as large as its own values) moved the loss by at most "
                f"{largest:.1e} of its value, i.e. not at all beyond float rounding: the loss does not depend on "
                "them by construction (a bias shared by two towers whose outputs are subtracted, a bias right "
                "before a batch norm, which the batch mean removes), so a zero gradient is what they should get")
    fixes = (f"Nothing to fix. Optionally drop the parameter that cancels (e.g. bias=False on "
             f"{_code_ref(first)}) to save its memory and optimiser state.",)
    return [Judgement(ID, Severity.INFO, 0.8,
                      f"{display_path(first)} has no effect on the loss by construction (its gradient is exactly "
                      "zero)", evidence, fixes,
                      {"params_no_effect": len(inert), "max_relative_loss_change": largest},
                      display_path(first))]


def _not_optimised(facts: _Facts, coverage: OptimizerCoverage | None, majority: float) -> list[Judgement]:
    """Trainable parameters that get gradients but that the optimiser does not hold."""
    if coverage is None or coverage.error:
        return []
    skipped = [p for p in facts.trainable if p.in_optimizer is False and not p.never_grad]
    if not skipped:
        return []
    n, frac = facts.share(skipped)
    if not coverage.param_names and coverage.foreign_tensors:
        return [Judgement(
            ID, Severity.ERROR, 0.9, "The optimiser holds none of the model's parameters",
            (f"the spec's optimizer factory, given model.parameters(), returned an optimiser over "
             f"{coverage.foreign_tensors} tensors, none of which belong to that model: it ignores its argument "
             "(e.g. it uses a model object created elsewhere)",
             facts.summary(skipped, "get gradients but are never updated")),
            ("Build the optimiser from the parameters it is given: "
             "'optimizer': lambda params: torch.optim.Adam(params, lr=...).",),
            {"params_not_in_optimizer": len(skipped), "fraction_not_in_optimizer": round(frac, 4),
             "foreign_tensors": coverage.foreign_tensors}, "optimizer")]
    names = [p.name for p in facts.params]
    modules = cover(names, {p.name for p in skipped})
    held = cover(names, set(coverage.param_names))
    shown = _listed([display_path(m) for m in modules], 3)
    refs = _listed([_code_ref(m) for m in modules], facts.limit)
    severity = Severity.ERROR if frac >= majority else Severity.WARNING
    return [Judgement(
        ID, severity, 0.8 if severity is Severity.ERROR else 0.7,
        f"{shown} get{'s' if len(modules) == 1 else ''} gradients but the optimiser never updates "
        f"{'it' if len(modules) == 1 else 'them'}",
        (facts.summary(skipped, "require grad and get gradients, but the optimiser does not hold them, so they are "
                                "never updated", modules),
         f"the optimiser holds {len(coverage.param_names)} of the model's {len(facts.params)} parameter tensors"
         + (f": {_listed([display_path(m) for m in held], facts.limit)}" if held else "")),
        ("Build the optimiser from every trainable parameter: torch.optim.X(model.parameters()) or "
         "[p for p in model.parameters() if p.requires_grad].",
         f"If {refs} should stay fixed, freeze {'it' if len(modules) == 1 else 'them'} with .requires_grad_(False) "
         "so no gradient is computed."),
        {"params_not_in_optimizer": len(skipped), "values_not_in_optimizer": n,
         "fraction_not_in_optimizer": round(frac, 4)}, display_path(modules[0]))]


def _unregistered(facts: _Facts) -> list[Judgement]:
    """Tensors that require grad and feed the loss but are not parameters of the model."""
    strays = next((list(flow.unregistered) for flow in facts.flows if flow.unregistered), [])
    if not strays:
        return []
    owned: dict[str, list] = defaultdict(list)
    for s in sorted((s for s in strays if s.owner), key=lambda s: s.owner):
        owned[s.owner].append(s)
    lines = [f"{len(strays)} tensors that require grad feed the loss but are not parameters of the model "
             f"({_num(sum(s.numel for s in strays))} values), so model.parameters() and the optimiser never see "
             "them and they are never updated"]
    for owner, items in list(owned.items())[:facts.limit]:
        lines.append(f"{owner} (kept in {items[0].owner_kind}): tensors of shape "
                     + ", ".join(str(list(s.shape)) for s in items))
    loose = [s for s in strays if not s.owner]
    if loose:
        lines.append("not found among the model's attributes: shapes "
                     + ", ".join(str(list(s.shape)) for s in loose[:facts.limit])
                     + " (created with requires_grad=True inside forward?)")
    where = next(iter(owned)).partition("[")[0] if owned else "model"
    return [Judgement(
        ID, Severity.ERROR if owned else Severity.WARNING, 0.95 if owned else 0.6,
        f"Trainable tensors in {where} are not registered with the model" if owned
        else "Tensors that require grad feed the loss but are not model parameters",
        tuple(lines),
        ("Register them: hold sub-modules in nn.ModuleList / nn.ModuleDict and tensors in nn.Parameter / "
         "nn.ParameterList, so model.parameters() includes them.",
         "Build the optimiser after every layer is registered."),
        {"unregistered_tensors": len(strays), "unregistered_values": sum(s.numel for s in strays)}, where)]


def _frozen(facts: _Facts, intended: list[ParamState]) -> list[Judgement]:
    """Frozen parameters: a warning for irregular partial freezes, information for the rest."""
    params, limit = facts.params, facts.limit
    units, systematic, partial = frozen_layout(params, facts.module_types)
    verdicts = []
    if partial:
        lines = []
        for path in partial[:limit]:
            own = [p for p in params if p.module_path == path]
            frozen = ", ".join(p.name.rpartition(".")[2] for p in own if not p.requires_grad)
            live = ", ".join(p.name.rpartition(".")[2] for p in own if p.requires_grad)
            lines.append(f"{facts.label(path)}: {frozen} frozen (requires_grad=False) while {live} trains")
        ref = _code_ref(partial[0])
        verdicts.append(Judgement(
            ID, Severity.WARNING, 0.6, f"Part of {display_path(partial[0])} is frozen while the rest of it trains",
            tuple(lines),
            (f"Set requires_grad=True on the frozen parameters of {ref}, or freeze the whole layer with "
             f"{ref}.requires_grad_(False) if it is meant to stay fixed.",),
            {"partially_frozen_modules": len(partial)}, display_path(partial[0])))
    if units or systematic or intended:
        n_frozen = sum(p.numel for p in params if not p.requires_grad)
        n_all = sum(p.numel for p in params) or 1
        lines = []
        if units:
            lines.append(f"frozen (every parameter requires_grad=False): "
                         f"{_listed([facts.label(u) for u in units], limit)}: {_num(n_frozen)} of {_num(n_all)} "
                         f"parameter values ({n_frozen / n_all:.0%}); the rest trains")
        if systematic:
            lines.append("the same parameters are frozen in every layer of a type (e.g. bias-only fine-tuning) in "
                         + _listed([display_path(s) for s in systematic], limit))
        if intended:
            lines.append(facts.summary(intended, "get no gradient but are also left out of the optimiser, which "
                                                 "looks intended (e.g. a target network updated by averaging)"))
        location = units[0] if units else (systematic[0] if systematic else intended[0].module_path)
        verdicts.append(Judgement(
            ID, Severity.INFO, 0.9, f"{display_path(location)} is frozen and does not train", tuple(lines),
            (f"Nothing to do if freezing is intended (fine-tuning); otherwise set requires_grad=True on "
             f"{_code_ref(location)}'s parameters and include them in the optimiser.",),
            {"frozen_values": n_frozen, "frozen_fraction": round(n_frozen / n_all, 4)}, display_path(location)))
    return verdicts


@dataclasses.dataclass(frozen=True)
class FrozenFit:
    """The single-batch fit with the model as given, and with every parameter trainable.

    Both runs start from the same initial weights under the same seed and take the same
    number of steps; ``fixed`` is only measured when the fit as given ``fails``.
    """

    as_given: str
    unfrozen: str
    fails: bool
    fixed: bool
    steps: int


def _output_frozen(params: Sequence[ParamState], output: str | None) -> bool:
    return output is not None and any(not p.requires_grad for p in params if p.module_path == output)


def frozen_suspect(params: Sequence[ParamState], module_types: dict[str, str], output: str | None) -> bool:
    """Whether the freeze could stop the model from fitting at all: the output layer (the last
    layer with parameters to run) is frozen, wholly or in part, while something else trains.

    A frozen backbone under a trainable head is the usual fine-tune and is not asked about;
    neither is a pattern frozen in every layer of a type (bias-only fine-tuning). Only the
    experiment decides: a model that fits one batch as given is fine whatever is frozen.
    """
    units, _, partial = frozen_layout(params, module_types)
    if not (units or partial) or not any(p.requires_grad for p in params):
        return False  # nothing trains: the loss has no gradient at all, forward-pass reports it
    return _output_frozen(params, output)


def _frozen_by_mistake(facts: _Facts, fit: FrozenFit, output: str, majority: float) -> Judgement:
    """The output layer is frozen and the model cannot fit one batch as given, but can with everything trainable."""
    params, limit = facts.params, facts.limit
    units, systematic, partial = frozen_layout(params, facts.module_types)

    def frozen_part(path: str) -> str:
        return ", ".join(p.name.rpartition(".")[2] for p in params if p.module_path == path and not p.requires_grad)

    n_all = sum(p.numel for p in params) or 1
    n_train = sum(p.numel for p in params if p.requires_grad)
    layers = list(dict.fromkeys(p.module_path for p in params))
    live = [m for m in layers if any(p.requires_grad for p in params if p.module_path == m)]
    frozen_labels = [facts.label(u) for u in units] + [f"{facts.label(m)}: {frozen_part(m)}"
                                                       for m in partial + systematic]
    own = [p for p in params if p.module_path == output]
    head = ("frozen" if all(not p.requires_grad for p in own) else
            f"frozen in part ({frozen_part(output)} requires_grad=False)")
    trained = _listed([facts.label(m) for m in live], limit)
    evidence = (f"trainable: {_num(n_train)} of {_num(n_all)} parameter values ({n_train / n_all:.1%}), in "
                f"{len(live)} of {len(layers)} layers with parameters: {trained}",
                f"frozen (requires_grad=False): {_listed(frozen_labels, limit)}",
                f"the output layer {facts.label(output)} is {head}: the model's outputs go through weights that "
                "stay at their initial values",
                f"single batch with the model as given ({fit.steps} steps): {fit.as_given}",
                f"the same fit with every parameter trainable (a fresh copy, same seed, same {fit.steps} steps): "
                f"{fit.unfrozen}")
    fixes = (f"Keep the output layer trainable: freeze the backbone before adding the head, or freeze by module "
             f"(for p in model.backbone.parameters()), so that {_code_ref(output)} is left out.",
             "Check the loop that sets requires_grad=False: a filter by position (list(model.parameters())[:-1] "
             "keeps only the last bias) or by layer type (isinstance(m, nn.Linear) catches the head too) freezes "
             "more than meant.")
    few = f", and only {n_train / n_all:.1%} of the model trains" if n_train / n_all < majority else ""
    return Judgement(ID, Severity.ERROR, 0.85,
                     f"The output layer {display_path(output)} is frozen{few}: the model cannot fit one batch, and "
                     "with every parameter trainable it does", evidence, fixes,
                     {"trainable_values": n_train, "trainable_fraction": round(n_train / n_all, 4),
                      "trainable_layers": len(live), "layers": len(layers), "frozen_units": len(units) + len(partial)},
                     display_path(output))


def judge(
    params: Sequence[ParamState],
    flows: Sequence[GradFlow],
    coverage: OptimizerCoverage | None,
    called: frozenset[str],
    dead_layer: str | None,
    majority: float,
    limit: int,
    no_effect: Mapping[str, float] | None = None,
    frozen_fit: FrozenFit | None = None,
    output: str | None = None,
) -> list[Judgement]:
    """Judge gradient flow; a pure function of the measurements.

    Args:
        params: every parameter's state over the batches looked at.
        flows: the watched steps (module calls, unregistered tensors, module types).
        coverage: which parameters the optimiser holds (None when unknown).
        called: module paths the forward trace saw run.
        dead_layer: a module whose input or output is all zeros (explains zero gradients), or None.
        majority: share of trainable values above which unused/unoptimised parameters make an error.
        limit: how many names to list.
        no_effect: parameters with an exactly-zero gradient that do not move the loss when
            perturbed, with the loss's relative change: no broken path, information only.
        frozen_fit: the single-batch fit as given and with every parameter trainable, when
            :func:`frozen_suspect` asked for it.
        output: the output layer's module path (the last layer with parameters to run).
    """
    module_types: dict[str, str] = {}
    for flow in flows:
        module_types.update(dict(flow.module_types))
    facts = _Facts(tuple(params), tuple(flows), module_types, limit)
    missing = [p for p in params if p.never_grad]
    intended = [p for p in missing if p.in_optimizer is False]
    missing = [p for p in missing if p.in_optimizer is not False]
    no_effect = no_effect or {}
    zero = [p for p in missing if not p.all_none]
    if frozen_fit is not None and frozen_fit.fails and frozen_fit.fixed and output is not None:
        frozen = [_frozen_by_mistake(facts, frozen_fit, output, majority)]
    else:
        frozen = _frozen(facts, intended)
    return (_no_gradient(facts, [p for p in missing if p.all_none], called, majority)
            + _zero_gradient(facts, [p for p in zero if p.name not in no_effect], dead_layer)
            + _no_effect(facts, [p for p in zero if p.name in no_effect], no_effect)
            + _not_optimised(facts, coverage, majority)
            + _unregistered(facts)
            + frozen)


class GradientFlowCheck(Check):
    """Every trainable parameter gets a gradient and is updated by the optimiser.

    After backward on the first batch (the forward trace) and one more batch, lists
    trainable parameters whose gradient is None or exactly zero on both, by module,
    and says why: the module never ran, ran under torch.no_grad(), or its output was
    cut from the graph. An exactly-zero gradient is confirmed by perturbing the
    parameter on a copy: when the loss does not move, the parameter has no effect on
    the loss by construction (information only). Also reports trainable parameters
    the optimiser does not hold, tensors that feed the loss but are not registered
    parameters, and partially frozen layers; whole frozen sub-modules are reported as
    information, unless the output layer is frozen and the model cannot fit one batch
    while the same fit with every parameter trainable can.
    Cost: one forward/backward per extra batch (one by default), a forward per
    zero-gradient parameter, and with a frozen output layer the single-batch fit (the
    overfit stage's baseline, shared) plus, when it fails, the same fit unfrozen.
    """

    name = "gradient-flow"
    stage = Stage.RUN
    order = 20
    requires = ("forward_pass",)
    emits = (ID,)

    def run(self, ctx):
        trace = ctx.forward_trace()
        n = max(1, int(ctx.config.get("gradient_flow.batches")))
        flows = [ctx.grad_flow(i) for i in range(1, len(ctx.batches("train", n)))]
        if not flows:  # one batch only: the structure still shows on it again
            flows = [dataclasses.replace(ctx.grad_flow(0), params=())]

        def coverage():
            model = ctx.fresh_model()
            try:
                optimizer = ctx.make_optimizer(model)
            except Exception as exc:  # the factory's own failure is another check's finding
                return OptimizerCoverage(frozenset(), 0, f"{type(exc).__name__}: {exc}")
            original = ctx.spec.model if isinstance(ctx.spec.model, nn.Module) else None
            return optimizer_coverage(model, optimizer, original)

        held = ctx.measure(keys.OPTIMIZER_COVERAGE, coverage)
        params = combine(trace.grads, flows, held)
        called = frozenset(c.path for c in trace.calls)
        zero_frac = float(ctx.config.get("gradient_flow.dead_layer_zero_frac"))
        dead = next((c.path for c in trace.calls if c.stats is not None and c.stats.frac_zero >= zero_frac), None)
        dead = dead or next((m.path for f in flows for m in f.modules if m.input_zero_frac >= zero_frac), None)
        majority = float(ctx.config.get("gradient_flow.majority_fraction"))
        owners = {p.module_path for p in params}
        output = next((c.path for c in reversed(trace.calls) if c.is_leaf and c.path in owners), None)
        module_types = {path: kind for flow in flows for path, kind in flow.module_types}
        fit = self._frozen_fit(ctx) if frozen_suspect(params, module_types, output) else None
        verdicts = judge(params, flows, held, called, dead, majority, int(ctx.config.get("gradient_flow.max_listed")),
                         self._no_effect(ctx, params), fit, output)
        return [self.judged(v) for v in verdicts]

    @staticmethod
    def _no_effect(ctx, params: Sequence[ParamState]) -> dict[str, float]:
        """Parameters with an exactly-zero gradient whose perturbation leaves the loss where it was."""
        names = tuple(p.name for p in params if p.never_grad and not p.all_none and p.in_optimizer is not False)
        if not names:
            return {}
        changes = ctx.measure(keys.PARAMETER_EFFECT.at(*names), lambda: loss_changes(
            ctx.fresh_model(), names, ctx.first_batch("train"), ctx.forward_fn, ctx.spec.loss_fn, ctx.seed))
        tolerance = float(ctx.config.get("gradient_flow.inert_loss_change"))
        return {name: change for name, change in changes.items() if change <= tolerance}

    @staticmethod
    def _frozen_fit(ctx) -> FrozenFit:
        """The single-batch fit as given (the overfit stage's baseline, shared) and, when it fails,
        the same fit with every parameter trainable, for the same number of steps."""
        steps = int(ctx.config.get("overfit.steps"))
        base = experiments.baseline(ctx)
        reading = curves.reading(ctx, base)
        as_given = f"{reading.describe()} {curves.sparkline(base.losses)}"
        if reading.shape == "converged" or curves.fitted_by_metric(base, reading):
            return FrozenFit(as_given, "", fails=False, fixed=False, steps=steps)
        unfrozen = experiments.run(ctx, Setup(unfreeze=True), steps=steps)
        r = curves.reading(ctx, unfrozen)
        return FrozenFit(as_given, f"{r.describe()} {curves.sparkline(unfrozen.losses)}", fails=True,
                         fixed=curves.fixes_curve(ctx, r, reading), steps=steps)
