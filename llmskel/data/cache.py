"""The fast skeleton cache: one memory-mapped array, one line of metadata per sample.

A cache is a directory with

* ``info.json``: ``format`` ("llmskel-skeleton-cache"), ``version``, ``layout``, ``classes``,
  ``num_bodies``, ``num_joints``, ``channels``, ``count`` (samples), ``total_frames``, ``name`` and
  ``source`` (a description of where the data came from). Written last: a folder without it is not
  a (finished) cache.
* ``arrays.npy``: every sample's frames one after the other, float32 ``(total_frames, M, V, C)``,
  read with ``np.load(mmap_mode="r")`` so opening a cache costs nothing and a sample is one slice.
* ``samples.jsonl``: one JSON object per sample, in order: ``name``, ``offset`` and ``length``
  (rows of ``arrays.npy``), ``label``, ``label_name``, ``subject``, ``view``, ``setup``, ``source``,
  ``extra``.

:func:`write_cache` streams samples in (the array file's header is written at the end, so nothing
is held in memory) and :class:`CachedSkeletonDataset` reads them back lazily.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SkeletonFormatError
from .layouts import get_layout
from .sample import BaseSkeletonDataset, SkeletonDataset, SkeletonSample

log = logging.getLogger(__name__)

CACHE_FORMAT = "llmskel-skeleton-cache"
CACHE_VERSION = 1
INFO_FILE = "info.json"
ARRAYS_FILE = "arrays.npy"
INDEX_FILE = "samples.jsonl"
_NPY_HEADER_BYTES = 256  # reserved for the .npy header, written once the final shape is known


def is_cache(path: str | os.PathLike) -> bool:
    """True when ``path`` is a directory holding a finished cache (an ``info.json`` of ours)."""
    p = Path(path) / INFO_FILE
    if not p.is_file():
        return False
    try:
        return json.loads(p.read_text()).get("format") == CACHE_FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """A version 1.0 ``.npy`` header padded to exactly ``_NPY_HEADER_BYTES`` bytes."""
    d = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(shape),
    }
    text = repr(d).encode("latin1")
    magic = b"\x93NUMPY\x01\x00"
    hlen = _NPY_HEADER_BYTES - len(magic) - 2
    if len(text) + 1 > hlen:
        raise ValueError(f"array shape {shape} too long for the reserved .npy header")
    return magic + struct.pack("<H", hlen) + text + b" " * (hlen - len(text) - 1) + b"\n"


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


class CacheWriter:
    """Write samples one at a time into a new cache directory.

    Samples are padded with zero bodies (or cut) to ``num_bodies``; layout and channel count must
    match. Files are written under temporary names and renamed on :meth:`close`, ``info.json``
    last, so an interrupted write never looks like a finished cache.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        layout: str,
        classes: Sequence[str],
        num_bodies: int,
        channels: int,
        name: str = "",
        source: str = "",
        extra_info: dict[str, Any] | None = None,
    ):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.layout = get_layout(layout).name
        self.num_joints = get_layout(layout).num_joints
        self.classes = list(classes)
        self.num_bodies = int(num_bodies)
        self.channels = int(channels)
        self.name = name
        self.source = source
        self.extra_info = dict(extra_info or {})
        self._tmp_arrays = self.out / (ARRAYS_FILE + ".partial")
        self._tmp_index = self.out / (INDEX_FILE + ".partial")
        self._fa = open(self._tmp_arrays, "wb")
        self._fa.write(b"\0" * _NPY_HEADER_BYTES)
        self._fi = open(self._tmp_index, "w")
        self.count = 0
        self.total_frames = 0
        self._closed = False

    def add(self, s: SkeletonSample, name: str | None = None) -> None:
        data = np.asarray(s.data, dtype=np.float32)  # (T, M, V, C)
        if get_layout(s.layout).name != self.layout:
            raise SkeletonFormatError(
                s.source, f"layout {s.layout!r} differs from the cache layout {self.layout!r}"
            )
        if data.ndim != 4 or data.shape[2] != self.num_joints or data.shape[3] != self.channels:
            raise SkeletonFormatError(
                s.source,
                f"array of shape {data.shape} does not fit the cache (T, M, {self.num_joints}, {self.channels})",
            )
        m = data.shape[1]
        if m < self.num_bodies:
            pad = np.zeros((data.shape[0], self.num_bodies - m) + data.shape[2:], dtype=np.float32)
            data = np.concatenate([data, pad], axis=1)
        elif m > self.num_bodies:
            if np.any(data[:, self.num_bodies :]):
                log.warning("%s: %d bodies, the cache keeps the first %d", s.source, m, self.num_bodies)
            data = data[:, : self.num_bodies]
        self._fa.write(np.ascontiguousarray(data).tobytes())
        extra = dict(s.extra)
        row = {
            "name": name or extra.pop("name", None) or Path(str(s.source or f"sample_{self.count}")).name,
            "offset": self.total_frames,
            "length": int(data.shape[0]),
            "label": int(s.label),
            "label_name": s.label_name,
            "subject": _opt_int(s.subject),
            "view": _opt_int(s.view),
            "setup": _opt_int(s.setup),
            "source": s.source,
            "extra": _jsonable(extra),
        }
        self._fi.write(json.dumps(row) + "\n")
        self.count += 1
        self.total_frames += int(data.shape[0])

    def close(self) -> Path:
        if self._closed:
            return self.out
        self._closed = True
        shape = (self.total_frames, self.num_bodies, self.num_joints, self.channels)
        self._fa.seek(0)
        self._fa.write(_npy_header(shape, np.float32))
        self._fa.close()
        self._fi.close()
        os.replace(self._tmp_arrays, self.out / ARRAYS_FILE)
        os.replace(self._tmp_index, self.out / INDEX_FILE)
        info = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "name": self.name,
            "layout": self.layout,
            "classes": self.classes,
            "num_bodies": self.num_bodies,
            "num_joints": self.num_joints,
            "channels": self.channels,
            "count": self.count,
            "total_frames": self.total_frames,
            "source": self.source,
            **self.extra_info,
        }
        tmp = self.out / (INFO_FILE + ".partial")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        os.replace(tmp, self.out / INFO_FILE)
        return self.out

    def abort(self) -> None:
        """Drop what was written (temporary files only)."""
        self._closed = True
        for f in (self._fa, self._fi):
            f.close()
        for p in (self._tmp_arrays, self._tmp_index):
            p.unlink(missing_ok=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_cache(
    samples: BaseSkeletonDataset | Iterable[SkeletonSample],
    out_dir: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    layout: str | None = None,
    num_bodies: int | None = None,
    name: str | None = None,
    source: str = "",
    extra_info: dict[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Write a dataset (or any iterable of samples) as a cache in ``out_dir``; returns ``out_dir``.

    ``classes``, ``layout`` and ``name`` default to the dataset's. ``num_bodies`` defaults to the
    largest body count of an in-memory dataset, else to the first sample's. Transforms of the
    dataset are not applied (the raw samples are written).
    """
    from tqdm.auto import tqdm

    if isinstance(samples, BaseSkeletonDataset):
        ds = samples
        classes = list(classes if classes is not None else ds.classes)
        layout = layout or ds.layout
        name = name if name is not None else ds.name
        if num_bodies is None and isinstance(ds, SkeletonDataset) and len(ds):
            num_bodies = max(s.num_bodies for s in ds.samples)
        it: Iterable[SkeletonSample] = (ds.get(i) for i in range(len(ds)))
        total = len(ds)
    else:
        it = iter(samples)
        total = None
    writer: CacheWriter | None = None
    try:
        for s in tqdm(it, total=total, desc="write cache", unit="sample", disable=not progress):
            if writer is None:
                if classes is None:
                    raise ValueError("write_cache needs `classes` when given an iterable of samples")
                writer = CacheWriter(
                    out_dir,
                    layout=layout or s.layout,
                    classes=classes,
                    num_bodies=num_bodies or s.num_bodies,
                    channels=s.data.shape[-1],
                    name=name or "",
                    source=source,
                    extra_info=extra_info,
                )
            writer.add(s)
        if writer is None:
            raise ValueError(f"no samples to write to {out_dir}")
        return writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


class CachedSkeletonDataset(BaseSkeletonDataset):
    """A cache read lazily: metadata in memory, arrays memory-mapped, one copy per ``get``."""

    def __init__(
        self,
        path: str | os.PathLike,
        transform: Callable[[SkeletonSample], Any] | None = None,
        *,
        _shared: dict[str, Any] | None = None,
        _rows: np.ndarray | None = None,
    ):
        self.path = Path(path)
        self.transform = transform
        self._s = _shared if _shared is not None else _load_index(self.path)
        info = self._s["info"]
        self.layout = info["layout"]
        self.classes = list(info["classes"])
        self.name = info.get("name") or self.path.name
        self._rows = np.arange(len(self._s["offset"])) if _rows is None else np.asarray(_rows, dtype=np.int64)
        self._arr: np.ndarray | None = None

    # -- array access ---------------------------------------------------------------------
    @property
    def arrays(self) -> np.ndarray:
        """The memory-mapped (total_frames, M, V, C) array, opened on first use."""
        if self._arr is None:
            self._arr = _open_arrays(self.path, self._s["info"])
        return self._arr

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_arr"] = None  # DataLoader workers reopen the memory map instead of copying it
        return d

    # -- dataset API ----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._rows.size)

    def get(self, i: int) -> SkeletonSample:
        r = int(self._rows[i])
        off, n = int(self._s["offset"][r]), int(self._s["length"][r])
        data = np.array(self.arrays[off : off + n])  # (T, M, V, C) float32, a private copy
        m = self._s["meta"][r]
        extra = dict(m.get("extra") or {})
        extra.setdefault("name", m.get("name"))
        return SkeletonSample(
            data=data,
            layout=self.layout,
            label=int(self._s["label"][r]),
            label_name=m.get("label_name"),
            subject=m.get("subject"),
            view=m.get("view"),
            setup=m.get("setup"),
            source=m.get("source"),
            extra=extra,
        )

    def meta(self, i: int) -> dict[str, Any]:
        """Metadata of sample i without reading its array."""
        r = int(self._rows[i])
        m = self._s["meta"][r]
        extra = dict(m.get("extra") or {})
        extra.setdefault("name", m.get("name"))
        return {
            "layout": self.layout,
            "label": int(self._s["label"][r]),
            "label_name": m.get("label_name"),
            "subject": m.get("subject"),
            "view": m.get("view"),
            "setup": m.get("setup"),
            "source": m.get("source"),
            "extra": extra,
        }

    @property
    def labels(self) -> np.ndarray:
        return self._s["label"][self._rows]

    @property
    def lengths(self) -> np.ndarray:
        """Frames per sample, without reading arrays."""
        return self._s["length"][self._rows]

    @property
    def info(self) -> dict[str, Any]:
        return dict(self._s["info"])

    def subset(self, indices: Sequence[int]) -> CachedSkeletonDataset:
        rows = self._rows[np.asarray(indices, dtype=np.int64)] if len(indices) else self._rows[:0]
        new = CachedSkeletonDataset(self.path, self.transform, _shared=self._s, _rows=rows)
        new._arr = self._arr
        return new


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _load_index(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"cache folder not found: {path}")
    info_p = path / INFO_FILE
    if not info_p.is_file():
        raise SkeletonFormatError(
            info_p, "not a llmskel cache: info.json is missing (prepare one with `llmskel data prepare`)"
        )
    try:
        info = json.loads(info_p.read_text())
    except (ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else f"not valid JSON ({e})"
        raise SkeletonFormatError(info_p, f"corrupt cache: info.json is {why}") from None
    if not isinstance(info, dict) or info.get("format") != CACHE_FORMAT:
        raise SkeletonFormatError(info_p, f"not a llmskel cache: 'format' is not {CACHE_FORMAT!r}")
    version = info.get("version", 0)
    if not _is_int(version):
        raise SkeletonFormatError(info_p, f"corrupt cache: 'version' is {version!r}, not an integer")
    if version > CACHE_VERSION:
        raise SkeletonFormatError(
            info_p, f"cache version {info.get('version')} is newer than this llmskel reads ({CACHE_VERSION})"
        )
    for key in ("layout", "classes", "num_bodies", "channels", "count", "total_frames"):
        if key not in info:
            raise SkeletonFormatError(info_p, f"corrupt cache: info.json has no {key!r}")
    for key, low in (("num_bodies", 1), ("channels", 1), ("count", 0), ("total_frames", 0)):
        if not _is_int(info[key]) or info[key] < low:
            raise SkeletonFormatError(
                info_p, f"corrupt cache: {key!r} is {info[key]!r}, expected an integer >= {low}"
            )
    classes = info["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise SkeletonFormatError(info_p, "corrupt cache: 'classes' is not a list of class names")
    if not isinstance(info["layout"], str):
        raise SkeletonFormatError(info_p, f"corrupt cache: 'layout' is {info['layout']!r}, not a layout name")
    try:
        get_layout(info["layout"])
    except KeyError as e:
        raise SkeletonFormatError(info_p, f"corrupt cache: {e.args[0] if e.args else e}") from None
    idx_p = path / INDEX_FILE
    if not idx_p.is_file():
        raise SkeletonFormatError(idx_p, "corrupt cache: samples.jsonl is missing")
    metas: list[dict[str, Any]] = []
    with open(idx_p) as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                m = json.loads(line)
                fields = m["offset"], m["length"], m["label"]
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                raise SkeletonFormatError(
                    idx_p, f"corrupt cache index entry ({type(e).__name__}: {e})", where=f"line {ln}"
                ) from None
            if not all(_is_int(v) for v in fields) or fields[0] < 0 or fields[1] < 1 or fields[2] < -1:
                raise SkeletonFormatError(
                    idx_p,
                    "corrupt cache index entry: offset, length and label must be integers "
                    f"(offset >= 0, length >= 1, label >= -1), got {list(fields)}",
                    where=f"line {ln}",
                )
            if fields[0] + fields[1] > info["total_frames"]:
                raise SkeletonFormatError(
                    idx_p,
                    f"corrupt cache: sample rows {fields[0]}..{fields[0] + fields[1]} are outside arrays.npy "
                    f"({info['total_frames']} frames)",
                    where=f"line {ln}",
                )
            metas.append(m)
    if len(metas) != int(info["count"]):
        raise SkeletonFormatError(
            idx_p, f"corrupt cache: {len(metas)} entries but info.json says {info['count']}"
        )
    offset = np.array([m["offset"] for m in metas], dtype=np.int64)
    length = np.array([m["length"] for m in metas], dtype=np.int64)
    label = np.array([m["label"] for m in metas], dtype=np.int64)
    if len(metas) and (offset.min() < 0 or (offset + length).max() > int(info["total_frames"])):
        bad = int(np.argmax((offset < 0) | (offset + length > int(info["total_frames"])))) + 1
        raise SkeletonFormatError(
            idx_p, "corrupt cache: sample rows outside arrays.npy", where=f"entry {bad}"
        )
    if len(metas) and label.max() >= len(info["classes"]):
        raise SkeletonFormatError(idx_p, f"corrupt cache: a label >= the {len(info['classes'])} classes")
    return {"info": info, "meta": metas, "offset": offset, "length": length, "label": label}


def _open_arrays(path: Path, info: dict[str, Any]) -> np.ndarray:
    arr_p = path / ARRAYS_FILE
    if not arr_p.is_file():
        raise SkeletonFormatError(arr_p, "corrupt cache: arrays.npy is missing")
    try:
        arr = np.load(arr_p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise SkeletonFormatError(arr_p, f"corrupt cache: cannot read arrays.npy ({e})") from None
    want = (
        int(info["total_frames"]),
        int(info["num_bodies"]),
        get_layout(info["layout"]).num_joints,
        int(info["channels"]),
    )
    if tuple(arr.shape) != want or arr.dtype != np.float32:
        raise SkeletonFormatError(
            arr_p,
            f"corrupt cache: arrays.npy is {arr.dtype} {tuple(arr.shape)}, info.json says float32 {want}",
        )
    return arr
