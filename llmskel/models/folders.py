"""Saved model folders: their three kinds, reading them safely, and :func:`load`, which returns the
right object for any of them.

===================  ==============================  ===========================================
kind                 ``config.json`` says            class (``from_pretrained``)
===================  ==============================  ===========================================
``skeleton-model``   ``model``, ``classes``, ...     :class:`llmskel.models.skeleton_model.SkeletonModel`
``vq-tokenizer``     ``"type": "llmskel-vq-tokenizer"``  :class:`llmskel.models.vq_tokenizer.SkeletonVQTokenizer`
``llm-recognizer``   ``"type": "llmskel-llm-recognizer"`` :class:`llmskel.models.llm_recognizer.SkeletonLlm`
===================  ==============================  ===========================================

``config.json`` is untrusted input: it is read as JSON only (never code), refused above
:data:`MAX_CONFIG_BYTES` before it is read, and a deep or corrupt file is a clear error. A loader
given another kind's folder says which loader to use. This module imports no torch at import time.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MAX_CONFIG_BYTES = 16 << 20  # a folder config is settings, never data: 16 MiB is generous


@dataclass(frozen=True)
class FolderKind:
    name: str
    type: str | None  # the config's "type" value; None: the GCN model folder (no "type" key)
    cls: str  # "module:Class" of its loader
    what: str  # for messages
    # files a Hub download fetches (huggingface_hub patterns: "*" also matches "/"); never code or pickles
    files: tuple[str, ...]

    @property
    def loader(self) -> str:
        module, cls = self.cls.split(":")
        return f"{module}.{cls}.from_pretrained"

    def load_class(self):
        module, cls = self.cls.split(":")
        return getattr(importlib.import_module(module), cls)


KINDS: dict[str, FolderKind] = {
    k.name: k
    for k in (
        FolderKind("skeleton-model", None, "llmskel.models.skeleton_model:SkeletonModel",
                   "a skeleton model (GCN encoder and heads)", (CONFIG_NAME, WEIGHTS_NAME, "README.md")),
        FolderKind("vq-tokenizer", "llmskel-vq-tokenizer", "llmskel.models.vq_tokenizer:SkeletonVQTokenizer",
                   "a skeleton VQ tokenizer", (CONFIG_NAME, WEIGHTS_NAME, "README.md")),
        # the recognizer's folder holds sub-folders (tokenizer/, lm/ of a merged export, adapters):
        # JSON, safetensors and tokenizer files only (no .py, .bin, .pt, .pkl, .gguf)
        FolderKind("llm-recognizer", "llmskel-llm-recognizer", "llmskel.models.llm_recognizer:SkeletonLlm",
                   "an LLM recognizer", ("*.json", "*.safetensors", "*.md", "*.txt", "*.model", "*.jinja")),
    )
}  # fmt: skip


def read_json_config(path: str | os.PathLike, what: str = "model folder") -> dict[str, Any]:
    """A ``config.json`` as a dict: size-checked before reading, JSON only, a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: no {path.name}; not {what}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: {size} bytes, more than a model config can be "
                              f"({MAX_CONFIG_BYTES} bytes); refused")  # fmt: skip
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt config ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt config (nested too deeply)") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: corrupt config (a JSON object expected, got {type(d).__name__})")
    return d


def read_folder_config(folder: str | os.PathLike, kind: str) -> tuple[dict[str, Any], Path]:
    """(parsed ``config.json``, its path) of a saved folder; a clear error when absent or corrupt."""
    cfg_path = Path(folder) / CONFIG_NAME
    return read_json_config(cfg_path, kind), cfg_path


def folder_kind(raw: dict[str, Any], source: str = CONFIG_NAME) -> FolderKind:
    """Which kind of folder a parsed ``config.json`` describes; an error when none."""
    t = raw.get("type")
    for k in KINDS.values():
        if k.type is not None and t == k.type:
            return k
    if t is None and "model" in raw and "classes" in raw:
        return KINDS["skeleton-model"]
    known = ", ".join(repr(k.type) for k in KINDS.values() if k.type)
    raise CheckpointError(f"{source}: not an llmskel model folder (type {t!r}; llmskel folders are GCN models "
                          f"with 'model' and 'classes' keys, or have type {known})")  # fmt: skip


def expect_kind(raw: dict[str, Any], want: str, source: str) -> None:
    """Refuse another kind's folder with the loader that reads it."""
    if raw.get("type") is None and KINDS[want].type is None and not ("model" in raw and "classes" in raw):
        return  # an incomplete GCN config: the config check names the missing keys
    try:
        got = folder_kind(raw, source)
    except CheckpointError:
        if KINDS[want].type is None:
            return  # the GCN config check explains what is wrong
        raise CheckpointError(f"{source}: not {KINDS[want].what} (type {raw.get('type')!r}, expected "
                              f"{KINDS[want].type!r})") from None  # fmt: skip
    if got.name != want:
        raise CheckpointError(f"{source}: this is {got.what} folder, not {KINDS[want].what}; load it with "
                              f"llmskel.load(...) or {got.loader}(...)")  # fmt: skip


# ----------------------------------------------------------------------------------------------
def load_weights_strict(model, path: Path, map_location: str = "cpu") -> None:
    """Load safetensors weights; any missing / unexpected / mis-shaped key is an error naming it."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: weights file is missing")
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or unreadable weights ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in set(own) & set(state) if state[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        if shapes:
            parts.append("shape mismatches " + "; ".join(sorted(shapes)[:10]))
        raise CheckpointError(f"{path}: weights do not match the model config: " + ", ".join(parts))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} weight tensors hold NaN or infinite values ({', '.join(sorted(bad)[:5])}"
            f"{' ...' if len(bad) > 5 else ''}); the model would give meaningless scores. Re-save it from "
            "a healthy checkpoint"
        )
    model.load_state_dict(state, strict=True)


# ----------------------------------------------------------------------------------------------
HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "force_download", "token")


def split_hub_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Hub download arguments, the rest) of a ``from_pretrained`` call."""
    hub = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
    return hub, {k: v for k, v in kwargs.items() if k not in HUB_KWARGS}


def load(path_or_hub_id: str | os.PathLike, **kwargs: Any):
    """Load any llmskel model folder or Hub repository and return the right object.

    ``llmskel.load("runs/ucla/best")`` -> a :class:`SkeletonModel`; a VQ tokenizer folder -> a
    :class:`SkeletonVQTokenizer`; an LLM recognizer folder -> a :class:`SkeletonLlm`. Hub ids are
    downloaded with only the files their kind needs. Hub arguments (``revision``, ``cache_dir``,
    ``local_files_only``, ``force_download``, ``token``) go to the download; the rest
    (``map_location``, and for recognizers ``base_model``, ``trust_remote_code``, ...) to the loader."""
    from ..hub import resolve_model_folder

    hub, rest = split_hub_kwargs(kwargs)
    folder = resolve_model_folder(str(path_or_hub_id), **hub)
    raw, cfg_path = read_folder_config(folder, "an llmskel model folder")
    kind = folder_kind(raw, str(cfg_path))
    model = kind.load_class().from_pretrained(folder, **rest)
    model.name_or_path = str(path_or_hub_id)  # named in messages (a Hub id rather than a cache path)
    return model


__all__ = ["CONFIG_NAME", "HUB_KWARGS", "KINDS", "MAX_CONFIG_BYTES", "WEIGHTS_NAME", "FolderKind", "expect_kind",
           "folder_kind", "load", "load_weights_strict", "read_folder_config", "read_json_config",
           "split_hub_kwargs"]  # fmt: skip
