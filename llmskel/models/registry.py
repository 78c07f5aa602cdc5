"""Model registry: architectures by name, described by small JSON configs.

* ``@register_model("ctrgcn")`` maps a config's ``"arch"`` to an encoder class;
* ``model_configs/<name>.json`` (shipped with the package, read on first use) names a built-in
  configuration: ``{"arch": "ctrgcn", "layout": "ntu25", "num_classes": 60, ...}``; every other key
  is a constructor argument of the arch class;
* :func:`create_model` builds a model from a built-in name, a config dict (a saved model's
  ``config.json``) or a path to a ``.json`` file, with keyword overrides. The built model carries
  its fully resolved config (every constructor argument, defaults included) as ``model.config``,
  so ``create_model(model.config)`` rebuilds the same architecture.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from ..config import suggest
from ..errors import ConfigError
from ..trust import check_model_size, check_positive_ints

_ARCHS: dict[str, type[nn.Module]] = {}
_BUILTIN_ARCH_MODULES = ("llmskel.models.stgcn", "llmskel.models.ctrgcn")
CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"


def register_model(arch: str):
    """Class decorator: make ``cls`` buildable from configs whose ``"arch"`` is ``arch``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if arch in _ARCHS and _ARCHS[arch] is not cls:
            raise ValueError(f"model arch {arch!r} is already registered by {_ARCHS[arch].__qualname__}")
        _ARCHS[arch] = cls
        cls.arch = arch
        return cls

    return deco


def _load_builtin_archs() -> None:
    for mod in _BUILTIN_ARCH_MODULES:
        importlib.import_module(mod)


@lru_cache(maxsize=1)
def _builtin_configs() -> dict[str, dict[str, Any]]:
    configs = {}
    for path in sorted(CONFIG_DIR.glob("*.json")):
        with open(path, encoding="utf-8") as f:
            try:
                cfg = json.load(f)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}: invalid JSON: {e}") from e
        if not isinstance(cfg, dict) or "arch" not in cfg:
            raise ConfigError(f"{path}: a model config must be a JSON object with an 'arch' key")
        configs[path.stem] = cfg
    return configs


def list_models() -> list[str]:
    """Names of the built-in model configs (``create_model`` accepts each)."""
    return sorted(_builtin_configs())


def list_archs() -> list[str]:
    """Registered architecture names (the values a config's ``"arch"`` may take)."""
    _load_builtin_archs()
    return sorted(_ARCHS)


def get_model_config(name: str) -> dict[str, Any]:
    """A copy of the built-in config ``name`` (as written in its JSON file)."""
    configs = _builtin_configs()
    if name not in configs:
        raise ConfigError(f"unknown model {name!r}{suggest(name, sorted(configs), 'models')}")
    return copy.deepcopy(configs[name])


def arch_parameters(arch: str) -> dict[str, Any]:
    """Constructor arguments of ``arch`` and their defaults (``inspect.Parameter.empty`` if none)."""
    cls = _arch_class(arch)
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}


def _arch_class(arch: str) -> type[nn.Module]:
    _load_builtin_archs()
    if arch not in _ARCHS:
        raise ConfigError(f"unknown model arch {arch!r}{suggest(arch, sorted(_ARCHS), 'archs')}")
    return _ARCHS[arch]


def resolve_config(config: dict[str, Any], source: str = "model config") -> dict[str, Any]:
    """Check ``config``'s keys against its arch and fill in defaults; returns a new dict."""
    if "arch" not in config:
        raise ConfigError(f"{source}: missing key 'arch'; valid archs: {', '.join(list_archs())}")
    arch = config["arch"]
    params = arch_parameters(arch)
    valid = sorted(params)
    for key in config:
        if key != "arch" and key not in params:
            raise ConfigError(f"{source}: unknown key {key!r} for arch {arch!r}{suggest(key, valid)}")
    resolved: dict[str, Any] = {"arch": arch}
    for key, default in params.items():
        if key in config:
            value = config[key]
        elif default is inspect.Parameter.empty:
            raise ConfigError(f"{source}: missing required key {key!r} for arch {arch!r}")
        else:
            value = default
        resolved[key] = list(value) if isinstance(value, tuple) else value  # JSON-friendly
    return resolved


