"""Configuration: YAML file -> typed dataclass -> the functions that use it.

* :func:`from_dict` builds a (nested) dataclass from a mapping, strictly: an unknown key is a
  :class:`~llmskel.errors.ConfigError` that names the key, suggests the closest valid one and lists
  all valid keys; a value outside a ``Literal[...]`` lists the allowed values; a wrong type says
  which key and what was expected.
* :func:`load_config` reads YAML with ``yaml.safe_load`` (never the unsafe loader), applies
  command-line overrides ``a.b.c=value`` (values parsed as YAML scalars, so ``lr=0.1``,
  ``epochs=3``, ``parts=[head,hand]`` work) and returns the dataclass. A key given twice in one
  mapping, a ``base:`` chain that loops, an empty file or one that is not a mapping are errors
  naming the file (and line); an error about a key names the file and line where it was set, or
  the command-line override that set it.
* Numeric fields declare their allowed range with :func:`bounded` (``batch_size: int =
  bounded(16, ge=1)``); a value outside it, or a NaN / infinite float, is an error that names the
  key and the range.
* :func:`to_dict` / :func:`save_config` write the resolved config back (saved next to every run).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")


def bounded(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, **kwargs: Any) -> Any:  # fmt: skip
    """A dataclass field whose numeric value must lie in a range (checked by :func:`from_dict`).

    ``None`` values (optional fields) are not checked."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return field_with(default, metadata={"bounds": bounds}, **kwargs)


def field_with(default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    if default is not dataclasses.MISSING:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


_OPS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
        "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}  # fmt: skip


def describe_bounds(bounds: dict[str, float]) -> str:
    """``{"ge": 1}`` -> ``">= 1"``; ``{"ge": 0, "lt": 1}`` -> ``">= 0 and < 1"``."""
    return " and ".join(f"{_OPS[k][0]} {v:g}" for k, v in bounds.items())


def check_bounds(value: Any, bounds: dict[str, float], key: str) -> None:
    if value is None or not bounds:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not all(_OPS[k][1](v, b) for k, b in bounds.items()):
            raise ConfigError(f"config key {key!r} must be {describe_bounds(bounds)}, got {value!r}", key=key)


def suggest(word: str, valid: list[str], what: str = "keys") -> str:
    """`` (did you mean 'x'?); valid keys: a, b, ...``: the tail of every "unknown name" message."""
    close = difflib.get_close_matches(word, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"{hint}; valid {what}: {', '.join(valid)}"


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
                    value = float(value)  # YAML reads 1e-4 as a string
                except ValueError:
                    pass
                else:
                    return _convert(value, float, key)
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}", key=key)
        if not math.isfinite(value):
            raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}", key=key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    return value


def _sections_field(cls: type) -> tuple[dataclasses.Field | None, dict[str, type]]:
    """The field of ``cls`` that holds open, typed sections (``metadata={"sections": callable}``) and
    what the callable returns: {section key: its dataclass}. Such sections are written at the
    level of ``cls`` in YAML (``align:`` beside ``train:``), not under the field's own name."""
    for f in dataclasses.fields(cls):
        if "sections" in f.metadata:
            return f, dict(f.metadata["sections"]())
    return None, {}


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, strictly (see the module docstring)."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    open_field, sections = _sections_field(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f is not open_field}
    valid = list(fields) + sorted(sections)
    kwargs: dict[str, Any] = {}
    given_sections: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key in sections and key not in fields:
            given_sections[key] = _convert(value, sections[key], full)
            continue
        if key not in fields:
            where = f"section {prefix!r}" if prefix else "the top level"
            raise ConfigError(f"unknown config key {full!r} in {where}{suggest(str(key), valid)}", key=full)
        kwargs[key] = _convert(value, hints[key], full)
        check_bounds(kwargs[key], fields[key].metadata.get("bounds", {}), full)
    if open_field is not None:
        kwargs[open_field.name] = given_sections
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
        out = {}
        for f in dataclasses.fields(obj):
            if "sections" in f.metadata:  # open sections sit at this level (see _sections_field)
                out.update({k: to_dict(v) for k, v in getattr(obj, f.name).items()})
            else:
                out[f.name] = to_dict(getattr(obj, f.name))
        return out
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
        earlier = node.get(parts[-1])
        if isinstance(earlier, dict):  # train.epochs=1 then train={...}: merged, the later keys win
            if not isinstance(value, dict):
                raise ConfigError(
                    f"override {item!r} conflicts with an earlier override of keys under {key!r}"
                )
            value = deep_update(earlier, value)
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


