"""Configuration: YAML file -> typed dataclass -> the functions that use it.

* :func:`from_dict` builds a (nested) dataclass from a mapping, strictly: an unknown key is a
  :class:`~llmskel.errors.ConfigError` that names the key, suggests the closest valid one and lists
  all valid keys; a value outside a ``Literal[...]`` lists the allowed values; a wrong type says
  which key and what was expected.
* :func:`load_config` reads YAML with ``yaml.safe_load`` (never the unsafe loader), applies
  command-line overrides ``a.b.c=value`` (values parsed as YAML scalars, so ``lr=0.1``,
  ``epochs=3``, ``parts=[head,hand]`` work) and returns the dataclass.
* :func:`to_dict` / :func:`save_config` write the resolved config back (saved next to every run).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; valid keys: {', '.join(valid)}"


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"config key {key!r} may not be null")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"config key {key!r}: value {value!r} fits none of {tp}"
        )
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"config key {key!r} has invalid value {value!r}; valid values: {', '.join(map(repr, allowed))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key {key!r} needs {len(args)} values, got {len(value)}")
            return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        conv = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(conv) if origin is tuple or tp is tuple else conv
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)  # YAML reads 1e-4 as a string
                except ValueError:
                    pass
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly (see the module docstring)."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    valid = list(fields)
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            where = f"section {prefix!r}" if prefix else "the top level"
            raise ConfigError(f"unknown config key {full!r} in {where}{_suggest(str(key), valid)}")
        kwargs[key] = _convert(value, hints[key], full)
    try:
        obj = cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"config section {prefix or '<top>'!r}: {e}") from None
    post = getattr(obj, "validate", None)
    if callable(post):
        post()
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict of YAML/JSON-able values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["optim.lr=0.1", "epochs=3"]`` -> nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (for example optim.lr=0.05)")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier override of {p!r}")
        node[parts[-1]] = value
    return out


def deep_update(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        with open(p, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
    # ``base: other.yaml`` inherits from another file (relative to this one)
    base = data.pop("base", None)
    if base:
        data = deep_update(read_yaml(p.parent / base), data)
    return data


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    data = read_yaml(path) if path else {}
    data = deep_update(data, parse_overrides(overrides))
    return from_dict(cls, data)


def save_config(obj: Any, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(obj), f, sort_keys=False)
