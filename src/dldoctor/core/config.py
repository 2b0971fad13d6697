"""Thresholds and budgets: packaged defaults, the repo's pyproject, then --config.

The packaged ``configs/default.yaml`` defines every key and its type; the table in
:mod:`dldoctor.core.config_schema` gives each key its allowed range. Every layer
(the defaults themselves, pyproject, ``--config``, profiles and the command-line
options merged by the runner) goes through :func:`merge`, which accepts only keys
that exist, values of a compatible type, and values inside the key's range;
anything else is a :class:`ConfigError` naming where it came from, the key, the
value and what it must be, raised before any check runs (exit 2).

Installed plugins add their own sections (a check's ``config`` class attribute): the
registry registers their defaults here and their rules in ``config_schema`` when it
loads them, and :func:`load_config` loads them first, so every layer may set their keys.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dldoctor.core.config_schema import violation
from dldoctor.core.errors import ConfigError

PROFILES = ("quick", "standard", "thorough")

#: libyaml's parser when PyYAML was built with it (about ten times faster than the
#: pure-Python one, which otherwise dominates a stage-1 run on a small model).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a safe loader either way


def default_config() -> dict[str, Any]:
    """The packaged defaults, as a fresh nested dict (parsed once per process)."""
    return copy.deepcopy(_packaged_defaults())


@functools.lru_cache(maxsize=1)
def _packaged_defaults() -> dict[str, Any]:
    """The packaged defaults, parsed.

    ``configs/default.yaml`` holds the run-wide settings; each check keeps its
    thresholds in ``configs/checks/<section>.yaml`` (top-level keys are sections),
    so adding a check touches its own files only. A section may be defined once.
    """
    folder = resources.files("dldoctor").joinpath("configs")
    values = _parse(folder.joinpath("default.yaml").read_text()) or {}
    checks = folder.joinpath("checks")
    if checks.is_dir():
        for item in sorted(checks.iterdir(), key=lambda p: p.name):
            if not item.name.endswith(".yaml"):
                continue
            for section, body in (_parse(item.read_text()) or {}).items():
                if section in values:
                    raise RuntimeError(f"config section {section!r} defined twice (configs/checks/{item.name})")
                values[section] = body
    _check_defaults(values)
    return values


def _check_defaults(values: dict[str, Any]) -> None:
    """Hold the packaged defaults and profiles to the schema, as any override is.

    A default outside its own range would be a bug of dldoctor's: it fails loudly here,
    once per process, rather than as a strange diagnosis later.
    """
    sections = {k: v for k, v in values.items() if k != "profiles"}
    merge(sections, sections, "packaged defaults")
    for name, tier in (values.get("profiles") or {}).items():
        merge(sections, tier or {}, f"packaged defaults (profiles.{name})")


def _show(value: Any) -> str:
    """A value as the user wrote it: ``-5``, ``0.5``, ``nan``, ``true``, ``'fast'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _check_type(key: str, default: Any, value: Any, where: str = "") -> Any:
    """``value`` converted to the type of ``default`` (an int default takes 3.0 as 3).

    Raises:
        ConfigError: when the value has another type, naming where and the key.
    """
    at = f"{where}: " if where else ""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{at}config key {key!r} must be true or false, got {_show(value)}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{at}config key {key!r} must be a number, got {_show(value)}")
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{at}config key {key!r} must be a whole number, got {_show(value)}")
        try:
            return type(default)(value)
        except OverflowError:  # an integer beyond a float's range (YAML and TOML allow them)
            raise ConfigError(f"{at}config key {key!r} is too large: {_show(value)}") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{at}config key {key!r} must be a string, got {_show(value)}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{at}config key {key!r} must be a list, got {_show(value)}")
        return value
    return value


