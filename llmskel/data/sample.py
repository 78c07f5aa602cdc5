"""The data contract of llmskel: one sample, one dataset, one conversion to model input.

A **sample** (:class:`SkeletonSample`) is

* ``data``: ``float32`` array of shape ``(T, M, V, C)``: frames, bodies, joints, channels. Channels
  are ``x, y, z`` for 3D sensors (metres, camera space) or ``x, y, score`` for 2D pose estimators
  (pixels or normalised, as the reader documents). Time comes first because Hugging Face
  ``datasets`` array features may vary in length on their first axis only. A body that is absent
  in a frame is all zeros there; ``T`` is the number of recorded frames (no padding inside a sample).
* ``layout``: the name of its :mod:`~llmskel.data.layouts` layout (``ntu25``, ``kinect20``, ...).
* ``label`` (int, ``-1`` when unknown) and ``label_name``.
* metadata: ``subject``, ``view`` (camera), ``setup``, ``source`` (the file it came from, with a
  segment suffix such as ``#12-40`` when cut from a longer recording), and ``extra`` for anything
  else a format carries (NTU replication number, UTKinect take, ...).

A **dataset** is an ordered collection of samples sharing one layout and one list of class names
(``classes[label] == label_name``). :class:`SkeletonDataset` keeps samples in memory;
:class:`~llmskel.data.cache.CachedSkeletonDataset` reads them lazily from a prepared cache. Both
support ``len``, indexing (a :class:`SkeletonSample`, or the output of ``transform`` when one is
set), ``labels``, ``subset`` and ``with_transform``.

Models take batches in the **(N, C, T, V, M)** order of the GCN literature.
:func:`to_model_input` is the one conversion from the (T, M, V, C) contract to it, and
:func:`skeleton_collate` uses it to make batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SkeletonFormatError
from .layouts import get_layout


@dataclass
class SkeletonSample:
    data: np.ndarray  # (T, M, V, C) float32
    layout: str
    label: int = -1
    label_name: str | None = None
    subject: int | None = None
    view: int | None = None
    setup: int | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_bodies(self) -> int:
        return int(self.data.shape[1])

    def meta(self) -> dict[str, Any]:
        """Everything but the array, as plain JSON-able values."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}
        d["extra"] = dict(self.extra)
        return d

    def replace(self, **changes) -> SkeletonSample:
        return dataclasses.replace(self, **changes)


def validate_array(
    data: np.ndarray, layout: str, source: str | None = None, *, allow_nan: bool = False
) -> np.ndarray:
    """Check an array against the contract and return it as float32 (T, M, V, C).

    Raises :class:`SkeletonFormatError` naming ``source`` for a wrong rank, a joint count that does
    not match the layout, zero frames, zero bodies, an array that is all zeros (no body in any
    frame), or non-finite coordinates (with the first bad frame).
    """
    lay = get_layout(layout)
    arr = np.asarray(data)
    if arr.ndim != 4:
        raise SkeletonFormatError(source, f"expected a (T, M, V, C) array, got shape {tuple(arr.shape)}")
    t, m, v, c = arr.shape
    if t == 0:
        raise SkeletonFormatError(source, "sequence has zero frames")
    if m == 0:
        raise SkeletonFormatError(source, f"no body: the array has shape {tuple(arr.shape)} (M = 0 bodies)")
    if v != lay.num_joints:
        raise SkeletonFormatError(source, f"{v} joints per body but layout {lay.name!r} has {lay.num_joints}")
    if c not in (2, 3):
        raise SkeletonFormatError(source, f"expected 2 or 3 channels per joint, got {c}")
    if not np.issubdtype(arr.dtype, np.number):
        raise SkeletonFormatError(source, f"non-numeric array of dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not allow_nan:
        bad = ~np.isfinite(arr)
        if bad.any():
            frame = int(np.argwhere(bad.reshape(t, -1).any(axis=1))[0, 0])
            raise SkeletonFormatError(source, "non-finite coordinate (NaN or inf)", where=f"frame {frame}")
    if not np.any(arr):
        raise SkeletonFormatError(source, f"every coordinate is zero: no body in any of the {t} frames")
    return arr


class BaseSkeletonDataset(torch.utils.data.Dataset):
    """Shared API of in-memory and cached datasets (see the module docstring)."""

    layout: str
    classes: list[str]
    name: str
    transform: Callable[[SkeletonSample], Any] | None

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def get(self, i: int) -> SkeletonSample:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def subset(self, indices: Sequence[int]) -> BaseSkeletonDataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def with_transform(self, transform: Callable[[SkeletonSample], Any] | None) -> BaseSkeletonDataset:
        new = self.subset(range(len(self)))
        new.transform = transform
        return new

    def __getitem__(self, i: int):
        s = self.get(int(i))
        return self.transform(s) if self.transform is not None else s

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def meta(self, i: int) -> dict[str, Any]:
        return self.get(i).meta()

    def class_counts(self) -> np.ndarray:
        lab = self.labels
        return np.bincount(lab[lab >= 0], minlength=self.num_classes)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, samples={len(self)}, layout={self.layout!r}, "
            f"classes={self.num_classes})"
        )


