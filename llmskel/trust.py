"""Trust rules for files, folders and Hub ids that someone else made (see README "Trust and safety").

* **Remote code.** A model folder or Hub id whose ``config.json`` / ``tokenizer_config.json``
  carries an ``auto_map`` (custom Python code that transformers would import) is refused with
  :class:`UntrustedCodeError` *before* transformers reads it, unless the caller passed
  ``trust_remote_code=True`` (CLI ``--trust-remote-code``). The opt-in is never read from a saved
  model folder. :func:`check_remote_code` is the check; every transformers call in llmskel also
  passes ``trust_remote_code`` explicitly, so transformers never falls back to its interactive prompt.
* **Sizes.** A model described by a config is built on the ``meta`` device first and refused above
  :func:`max_model_params` parameters (``LLMSKEL_MAX_MODEL_PARAMS``, default 2e9) with an error that
  names the file; ``.npy`` headers are read before the data (:func:`check_npy_header`), and arrays
  larger than the file or than :func:`max_array_bytes` (``LLMSKEL_MAX_ARRAY_BYTES``, default 4 GiB)
  are refused.
* **Privacy.** Saved folders are meant to be shared: :func:`public_name` turns a local path into its
  last component (a Hub id stays as it is), :func:`scrub_local_paths` does so for every string of a
  record that is an absolute path.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError, LlmskelError, SkeletonFormatError

DEFAULT_MAX_MODEL_PARAMS = 2_000_000_000
DEFAULT_MAX_ARRAY_BYTES = 4 << 30
_CODE_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


class UntrustedCodeError(LlmskelError, ValueError):
    """A model would run Python code that came with it, and the caller did not opt in."""


# ----------------------------------------------------------------------------------------------
# remote code


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # unreadable: transformers reports it (with trust_remote_code=False passed)
    return d if isinstance(d, dict) else None


def _hub_file(repo_id: str, filename: str) -> Path | None:
    """A small file of a Hub repository (cache first; None when it cannot be had)."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, filename))
    except Exception:  # noqa: BLE001 - missing file, offline, bad id: nothing to inspect
        return None


def remote_code_entries(name_or_path: str | os.PathLike) -> list[str]:
    """``file: auto_map {...}`` for each config file of a folder or Hub id that names custom code.

    Only JSON is read; nothing is imported."""
    p = Path(str(name_or_path)).expanduser()
    found = []
    for fname in _CODE_FILES:
        if p.is_dir():
            f: Path | None = p / fname
        elif p.exists() or str(name_or_path).count("/") != 1:
            f = None  # a file (GGUF) or something that is no Hub id: transformers says what is wrong
        else:
            f = _hub_file(str(name_or_path), fname)
        d = _read_json(f) if f is not None and f.is_file() else None
        if not d:
            continue
        amap = d.get("auto_map")
        if amap:
            found.append(f"{fname}: auto_map {json.dumps(amap)[:200]}")
        for key in ("tokenizer_class", "processor_class"):
            v = d.get(key)
            if isinstance(v, str) and "--" in v:  # "org/repo--module.Class": code of another repository
                found.append(f"{fname}: {key} {v!r}")
    return found


OPT_IN = (
    "if you trust its source, pass --trust-remote-code (Python: trust_remote_code=True); a saved "
    "model folder cannot turn this on by itself"
)
NO_OPT_IN = "text encoders never run a model's own code: use a model without custom code"


def check_remote_code(name_or_path: str | os.PathLike, trust_remote_code: bool, what: str = "model",
                      how: str = OPT_IN) -> None:  # fmt: skip
    """Refuse (:class:`UntrustedCodeError`) a folder / Hub id that carries custom code, unless the
    caller opted in. Call it before anything of ``name_or_path`` is handed to transformers."""
    if trust_remote_code:
        return
    entries = remote_code_entries(name_or_path)
    if entries:
        raise UntrustedCodeError(
            f"{what} {str(name_or_path)!r} contains custom Python code ({'; '.join(entries)}) that loading it "
            f"would run. llmskel never runs code that comes with a model unless you ask: {how}"
        )


