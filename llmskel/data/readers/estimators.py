"""What pose estimators write: OpenPose, MediaPipe Pose, mmpose / rtmlib; per frame, per person.

A recording is a :class:`PoseRecording`: frames (:class:`PoseFrame`), each with the persons the
estimator found (:class:`PosePerson`: ``(V, 3)`` x, y, score and the estimator's track id when it
gives one), the layout and the share of joints that were missing.

==========================  ===================================================  ===============
input                       what is read                                          layout
==========================  ===================================================  ===============
OpenPose folder             ``*_keypoints.json``, one per frame (frame number    ``openpose25``
                            from the name): ``people[].pose_keypoints_2d``,      (BODY_25) or
                            ``person_id`` when not -1                             ``openpose18``
MediaPipe Pose JSON         a list of frames, each 33 landmarks ``{x, y, z,       ``mediapipe33``
                            visibility}`` (or ``{"landmarks" | "pose_landmarks":
                            [...]}``, or a list of such lists for several people)
MediaPipe Pose CSV          wide: ``frame, x0, y0, z0, visibility0, ... x32 ...``; ``mediapipe33``
                            long: ``frame, landmark, x, y, z, visibility``; an
                            optional ``person`` / ``track_id`` column
mmpose / rtmlib JSON        mmpose ``instance_info`` or a list of frames           ``coco17``
                            ``{"frame_id", "instances": [{"keypoints",
                            "keypoint_scores", "track_id"}]}``; rtmlib-style
                            ``{"keypoints": N x K x 2, "scores": N x K}``. K = 17
                            (COCO), 133 (COCO-WholeBody) or 26 (Halpe): the body
                            (the first 17 points) is kept
JSON lines                  one frame per line (any frame object above, or
                            ``{"frame", "people": [{"id", "keypoints"}]}``)
==========================  ===================================================  ===============

**Channels.** x, y (the estimator's pixels or normalised units, image y pointing down) and the
confidence score (MediaPipe: ``visibility``; its relative depth ``z`` is not kept, the input is 2D).

**Missing joints** (the fill, everywhere in llmskel): a joint is *missing* when the estimator marks
it (any coordinate NaN; x = y = -1; or x = y = 0 with score 0) or when its score is below
``min_score`` (default :data:`MIN_SCORE`): its x, y and score become 0, the package's marker of an
absent joint, which the preprocessing (:func:`llmskel.data.transforms.joint_mask`) leaves out of
centring, bones and motion. :attr:`PoseRecording.missing_fraction` reports the share of joints so
filled. A person whose joints are all missing in a frame is not a detection in that frame.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SkeletonFormatError
from ..layouts import get_layout

log = logging.getLogger(__name__)

MIN_SCORE = 0.1
# number of keypoints -> layout (and how many of them are kept) for formats that do not name one
_BY_COUNT = {17: ("coco17", 17), 18: ("openpose18", 18), 25: ("openpose25", 25), 26: ("coco17", 17),
             33: ("mediapipe33", 33), 133: ("coco17", 17)}  # fmt: skip
_OPENPOSE_NAME_RE = re.compile(r"(\d+)_keypoints\.json$")


@dataclass
class PosePerson:
    keypoints: np.ndarray  # (V, C) float32; missing joints are zeros
    track_id: int | None = None


@dataclass
class PoseFrame:
    index: int
    persons: list[PosePerson] = field(default_factory=list)
    layout: str | None = None  # when the frame says it (JSON lines); else the recording's
    nan_joints: int = 0  # joints given as NaN (filled as missing)
    empty_persons: int = 0  # persons given without any usable keypoint (left out)


@dataclass
class PoseRecording:
    frames: list[PoseFrame]
    layout: str
    source: str
    missing_fraction: float = 0.0  # share of the joints of all detections that were filled
    skipped: list[dict[str, str]] = field(default_factory=list)  # frames that could not be read

    @property
    def num_frames(self) -> int:
        return len(self.frames)


# ------------------------------------------------------------------------------ missing joints
def clean_keypoints(
    kp: np.ndarray, min_score: float = MIN_SCORE, has_score: bool = True
) -> tuple[np.ndarray, int]:
    """(V, C) keypoints with every missing joint set to 0 (see the module docstring), and how many were.

    ``has_score``: channel 2 is a confidence (2D estimators); for 3D (x, y, z) only NaN marks a joint."""
    kp = np.asarray(kp, dtype=np.float32).copy()
    bad = ~np.isfinite(kp).all(axis=-1)
    if has_score and kp.shape[-1] >= 3:
        s = np.nan_to_num(kp[:, 2], nan=0.0)
        xy = np.nan_to_num(kp[:, :2], nan=0.0)
        bad |= (xy == -1).all(axis=-1) | ((xy == 0).all(axis=-1) & (s <= 0)) | (s < min_score)
    kp[bad] = 0.0
    return kp, int(bad.sum())


def fill_missing_joints(arr: np.ndarray) -> tuple[np.ndarray, float]:
    """(T, M, V, C) array with NaN joints set to 0 (absent); the share of joints that were NaN.

    Infinite values are not a missing-joint marker and stay an error of the caller's validation."""
    nan = np.isnan(arr).any(axis=-1)
    if not nan.any():
        return arr, 0.0
    arr = arr.copy()
    arr[nan] = 0.0
    return arr, float(nan.mean())