class SkeletonDataset(BaseSkeletonDataset):
    """Samples held in memory. ``classes[label]`` names each label."""

    def __init__(
        self,
        samples: Sequence[SkeletonSample],
        classes: Sequence[str],
        layout: str,
        name: str = "",
        transform: Callable[[SkeletonSample], Any] | None = None,
    ):
        self.samples = list(samples)
        self.classes = list(classes)
        self.layout = get_layout(layout).name
        self.name = name
        self.transform = transform
        for s in self.samples:
            if get_layout(s.layout).name != self.layout:
                raise SkeletonFormatError(
                    s.source, f"sample layout {s.layout!r} differs from dataset layout {self.layout!r}"
                )
            if s.label >= len(self.classes):
                raise SkeletonFormatError(
                    s.source, f"label {s.label} out of range for {len(self.classes)} classes"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, i: int) -> SkeletonSample:
        return self.samples[i]

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def subset(self, indices: Sequence[int]) -> SkeletonDataset:
        return SkeletonDataset(
            [self.samples[i] for i in indices], self.classes, self.layout, self.name, self.transform
        )

    def meta(self, i: int) -> dict[str, Any]:
        return self.samples[i].meta()


def to_model_input(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, M, V, C) or batched (N, T, M, V, C) -> (C, T, V, M) or (N, C, T, V, M) float32 tensor.

    The one place where the data contract's axis order meets the models' order.
    """
    x = torch.as_tensor(data, dtype=torch.float32)
    if x.ndim == 4:
        return x.permute(3, 0, 2, 1).contiguous()
    if x.ndim == 5:
        return x.permute(0, 4, 1, 3, 2).contiguous()
    raise ValueError(f"expected (T, M, V, C) or (N, T, M, V, C), got shape {tuple(x.shape)}")


def skeleton_collate(batch: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Collate dicts with ``x`` as (T, M, V, C) arrays of one shape into ``x`` (N, C, T, V, M).

    Other numeric keys (``label``, ``index``, ``length``) become tensors; string keys become lists.
    """
    out: dict[str, Any] = {}
    xs = np.stack([b["x"] for b in batch])  # (N, T, M, V, C)
    out["x"] = to_model_input(xs)
    for key in batch[0]:
        if key == "x":
            continue
        vals = [b[key] for b in batch]
        if isinstance(vals[0], (int, np.integer)):
            out[key] = torch.as_tensor(np.array(vals, dtype=np.int64))
        elif isinstance(vals[0], (float, np.floating)):
            out[key] = torch.as_tensor(np.array(vals, dtype=np.float32))
        elif isinstance(vals[0], np.ndarray):
            out[key] = torch.as_tensor(np.stack(vals))
        else:
            out[key] = vals
    return out
