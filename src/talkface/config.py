"""The one config loader: params.yaml is read once, each stage takes its typed section.

Usage::

    params = load_params()                       # dict of the whole params.yaml
    cfg = section(params, "crop", CropConfig)    # a dataclass; unknown or missing keys are an error
    cfg = section(params, "crop", CropConfig, passed={"fps": 25})   # a value defined once elsewhere, passed down
    cfg = build(DubConfig, {"detector": "haar"}, "dub", defaults=True)  # explicit: dataclass defaults fill the rest

Sections are plain dataclasses declared next to the code that uses them, so a newcomer reads the parameter where it
acts. Nested dataclasses are built recursively. What a stage reads is strict: every key of the dataclass must be in
params.yaml (a dataclass default never stands in silently for a missing key, so the file says every number that changes
results); `defaults=True` is the explicit opt-in for callers without a params file (the CLI, tests).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .paths import repo_root

T = TypeVar("T")


class ConfigError(ValueError):
    """params.yaml does not match what a stage expects."""


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Read params.yaml (default: the repository's) into a dict."""
    path = Path(path) if path is not None else repo_root() / "params.yaml"
    if not path.exists():
        raise ConfigError(f"params file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def build(cls: type[T], values: dict[str, Any], where: str, defaults: bool = False) -> T:
    """Build dataclass `cls` from `values`, strictly: every field must be given and no other key.

    `defaults=True`: a missing field (at any depth) takes the dataclass default instead of being an error. Raises
    ConfigError with one line naming the key ("<where>.<key>").
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name not in values:
            has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
            if not (defaults and has_default):
                raise ConfigError(f"missing key '{where}.{name}'")
            continue
        kwargs[name] = _coerce(hints.get(name, Any), values[name], f"{where}.{name}", defaults)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # __post_init__ checks: one line, with the section's name
        raise ConfigError(f"{where}: {e}") from None


def _coerce(hint: Any, value: Any, where: str, defaults: bool) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, where, defaults)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    origin = typing.get_origin(hint)
    if origin in (list, tuple) and isinstance(value, list):
        args = typing.get_args(hint)
        if origin is tuple:
            return tuple(value)
        if args and dataclasses.is_dataclass(args[0]):
            return [build(args[0], v, f"{where}[{i}]", defaults) for i, v in enumerate(value)]
    return value


def section(params: dict[str, Any], name: str, cls: type[T], passed: dict[str, Any] | None = None,
            defaults: bool = False) -> T:
    """The typed section `name` of the params dict, strictly (see `build`).

    `passed`: values defined once in another section and passed down by the stage, by dotted key inside this section
    ({"fps": 25, "model.k": 5}); such a key must not also be written in this section (two definitions could disagree).
    """
    if name not in params:
        raise ConfigError(f"params.yaml has no section '{name}'")
    values = copy.deepcopy(params[name])
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(values).__name__}")
    for dotted, value in (passed or {}).items():
        *parents, leaf = dotted.split(".")
        node = values
        for i, key in enumerate(parents):
            if key not in node:
                raise ConfigError(f"missing key '{'.'.join([name, *parents[:i + 1]])}'")
            node = node[key]
            if not isinstance(node, dict):
                raise ConfigError(f"{name}.{dotted}: '{key}' is not a mapping")
        if leaf in node:
            raise ConfigError(f"key '{name}.{dotted}' is passed down from another section; remove it from {name}")
        node[leaf] = value
    return build(cls, values, name, defaults)


def get(params: dict[str, Any], dotted: str) -> Any:
    """One value of the params dict by dotted key ("crop.size"); a missing key is a ConfigError naming it."""
    node: Any = params
    for i, key in enumerate(dotted.split(".")):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"missing key '{'.'.join(dotted.split('.')[:i + 1])}'")
        node = node[key]
    return node


def as_dict(cfg: Any) -> dict[str, Any]:
    """A flat dict of a config dataclass, for logging (nested keys joined with '.')."""
    out: dict[str, Any] = {}

    def walk(prefix: str, obj: Any) -> None:
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                walk(f"{prefix}{f.name}.", getattr(obj, f.name))
        else:
            out[prefix[:-1]] = obj

    walk("", cfg)
    return out