# ------------------------------------------------------------------------------ one person / frame
def _track_id(p: dict[str, Any]) -> int | None:
    for key in ("track_id", "id", "person_id", "instance_id", "idx"):
        if key in p:
            v = p[key]
            if isinstance(v, list):
                v = v[0] if v else None
            if v is None:
                return None
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise ValueError(f"track id {key}={p[key]!r} is not an integer") from None
            return None if v < 0 else v
    return None


def _landmarks(items: list[Any]) -> np.ndarray:
    """MediaPipe landmark dicts -> (V, 3) x, y, visibility (presence, else 1 when neither is given)."""
    rows = []
    for lm in items:
        if not isinstance(lm, dict) or "x" not in lm or "y" not in lm:
            raise ValueError("a MediaPipe landmark needs 'x' and 'y'")
        s = lm.get("visibility", lm.get("presence", 1.0))
        rows.append([_num(lm["x"]), _num(lm["y"]), _num(s)])
    return np.asarray(rows, dtype=np.float64)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def parse_person(p: Any) -> tuple[np.ndarray, int | None, str | None]:
    """One person in any accepted shape -> ((V, 3) raw x, y, score, track id or None, layout or None)."""
    tid, lay = None, None
    if isinstance(p, dict):
        tid = _track_id(p)
        if "pose_keypoints_2d" in p:  # OpenPose
            kp = np.asarray([_num(v) for v in p["pose_keypoints_2d"]], dtype=np.float64).reshape(-1, 3)
            lay = {25: "openpose25", 18: "openpose18"}.get(len(kp))
            if lay is None:
                raise ValueError(
                    f"pose_keypoints_2d holds {len(kp)} keypoints; OpenPose BODY_25 has 25, COCO 18"
                )
            return kp, tid, lay
        for key in ("landmarks", "pose_landmarks"):
            if key in p:
                return _landmarks(p[key]), tid, "mediapipe33"
        kp = p.get("keypoints")
        if kp is None:
            raise ValueError("a person has no 'keypoints', 'pose_keypoints_2d' or 'landmarks'")
        kp = np.asarray(_nested_num(kp), dtype=np.float64)
        if kp.ndim == 2 and kp.shape[1] == 2:
            sc = p.get("keypoint_scores", p.get("scores"))
            sc = np.ones(len(kp)) if sc is None else np.asarray(_nested_num(sc), dtype=np.float64).reshape(-1)
            if sc.shape[0] != kp.shape[0]:
                raise ValueError(f"{kp.shape[0]} keypoints but {sc.shape[0]} scores")
            kp = np.concatenate([kp, sc[:, None]], axis=1)
        lay = p.get("layout")
    elif isinstance(p, list) and p and isinstance(p[0], dict):
        return _landmarks(p), None, "mediapipe33"
    else:
        kp = np.asarray(_nested_num(p), dtype=np.float64)
    if kp.size == 0:
        return np.zeros((0, 3)), tid, lay
    if kp.ndim == 1:
        if kp.size % 3:
            raise ValueError(f"{kp.size} numbers are not x, y, score triples")
        kp = kp.reshape(-1, 3)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise ValueError(f"expected V x 3 keypoints (x, y, score), got shape {kp.shape}")
    if kp.shape[1] == 2:
        kp = np.concatenate([kp, np.ones((len(kp), 1))], axis=1)
    if lay is None and len(kp) in _BY_COUNT:
        lay, keep = _BY_COUNT[len(kp)]
        kp = kp[:keep]  # COCO-WholeBody / Halpe: the body is their first 17 points
    return kp, tid, lay


