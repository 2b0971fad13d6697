"""What a localised NaN/Inf says: the operation's family, its cause and fixes, in words.

Shared by the checks that localise non-finite values (the numerics check at stage 1,
the overfit check when a single-batch run turns NaN): pure functions of a
:class:`~dldoctor.probes.nonfinite.Localisation`, no model runs here.
"""

from __future__ import annotations

import math

from dldoctor.probes.forward_trace import display_path
from dldoctor.probes.nonfinite import Localisation, Origin

_LOG = ("log", "log2", "log10", "log1p", "xlogy", "lgamma", "digamma")
_DIV = ("div", "divide", "true_divide", "truediv", "rtruediv", "rdiv", "reciprocal", "floor_divide", "fmod",
        "remainder")
_ROOT = ("sqrt", "rsqrt", "pow", "rpow", "norm", "cdist")
_EXP = ("exp", "exp2", "expm1", "sinh", "cosh", "mul", "rmul", "matmul", "mm", "bmm", "linear", "conv1d",
        "conv2d", "conv3d", "sum", "prod", "cumprod", "square", "addmm", "einsum")
_SOFTMAX = ("softmax", "log_softmax", "logsumexp", "scaled_dot_product_attention", "multi_head_attention_forward")
_TRIG = ("acos", "asin", "atanh", "acosh", "erfinv")


#: Families of operations that turn finite inputs into NaN/Inf at a point of their own
#: domain (log of 0, x / 0, sqrt'(0), acos(+-1), softmax of an all -inf row).
SINGULAR = ("log", "div", "root", "domain", "softmax")
#: Exponentials overflow on their own (exp(89) in float32), unlike a matmul or a layer,
#: whose overflow only says that the values fed to it grew.
_EXP_ONLY = ("exp", "exp2", "expm1", "sinh", "cosh")


def _base_name(op: str) -> str:
    if "(of " in op:
        op = op.split("(of ", 1)[1].rstrip(")")
    elif op.endswith(("Backward0", "Backward1")):
        op = op[: op.index("Backward")]
    return op.rsplit(".", 1)[-1].strip("_").lower()


def unsafe_op(op: str) -> bool:
    """Whether the operation makes NaN/Inf out of finite inputs by itself: a singular point of
    its domain or an exponential's overflow (not a layer or a product fed values that grew)."""
    return op_family(op) in SINGULAR or _base_name(op).rstrip("_") in _EXP_ONLY


def op_family(op: str) -> str:
    """``log``, ``div``, ``root``, ``overflow``, ``softmax``, ``domain`` or ``other`` for an operation name.

    Backward nodes (``SqrtBackward0 (of torch.sqrt)``) are judged by the forward
    operation that created them.
    """
    name = _base_name(op)
    if name.startswith("i") and name[1:] in _DIV + _EXP:  # in-place dunders: __itruediv__
        name = name[1:]
    for family, names in (("log", _LOG), ("div", _DIV), ("root", _ROOT), ("softmax", _SOFTMAX),
                          ("domain", _TRIG), ("overflow", _EXP)):
        if name in names or name.rstrip("_") in names:
            return family
    return "other"


def _kind_word(kind: str) -> str:
    return {"nan": "NaN", "inf": "Inf"}.get(kind, "NaN and Inf")


def _range_text(origin: Origin) -> str:
    parts = []
    for i, r in enumerate(origin.inputs[:2]):
        which = "its input" if len(origin.inputs) == 1 else ("its first input" if i == 0 else "its second input")
        bad = f", {r.nonfinite:,} non-finite" if r.nonfinite else ""
        parts.append(f"{which} {list(r.shape)} has finite values in [{r.min:.4g}, {r.max:.4g}], {r.zeros:,} exact "
                     f"zeros, {r.negatives:,} negative{bad}, of {r.numel:,}")
    return "; ".join(parts)


def origin_fixes(origin: Origin | None) -> list[str]:
    """Fixes for the operation that produced the first non-finite value, most specific first."""
    if origin is None:
        return []
    family = op_family(origin.op)
    line = f" (at {origin.user_line.split(': `')[0]})" if origin.user_line else ""
    negatives = any(r.negatives for r in origin.inputs[:1])
    if family == "log":
        fixes = [f"Do not take the log of a value that can reach 0{line}: use F.log_softmax / F.cross_entropy on "
                 "logits instead of torch.log(softmax(x)), F.logsigmoid / F.binary_cross_entropy_with_logits "
                 "instead of torch.log(sigmoid(x)), or clamp first: torch.log(x.clamp_min(1e-8))."]
        if negatives:
            fixes.append("The input of the log has negative values: if it comes from a layer (a variance, a rate), "
                         "make it positive by construction, e.g. F.softplus(raw) + 1e-6, or predict its log.")
        return fixes
    if family == "div":
        return [f"Keep the divisor away from zero{line}: x / (d + 1e-8) or d.clamp_min(1e-8); for a masked mean, "
                "divide by mask.sum(dim).clamp_min(1) and handle empty rows (zero-length sequences)."]
    if family == "root":
        if origin.phase == "backward":
            return [f"The derivative of sqrt (or of x ** p with p < 1, or of a norm) is infinite at 0{line}: add an "
                    "epsilon inside, torch.sqrt(x + 1e-8), or use torch.cdist / F.pairwise_distance / "
                    "torch.linalg.vector_norm, which handle zero distances (e.g. a sample's distance to itself)."]
        return [f"Clamp before the root{line}: torch.sqrt(x.clamp_min(0) + 1e-8); a variance computed as "
                "E[x^2] - E[x]^2 can come out slightly negative, prefer torch.var."]
    if family == "softmax":
        return ["A row of the softmax input is entirely -inf (every position masked, e.g. an empty or fully padded "
                "sequence): keep at least one unmasked position per row, drop empty samples, or mask with a large "
                "finite negative (torch.finfo(x.dtype).min) instead of -inf."]
    if family == "domain":
        return [f"Clamp the input into the function's domain{line}, e.g. torch.acos(x.clamp(-1 + 1e-7, 1 - 1e-7))."]
    if family == "overflow":
        return [f"The values overflow the float range{line}: use torch.logsumexp / torch.softmax instead of "
                "exp(x) / exp(x).sum(), subtract the maximum before exp, or keep inputs and weights at unit scale."]
    return []