# ----------------------------------------------------------------------------------------------
# sizes


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None


def max_model_params() -> int:
    """Largest model (parameters) built from a config: ``$LLMSKEL_MAX_MODEL_PARAMS`` or 2e9."""
    return _env_int("LLMSKEL_MAX_MODEL_PARAMS", DEFAULT_MAX_MODEL_PARAMS)


def max_array_bytes() -> int:
    """Largest array read from one file: ``$LLMSKEL_MAX_ARRAY_BYTES`` or 4 GiB."""
    return _env_int("LLMSKEL_MAX_ARRAY_BYTES", DEFAULT_MAX_ARRAY_BYTES)


def count_params_meta(build: Callable[[], Any]) -> int:
    """Parameters and buffers of the module ``build()`` makes, built on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        module = build()
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def check_model_size(build: Callable[[], Any], source: str, fields: str = "") -> None:
    """Refuse a config whose model would exceed :func:`max_model_params` (before any allocation)."""
    n = count_params_meta(build)
    limit = max_model_params()
    if n > limit:
        raise ConfigError(
            f"{source}: the model this config describes has {n:,} parameters ({4 * n / 2**30:.1f} GiB in "
            f"float32), above the limit of {limit:,}{' (check ' + fields + ')' if fields else ''}; refusing "
            "to allocate it. Raise LLMSKEL_MAX_MODEL_PARAMS if it is really meant"
        )


def check_positive_ints(config: dict[str, Any], keys: list[str], source: str) -> None:
    """Each of ``keys`` present in ``config`` must be an int >= 1 (lists: each element)."""
    for key in keys:
        if key not in config:
            continue
        v = config[key]
        items = v if isinstance(v, list) else [v]
        if not items or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in items):
            raise ConfigError(f"{source}: key {key!r} must be a positive integer{' list' if isinstance(v, list) else ''}, "
                              f"got {v!r}")  # fmt: skip


def check_npy_header(path: str | os.PathLike, fileobj=None) -> tuple[tuple[int, ...], Any]:
    """(shape, dtype) of a ``.npy`` file from its header alone; refuses object arrays, claimed sizes
    that the file cannot hold and sizes above :func:`max_array_bytes` (``SkeletonFormatError``)."""
    import numpy as np
    from numpy.lib import format as npf

    path = Path(path)
    own = fileobj is None
    f = open(path, "rb") if own else fileobj
    try:
        try:
            version = npf.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npf.read_array_header_1_0(f)
            else:
                shape, _, dtype = npf.read_array_header_2_0(f)
        except (ValueError, OSError, EOFError, SyntaxError) as e:
            raise SkeletonFormatError(
                path, f"not a valid .npy file ({' '.join(str(e).split())[:200]})"
            ) from None
        if dtype.hasobject:
            raise SkeletonFormatError(path, "holds Python objects (a pickle); only numeric arrays are read")
        count = 1
        for d in shape:
            count *= int(d)
        need = count * dtype.itemsize
        limit = max_array_bytes()
        if need > limit:
            raise SkeletonFormatError(
                path,
                f"header claims shape {tuple(shape)} {dtype} ({need / 2**30:.1f} GiB), above the limit of "
                f"{limit / 2**30:.1f} GiB (LLMSKEL_MAX_ARRAY_BYTES); refusing to allocate it",
            )
        if own:
            available = path.stat().st_size - f.tell()
            if need > available:
                raise SkeletonFormatError(
                    path,
                    f"header claims shape {tuple(shape)} {dtype} ({need:,} bytes) but the file holds only "
                    f"{available:,} bytes of data (truncated or corrupt)",
                )
        return tuple(int(d) for d in shape), np.dtype(dtype)
    finally:
        if own:
            f.close()


def load_npy(path: str | os.PathLike):
    """``np.load`` of a ``.npy`` file after :func:`check_npy_header` (never pickles)."""
    import numpy as np

    check_npy_header(path)
    return np.load(path, allow_pickle=False)


def check_npz_members(path: str | os.PathLike, keys: list[str] | None = None) -> None:
    """:func:`check_npy_header` for the members of an ``.npz`` (all, or those of ``keys``)."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if keys is not None and name not in keys:
                    continue
                with z.open(info) as member:
                    shape, dtype = check_npy_header(path, fileobj=member)
                    need = dtype.itemsize
                    for d in shape:
                        need *= d
                    if need > info.file_size:
                        raise SkeletonFormatError(
                            path,
                            f"member {name!r} claims shape {shape} {dtype} ({need:,} bytes) but holds "
                            f"only {info.file_size:,} bytes (truncated or corrupt)",
                        )
    except zipfile.BadZipFile as e:
        raise SkeletonFormatError(path, f"not a valid .npz file ({e})") from None


