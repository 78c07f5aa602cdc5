"""UTKinect-Action3D: continuous Kinect v1 recordings cut into action segments by a label file.

* ``joints_sXX_eYY.txt``: one line per recorded frame, a frame id then 20 x 3 joint coordinates
  (metres). Frame ids grow but skip values, and some ids appear on two consecutive lines with
  slightly different poses; every line is kept, in file order.
* ``actionLabel.txt``: per take a header line ``sXX_eYY`` then one line per action,
  ``action: start end`` (frame ids, inclusive). The row ``carry:  NaN NaN`` of ``s10_e02`` has no
  frames: it is reported by name in the returned ``skipped`` list and a warning, leaving 199
  segments.

Which label file: the dataset's own ``actionLabel.txt`` is the default, since published results
use it. Some copies carry an ``actionLabel_modified.txt`` that changes 7 rows, all of them
segments that overlap their neighbour or look mistyped in the original (``s03_e01 push:
2556 3622``, which swallows the throw at 3226-3282, becomes ``3556 3622``; ``s09_e01 push: 3266
3390`` overlapping ``pull: 3316 3390`` becomes ``3266 3300``, ...). Pass ``label_file=`` (or point
``data.root`` at the label file) to use it; overlaps in whichever file is read are logged.

Samples are ``kinect20`` with one body; subject ``sXX``; the take ``eYY`` in ``extra``.
Protocols: cross-subject (odd subjects train, even test) and leave-one-subject-out.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SkeletonFormatError
from ..sample import SkeletonDataset, SkeletonSample

log = logging.getLogger(__name__)

UTKINECT_CLASSES: list[str] = [
    "walk",
    "sit down",
    "stand up",
    "pick up",
    "carry",
    "throw",
    "push",
    "pull",
    "wave hands",
    "clap hands",
]
# names as written in the label file
_LABEL_KEYS = {
    "walk": 0,
    "sitdown": 1,
    "standup": 2,
    "pickup": 3,
    "carry": 4,
    "throw": 5,
    "push": 6,
    "pull": 7,
    "wavehands": 8,
    "claphands": 9,
}
NUM_JOINTS = 20
DEFAULT_LABEL_FILE = "actionLabel.txt"
_TAKE_RE = re.compile(r"^s(\d+)_e(\d+)$", re.IGNORECASE)
_JOINTS_RE = re.compile(r"joints_s(\d+)_e(\d+)\.txt$", re.IGNORECASE)


@dataclass
class UtkSegment:
    take: str  # "s01_e01"
    subject: int
    take_index: int
    label: int
    action: str  # as written in the label file
    start: int  # first frame id (inclusive)
    end: int  # last frame id (inclusive)
    line: int  # line of the label file


def parse_utkinect_labels(path: str | os.PathLike) -> tuple[list[UtkSegment], list[dict[str, object]]]:
    """Read a label file: the segments with frames, and the rows without (``{"segment", "file",
    "line", "reason"}``). Malformed lines raise :class:`SkeletonFormatError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UTKinect label file not found: {path}")
    segments: list[UtkSegment] = []
    skipped: list[dict[str, object]] = []
    take: tuple[str, int, int] | None = None
    for ln, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _TAKE_RE.match(line)
        if m:
            take = (line.lower(), int(m.group(1)), int(m.group(2)))
            continue
        if ":" not in line:
            raise SkeletonFormatError(
                path, f"expected 'sXX_eYY' or 'action: start end', got {line!r}", f"line {ln}"
            )
        if take is None:
            raise SkeletonFormatError(path, "an action line before any 'sXX_eYY' take header", f"line {ln}")
        name, _, rest = line.partition(":")
        key = name.strip().replace(" ", "").replace("_", "").lower()
        if key not in _LABEL_KEYS:
            raise SkeletonFormatError(
                path,
                f"unknown action {name.strip()!r}; known: {', '.join(sorted(_LABEL_KEYS))}",
                f"line {ln}",
            )
        fields = rest.split()
        seg_name = f"{take[0]} {name.strip()}"
        if len(fields) != 2:
            raise SkeletonFormatError(
                path, f"expected 'start end' frame ids after {name.strip()!r}", f"line {ln}"
            )
        if any(f.lower() == "nan" for f in fields):
            skipped.append(
                {"segment": seg_name, "file": str(path), "line": ln, "reason": "no frames (NaN NaN)"}
            )
            continue
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise SkeletonFormatError(
                path, f"frame ids must be integers, got {rest.strip()!r}", f"line {ln}"
            ) from None
        if end < start:
            raise SkeletonFormatError(path, f"segment ends ({end}) before it starts ({start})", f"line {ln}")
        segments.append(UtkSegment(take[0], take[1], take[2], _LABEL_KEYS[key], name.strip(), start, end, ln))
    if not segments and not skipped:
        raise SkeletonFormatError(
            path, "no segment: expected 'sXX_eYY' take lines, each followed by 'action: start end' lines"
        )
    _log_overlaps(segments, path)
    return segments, skipped


def _log_overlaps(segments: list[UtkSegment], path: Path) -> None:
    by_take: dict[str, list[UtkSegment]] = {}
    for s in segments:
        by_take.setdefault(s.take, []).append(s)
    for segs in by_take.values():
        segs = sorted(segs, key=lambda s: s.start)
        for a, b in zip(segs, segs[1:]):
            if b.start < a.end:
                log.info(
                    "%s: %s %s %d-%d overlaps %s %d-%d",
                    path.name,
                    a.take,
                    a.action,
                    a.start,
                    a.end,
                    b.action,
                    b.start,
                    b.end,
                )


def read_utkinect_joints(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One recording: frame ids (N,) int64 and joints (N, 20, 3) float32, in file order."""
    path = str(path)
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    rows = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not rows:
        raise SkeletonFormatError(path, "file has no frames")
    want = 1 + NUM_JOINTS * 3
    for ln, f in rows:
        if len(f) != want:
            raise SkeletonFormatError(
                path,
                f"expected a frame id and 20 x 3 coordinates ({want} numbers), got {len(f)}",
                f"line {ln}",
            )
    try:
        arr = np.array([f for _, f in rows], dtype=np.float64)  # (N, 61)
    except ValueError:
        for ln, f in rows:
            for x in f:
                try:
                    float(x)
                except ValueError:
                    raise SkeletonFormatError(path, f"non-numeric value {x!r}", f"line {ln}") from None
        raise
    bad = ~np.isfinite(arr)
    if bad.any():
        r = int(np.argwhere(bad.any(axis=1))[0, 0])
        raise SkeletonFormatError(path, "non-finite value (NaN or inf)", f"line {rows[r][0]}")
    ids = arr[:, 0]
    if np.any(ids != np.round(ids)):
        r = int(np.argmax(ids != np.round(ids)))
        raise SkeletonFormatError(path, f"frame id {rows[r][1][0]!r} is not an integer", f"line {rows[r][0]}")
    return ids.astype(np.int64), arr[:, 1:].reshape(-1, NUM_JOINTS, 3).astype(np.float32)


def cut_segments(
    joints_file: str | os.PathLike, segments: list[UtkSegment], skipped: list[dict[str, object]] | None = None
) -> list[SkeletonSample]:
    """Cut one recording into the samples of its segments (frame ids start..end inclusive)."""
    ids, joints = read_utkinect_joints(joints_file)
    out = []
    first, last = int(ids.min()), int(ids.max())
    for seg in segments:
        keep = (ids >= seg.start) & (ids <= seg.end)
        if keep.any() and (seg.start < first or seg.end > last):
            log.warning(
                "UTKinect segment %s %s (label file line %d): range %d-%d goes beyond the frames "
                "%d-%d of %s; cut to %d-%d",
                seg.take,
                seg.action,
                seg.line,
                seg.start,
                seg.end,
                first,
                last,
                Path(joints_file).name,
                int(ids[keep].min()),
                int(ids[keep].max()),
            )
        if not keep.any():
            msg = f"no frame with an id in {seg.start}-{seg.end} in {Path(joints_file).name}"
            if skipped is None:
                raise SkeletonFormatError(joints_file, msg)
            skipped.append(
                {
                    "segment": f"{seg.take} {seg.action}",
                    "file": str(joints_file),
                    "line": seg.line,
                    "reason": msg,
                }
            )
            log.warning("UTKinect segment %s %s skipped: %s", seg.take, seg.action, msg)
            continue
        out.append(
            SkeletonSample(
                data=joints[keep][:, None],  # (T, 1, 20, 3)
                layout="kinect20",
                label=seg.label,
                label_name=UTKINECT_CLASSES[seg.label],
                subject=seg.subject,
                source=f"{joints_file}#{seg.start}-{seg.end}",
                extra={
                    "name": f"{seg.take}_{UTKINECT_CLASSES[seg.label].replace(' ', '_')}",
                    "take": seg.take_index,
                },
            )
        )
    return out


def resolve_utkinect_paths(
    root: str | os.PathLike, label_file: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """(folder with joints files, label file). ``root`` may be the folder or the label file itself."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"UTKinect folder not found: {root}")
    if root.is_file():
        return root.parent, root
    if label_file is not None:
        lf = Path(label_file)
        return root, lf if lf.is_absolute() or lf.exists() else root / lf
    return root, root / DEFAULT_LABEL_FILE


def utkinect_segments(
    root: str | os.PathLike, label_file: str | os.PathLike | None = None
) -> tuple[dict[Path, list[UtkSegment]], list[dict[str, object]]]:
    """Segments per joints file, and the label rows skipped (see :func:`parse_utkinect_labels`)."""
    folder, lf = resolve_utkinect_paths(root, label_file)
    segments, skipped = parse_utkinect_labels(lf)
    files: dict[Path, list[UtkSegment]] = {}
    for seg in segments:
        jf = folder / f"joints_{seg.take}.txt"
        files.setdefault(jf, []).append(seg)
    missing = [str(f) for f in files if not f.is_file()]
    if missing and len(missing) == len(files):
        raise SkeletonFormatError(folder, f"no joints_sXX_eYY.txt file for the takes of {lf.name}")
    for item in skipped:
        log.warning(
            "UTKinect segment %s skipped (%s line %s): %s",
            item["segment"],
            lf.name,
            item["line"],
            item["reason"],
        )
    return files, skipped


def load_utkinect(
    root: str | os.PathLike,
    *,
    label_file: str | os.PathLike | None = None,
    skipped: list[dict[str, object]] | None = None,
) -> SkeletonDataset:
    """All segments as an in-memory dataset (199 with the dataset's ``actionLabel.txt``).

    Label rows without frames and recordings that cannot be read are appended to ``skipped``
    (``{"segment", "file", "line", "reason"}``) and logged as warnings.
    """
    files, skipped_rows = utkinect_segments(root, label_file)
    skipped = skipped if skipped is not None else []
    skipped.extend(skipped_rows)
    samples: list[SkeletonSample] = []
    for jf, segs in sorted(files.items()):
        try:
            samples.extend(cut_segments(jf, segs, skipped))
        except (SkeletonFormatError, FileNotFoundError) as e:
            for seg in segs:
                skipped.append(
                    {
                        "segment": f"{seg.take} {seg.action}",
                        "file": str(jf),
                        "line": seg.line,
                        "reason": str(e),
                    }
                )
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['reason']}" if skipped else ""
        raise SkeletonFormatError(root, f"no UTKinect segment could be read ({len(skipped)} skipped{first})")
    return SkeletonDataset(samples, UTKINECT_CLASSES, "kinect20", name="utkinect")
