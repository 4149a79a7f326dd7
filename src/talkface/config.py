"""The one config loader: params.yaml is read once, each stage takes its typed section.

Usage::

    params = load_params()                       # dict of the whole params.yaml
    cfg = section(params, "crop", CropConfig)    # a dataclass; unknown or missing keys are an error

Sections are plain dataclasses declared next to the code that uses them, so a newcomer reads the parameter where it
acts. Nested dataclasses are built recursively.
"""

from __future__ import annotations

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


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Build dataclass `cls` from `values`, strictly: every field without default must be given, no extra keys."""
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
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing key '{name}'")
            continue
        kwargs[name] = _coerce(hints.get(name, Any), values[name], f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, where)
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
            return [build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """The typed section `name` of the params dict."""
    if name not in params:
        raise ConfigError(f"params.yaml has no section '{name}'")
    return build(cls, params[name], name)


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