def _nested_num(v: Any) -> Any:
    if isinstance(v, list):
        return [_nested_num(x) for x in v]
    return _num(v)


class _Bad:
    """A frame that failed before parsing; parse_frame raises its message."""

    def __init__(self, msg: str):
        self.msg = msg


def _persons_of(obj: Any) -> tuple[list[Any], int | None, str | None]:
    """(raw persons, frame index or None, layout or None) of one frame object."""
    if isinstance(obj, _Bad):
        raise ValueError(obj.msg)
    if isinstance(obj, list):
        if obj and isinstance(obj[0], dict) and "x" in obj[0]:
            return [obj], None, None  # one MediaPipe person as a bare landmark list
        return list(obj), None, None
    if not isinstance(obj, dict):
        raise ValueError(f"a frame must be a JSON object or list, got {type(obj).__name__}")
    idx = None
    for key in ("frame", "frame_id", "frame_index", "image_id"):
        if key in obj and obj[key] is not None:
            try:
                idx = int(obj[key])
            except (TypeError, ValueError):
                raise ValueError(f"frame number {key}={obj[key]!r} is not an integer") from None
            break
    lay = obj.get("layout")
    for key in ("people", "persons", "instances"):
        if key in obj:
            if not isinstance(obj[key], list):
                raise ValueError(f"'{key}' must be a list")
            return list(obj[key]), idx, lay
    for key in ("landmarks", "pose_landmarks"):
        if key in obj:
            v = obj[key]
            multi = isinstance(v, list) and v and isinstance(v[0], list)
            return (list(v) if multi else [v]), idx, "mediapipe33"
    if "keypoints" in obj and "scores" in obj:  # rtmlib-style arrays: N x K x 2 and N x K
        kps, scs = obj["keypoints"], obj["scores"]
        if len(kps) != len(scs):
            raise ValueError(f"{len(kps)} keypoint sets but {len(scs)} score sets")
        ids = obj.get("track_ids") or [None] * len(kps)
        return [{"keypoints": k, "scores": s, "track_id": i} for k, s, i in zip(kps, scs, ids)], idx, lay
    if "keypoints" in obj:
        return [obj], idx, lay
    raise ValueError("a frame object needs 'people', 'persons', 'instances', 'landmarks' or 'keypoints'")