Origins = dict[tuple[str, ...], str]  # key path -> "file:line" (or the override that set it)


def _walk_mapping(node: yaml.Node, path: tuple[str, ...], file: str, origins: Origins) -> None:
    """Record where each key is and refuse a key given twice in one mapping (YAML keeps the last)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk_mapping(item, path, file, origins)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key, line = key_node.value, key_node.start_mark.line + 1
        if key in seen:
            where = ".".join((*path, key))
            raise ConfigError(
                f"{file}:{line}: key {where!r} is given twice (first on line {seen[key]}); "
                "YAML would silently keep the last one: remove one of them",
                key=where,
            )
        seen[key] = line
        origins[(*path, key)] = f"{file}:{line}"
        _walk_mapping(value_node, (*path, key), file, origins)


def _read_yaml(path: str | os.PathLike, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Origins]:
    p = Path(path)
    if not p.is_file():
        via = f" (the 'base:' of {chain[-1]})" if chain else ""
        problem = "is not a file" if p.exists() else "does not exist"
        raise ConfigError(f"config file {str(p)!r}{via} {problem}")
    resolved = p.resolve()
    if resolved in chain:
        loop = " -> ".join(str(c) for c in (*chain, resolved))
        raise ConfigError(f"config file {chain[-1]}: its 'base:' chain loops back to {p} ({loop})")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text ({e})") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read ({e})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        what = "; ".join(x for x in (e.context, e.problem) if x)
        if "'\\t'" in what:  # "found character '\t' that cannot start any token"
            what += " (YAML indents with spaces, never tabs)"
        raise ConfigError(f"{loc}: config file is not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {e}") from None
    if data is None:
        raise ConfigError(
            f"config file {str(p)!r} is empty; write at least one key (for example `name: my_run`), "
            "or leave out --config to use the defaults"
        )
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            f"{p}:{line}: a config file must hold a mapping (key: value lines) at the top level, "
            f"found a {type(data).__name__}"
        )
    origins: Origins = {}
    _walk_mapping(node, (), str(p), origins)
    # ``base: other.yaml`` inherits from another file (relative to this one)
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(
                f"{origins[('base',)]}: 'base' must be a file name (relative to this file), got {base!r}"
            )
        base_data, base_origins = _read_yaml(p.parent / base, (*chain, resolved))
        data = deep_update(base_data, data)
        origins = {**base_origins, **origins}
    return data, origins


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A config file as a dict, its ``base:`` chain merged (see the module docstring for the checks)."""
    return _read_yaml(path)[0]


def _override_origins(items: list[str] | None) -> Origins:
    out: Origins = {}
    for item in items or []:
        key = item.split("=", 1)[0].strip().lstrip("-")
        out[tuple(key.split("."))] = f"command-line override {item!r}"
    return out


def _locate(key: str | None, origins: Origins) -> str | None:
    """Where ``key`` ("train.batch_size", "data.augment.rotate[1]") or its closest parent was set."""
    if not key:
        return None
    parts = tuple(re.sub(r"\[\d+\]", "", key).split("."))
    for n in range(len(parts), 0, -1):
        if parts[:n] in origins:
            return origins[parts[:n]]
    return None


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    data, origins = _read_yaml(path) if path else ({}, {})
    data = deep_update(data, parse_overrides(overrides))
    origins.update(_override_origins(overrides))
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        where = _locate(e.key, origins)
        if where is None or str(e).startswith(where):
            raise
        raise ConfigError(f"{where}: {e}", key=e.key) from None


def save_config(obj: Any, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(obj), f, sort_keys=False)
