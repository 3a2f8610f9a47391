"""Frozen-dataclass configs built from YAML files and `key=value` overrides, checked at the boundary."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A user-supplied configuration is wrong; the message says where and what would be right."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _number(value: Any) -> Any:
    """YAML 1.1 reads `1e6` as a string: accept numeric strings where a number is expected."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming `where`."""
    if tp in (int, float):
        value = _number(value)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(tp)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of {_describe(item_type)}, got {value!r}")
        return tuple(_coerce(item, item_type, f"{where}[{i}]") for i, item in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported config type {_describe(tp)}")


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """Parse `key=value` strings; values are read as YAML scalars or lists (`sizes=[64,64]`)."""
    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return overrides


def build_config(cls: type[C], values: dict[str, Any], source: str = "config") -> C:
    """Make a `cls` from `values`, rejecting unknown keys and values of the wrong type."""
    types_by_name = _field_types(cls)
    unknown = sorted(set(values) - set(types_by_name))
    if unknown:
        valid = ", ".join(sorted(types_by_name))
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; valid keys: {valid}")
    coerced = {k: _coerce(v, types_by_name[k], f"{source}: key '{k}'") for k, v in values.items()}
    try:
        config = cls(**coerced)
    except ValueError as error:  # __post_init__ range checks
        raise ConfigError(f"{source}: {error}") from None
    return config


def load_json(path: str | Path) -> Any:
    """Read a JSON file that is known to exist, with a parse error that names the file."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def resolve_config(cls: type[C], yaml_path: str | Path | None, overrides: list[str] | None) -> C:
    """Defaults, then the YAML file, then `--set key=value` overrides (later wins)."""
    return resolve_values(cls, yaml_path, parse_overrides(overrides), "--set")


def resolve_values(cls: type[C], yaml_path: str | Path | None, overrides: dict[str, Any], source: str) -> C:
    """Defaults, then the YAML file, then `overrides` (later wins); errors name the file or `source`."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        file_values = load_yaml(yaml_path)
        build_config(cls, file_values, source=str(yaml_path))  # name the file in errors
        values.update(file_values)
    build_config(cls, overrides, source=source)
    values.update(overrides)
    return build_config(cls, values, source=source)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-ready dict of a config dataclass (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
