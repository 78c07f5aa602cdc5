"""pyskl / mmaction2 skeleton annotation files (``.pkl``).

Layout of the file::

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
     "annotations": [{"frame_dir": str, "label": int, "keypoint": (M, T, V, C) float,
                      "keypoint_score": (M, T, V) float (2D files), "total_frames": int,
                      "img_shape": (h, w), ...}, ...]}

Samples are ``(T, M, V, C)``; a 2D file's ``keypoint_score`` becomes the third channel
(x, y, score). The layout is the one named, or inferred from V (25 ntu25, 17 coco17, 18
openpose18, 20 kinect20, 33 mediapipe33). Each sample's ``extra["splits"]`` lists the splits it
belongs to, so the protocol ``split:xsub`` (or ``split:xsub_train,xsub_val``) selects them.

**Security.** These files are Python pickles, and unpickling runs whatever code the file
contains. They are read only with an explicit opt-in (``allow_pickle=True``, ``--allow-pickle``,
``data.allow_pickle: true``), and only files from a source you trust should be opened so.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import LlmskelError, SkeletonFormatError
from ..layouts import get_layout
from ..sample import SkeletonDataset, SkeletonSample
from .ntu import NTU_NAME_RE, ntu_classes_for, parse_ntu_name

log = logging.getLogger(__name__)

LAYOUT_BY_JOINTS = {25: "ntu25", 17: "coco17", 18: "openpose18", 20: "kinect20", 33: "mediapipe33"}


class PickleNotAllowedError(LlmskelError, PermissionError):
    """Reading a pickle was refused because the caller did not opt in."""


def infer_layout(num_joints: int, source: str | os.PathLike | None = None, where: str | None = None) -> str:
    """The built-in layout with this many joints; an error names the file and the choices."""
    if num_joints not in LAYOUT_BY_JOINTS:
        known = ", ".join(f"{v} ({k} joints)" for k, v in sorted(LAYOUT_BY_JOINTS.items()))
        raise SkeletonFormatError(
            source, f"no built-in layout has {num_joints} joints; name one of: {known}", where
        )
    return LAYOUT_BY_JOINTS[num_joints]


def load_pickle(path: str | os.PathLike, *, allow_pickle: bool = False) -> Any:
    """Unpickle ``path`` only when ``allow_pickle`` is true (see the module docstring)."""
    path = Path(path)
    if not allow_pickle:
        raise PickleNotAllowedError(
            f"{path}: is a Python pickle; unpickling runs arbitrary code stored in the file, so llmskel "
            "reads pickles only when you opt in: allow_pickle=True (CLI --allow-pickle, config "
            "data.allow_pickle: true). Do so only for files from a source you trust."
        )
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - explicit opt-in above
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise SkeletonFormatError(path, f"cannot unpickle ({type(e).__name__}: {e})") from None


def annotation_to_sample(
    ann: dict[str, Any], source: str, *, layout: str | None, classes: list[str] | None, index: int
) -> SkeletonSample:
    """One annotation dict -> sample; errors name the file and the annotation."""
    name = str(ann.get("frame_dir", f"#{index}")) if isinstance(ann, dict) else f"#{index}"
    where = f"annotation {index} ({name})"
    if not isinstance(ann, dict):
        raise SkeletonFormatError(source, f"annotation is a {type(ann).__name__}, not a dict", where)
    if "keypoint" not in ann:
        raise SkeletonFormatError(source, "annotation has no 'keypoint' array", where)
    try:
        kp = np.asarray(ann["keypoint"], dtype=np.float32)
    except (ValueError, TypeError):
        raise SkeletonFormatError(source, "'keypoint' is not a numeric array", where) from None
    if kp.ndim != 4:
        raise SkeletonFormatError(source, f"'keypoint' must be (M, T, V, C), got shape {kp.shape}", where)
    m, t, v, c = kp.shape
    if t == 0 or m == 0:
        raise SkeletonFormatError(source, "annotation has zero frames or zero bodies", where)
    if c == 2:
        score = ann.get("keypoint_score")
        if score is not None:
            score = np.asarray(score, dtype=np.float32)
            if score.shape != (m, t, v):
                raise SkeletonFormatError(
                    source, f"'keypoint_score' shape {score.shape} does not match keypoint {(m, t, v)}", where
                )
            kp = np.concatenate([kp, score[..., None]], axis=-1)
    elif c != 3:
        raise SkeletonFormatError(source, f"keypoints need 2 or 3 channels, got {c}", where)
    lay = get_layout(layout).name if layout else infer_layout(v, source, where)
    if get_layout(lay).num_joints != v:
        raise SkeletonFormatError(
            source, f"{v} joints but layout {lay!r} has {get_layout(lay).num_joints}", where
        )
    data = np.ascontiguousarray(kp.transpose(1, 0, 2, 3))  # (M, T, V, C) -> (T, M, V, C)
    bad = ~np.isfinite(data)
    if bad.any():
        fr = int(np.argwhere(bad.reshape(t, -1).any(1))[0, 0])
        raise SkeletonFormatError(source, f"non-finite keypoint (NaN or inf) in frame {fr}", where)
    label = ann.get("label", -1)
    try:
        label = int(label)
    except (TypeError, ValueError):
        raise SkeletonFormatError(source, f"'label' must be an integer, got {label!r}", where) from None
    if classes is not None and label >= len(classes):
        raise SkeletonFormatError(source, f"label {label} is beyond the {len(classes)} classes", where)
    meta = parse_ntu_name(name) if NTU_NAME_RE.search(name) else {}
    extra = {"name": name}
    for key in ("total_frames", "img_shape", "original_shape"):
        if key in ann:
            extra[key] = np.asarray(ann[key]).tolist()
    return SkeletonSample(
        data=data,
        layout=lay,
        label=label,
        label_name=classes[label] if classes is not None and label >= 0 else None,
        subject=meta.get("performer"),
        view=meta.get("camera"),
        setup=meta.get("setup"),
        source=f"{source}#{name}",
        extra=extra,
    )


def read_pyskl_file(
    path: str | os.PathLike, *, allow_pickle: bool = False
) -> tuple[list[Any], dict[str, list[str]]]:
    """(annotations, split membership ``frame_dir -> [split names]``) of an annotation pickle."""
    path = Path(path)
    obj = load_pickle(path, allow_pickle=allow_pickle)
    if isinstance(obj, dict):
        anns = obj.get("annotations")
        splits = obj.get("split") or {}
    elif isinstance(obj, list):  # some files are a bare list of annotations
        anns, splits = obj, {}
    else:
        raise SkeletonFormatError(
            path, f"expected a dict with 'annotations' (pyskl format), got {type(obj).__name__}"
        )
    if not isinstance(anns, list) or not anns:
        raise SkeletonFormatError(path, "no 'annotations' list in the file")
    if not isinstance(splits, dict):
        raise SkeletonFormatError(path, "'split' must map split names to lists of frame_dir names")
    membership: dict[str, list[str]] = {}
    for split_name, names in splits.items():
        for n in names:
            membership.setdefault(str(n), []).append(str(split_name))
    return anns, membership


def pyskl_classes(anns: list[Any], classes: list[str] | None = None) -> list[str]:
    """``classes`` if given; NTU names for NTU-named samples; else ``class_0 ... class_{K-1}``."""
    if classes is not None:
        return list(classes)
    int_labels = [
        int(a["label"]) for a in anns if isinstance(a, dict) and isinstance(a.get("label"), (int, np.integer))
    ]
    dirs = [str(a.get("frame_dir", "")) for a in anns if isinstance(a, dict)]
    if dirs and all(NTU_NAME_RE.search(d) for d in dirs):
        return ntu_classes_for(lab + 1 for lab in int_labels)
    return [f"class_{i}" for i in range(max(int_labels, default=-1) + 1)]


def load_pyskl(
    path: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    layout: str | None = None,
    classes: list[str] | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> SkeletonDataset:
    """Read a pyskl / mmaction2 annotation pickle (see the module docstring).

    ``classes`` names the labels; without it NTU-named samples get the NTU class names and other
    files ``class_0 ... class_{K-1}``. Bad annotations are skipped, logged and appended to
    ``skipped`` as ``{"file", "error"}``.
    """
    path = Path(path)
    anns, membership = read_pyskl_file(path, allow_pickle=allow_pickle)
    classes = pyskl_classes(anns, classes)
    src = str(path)
    samples: list[SkeletonSample] = []
    skipped = skipped if skipped is not None else []
    for i, ann in enumerate(anns):
        try:
            s = annotation_to_sample(ann, src, layout=layout, classes=classes, index=i)
        except SkeletonFormatError as e:
            skipped.append({"file": src, "error": str(e)})
            log.warning("skipped %s", e)
            continue
        s.extra["splits"] = membership.get(s.extra["name"], [])
        samples.append(s)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(path, f"no readable annotation ({len(skipped)} skipped{first})")
    lay = samples[0].layout
    other = [s for s in samples if s.layout != lay]
    if other:
        raise SkeletonFormatError(
            path, f"annotations mix layouts ({lay} and {other[0].layout}); name one layout"
        )
    return SkeletonDataset(samples, classes, lay, name=path.stem)