def parse_frame(obj: Any, default_index: int, layout: str | None = None,
                min_score: float = MIN_SCORE) -> tuple[PoseFrame, int, int]:  # fmt: skip
    """One frame object -> (frame, joints filled as missing, joints seen). Raises ValueError on bad input.

    Persons whose joints are all missing are dropped from the frame (they are no detection)."""
    raw, idx, lay = _persons_of(obj)
    frame = PoseFrame(default_index if idx is None else idx, layout=lay)
    missing = total = 0
    want = get_layout(layout).num_joints if layout else None
    for i, p in enumerate(raw):
        try:
            kp, tid, play = parse_person(p)
        except (ValueError, TypeError) as e:
            raise ValueError(f"person {i}: {e}") from None
        if kp.size == 0:
            frame.empty_persons += 1
            continue
        play = lay or layout or play
        if play is None:
            raise ValueError(f"person {i}: {len(kp)} keypoints match no known layout; name the layout")
        frame.layout = frame.layout or play
        if get_layout(play).name != get_layout(frame.layout).name:
            raise ValueError(f"person {i} is {play} but the frame's other persons are {frame.layout}")
        n = get_layout(play).num_joints
        if want is not None and len(kp) != want and len(kp) != n:
            raise ValueError(f"person {i}: {len(kp)} joints, the stream's layout {layout} has {want}")
        if len(kp) != n:
            raise ValueError(f"person {i}: {len(kp)} joints, layout {play} has {n}")
        has_score = get_layout(play).name not in ("ntu25", "kinect20")
        frame.nan_joints += int(np.isnan(kp).any(axis=-1).sum())
        kp, miss = clean_keypoints(kp, min_score, has_score)
        missing += miss
        total += len(kp)
        if miss == len(kp):
            frame.empty_persons += 1
            continue
        frame.persons.append(PosePerson(kp, tid))
    return frame, missing, total


# ------------------------------------------------------------------------------ whole files
def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    except ValueError as e:
        raise SkeletonFormatError(path, f"not valid JSON ({e})") from None


def _recording(frames_in: Iterable[tuple[Any, str, int]], source: str, layout: str | None,
               min_score: float) -> PoseRecording:  # fmt: skip
    """Frames from (object, where, default index) triples; bad frames are skipped and listed."""
    frames, skipped = [], []
    missing = total = 0
    lay = layout
    for obj, where, i in frames_in:
        try:
            fr, m, n = parse_frame(obj, i, lay, min_score)
        except (ValueError, TypeError, KeyError) as e:
            skipped.append({"where": where, "error": str(e)})
            log.warning("%s (%s): frame skipped: %s", source, where, e)
            continue
        lay = lay or fr.layout
        missing, total = missing + m, total + n
        frames.append(fr)
    if not frames:
        first = f"; first: {skipped[0]['where']}: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(source, f"no readable frame ({len(skipped)} skipped{first})")
    if lay is None:
        raise SkeletonFormatError(source, "no person in any frame, so no layout; name the layout")
    frac = missing / total if total else 0.0
    if frac:
        log.info(
            "%s: %.1f %% of joints missing or below score %.2f, filled as absent",
            source,
            100 * frac,
            min_score,
        )
    return PoseRecording(frames, get_layout(lay).name, source, frac, skipped)


def read_openpose_folder(path: str | os.PathLike, min_score: float = MIN_SCORE) -> PoseRecording:
    """A folder of OpenPose ``*_keypoints.json`` files (one per frame; the number in the name orders them)."""
    folder = Path(path)
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise SkeletonFormatError(folder, "no OpenPose *_keypoints.json file in this folder")

    def number(f: Path) -> int:
        m = _OPENPOSE_NAME_RE.search(f.name)
        return int(m.group(1)) if m else -1

    files.sort(key=lambda f: (number(f), f.name))

    def items() -> Iterator[tuple[Any, str, int]]:
        for i, f in enumerate(files):
            try:
                obj = _load_json(f)
            except SkeletonFormatError as e:
                obj = {"people": None, "_error": e.problem}
            if isinstance(obj, dict) and "_error" in obj:
                yield _Bad(obj["_error"]), f.name, i
                continue
            n = number(f)
            if isinstance(obj, dict) and n >= 0 and "frame" not in obj:
                obj = dict(obj, frame=n)
            yield obj, f.name, i

    return _recording(items(), str(folder), None, min_score)