def cause_text(origin: Origin) -> str:
    """What the operation's family and inputs say happened, in words ("" when unsure)."""
    family = op_family(origin.op)
    first = origin.inputs[0] if origin.inputs else None
    if family == "log" and first is not None:
        return ("a log of 0 is -inf and of a negative value NaN: its input had "
                f"{first.zeros:,} exact zeros and {first.negatives:,} negative values")
    if family == "div":
        divisor = origin.inputs[1] if len(origin.inputs) > 1 else first
        zeros = f": the divisor had {divisor.zeros:,} exact zeros" if divisor is not None else ""
        return f"a division by zero (0/0 is NaN, x/0 is Inf){zeros}"
    if family == "root":
        if origin.phase == "backward":
            return "the derivative of sqrt (or of a fractional power or a norm) is infinite at 0"
        return "the root of a negative value is NaN"
    if family == "softmax":
        return "a row of its input is entirely -inf (every position masked), and softmax of such a row is 0/0"
    if family == "overflow":
        return "the result exceeds the largest float (about 3.4e38 in float32, 65504 in float16)"
    if family == "domain":
        return "its input left the function's domain"
    return ""


def where_label(origin: Origin) -> str:
    """Where the operation ran, in words."""
    if origin.module_path is None:
        return {"spec forward": "the spec's forward function, outside the model",
                "loss": "the loss function"}.get(origin.created_in or origin.phase, "outside the model")
    label = f"{display_path(origin.module_path)} ({origin.module_type})"
    if not origin.module_leaf:
        label += "'s own forward code (not one of its sub-layers)"
    return label


def location_of(loc: Localisation) -> str:
    origin = loc.origin
    if origin is not None:
        if origin.module_path is not None:
            return display_path(origin.module_path)
        phase = origin.created_in if origin.phase == "backward" else origin.phase
        return phase or "backward"
    if loc.first_module is not None:
        return display_path(loc.first_module[0])
    if loc.outputs_nonfinite == 0 and loc.loss_value is not None and not math.isfinite(loc.loss_value):
        return "loss"
    return "backward" if loc.nonfinite_grads else "model"


def describe_localisation(loc: Localisation) -> tuple[str, list[str]]:
    """(title, evidence lines) for a watched step that showed non-finite values."""
    origin = loc.origin
    lines = []
    if origin is not None and origin.phase != "backward":
        at = f" at {origin.user_line}" if origin.user_line else ""
        source = "inputs without NaN" if any(r.nonfinite for r in origin.inputs) else "finite inputs"
        lines.append(f"the first operation that makes {_kind_word(origin.kind)} from {source} is {origin.op}"
                     f"{at}, in {where_label(origin)}" + (f"; {_range_text(origin)}" if origin.inputs else ""))
        if cause_text(origin):
            lines.append(cause_text(origin))
        if origin.phase == "loss":
            lines.append("the model's outputs are finite: the loss computation produces the non-finite value")
        where = location_of(loc) + (f" ({origin.module_type})" if origin.module_path is not None else "")
        title = f"{_kind_word(origin.kind)} first appears in {where}: {origin.op}"
    elif origin is not None:
        at = f" at {origin.user_line}" if origin.user_line else ""
        lines.append(f"forward pass and loss are finite (loss = {loc.loss_value:.4g}), but backward produces "
                     f"{_kind_word(origin.kind)}: {origin.op} turns a finite gradient into a non-finite one; the "
                     f"forward operation ran{at} in {where_label(origin)}")
        if cause_text(origin):
            lines.append(cause_text(origin))
        title = f"Backward produces {_kind_word(origin.kind)} in {origin.op.split(' ')[0]}"
    else:
        title = f"NaN/Inf appear in {location_of(loc)}"
    if loc.first_module is not None:
        path, kind = loc.first_module
        lines.append(f"first module (in execution order) whose output is non-finite while its input was finite: "
                     f"{display_path(path)} ({kind})")
    if loc.nonfinite_grads:
        lines.append(f"{len(loc.nonfinite_grads)} parameter tensors get non-finite gradients, the first "
                     f"{display_path(loc.nonfinite_grads[0])}")
    return title, lines
