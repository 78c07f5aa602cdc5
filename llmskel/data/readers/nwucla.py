"""Northwestern-UCLA Multiview Action3D (NW-UCLA) in its per-sequence JSON form.

One file per sequence, named ``aXX_sYY_eZZ_vWW.json`` (action, subject, take, view), holding
``file_name``, ``skeletons`` (T x 20 x 3, Kinect v1 joints in metres) and ``label`` (1-10; the
action ids of the names are 1-6, 8, 9, 11, 12, numbered 1-10 in that order).
Samples are ``kinect20`` with one body; label = ``label - 1``. The standard cross-view protocol
trains on views 1 and 2 and tests on view 3 (1020 / 464 of the 1484 sequences).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ...errors import SkeletonFormatError
from ..sample import SkeletonDataset, SkeletonSample
from .files import dataset_files, read_json

log = logging.getLogger(__name__)

NWUCLA_CLASSES: list[str] = [
    "pick up with one hand",
    "pick up with two hands",
    "drop trash",
    "walk around",
    "sit down",
    "stand up",
    "donning",
    "doffing",
    "throw",
    "carry",
]
NWUCLA_NAME_RE = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)", re.IGNORECASE)
NUM_JOINTS = 20
# the dataset's own action ids (in file names) skip 7 and 10; labels 1-10 number them in order
NWUCLA_ACTION_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)


def parse_nwucla_name(name: str | os.PathLike) -> dict[str, int]:
    """``a01_s02_e03_v01`` -> action, subject, take, view (1-based as written)."""
    m = NWUCLA_NAME_RE.search(Path(name).name)
    if not m:
        raise SkeletonFormatError(name, "name does not follow the NW-UCLA pattern aXX_sYY_eZZ_vWW")
    a, s, e, v = (int(g) for g in m.groups())
    return {"action": a, "subject": s, "take": e, "view": v}


def nwucla_from_dict(d: object, source: str) -> SkeletonSample:
    """Build a sample from the decoded JSON object of one sequence."""
    if not isinstance(d, dict):
        raise SkeletonFormatError(source, f"expected a JSON object, got {type(d).__name__}")
    missing = [k for k in ("skeletons", "label") if k not in d]
    if missing:
        raise SkeletonFormatError(source, f"missing key(s) {', '.join(map(repr, missing))} (NW-UCLA JSON)")
    name = str(d.get("file_name") or Path(source).stem)
    meta = parse_nwucla_name(name if NWUCLA_NAME_RE.search(name) else source)
    if isinstance(d["skeletons"], list) and not d["skeletons"]:
        raise SkeletonFormatError(source, "sequence has zero frames")
    try:
        arr = np.asarray(d["skeletons"], dtype=np.float32)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype == object or arr.ndim != 3:
        # find the first frame that breaks the (T, 20, 3) numeric shape
        frames = d["skeletons"] if isinstance(d["skeletons"], list) else []
        for t, fr in enumerate(frames):
            try:
                a = np.asarray(fr, dtype=np.float32)
            except (ValueError, TypeError):
                raise SkeletonFormatError(
                    source, "non-numeric joint coordinates", where=f"frame {t}"
                ) from None
            if a.shape != (NUM_JOINTS, 3):
                raise SkeletonFormatError(
                    source, f"expected 20 joints x 3 coordinates, got shape {a.shape}", where=f"frame {t}"
                )
        raise SkeletonFormatError(source, "'skeletons' is not a T x 20 x 3 list of numbers")
    if arr.shape[0] == 0:
        raise SkeletonFormatError(source, "sequence has zero frames")
    if arr.shape[1:] != (NUM_JOINTS, 3):
        raise SkeletonFormatError(source, f"expected T x 20 x 3 skeletons, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        t = int(np.argwhere(bad.reshape(arr.shape[0], -1).any(1))[0, 0])
        raise SkeletonFormatError(source, "non-finite joint coordinate (NaN or inf)", where=f"frame {t}")
    label = d["label"]
    if isinstance(label, bool) or not isinstance(label, (int, float)) or int(label) != label:
        raise SkeletonFormatError(source, f"'label' must be an integer 1-10, got {label!r}")
    label = int(label)
    if not 1 <= label <= len(NWUCLA_CLASSES):
        raise SkeletonFormatError(source, f"'label' must be in 1-{len(NWUCLA_CLASSES)}, got {label}")
    if meta["action"] != NWUCLA_ACTION_IDS[label - 1]:
        raise SkeletonFormatError(
            source,
            f"'label' {label} ({NWUCLA_CLASSES[label - 1]}, action a{NWUCLA_ACTION_IDS[label - 1]:02d}) "
            f"disagrees with the action a{meta['action']:02d} in the name",
        )
    return SkeletonSample(
        data=arr[:, None],  # (T, 1, 20, 3)
        layout="kinect20",
        label=label - 1,
        label_name=NWUCLA_CLASSES[label - 1],
        subject=meta["subject"],
        view=meta["view"],
        source=source,
        extra={"name": name, "take": meta["take"]},
    )


def read_nwucla_file(path: str | os.PathLike) -> SkeletonSample:
    """Read one NW-UCLA sequence file (see the module docstring)."""
    path = str(path)
    return nwucla_from_dict(read_json(path), path)


def find_nwucla_files(root: str | os.PathLike) -> list[Path]:
    """Sequence files under ``root`` (the ``all_sqe`` folder or a parent), sorted by name."""
    return dataset_files(root, "NW-UCLA", "*.json", NWUCLA_NAME_RE, what="sequence (aXX_sYY_eZZ_vWW.json)")


def load_nwucla(root: str | os.PathLike, *, skipped: list[dict[str, str]] | None = None) -> SkeletonDataset:
    """All sequences under ``root`` as an in-memory dataset (1484 for the full set, about 40 MB).

    Unreadable files are skipped, logged and appended to ``skipped`` as ``{"file", "error"}``.
    """
    samples = []
    skipped = skipped if skipped is not None else []
    for f in find_nwucla_files(root):
        try:
            samples.append(read_nwucla_file(f))
        except SkeletonFormatError as e:
            skipped.append({"file": str(f), "error": str(e)})
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(root, f"no readable NW-UCLA sequence ({len(skipped)} skipped{first})")
    return SkeletonDataset(samples, NWUCLA_CLASSES, "kinect20", name="nw-ucla")