def read_pose_json(
    path: str | os.PathLike, layout: str | None = None, min_score: float = MIN_SCORE
) -> PoseRecording:
    """An mmpose / rtmlib / MediaPipe / generic pose JSON file holding a whole recording."""
    path = Path(path)
    obj = _load_json(path)
    if isinstance(obj, dict) and "instance_info" in obj:
        seq = obj["instance_info"]
    elif isinstance(obj, dict) and "frames" in obj:
        seq = obj["frames"]
    elif isinstance(obj, dict) and "people" in obj:  # one OpenPose frame
        seq = [obj]
    elif isinstance(obj, list):
        seq = obj
    else:
        raise SkeletonFormatError(
            path, "not a pose JSON (expected 'instance_info', 'frames' or a list of frames)"
        )
    if not isinstance(seq, list):
        raise SkeletonFormatError(path, "the frames are not a list")
    return _recording(((o, f"frame {i}", i) for i, o in enumerate(seq)), str(path), layout, min_score)


def read_mediapipe_csv(path: str | os.PathLike, min_score: float = MIN_SCORE) -> PoseRecording:
    """MediaPipe Pose landmarks as CSV, wide (one row per frame and person) or long (one row per landmark)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    if not rows:
        raise SkeletonFormatError(path, "empty CSV")
    head = [c.strip().lower() for c in rows[0]]
    col = {c: i for i, c in enumerate(head)}
    fcol = next((col[c] for c in ("frame", "frame_id", "frame_index") if c in col), None)
    pcol = next((col[c] for c in ("person", "track_id", "person_id", "id") if c in col), None)
    if fcol is None:
        raise SkeletonFormatError(path, f"line 1: the CSV needs a 'frame' column; columns: {', '.join(head)}")
    frames: dict[int, dict[int | None, dict[int, list[float]]]] = {}
    bad_lines: dict[int, str] = {}
    long = "landmark" in col
    if not long:
        cols = []
        for j in range(33):
            names = [f"x{j}", f"y{j}", f"visibility{j}"], [f"x_{j}", f"y_{j}", f"visibility_{j}"]
            got = next(([col[n] for n in ns] for ns in names if all(n in col for n in ns)), None)
            if got is None:
                raise SkeletonFormatError(
                    path, f"line 1: no columns x{j}, y{j}, visibility{j} (or long format with 'landmark')"
                )
            cols.append(got)
    for ln, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            fr = int(float(row[fcol]))
            pid = int(float(row[pcol])) if pcol is not None and row[pcol].strip() else None
            if long:
                j = int(float(row[col["landmark"]]))
                if not 0 <= j < 33:
                    raise ValueError(f"landmark {j} outside 0..32")
                s = row[col["visibility"]] if "visibility" in col else "1"
                frames.setdefault(fr, {}).setdefault(pid, {})[j] = [
                    _csvnum(row[col["x"]]),
                    _csvnum(row[col["y"]]),
                    _csvnum(s),
                ]
            else:
                frames.setdefault(fr, {})[pid] = {
                    j: [_csvnum(row[c]) for c in cs] for j, cs in enumerate(cols)
                }
        except (ValueError, IndexError, KeyError) as e:
            bad_lines[ln] = str(e)
    items = []
    for fr in sorted(frames):
        persons = []
        for pid, lms in frames[fr].items():
            kp = np.zeros((33, 3))
            for j, v in lms.items():
                kp[j] = v
            persons.append({"keypoints": kp.tolist(), "track_id": pid, "layout": "mediapipe33"})
        items.append(({"frame": fr, "people": persons}, f"frame {fr}", fr))
    rec = _recording(items, str(path), "mediapipe33", min_score)
    rec.skipped += [{"where": f"line {ln}", "error": e} for ln, e in bad_lines.items()]
    for ln, e in bad_lines.items():
        log.warning("%s (line %d): row skipped: %s", path, ln, e)
    return rec


def _csvnum(text: str) -> float:
    text = text.strip()
    return math.nan if text.lower() in ("", "nan", "none", "null") else float(text)


def read_pose_jsonl(lines: Iterable[str], source: str = "<stdin>", layout: str | None = None,
                    min_score: float = MIN_SCORE) -> PoseRecording:  # fmt: skip
    """A whole JSON-lines recording (one frame object per line); bad lines are skipped and listed."""

    def items() -> Iterator[tuple[Any, str, int]]:
        for i, (ln, text) in enumerate(_numbered(lines)):
            try:
                yield json.loads(text), f"line {ln}", i
            except ValueError as e:
                yield _Bad(f"not valid JSON ({e})"), f"line {ln}", i

    return _recording(items(), source, layout, min_score)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for ln, text in enumerate(lines, start=1):
        if text.strip():
            yield ln, text


def read_estimator_output(path: str | os.PathLike, layout: str | None = None,
                          min_score: float = MIN_SCORE) -> PoseRecording:  # fmt: skip
    """Any estimator output above, chosen by what ``path`` is (folder, .json, .jsonl/.ndjson, .csv)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    if p.is_dir():
        return read_openpose_folder(p, min_score)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with open(p, encoding="utf-8") as f:
            return read_pose_jsonl(f, str(p), layout, min_score)
    if suffix == ".csv":
        return read_mediapipe_csv(p, min_score)
    if suffix == ".json":
        return read_pose_json(p, layout, min_score)
    raise SkeletonFormatError(
        p, f"unknown pose-estimator output {suffix!r} (a folder, .json, .jsonl or .csv)"
    )


