"""The allowed range of every config key: one table, checked at every layer.

Types come from the packaged defaults (``configs/default.yaml`` and
``configs/checks/*.yaml``); this module adds what a type cannot say: that a budget
is positive, a step count at least 1, a share within [0, 1], a seed a valid NumPy
seed, a string one of a few choices. :func:`dldoctor.core.config.merge` checks each
value it takes (defaults, pyproject, ``--config``, profiles, command-line options)
against :data:`SCHEMA`, so a value that would make a check read nonsense (a
negative timeout, zero steps) stops the run with exit 2 before anything runs.

Each entry is chosen from the key's comment in the YAML and its use in the code:
``0`` is allowed where it documents "off" or "use the spec's", bounds are open
where the boundary itself breaks the computation (a zero timeout, a log of 0).
A test asserts that every leaf key of the defaults has an entry here and that
every default satisfies it, so a key cannot be added without its range.

This module imports nothing heavy: it runs on every command's start-up path.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

#: NumPy's legacy seeding takes 32-bit unsigned seeds; a seed must be valid everywhere.
MAX_SEED = 2**32 - 1


def _number(x: float) -> str:
    """``1``, ``0.5``, ``1e-07``, ``4294967295``: the bound as a reader would write it."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric interval, open or closed at either end (None: unbounded that way).

    Attributes:
        min: lower bound, or None.
        max: upper bound, or None.
        min_inclusive: whether ``min`` itself is allowed.
        max_inclusive: whether ``max`` itself is allowed.
        note: what the number is or what a boundary value means, shown in the
            message after the range (e.g. ``seconds``, ``0 = the spec's``).
    """

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    note: str = ""

    #: How a value breaking the rule is described in a message.
    failure = "is out of range"

    def allows(self, value: Any) -> bool:
        """True when ``value`` is a finite number inside the interval."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        # NaN compares false with everything and infinity is never a usable budget or
        # threshold (timers overflow, shares stop meaning anything): both are refused.
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
            return False
        return not (self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)))

    def describe(self) -> str:
        """``must be > 0 (seconds)``, ``must be in [0, 1]``: the range as the fix to apply."""
        if self.min is not None and self.max is not None:
            text = (f"must be in {'[' if self.min_inclusive else '('}{_number(self.min)}, "
                    f"{_number(self.max)}{']' if self.max_inclusive else ')'}")
        elif self.min is not None:
            text = f"must be {'>=' if self.min_inclusive else '>'} {_number(self.min)}"
        elif self.max is not None:
            text = f"must be {'<=' if self.max_inclusive else '<'} {_number(self.max)}"
        else:
            text = "must be a finite number"
        return f"{text} ({self.note})" if self.note else text


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a few strings (compared exactly, as the code compares them)."""

    options: tuple[str, ...]
    note: str = ""

    failure = "is not allowed"

    def allows(self, value: Any) -> bool:
        """True when ``value`` is one of the options, exactly."""
        return isinstance(value, str) and value in self.options

    def describe(self) -> str:
        """``must be one of: median, halving, none``."""
        text = f"must be one of: {', '.join(self.options)}"
        return f"{text} ({self.note})" if self.note else text


@dataclasses.dataclass(frozen=True)
class Flag:
    """A switch: true or false (the type check already guarantees it; listed for completeness)."""

    failure = "is not a switch"

    def allows(self, value: Any) -> bool:
        """True for ``True`` and ``False`` only."""
        return isinstance(value, bool)

    def describe(self) -> str:
        """``must be true or false``."""
        return "must be true or false"


@dataclasses.dataclass(frozen=True)
class Size:
    """A memory size: bytes or a number with a unit (``8GiB``, ``500MB``), or empty for automatic."""

    failure = "is not a size"

    def allows(self, value: Any) -> bool:
        """True for an empty string (automatic) or a size :func:`parse_budget` reads as at least 1 byte."""
        # The parser lives with the check that uses it; it imports no torch (see its
        # module docstring), and is imported here only when a size is given.
        if isinstance(value, str) and not value.strip():
            return True
        from dldoctor.core.errors import ConfigError
        from dldoctor.runtime.units import parse_budget

        try:
            return parse_budget(value) is not None
        except (ConfigError, OverflowError):  # OverflowError: a number of digits beyond a float
            return False

    def describe(self) -> str:
        """What a size looks like."""
        return ("must be bytes or a size such as 8GiB, 500MB or 2.5G (KiB/MiB/GiB and K/M/G are powers of "
                "1024, kB/MB/GB powers of 1000), or empty for automatic")


Rule = Range | Choice | Flag | Size


# Shorthands for the kinds of value that recur below.
FLAG = Flag()
COUNT = Range(min=1)  # steps, batches, samples, trials: at least one
SHOWN = Range(min=1, note="items listed in the evidence")
SECONDS = Range(min=0, min_inclusive=False, note="seconds")
POSITIVE = Range(min=0, min_inclusive=False)
NON_NEGATIVE = Range(min=0)
SHARE = Range(0, 1, note="a fraction")  # shares, probabilities, confidences
OPEN_SHARE = Range(0, 1, min_inclusive=False, max_inclusive=False, note="a fraction")
SHARE_ABOVE_0 = Range(0, 1, min_inclusive=False, note="a fraction")
SHARE_BELOW_1 = Range(0, 1, max_inclusive=False, note="a fraction")
# A factor that may be 1 (no widening), and a threshold on a ratio that is 1 when
# nothing is wrong (largest over smallest, after over before): at 1 it fires on everything.
RATIO = Range(min=1, note="a factor")
GROWTH = Range(min=1, min_inclusive=False, note="a ratio; 1 = nothing wrong")
ERROR_POINTS = Range(0, 1, note="error points as a fraction: 0.02 = 2 points")
WAIT = Range(0, 7 * 24 * 3600, min_inclusive=False, note="seconds, at most a week")
GFLOP = Range(min=0, min_inclusive=False, note="GFLOP of training steps")


def _section(name: str, **rules: Rule) -> dict[str, Rule]:
    """``_section("run", seed=...)`` -> ``{"run.seed": ...}``: one block per config section."""
    return {f"{name}.{key}": rule for key, rule in rules.items()}


#: Dotted key -> the values it allows. Profiles (``profiles.<tier>.<section>.<key>``)
#: override these same keys and are checked against the same entries.
SCHEMA: Mapping[str, Rule] = {
    **_section(
        "run",
        seed=Range(0, MAX_SEED, note="a seed NumPy accepts"),
        cached_batches=COUNT,
        # Timers overflow beyond ~1e9 s (setitimer, queue timeouts); a week is already
        # far beyond any check or batch.
        check_timeout_s=WAIT,
        batch_deadline_s=WAIT,
        # Below 1, a batch as slow as the slowest measured one would count as a hang.
        batch_deadline_factor=Range(1, 1000, note="times the slowest batch read"),
    ),
    **_section(
        "script",
        min_steps=Range(min=1, note="optimizer steps"),
        after_boundary=Range(min=0, note="optimizer steps"),
        max_steps=Range(min=1, note="optimizer steps"),
        max_backwards=Range(min=1, note="backward() calls"),
        min_share=Range(0, 1, min_inclusive=False, note="a fraction of the watched steps"),
        lr_collapse=Range(0, 1, min_inclusive=False, note="a fraction of the first learning rate"),
        hang_s=Range(min=1, note="seconds"),
    ),
    **_section(
        "batch_mixing",
        samples=Range(min=2, note="a mix needs other samples in the slice"),
        rows=COUNT,
        min_relative_gradient=POSITIVE,
        strong_relative_gradient=POSITIVE,
        localisation_tolerance=POSITIVE,
    ),
    **_section(
        "data",
        max_samples=Range(min=10, note="rows per split"),
        max_read_seconds=SECONDS,
        feature_budget=COUNT,
        token_buckets=COUNT,
        folds=Range(min=2, note="cross-validation folds"),
    ),
    **_section(
        "class_imbalance",
        ratio_warn=GROWTH,
        ratio_info=GROWTH,
        # Fewer than 3 would not fit the largest, "...", and the two smallest.
        classes_shown=Range(min=3, note="classes listed in the evidence"),
    ),
    **_section(
        "distribution_shift",
        domain_samples=COUNT,
        auc_warn=Range(0.5, 1, note="a ROC AUC; 0.5 is chance"),
        auc_info=Range(0.5, 1, note="a ROC AUC; 0.5 is chance"),
        min_z=NON_NEGATIVE,
        feature_smd=POSITIVE,
        preprocess_std_ratio=GROWTH,
        label_tvd_warn=SHARE,
        label_tvd_info=SHARE,
        label_p=SHARE_ABOVE_0,
        target_smd_warn=POSITIVE,
        features_shown=SHOWN,
    ),
    **_section(
        "label_noise",
        max_samples=COUNT,
        min_samples=COUNT,
        dimensions=COUNT,
        neighbours=COUNT,
        user_model=FLAG,
        user_model_epochs=COUNT,
        user_model_max_gflop=GFLOP,
        user_model_max_seconds=SECONDS,
        use_cleanlab=FLAG,
        noise_warn=SHARE,
        noise_info=SHARE,
        min_skill=SHARE,
        min_confidence=SHARE,
        min_confident_disagreement=SHARE,
        min_local_confirmation=SHARE,
        conflict_warn=SHARE,
        conflict_info=SHARE,
        pairs_shown=SHOWN,
        samples_shown=SHOWN,
    ),
    **_section(
        "leakage",
        near_ratio=SHARE_ABOVE_0,  # nearest over second-nearest distance is at most 1
        near_distance=POSITIVE,
        near_queries=COUNT,
        fraction_warn=SHARE,
        fraction_info=SHARE,
        pairs_shown=SHOWN,
    ),
    **_section(
        "group_leakage",
        fraction_warn=SHARE,
        groups_shown=SHOWN,
        hint=FLAG,
        max_train_rows=Range(min=16, note="rows; two halves of at least 8"),
        max_held_rows=COUNT,
        min_cluster_size=Range(min=2, note="rows"),
        persistence=GROWTH,
        sub_class_share=SHARE_ABOVE_0,
        min_clusters=COUNT,
        structure_warn=SHARE,
        structure_info=SHARE,
        occupancy_min=SHARE,
        examples_shown=SHOWN,
    ),
    **_section(
        "too_little_data",
        class_min_warn=Range(min=0, note="samples; 0 = off"),
        params_per_sample_warn=POSITIVE,
        params_per_sample_info=POSITIVE,
        held_out_min_info=Range(min=0, note="samples; 0 = off"),
        cross_validation_below=Range(min=0, note="samples; 0 = never suggest it"),
        fitted_error=SHARE,
        fitted_min_steps=Range(min=0, note="steps"),
        train_loss_fall=OPEN_SHARE,
        gap_z=Range(min=0, note="standard errors"),
        ordinary_gap=NON_NEGATIVE,
    ),
    **_section(
        "eval_mode",
        tolerance=POSITIVE,
        # Batch norm in training mode needs more than one value per channel.
        samples=Range(min=2, note="samples of the first batch"),
    ),
    **_section(
        "bias_variance",
        # In error points for error rates, but in the loss's own units for losses: no upper bound.
        min_component=NON_NEGATIVE,
        warn_component=NON_NEGATIVE,
        gap_z=Range(min=0, note="standard errors"),
        train_loss_fall=OPEN_SHARE,
    ),
    **_section(
        "epochs",
        val_rise_abs=NON_NEGATIVE,
        val_rise_rel=NON_NEGATIVE,
        diverge_factor=POSITIVE,
        plateau_window=SHARE_ABOVE_0,
        plateau_rel=NON_NEGATIVE,
        plateau_floor=SHARE,
    ),
    **_section(
        "training",
        epochs=Range(min=1, note="epochs"),
        max_steps=Range(min=1, note="steps"),
        max_gflop=GFLOP,
        min_steps=Range(min=1, note="steps"),
        max_seconds=SECONDS,
        eval_batches=COUNT,
        data_curve=FLAG,
    ),
    **_section(
        "baselines",
        margin=ERROR_POINTS,
        linear_steps=COUNT,
        max_samples=COUNT,
    ),
    **_section(
        "reference",
        tolerance=Range(min=0, note="in the metric's units"),
    ),
    **_section(
        "forward_pass",
        trace_modules_shown=SHOWN,
    ),
    **_section(
        "gradient_flow",
        batches=COUNT,
        dead_layer_zero_frac=SHARE_ABOVE_0,
        majority_fraction=SHARE,
        max_listed=SHOWN,
        inert_loss_change=POSITIVE,
    ),
    **_section(
        "optimizer_contract",
        descent_cosine=Range(-1, 1, note="a cosine"),
        max_listed=SHOWN,
    ),
    **_section(
        "initialization",
        batches=COUNT,
        loss_excess_warn_nats=Range(min=0, min_inclusive=False, note="nats"),
        loss_excess_error_nats=Range(min=0, min_inclusive=False, note="nats"),
        # Ratios to the loss of predicting 0: healthy inits measure 1.0-1.2.
        loss_ratio_warn=GROWTH,
        loss_ratio_error=GROWTH,
        vanish_total=OPEN_SHARE,
        vanish_gain=SHARE_ABOVE_0,
        vanish_total_error=OPEN_SHARE,
        explode_total=GROWTH,
        explode_gain=GROWTH,
        explode_total_error=GROWTH,
        symmetry_ratio=OPEN_SHARE,
        saturated_warn=SHARE,
        dead_warn=SHARE,
        dead_error=SHARE,
        dead_min_values=COUNT,
        residual_correlation=Range(0, 1, note="a correlation"),
    ),
    **_section(
        "input_scale",
        batches=COUNT,
        rms_warn=POSITIVE,
        rms_info=POSITIVE,
        rms_tiny_warn=POSITIVE,
        rms_tiny_info=POSITIVE,
        offset_warn=POSITIVE,
        offset_info=POSITIVE,
        disparity_warn=GROWTH,
        disparity_info=GROWTH,
        # Pixels are judged in (max_pixel_min, 255]: the bound must leave that interval non-empty.
        max_pixel_min=Range(0, 255, max_inclusive=False, note="an 8-bit pixel value"),
        features_shown=SHOWN,
    ),
    **_section(
        "label_range",
        chance_alpha=OPEN_SHARE,
        wide_head_ratio=GROWTH,
    ),
    **_section(
        "loss_broadcast",
        mixing_threshold=POSITIVE,
    ),
    **_section(
        "loss_contract",
        row_sum_tolerance=POSITIVE,
        stationary_rel=OPEN_SHARE,
        sign_margin=OPEN_SHARE,
    ),
    **_section(
        "loss_inputs",
        prob_row_tolerance=POSITIVE,
        low_precision_tolerance=POSITIVE,
        logits_min_exp_row_dev=POSITIVE,
        min_values_for_range=COUNT,
        confirm_steps=COUNT,
    ),
    **_section(
        "training_experiments",
        lr_factor=Range(min=1, min_inclusive=False, note="a factor above 1"),
        min_share=SHARE_BELOW_1,
        min_outside=SHARE_ABOVE_0,
    ),
    **_section(
        "output_units",
        steps=COUNT,
        min_samples=COUNT,
    ),
    **_section(
        "lr_finder",
        enabled=FLAG,
        steps=Range(min=3, note="steps: a curve needs a start, a low and a rise"),
        # Learning rates are swept in log space: 0 has no logarithm.
        lr_low=Range(min=0, min_inclusive=False, note="a learning rate"),
        lr_high=Range(min=0, min_inclusive=False, note="a learning rate"),
        margin=RATIO,
        diverge_factor=POSITIVE,
        running_smoothing=SHARE_BELOW_1,
        smooth_fine=Range(min=0, note="half-width in steps; 0 = no smoothing"),
        smooth_coarse=Range(min=0, note="half-width in steps; 0 = no smoothing"),
        start_steps=COUNT,
        min_points=Range(min=3, note="points: a start, a low and a rise"),
        min_drop=SHARE_BELOW_1,
        noise_sds=NON_NEGATIVE,
        good_drop=SHARE_ABOVE_0,
        min_rise=NON_NEGATIVE,
        start_fraction=OPEN_SHARE,
        max_spread_decades=Range(min=0, min_inclusive=False, note="decades"),
        confident=SHARE,
        away_factor=GROWTH,
    ),
    **_section(
        "memory_model",
        budget=Size(),
        safety_margin=SHARE_BELOW_1,
        real_probe=FLAG,
        real_probe_max_trials=COUNT,
        real_probe_tolerance=OPEN_SHARE,
        real_probe_max_batch=Range(1, 65535, note="a batch size within the CUDA grid limit"),
    ),
    **_section(
        "numerics",
        batches=COUNT,
        step_check=FLAG,
        step_lr_scale=Range(0, 1, min_inclusive=False, max_inclusive=False,
                            note="a step this much smaller than the weights"),
    ),
    **_section(
        "overfit",
        steps=Range(min=1, note="steps"),
        experiment_steps=Range(min=1, note="steps"),
        nan_recheck_stretch=Range(min=1, note="a factor"),
        nan_recheck_max_steps=Range(min=1, note="steps"),
        lr=Range(min=0, note="a learning rate; 0 = the spec's"),
        batch_size=Range(min=0, note="samples; 0 = the loader's batch"),
        converged_rel=OPEN_SHARE,
        converged_abs=NON_NEGATIVE,
        explode_factor=GROWTH,
        up_tol=NON_NEGATIVE,
        plateau_rel=SHARE,
        stall_rel=SHARE,
        osc_rel_std=NON_NEGATIVE,
        osc_sign_changes=SHARE,
        fix_factor=GROWTH,
        capacity_samples=COUNT,
        # A factor of 1 would build the same model; growth must allow the 2x it requires.
        capacity_factor=Range(min=2, note="a width multiplier"),
        capacity_max_growth=Range(min=2, note="the experiment requires at least 2x the parameters"),
    ),
    **_section(
        "gradient_dynamics",
        vanishing_ratio=OPEN_SHARE,
        exploding_growth=GROWTH,
        dead_frac=SHARE,
    ),
    **_section(
        "label_signal",
        heldout_margin=SHARE,
        batches=Range(min=2, note="the several-batch experiment"),
        steps=COUNT,
        real_vs_permuted=SHARE_ABOVE_0,
        control_lr_scale=OPEN_SHARE,
        heldout_z=Range(min=0, note="standard errors"),
        min_samples=Range(min=1, note="samples"),
    ),
    **_section(
        "memory_leak",
        warmup_fraction=SHARE_BELOW_1,
        warmup_min_steps=Range(min=0, note="steps"),
        # Each half of the window needs two points for a slope.
        min_steps=Range(min=4, note="steps after warm-up"),
        confidence=OPEN_SHARE,
        persist_ratio=SHARE,
        min_bytes_per_step=Range(min=0, note="bytes per step"),
        min_bytes_per_step_rss=Range(min=0, note="bytes per step"),
        horizon_steps=COUNT,
    ),
    **_section(
        "input_pipeline",
        min_steps=COUNT,
        bottleneck_fraction=SHARE_ABOVE_0,
        attribution_fraction=SHARE_ABOVE_0,
        io_bound_cpu_fraction=SHARE_ABOVE_0,
        item_samples=COUNT,
        item_budget_s=SECONDS,
        preloaded_steps=COUNT,
        batch_scaling=FLAG,
        # Doubling the batch: a step time growing by more than 2x lowers throughput.
        unsaturated_growth=Range(1, 2, note="step-time growth when the batch doubles"),
    ),
    **_section(
        "tune",
        trials=Range(min=1, note="trials"),
        rounds=Range(min=1, note="rounds"),
        epochs=Range(min=1, note="epochs"),
        max_steps=Range(min=1, note="steps"),
        max_gflop=GFLOP,
        min_steps=Range(min=1, note="steps"),
        max_seconds=SECONDS,
        eval_batches=COUNT,
        keep_fraction=SHARE_ABOVE_0,
        min_keep=COUNT,
        pad=NON_NEGATIVE,
        min_width=SHARE_ABOVE_0,
        focus_share=SHARE,
        focus_widen=RATIO,
        grid_points=Range(min=2, note="values per range: both ends"),
        pruner=Choice(("median", "halving", "none")),
        # Successive halving's min_resource must be at least 1.
        prune_warmup_epochs=Range(min=1, note="epochs"),
        prune_startup_trials=Range(min=0, note="trials"),
        # The range is value / span to value x span: a span of 1 leaves nothing to search.
        default_span=Range(min=1, min_inclusive=False, note="a factor either side"),
        confirm_seeds=Range(min=0, note="seeds; 0 = no re-training"),
        significance_z=NON_NEGATIVE,
        top_trials=Range(min=2, note="trials: a spread needs two"),
    ),
}


def rule_for(dotted: str) -> Rule | None:
    """The entry of a dotted key (``run.seed``, or a loaded plugin's key), or None for a key without one."""
    return SCHEMA.get(dotted) or _plugin_rules.get(dotted)


def violation(dotted: str, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``dotted`` (the range to meet), or None when it is.

    Args:
        dotted: the key, e.g. ``run.check_timeout_s`` (for a profile's value, the key it
            overrides, without ``profiles.<tier>.``).
        value: the value, already of the default's type.

    Returns:
        None when the value is allowed (or the key has no entry), else what is wrong
        and the rule to meet, e.g. ``is out of range: must be > 0 (seconds)``.
    """
    rule = rule_for(dotted)
    if rule is None or rule.allows(value):
        return None
    return f"{rule.failure}: {rule.describe()}"


# ----------------------------------------------------------------- plugins' keys
#
# A plugin check declares its config section as a class attribute:
#
#     config = {"my_check": {"threshold": (0.5, Range(0, 1)), "verbose": False}}
#
# each key a ``(default, rule)`` pair (rule: Range, Choice, Flag or Size) or a bare
# default (then only its type is checked). The registry parses the declaration
# (:func:`parse_declaration`) when the plugin loads and registers the rules here
# (:func:`set_plugin_rules`), so that ``--config``, pyproject and profiles check the
# plugin's keys with the same messages as built-in keys.

_plugin_rules: dict[str, Rule] = {}

#: The types a default may have (those the merge knows how to check).
DEFAULT_TYPES = (bool, int, float, str, list)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def set_plugin_rules(rules: Mapping[str, Rule]) -> None:
    """Replace the loaded plugins' rules (dotted key -> rule); built-in keys cannot be replaced."""
    clash = sorted(set(rules) & set(SCHEMA))
    if clash:
        raise ValueError(f"plugin config rules may not replace built-in keys: {clash}")
    _plugin_rules.clear()
    _plugin_rules.update(rules)


def parse_declaration(declared: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Rule]]:
    """Read a check's ``config`` declaration into ``(defaults by section, rules by dotted key)``.

    Raises:
        TypeError: the declaration is not ``{section: {key: (default, rule) | default}}``,
            a name is not an identifier, a default has a type config files cannot hold,
            a rule is not a Range/Choice/Flag/Size, or a default breaks its own rule.
    """
    if not isinstance(declared, Mapping):
        raise TypeError(f"'config' must be a dict of sections, got {type(declared).__name__}")
    defaults: dict[str, dict[str, Any]] = {}
    rules: dict[str, Rule] = {}
    for section, keys in declared.items():
        if not isinstance(section, str) or not _NAME.match(section) or section == "profiles":
            raise TypeError(f"config section {section!r} is not a valid section name (an identifier, not 'profiles')")
        if not isinstance(keys, Mapping) or not keys:
            raise TypeError(f"config section {section!r} must be a non-empty dict of keys")
        defaults[section] = {}
        for key, spec in keys.items():
            dotted = f"{section}.{key}"
            if not isinstance(key, str) or not _NAME.match(key):
                raise TypeError(f"config key {dotted!r} is not a valid key name (an identifier)")
            default, rule = spec if isinstance(spec, tuple) else (spec, None)
            if isinstance(spec, tuple) and len(spec) != 2:
                raise TypeError(f"config key {dotted!r}: declare (default, rule) or a bare default")
            if not isinstance(default, DEFAULT_TYPES):
                raise TypeError(f"config key {dotted!r}: a default of type {type(default).__name__} cannot be "
                                "set from a config file (use bool, int, float, str or list)")
            if rule is not None:
                if not isinstance(rule, (Range, Choice, Flag, Size)):
                    raise TypeError(f"config key {dotted!r}: the rule must be a Range, Choice, Flag or Size, "
                                    f"got {rule!r}")
                if not rule.allows(default):
                    raise TypeError(f"config key {dotted!r}: the default {default!r} {rule.failure}: "
                                    f"{rule.describe()}")
                rules[dotted] = rule
            defaults[section][key] = default
    return defaults, rules