def _check_value(key: str, default: Any, value: Any, where: str) -> Any:
    """``value`` of the default's type and inside the key's range (see ``config_schema``).

    Raises:
        ConfigError: naming where the value came from, the key, the value and the range,
            e.g. ``--config bad.yaml: run.check_timeout_s = -5 is out of range: must be in (0, 604800]``.
    """
    typed = _check_type(key, default, value, where)
    problem = violation(key, typed)
    if problem is not None:
        raise ConfigError(f"{where}: {key} = {_show(value)} {problem}",
                          hint=f"The default is {_show(default)}; the packaged configs/*.yaml explain each key.")
    return typed


def merge(base: dict[str, Any], override: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``, validating keys, types and ranges.

    Args:
        base: the settings so far (nested dicts); defines which keys exist and their types.
        override: the layer to apply (a nested mapping, as read from YAML or TOML).
        where: where the layer came from, for messages (``--config ci.yaml``).
        prefix: the dotted path of ``base`` inside the whole config ("" at the top).

    Returns:
        A new nested dict; ``base`` is left unchanged.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or outside its range.
    """
    if not isinstance(override, Mapping):
        what = f"{prefix.rstrip('.')!r} must be" if prefix else "expected"
        raise ConfigError(f"{where}: {what} a table of settings, got {_show(override)}")
    merged = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(
                f"{where}: unknown config key {dotted!r}",
                hint=f"Known keys{' under ' + prefix.rstrip('.') if prefix else ''}: {known}",
            )
        if isinstance(base[key], dict):
            if key == "profiles" and not prefix:
                sections = {k: v for k, v in base.items() if k != "profiles"}
                merged[key] = _merge_profiles(base[key], value, where, sections)
            else:
                merged[key] = merge(base[key], value, where, dotted + ".")
        else:
            merged[key] = _check_value(dotted, base[key], value, where)
    return merged


def _merge_profiles(base: dict[str, Any], value: Any, where: str, sections: dict[str, Any]) -> dict[str, Any]:
    """Apply overrides of the profiles; each tier's settings are checked now, like any other.

    A tier is only merged into the settings when it is selected, so a bad value in
    another tier would otherwise pass unnoticed until someone runs that profile.
    """
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: 'profiles' must be a table")
    merged = copy.deepcopy(base)
    for name, body in value.items():
        if name not in PROFILES:
            raise ConfigError(f"{where}: unknown profile {name!r}", hint=f"Profiles: {', '.join(PROFILES)}")
        body = body or {}
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: profiles.{name} must be a table of sections, got {_show(body)}")
        checked = merge(sections, body, f"{where} (profiles.{name})")
        merged[name] = {**merged.get(name, {}), **_pick(checked, body)}
    return merged


def _pick(checked: Mapping[str, Any], like: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``checked`` at the keys of ``like``: a layer's own keys, type-converted."""
    return {k: _pick(checked[k], v) if isinstance(v, Mapping) else checked[k] for k, v in like.items()}


def option_overrides(*options: tuple[str, str, Any]) -> tuple[tuple[str, Any], ...]:
    """Config overrides from a command's options, each held to its key's type and range now.

    The runner merges these like any layer; checking them here as well lets the message
    name the option the user typed rather than the config key alone.

    Args:
        *options: ``(option, dotted key, value)``, e.g. ``("--steps", "overfit.steps", 0)``;
            a value of None (option not given) is left out.

    Returns:
        ``(dotted key, value)`` pairs of the options given, for ``RunOptions.overrides``.

    Raises:
        ConfigError: e.g. ``--steps: overfit.steps = 0 is out of range: must be >= 1 (steps)``.
    """
    defaults = _packaged_defaults()
    out = []
    for option, dotted, value in options:
        if value is None:
            continue
        node: Any = defaults
        for part in dotted.split("."):
            node = node[part]
        out.append((dotted, _check_value(dotted, node, value, option)))
    return tuple(out)


def _nearest_tool_table(folder: Path) -> tuple[dict[str, Any], Path] | None:
    """``[tool.dldoctor]`` of the nearest pyproject.toml at or above ``folder``, and that file;
    None when the nearest one has no such table (or there is none)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    for candidate in (f / "pyproject.toml" for f in [folder, *folder.parents]):
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{candidate}: cannot read it as TOML: {exc}") from None
            table = data.get("tool", {}).get("dldoctor")
            return (table, candidate) if table is not None else None
    return None


def _pyproject_table(target_dir: Path) -> tuple[dict[str, Any], str] | None:
    """Find ``[tool.dldoctor]`` in the nearest pyproject.toml at or above target_dir."""
    found = _nearest_tool_table(target_dir)
    if found is None:
        return None
    table, candidate = found
    # ``targets`` names the files ``pytest --dldoctor`` diagnoses: not a run setting.
    return {k: v for k, v in table.items() if k != "targets"}, str(candidate)


def pyproject_targets(folder: Path) -> list[str]:
    """``[tool.dldoctor] targets`` of the nearest pyproject.toml at or above ``folder`` (the
    training files ``pytest --dldoctor`` diagnoses), relative to that file's folder; [] if none."""
    found = _nearest_tool_table(folder)
    if found is None:
        return []
    table, candidate = found
    targets = table.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ConfigError(f"{candidate} [tool.dldoctor] targets: a list of file paths, got {targets!r}")
    return [str(candidate.parent / t) for t in targets]


#: The config sections the loaded plugins declare (section -> key -> default); the
#: registry sets them when it loads plugins (see ``config_schema.parse_declaration``).
_plugin_defaults: dict[str, dict[str, Any]] = {}


def set_plugin_defaults(sections: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the loaded plugins' sections; a built-in section cannot be replaced or shadowed."""
    clash = sorted(set(sections) & set(_packaged_defaults()))
    if clash:
        raise ValueError(f"plugin config sections may not replace built-in sections: {clash}")
    _plugin_defaults.clear()
    _plugin_defaults.update(copy.deepcopy({k: dict(v) for k, v in sections.items()}))


def builtin_sections() -> frozenset[str]:
    """The names of the packaged (built-in) config sections, ``profiles`` included."""
    return frozenset(_packaged_defaults())


def plugin_defaults() -> dict[str, dict[str, Any]]:
    """The loaded plugins' sections with their defaults, as a fresh nested dict."""
    return copy.deepcopy(_plugin_defaults)


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration of one run: a nested dict of plain values."""

    values: Mapping[str, Any]
    profile: str = "standard"
    sources: tuple[str, ...] = ()

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level section (e.g. ``forward_pass``), with the profile applied."""
        section: Mapping[str, Any] = self.values[name]
        return section

    def get(self, dotted: str) -> Any:
        node: Any = self.values
        for part in dotted.split("."):
            node = node[part]
        return node


def load_config(
    target_dir: Path | None = None,
    config_file: Path | None = None,
    profile: str = "standard",
) -> Config:
    """Resolve the configuration: defaults, then pyproject, then --config, then the profile.

    The defaults are the packaged ones plus the sections of the installed plugins
    (loaded here, unless ``DLDOCTOR_DISABLE_PLUGIN_AUTOLOAD`` is set).
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}", hint=f"Use one of: {', '.join(PROFILES)}")
    from dldoctor.core.registry import load_plugins

    load_plugins()  # their sections join the defaults, so every layer below may set their keys
    values = {**default_config(), **plugin_defaults()}
    sources = ["defaults"]
    if target_dir is not None:
        found = _pyproject_table(target_dir)
        if found is not None:
            values = merge(values, found[0], f"{found[1]} [tool.dldoctor]")
            sources.append(found[1])
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = _parse(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        values = merge(values, loaded, f"--config {path}")
        sources.append(str(path))
    tier = values.get("profiles", {}).get(profile) or {}
    values = merge(values, tier, f"profile {profile!r}")
    return Config(values=values, profile=profile, sources=tuple(sources))