# ------------------------------------------------------------------------------ recordings as samples
MIN_TRACK_FRAMES = 5  # persons seen in fewer frames are dropped as detector noise (unless all are)


def recording_tracks(rec: PoseRecording, max_distance: float = 0.5,
                     max_gap: int = 30) -> list[tuple[int, dict[int, np.ndarray]]]:  # fmt: skip
    """``(person id, {frame position: (V, C) keypoints})`` per person, in order of first appearance.

    The estimator's track ids are kept; persons without one are linked by
    :class:`llmskel.stream.tracker.CentroidTracker` (nearest centre, a person away for more than
    ``max_gap`` frames comes back under a new id), as ``llmskel stream`` does."""
    from ...stream.tracker import CentroidTracker

    dims = 3 if get_layout(rec.layout).name in ("ntu25", "kinect20") else 2
    tracker = CentroidTracker(max_distance, max_gap, spatial_dims=dims)
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for t, fr in enumerate(rec.frames):
        if not fr.persons:
            continue
        ids = tracker.update(t, [p.keypoints for p in fr.persons], [p.track_id for p in fr.persons])
        for pid, p in zip(ids, fr.persons):
            tracks.setdefault(pid, {}).setdefault(t, p.keypoints)  # a repeated id in a frame: the first
    return sorted(tracks.items(), key=lambda kv: min(kv[1]))


