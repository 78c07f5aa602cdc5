"""Penn Action pose annotations (no video), one MATLAB ``.mat`` file per clip (``0001.mat`` ...).

Each file holds ``x``, ``y`` (T x 13 image pixels, ``y`` grows downwards), ``visibility`` (T x 13,
0 where the annotators could not see the joint: its coordinates are then a guess or 0), ``action``
(the class name, e.g. ``baseball_pitch``), ``train`` (1 train, -1 test: the official split,
1,258 / 1,068 clips), and ``pose`` (camera view: front, back, left, right), ``nframes``, ``bbox``,
``dimensions`` (height, width, T). Joint order: head, left/right shoulder, elbow, wrist, hip, knee,
ankle: layout ``penn13``.

Samples are ``penn13`` with one body and channels ``x, y, visibility`` (the visibility is the
score channel of 2D data, see :mod:`llmskel.data.transforms`); coordinates stay in pixels, with the
image size in ``extra["image_size"]`` (width, height). The class names are the dataset's with
spaces for underscores (``baseball pitch``); ``extra["split"]`` is ``train`` / ``test`` from the
``train`` flag, ``extra["pose"]`` the camera view.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SkeletonFormatError
from ..sample import SkeletonDataset, SkeletonSample
from .files import dataset_files
from .matlab import load_mat

log = logging.getLogger(__name__)

PENN_ACTION_CLASSES: list[str] = [
    "baseball pitch",
    "baseball swing",
    "bench press",
    "bowl",
    "clean and jerk",
    "golf swing",
    "jump rope",
    "jumping jacks",
    "pullup",
    "pushup",
    "situp",
    "squat",
    "strum guitar",
    "tennis forehand",
    "tennis serve",
]
PENN_ACTION_NAME_RE = re.compile(r"^\d+\.mat$", re.IGNORECASE)
NUM_JOINTS = 13
REQUIRED = ("x", "y", "visibility", "action")


def _scalar(mat: dict[str, Any], key: str) -> Any:
    v = np.asarray(mat[key]).reshape(-1)
    return v[0] if v.size == 1 else None


def _string(mat: dict[str, Any], key: str) -> str | None:
    if key not in mat:
        return None
    v = np.asarray(mat[key]).reshape(-1)
    return str(v[0]).strip() if v.size == 1 and v.dtype.kind in "US" else None


def read_penn_action_file(path: str | os.PathLike) -> SkeletonSample:
    """Read one Penn Action clip (see the module docstring)."""
    path = str(path)
    mat = load_mat(path, "Penn Action")
    missing = [k for k in REQUIRED if k not in mat]
    if missing:
        found = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise SkeletonFormatError(
            path, f"missing variable(s) {', '.join(map(repr, missing))} (Penn Action); variables: {found}"
        )
    arrays = {}
    for k in ("x", "y", "visibility"):
        a = np.asarray(mat[k])
        if not np.issubdtype(a.dtype, np.number):
            raise SkeletonFormatError(path, f"{k!r} is not numeric (dtype {a.dtype})")
        if a.ndim == 1 and a.size == NUM_JOINTS:  # MATLAB keeps a one-frame clip as a row
            a = a[None]
        if a.size == 0:
            raise SkeletonFormatError(path, "clip has zero frames")
        if a.ndim != 2 or a.shape[1] != NUM_JOINTS:
            raise SkeletonFormatError(path, f"{k!r} must be T x 13, got shape {a.shape}")
        arrays[k] = a
    shapes = {k: a.shape for k, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise SkeletonFormatError(
            path,
            "'x', 'y' and 'visibility' differ in shape: " + ", ".join(f"{k} {s}" for k, s in shapes.items()),
        )
    data = np.stack([arrays["x"], arrays["y"], arrays["visibility"]], axis=-1).astype(
        np.float32
    )  # (T, 13, 3)
    bad = ~np.isfinite(data)
    if bad.any():
        t = int(np.argwhere(bad.reshape(data.shape[0], -1).any(1))[0, 0])
        raise SkeletonFormatError(path, "non-finite joint coordinate (NaN or inf)", where=f"frame {t}")
    vis = data[..., 2]
    if ((vis != 0) & (vis != 1)).any():
        raise SkeletonFormatError(
            path, f"'visibility' must be 0 or 1, got values {np.unique(vis)[:5].tolist()}"
        )
    if "nframes" in mat:
        n = _scalar(mat, "nframes")
        if n is not None and int(n) != data.shape[0]:
            raise SkeletonFormatError(path, f"'nframes' is {int(n)} but 'x' has {data.shape[0]} frames")
    action = _string(mat, "action")
    if action is None:
        raise SkeletonFormatError(path, "'action' must be one class name (a string)")
    name = action.replace("_", " ").lower()
    if name not in PENN_ACTION_CLASSES:
        raise SkeletonFormatError(
            path, f"unknown action {action!r}; Penn Action classes: {', '.join(PENN_ACTION_CLASSES)}"
        )
    extra: dict[str, Any] = {"name": Path(path).stem, "action": action}
    if "train" in mat:
        flag = _scalar(mat, "train")
        if flag is None or int(flag) not in (1, -1):
            raise SkeletonFormatError(path, f"'train' must be 1 (train) or -1 (test), got {mat['train']!r}")
        extra["split"] = "train" if int(flag) == 1 else "test"
    pose = _string(mat, "pose")
    if pose:
        extra["pose"] = pose
    if "dimensions" in mat:
        dims = np.asarray(mat["dimensions"]).reshape(-1)
        if dims.size >= 2:
            extra["image_size"] = [int(dims[1]), int(dims[0])]  # (width, height)
    label = PENN_ACTION_CLASSES.index(name)
    return SkeletonSample(
        data=data[:, None],  # (T, 1, 13, 3)
        layout="penn13",
        label=label,
        label_name=name,
        source=path,
        extra=extra,
    )


def find_penn_action_files(root: str | os.PathLike) -> list[Path]:
    """Clip files under ``root`` (the ``labels`` folder or a parent), sorted by name."""
    return dataset_files(root, "Penn Action", "*.mat", PENN_ACTION_NAME_RE, what="clip (NNNN.mat)")


def load_penn_action(
    root: str | os.PathLike, *, skipped: list[dict[str, str]] | None = None
) -> SkeletonDataset:
    """Every clip under ``root`` as an in-memory dataset (2,326 for the full set, about 6 MB).

    Unreadable files are skipped, logged and appended to ``skipped`` as ``{"file", "error"}``.
    """
    samples = []
    skipped = skipped if skipped is not None else []
    for f in find_penn_action_files(root):
        try:
            samples.append(read_penn_action_file(f))
        except SkeletonFormatError as e:
            skipped.append({"file": str(f), "error": str(e)})
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(root, f"no readable Penn Action clip ({len(skipped)} skipped{first})")
    return SkeletonDataset(samples, PENN_ACTION_CLASSES, "penn13", name="penn-action")