# constructor arguments that must be integers >= 1 (lists: every element); num_classes may be 0
POSITIVE_INT_KEYS = ("in_channels", "num_bodies", "base_channels", "stage_blocks", "temporal_kernel", "dilations",
                     "rel_reduction")  # fmt: skip


def check_model_values(config: dict[str, Any], source: str) -> None:
    """Integer sizes of a resolved config are integers in range (an error naming the key otherwise)."""
    check_positive_ints(config, [k for k in POSITIVE_INT_KEYS if k in config], source)
    nc = config.get("num_classes", 0)
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 0:
        raise ConfigError(f"{source}: key 'num_classes' must be an integer >= 0, got {nc!r}")


def create_model(name: str | Path | dict[str, Any], **overrides: Any) -> nn.Module:
    """Build an encoder.

    Args:
        name: a built-in config name (see :func:`list_models`), a config dict with an ``"arch"``
            key (e.g. a saved model's ``config.json``), or a path to a ``.json`` config file.
        **overrides: config keys to replace (``num_classes=10``, ``layout="kinect20"``); an
            unknown key is a :class:`~llmskel.errors.ConfigError` naming it and the valid keys.

    Returns:
        The model (in train mode, fresh weights) with ``model.config`` the resolved config.

    ``"hf-hub:org/name"`` (the open_clip / timm convention) and ``"local-dir:/folder"`` load a trained
    model instead, with its weights, through :func:`llmskel.load` (any folder kind; a GCN model folder
    gives a :class:`~llmskel.models.skeleton_model.SkeletonModel` in eval mode). Only the Hub arguments
    (``revision``, ``cache_dir``, ``local_files_only``, ``force_download``, ``token``) and
    ``map_location`` may be given then.
    """
    if isinstance(name, str) and name.startswith(("hf-hub:", "local-dir:")):
        from .folders import HUB_KWARGS, load

        prefix, _, ref = name.partition(":")
        bad = sorted(set(overrides) - set(HUB_KWARGS) - {"map_location"})
        if bad:
            raise ConfigError(f"create_model({name!r}): a trained model's architecture is fixed; "
                              f"{bad} cannot be overridden (only {', '.join(HUB_KWARGS)}, map_location)")  # fmt: skip
        if not ref:
            raise ConfigError(
                f"create_model({name!r}): give {prefix}:<{'org/name' if prefix == 'hf-hub' else 'folder'}>"
            )
        if prefix == "local-dir" and not Path(ref).expanduser().is_dir():
            from ..errors import CheckpointError

            raise CheckpointError(f"create_model({name!r}): folder {ref} does not exist")
        return load(ref, **overrides)
    if isinstance(name, dict):
        config, source = copy.deepcopy(name), "model config"
    elif isinstance(name, Path) or (isinstance(name, str) and name.endswith(".json")):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"model config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            config, source = json.load(f), str(path)
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: a model config must be a JSON object")
    elif isinstance(name, str):
        config, source = get_model_config(name), f"model {name!r}"
    else:
        raise TypeError(
            f"create_model expects a name, a config dict or a .json path, got {type(name).__name__}"
        )
    if "arch" in overrides and overrides["arch"] != config.get("arch"):
        raise ConfigError(
            f"{source}: 'arch' cannot be overridden; build a config with the other arch instead"
        )
    config.update(overrides)
    resolved = resolve_config(config, source)
    kwargs = {k: v for k, v in resolved.items() if k != "arch"}
    cls = _arch_class(resolved["arch"])
    check_model_values(resolved, source)
    # a config from outside can ask for any size: count on the meta device before allocating
    check_model_size(lambda: cls(**kwargs), source, fields="base_channels, stage_blocks, num_classes")
    model = cls(**kwargs)
    model.config = resolved
    return model