def recording_to_samples(rec: PoseRecording, *, per_person: bool = True, max_bodies: int = 2,
                         min_frames: int = MIN_TRACK_FRAMES) -> list[Any]:  # fmt: skip
    """A recording as :class:`~llmskel.data.sample.SkeletonSample`\\ s (layout of the estimator, x, y, score).

    ``per_person`` (what :func:`llmskel.data.io.read_any` does, so ``predict`` / ``zeroshot`` /
    ``fewshot`` answer per person): one single-body sample per tracked person, from the first to the
    last frame that person is seen in (zeros where not detected), ``source`` ``<file>#person<id>``.
    Persons seen in fewer than ``min_frames`` frames are left out (logged) unless no one is seen
    longer. Otherwise (a labelled row of a bring-your-own folder: the label is the file's): one
    sample holding the ``max_bodies`` persons with the largest total score as bodies over the whole
    recording. ``extra["missing_fraction"]`` is the share of joints missing over the sample's
    frames, a frame without the person counting as all missing; ``extra["recording_missing_fraction"]``
    the estimator-side share (:attr:`PoseRecording.missing_fraction`), ``extra["skipped_frames"]``
    the frames that could not be read."""
    from ..sample import SkeletonSample

    tracks = recording_tracks(rec)
    if not tracks:
        raise SkeletonFormatError(rec.source, f"no person detected in any of its {rec.num_frames} frames")
    v, c = next(iter(tracks[0][1].values())).shape
    stem = Path(rec.source).stem if not Path(rec.source).is_dir() else Path(rec.source).name
    base = {"recording_missing_fraction": round(rec.missing_fraction, 4), "skipped_frames": len(rec.skipped)}

    def missing(data: np.ndarray) -> float:
        return float((~data.any(axis=-1)).mean())

    if not per_person:
        score = {pid: sum(float(k[:, 2].sum()) for k in tr.values()) for pid, tr in tracks}
        keep = sorted(tracks, key=lambda kv: -score[kv[0]])[:max_bodies]
        keep.sort(key=lambda kv: min(kv[1]))
        data = np.zeros((rec.num_frames, max_bodies, v, c), np.float32)
        for m, (_, tr) in enumerate(keep):
            for t, kp in tr.items():
                data[t, m] = kp
        present = data[:, : len(keep)]
        extra = {
            "name": stem,
            "persons": [pid for pid, _ in keep],
            "missing_fraction": round(missing(present), 4),
        }
        return [SkeletonSample(data=data, layout=rec.layout, source=rec.source, extra={**extra, **base})]
    long = [(pid, tr) for pid, tr in tracks if len(tr) >= min_frames] or tracks
    if len(long) < len(tracks):
        short = [f"{pid} ({len(tr)} frames)" for pid, tr in tracks if len(tr) < min_frames]
        log.info(
            "%s: persons seen in fewer than %d frames left out: %s", rec.source, min_frames, ", ".join(short)
        )
    out = []
    for pid, tr in long:
        first, last = min(tr), max(tr)
        data = np.zeros((last - first + 1, 1, v, c), np.float32)
        for t, kp in tr.items():
            data[t - first, 0] = kp
        frac = missing(data)
        if frac:
            log.warning(
                "%s: person %d: %.1f %% of joints missing, filled as absent", rec.source, pid, 100 * frac
            )
        extra = {"name": f"{stem}#person{pid}", "person": pid, "first_frame": rec.frames[first].index,
                 "last_frame": rec.frames[last].index, "missing_fraction": round(frac, 4)}  # fmt: skip
        out.append(SkeletonSample(data=data, layout=rec.layout, source=f"{rec.source}#person{pid}",
                                  extra={**extra, **base}))  # fmt: skip
    return out


# ------------------------------------------------------------------------------ recognising inputs
_ESTIMATOR_PERSON_KEYS = ("pose_keypoints_2d", "landmarks", "pose_landmarks", "track_id", "person_id")


def _person_is_estimator(p: Any) -> bool:
    """A person only the estimator readers read: OpenPose / MediaPipe keys, a track id, or a keypoint
    count other than COCO-17's (COCO-17 without those stays with the COCO-17 JSON reader)."""
    if isinstance(p, list) and p and isinstance(p[0], dict) and "x" in p[0]:
        return True  # a MediaPipe landmark list
    if isinstance(p, dict):
        if any(k in p for k in _ESTIMATOR_PERSON_KEYS):
            return True
        p = p.get("keypoints")
    if not isinstance(p, list) or not p:
        return False
    n = len(p) if isinstance(p[0], list) else len(p) // 3
    return n in _BY_COUNT and n != 17


