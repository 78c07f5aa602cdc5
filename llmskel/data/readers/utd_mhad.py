"""UTD-MHAD (UT Dallas Multimodal Human Action Dataset), skeleton part, as MATLAB ``.mat`` files.

One file per sequence, named ``aA_sS_tT_skeleton.mat`` (action 1-27, subject 1-8, trial 1-4),
holding one variable ``d_skel`` of shape ``(20, 3, T)``: 20 Kinect v1 joints x (x, y, z) in
metres x frames. The joint order is the dataset's own (``Skeleton_joint_order.txt``: head,
shoulder centre, spine, hip centre, ...), kept as layout ``utd20``
(:func:`~llmskel.data.layouts.convert_layout` maps it to ``kinect20``).

Samples are ``utd20`` with one body; label = action - 1, taken from the file name; subject ``sS``;
the trial in ``extra["take"]``. The standard cross-subject protocol trains on the odd subjects
(1, 3, 5, 7) and tests on the even ones: 431 / 430 of the 861 sequences.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ...errors import SkeletonFormatError
from ..sample import SkeletonDataset, SkeletonSample
from .files import dataset_files
from .matlab import load_mat

log = logging.getLogger(__name__)

UTD_MHAD_CLASSES: list[str] = [
    "right arm swipe to the left",
    "right arm swipe to the right",
    "right hand wave",
    "two hand front clap",
    "right arm throw",
    "cross arms in the chest",
    "basketball shoot",
    "right hand draw x",
    "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)",
    "draw triangle",
    "bowling (right hand)",
    "front boxing",
    "baseball swing from right",
    "tennis right hand forehand swing",
    "arm curl (two arms)",
    "tennis serve",
    "two hand push",
    "right hand knock on door",
    "right hand catch an object",
    "right hand pick up and throw",
    "jogging in place",
    "walking in place",
    "sit to stand",
    "stand to sit",
    "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
]
UTD_MHAD_NAME_RE = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$", re.IGNORECASE)
NUM_JOINTS = 20
VARIABLE = "d_skel"


def parse_utd_mhad_name(name: str | os.PathLike) -> dict[str, int]:
    """``a01_s02_t03_skeleton.mat`` -> action, subject, trial (1-based as written)."""
    m = UTD_MHAD_NAME_RE.search(Path(name).name)
    if not m:
        raise SkeletonFormatError(name, "name does not follow the UTD-MHAD pattern aA_sS_tT_skeleton.mat")
    a, s, t = (int(g) for g in m.groups())
    return {"action": a, "subject": s, "trial": t}


def read_utd_mhad_file(path: str | os.PathLike) -> SkeletonSample:
    """Read one UTD-MHAD skeleton file (see the module docstring)."""
    path = str(path)
    meta = parse_utd_mhad_name(path)
    if not 1 <= meta["action"] <= len(UTD_MHAD_CLASSES):
        raise SkeletonFormatError(
            path, f"action a{meta['action']} in the name is outside 1-{len(UTD_MHAD_CLASSES)}"
        )
    mat = load_mat(path, "UTD-MHAD")
    if VARIABLE not in mat:
        found = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise SkeletonFormatError(path, f"no variable {VARIABLE!r} (UTD-MHAD skeleton); variables: {found}")
    arr = np.asarray(mat[VARIABLE])
    if not np.issubdtype(arr.dtype, np.number):
        raise SkeletonFormatError(path, f"{VARIABLE!r} is not numeric (dtype {arr.dtype})")
    if arr.ndim == 2 and arr.shape == (NUM_JOINTS, 3):  # MATLAB drops a trailing axis of one frame
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[:2] != (NUM_JOINTS, 3):
        raise SkeletonFormatError(path, f"{VARIABLE!r} must be 20 x 3 x T, got shape {arr.shape}")
    if arr.shape[2] == 0:
        raise SkeletonFormatError(path, "sequence has zero frames")
    data = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)  # (T, 20, 3)
    bad = ~np.isfinite(data)
    if bad.any():
        t = int(np.argwhere(bad.reshape(data.shape[0], -1).any(1))[0, 0])
        raise SkeletonFormatError(path, "non-finite joint coordinate (NaN or inf)", where=f"frame {t}")
    label = meta["action"] - 1
    return SkeletonSample(
        data=data[:, None],  # (T, 1, 20, 3)
        layout="utd20",
        label=label,
        label_name=UTD_MHAD_CLASSES[label],
        subject=meta["subject"],
        source=path,
        extra={"name": Path(path).stem, "take": meta["trial"]},
    )


def find_utd_mhad_files(root: str | os.PathLike) -> list[Path]:
    """Skeleton files under ``root`` (the dataset folder or a parent), sorted by name."""
    return dataset_files(root, "UTD-MHAD", "*.mat", UTD_MHAD_NAME_RE, what="skeleton (aA_sS_tT_skeleton.mat)")


def load_utd_mhad(root: str | os.PathLike, *, skipped: list[dict[str, str]] | None = None) -> SkeletonDataset:
    """Every sequence under ``root`` as an in-memory dataset (861 for the full set, about 7 MB).

    Unreadable files are skipped, logged and appended to ``skipped`` as ``{"file", "error"}``.
    """
    samples = []
    skipped = skipped if skipped is not None else []
    for f in find_utd_mhad_files(root):
        try:
            samples.append(read_utd_mhad_file(f))
        except SkeletonFormatError as e:
            skipped.append({"file": str(f), "error": str(e)})
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(root, f"no readable UTD-MHAD sequence ({len(skipped)} skipped{first})")
    return SkeletonDataset(samples, UTD_MHAD_CLASSES, "utd20", name="utd-mhad")
