"""Thresholds and budgets: packaged defaults, the repo's pyproject, then --config.

The packaged ``configs/default.yaml`` defines every key and its type. Overrides
may only set keys that exist there, with a value of a compatible type; anything
else is a :class:`ConfigError` naming the key, raised before any check runs.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from dldoctor.core.errors import ConfigError

PROFILES = ("quick", "standard", "thorough")

#: libyaml's parser when PyYAML was built with it (about ten times faster than the
#: pure-Python one, which otherwise dominates a stage-1 run on a small model).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader either way


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
    return values


def _check_type(key: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"config key {key!r} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return value
    return value


def merge(base: dict[str, Any], override: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``, validating keys and types."""
    if not isinstance(override, Mapping):
        raise ConfigError(f"{where}: expected a table of settings, got {override!r}")
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
            if key == "profiles":
                merged[key] = _merge_profiles(base[key], value, where)
            else:
                merged[key] = merge(base[key], value, where, dotted + ".")
        else:
            merged[key] = _check_type(dotted, base[key], value)
    return merged


def _merge_profiles(base: dict[str, Any], value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: 'profiles' must be a table")
    merged = copy.deepcopy(base)
    for name, body in value.items():
        if name not in PROFILES:
            raise ConfigError(f"{where}: unknown profile {name!r}", hint=f"Profiles: {', '.join(PROFILES)}")
        merged[name] = {**merged.get(name, {}), **(body or {})}
    return merged


def _pyproject_table(target_dir: Path) -> tuple[dict[str, Any], str] | None:
    """Find ``[tool.dldoctor]`` in the nearest pyproject.toml at or above target_dir."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    for folder in [target_dir, *target_dir.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{candidate}: cannot read it as TOML: {exc}") from None
            table = data.get("tool", {}).get("dldoctor")
            return (table, str(candidate)) if table is not None else None
    return None


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration of one run: a nested dict of plain values."""

    values: Mapping[str, Any]
    profile: str = "standard"
    sources: tuple[str, ...] = ()

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level section (e.g. ``forward_pass``), with the profile applied."""
        return self.values[name]

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
    """Resolve the configuration: defaults, then pyproject, then --config, then the profile."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}", hint=f"Use one of: {', '.join(PROFILES)}")
    values = default_config()
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
        values = merge(values, loaded, str(path))
        sources.append(str(path))
    tier = values.get("profiles", {}).get(profile) or {}
    values = merge(values, tier, f"profile {profile!r}")
    return Config(values=values, profile=profile, sources=tuple(sources))