def _frame_is_estimator(fr: Any) -> bool | None:
    """True / False when the frame tells, None when it holds no person to judge by."""
    if isinstance(fr, dict):
        if "image_id" in fr:  # COCO results: one detection per entry
            return False
        if any(k in fr for k in ("landmarks", "pose_landmarks")) or ("keypoints" in fr and "scores" in fr):
            return True
        persons = next((fr[k] for k in ("people", "persons", "instances") if k in fr), None)
    else:
        persons = fr
    if not isinstance(persons, list) or not persons:
        return None
    if isinstance(persons[0], dict) and "x" in persons[0]:
        return True
    return any(_person_is_estimator(p) for p in persons)


def is_estimator_json(obj: Any) -> bool:
    """Whether a parsed ``.json`` is pose-estimator output for :func:`read_pose_json` (mmpose
    ``instance_info``, an OpenPose frame, MediaPipe landmarks, rtmlib arrays, persons with track ids
    or 18 / 25 / 26 / 33 / 133 keypoints) rather than NW-UCLA (``skeletons``) or COCO-17 keypoints
    (COCO results, plain frames of 17-keypoint persons), which keep their readers."""
    if isinstance(obj, dict):
        if "skeletons" in obj or "annotations" in obj:
            return False
        if "instance_info" in obj:
            return True
        if "frames" not in obj:
            return _frame_is_estimator(obj) is True
        obj = obj["frames"]
    if not isinstance(obj, list):
        return False
    for fr in obj[:50]:
        got = _frame_is_estimator(fr)
        if got is not None:
            return got
    return False


def sniff_estimator_file(path: Path) -> bool:
    """A file :func:`read_estimator_output` reads: ``.jsonl`` / ``.ndjson``, a MediaPipe CSV (a
    ``frame`` column and ``x0``, ``y0``, ``visibility0`` or ``landmark``, ``x``, ``y``), or a
    ``.json`` that :func:`is_estimator_json` accepts. NW-UCLA-named JSON is never claimed."""
    from .nwucla import NWUCLA_NAME_RE

    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return True
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                head = {c.strip().lower() for c in next(csv.reader(f), [])}
        except (OSError, UnicodeDecodeError, csv.Error):
            return False
        has_frame = bool(head & {"frame", "frame_id", "frame_index"})
        wide = {"x0", "y0", "visibility0"} <= head or {"x_0", "y_0", "visibility_0"} <= head
        return has_frame and (wide or {"landmark", "x", "y"} <= head)
    if suffix != ".json" or (NWUCLA_NAME_RE.search(path.name) and not path.name.endswith("_keypoints.json")):
        return False
    try:
        from .files import read_json

        obj = read_json(path)
    except (SkeletonFormatError, OSError, ValueError):
        return False  # not readable JSON: the COCO-17 reader names the problem
    return is_estimator_json(obj)


def sniff_estimator_dir(path: Path) -> bool:
    """An OpenPose output folder (``*_keypoints.json`` files)."""
    return any(path.glob("*_keypoints.json"))


def read_estimator_samples(path: str | os.PathLike, layout: str | None = None,
                           per_person: bool = True, max_bodies: int = 2) -> list[Any]:  # fmt: skip
    """:func:`read_estimator_output` then :func:`recording_to_samples` (in the estimator's layout:
    ``read_any`` converts to ``layout`` after: the input's layout comes from its keypoint count).
    Skipped frames are logged by the reader and counted in ``extra["skipped_frames"]``."""
    rec = read_estimator_output(path)
    return recording_to_samples(rec, per_person=per_person, max_bodies=max_bodies)


__all__ = [
    "MIN_SCORE", "PoseFrame", "PosePerson", "PoseRecording", "clean_keypoints", "fill_missing_joints",
    "parse_frame", "parse_person", "read_estimator_output", "read_mediapipe_csv", "read_openpose_folder",
    "read_pose_json", "read_pose_jsonl", "recording_to_samples", "recording_tracks", "read_estimator_samples",
    "is_estimator_json", "sniff_estimator_file", "sniff_estimator_dir",
]  # fmt: skip