# ----------------------------------------------------------------------------------------------
# privacy

_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]")


def is_local_path(s: str) -> bool:
    """An absolute (or home-relative) local path, or an existing relative one."""
    if not isinstance(s, str) or not s or "\n" in s:
        return False
    if s.startswith(("/", "~")) or _WINDOWS_ABS.match(s) or s.startswith("\\\\"):
        return True
    if s.startswith(("./", "../", ".\\", "..\\")):
        return True
    # a relative path with folders that exists here ("runs/ucla_gap/last"): a Hub id is "org/name",
    # so two or more separators, or a single one naming an existing folder or file, is local
    # ("kind:path" specs are not paths themselves: scrub_local_paths looks inside them)
    if ("/" in s or "\\" in s) and ":" not in s and len(s) < 4096 and not any(c.isspace() for c in s):
        try:
            return Path(s).exists() or s.replace("\\", "/").strip("/").count("/") > 1
        except OSError:
            return False
    return False


def public_name(s: str | os.PathLike | None) -> str | None:
    """A local path's last component; anything else (a Hub id, a shipped name) unchanged."""
    if s is None:
        return None
    s = str(s)
    if is_local_path(s):
        return Path(s.rstrip("/\\")).name or s
    return s


def scrub_local_paths(obj: Any) -> Any:
    """A copy of a JSON-like record with every local path string reduced to its last component
    (also inside ``kind:path`` specs such as ``sentence:/data/my_encoder`` or ``open_clip:local-dir:/x``)."""
    if isinstance(obj, dict):
        return {k: scrub_local_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_local_paths(v) for v in obj]
    if isinstance(obj, str):
        if is_local_path(obj):
            return public_name(obj)
        kind, sep, rest = obj.partition(":")
        if sep and rest and re.fullmatch(r"[A-Za-z_][\w-]*", kind):
            inner = scrub_local_paths(rest)
            if inner != rest:
                return f"{kind}:{inner}"
    return obj


# where models that saved folders name only by their folder name live on this machine
_LOCAL_INDEX = "local_models.json"


def _index_path() -> Path | None:
    from .text.cache import cache_disabled, cache_root

    return None if cache_disabled() else cache_root() / _LOCAL_INDEX


def remember_local(key: str, local: Any) -> None:
    """Note on this machine (in the llmskel cache, never in a saved folder) where the model that a
    saved folder records under ``key`` (its fingerprint) lives: ``local`` is a path or a record."""
    path = _index_path()
    if path is None or not key:
        return
    try:
        data = _read_json(path) or {}
        if data.get(key) == local:
            return
        data[key] = local
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a convenience only


def recall_local(key: str | None) -> Any:
    """What :func:`remember_local` noted for ``key`` on this machine, or None."""
    path = _index_path()
    if path is None or not key or not path.is_file():
        return None
    return (_read_json(path) or {}).get(key)
