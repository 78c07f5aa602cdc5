"""Bring your own data: a folder of arrays with a CSV of labels, and pose-estimator JSON.

**Arrays.** ``.npy`` files hold one array; ``.npz`` files the array under ``data`` (or
``skeleton`` / ``keypoints``, or their only array). Shape ``(T, M, V, C)`` or ``(T, V, C)`` (one
body); C is 3 (x, y, z or x, y, score) or 2 (x, y). The layout is named (``layout=``) or inferred
from V. ``.npy`` files are read with ``allow_pickle=False``.

**Labels.** A CSV (``labels.csv`` by default, or the only ``*.csv`` of the folder) with columns
``file`` and ``label`` and optionally ``subject``, ``view``, ``setup``, ``split``; any other column
(``group``, ``session``, ...) is kept, as written, in each sample's ``extra``. Labels may be
class names or integers; the class list comes from ``classes=`` (config ``data.classes``), else
from the CSV: sorted names; integers that are exactly ``0 ... K-1`` are class indices, any other
integers (``0, 10, 20, 30``) are class names, so no class without a sample is invented. Without a
CSV every array file of the folder is a sample with label -1 (for inference-only data); a CSV
without a ``label`` column, or rows with an empty label, give unlabeled samples too, with a
warning. The ``split`` column (train / val / test, or training, valid, validation, dev, testing)
feeds the ``split`` protocol, whose test side takes val rows; any other value is an error. The
CSV is read as UTF-8 (a byte-order mark is fine). Files are named relative to the folder: an
absolute path, or one that leads out of the folder (``..``, a symlink), is refused. A file listed
twice, or a row with more fields than the header, is an error naming the lines.

**Pose-estimator JSON** (2D COCO-17 keypoints, layout ``coco17``, channels x, y, score). Three
common shapes are read:

* mmpose ``--save-predictions``: ``{"instance_info": [{"frame_id", "instances": [{"keypoints":
  17 x [x, y], "keypoint_scores": 17 x s}]}]}``;
* COCO results: ``[{"image_id", "keypoints": [x1, y1, s1, ... x17, y17, s17], ...}]`` (one entry
  per person per image, frames ordered by ``image_id``);
* a plain list of frames, each a list of persons (or ``{"persons" | "people" | "instances":
  [...]}``), a person being ``{"keypoints": 51 numbers or 17 x 3 (or 17 x 2 with
  "keypoint_scores")}`` or the 51 numbers themselves.

Persons are tracked across frames by the nearest centre (mean of confident keypoints) to each
track's last position; the ``max_bodies`` tracks with the largest total keypoint score are kept,
an absent body being zeros in that frame.

**Other pose-estimator output** (:mod:`.estimators`: an OpenPose subfolder of ``*_keypoints.json``,
a MediaPipe ``.csv`` / ``.json``, mmpose ``instance_info`` or rtmlib JSON, ``.jsonl`` frames, JSON
with track ids or 18 / 25 / 26 / 33 / 133 keypoints) is one sample per row too, labelled or not:
the label belongs to the file, so its ``max_bodies`` persons with the largest total score are the
bodies (estimator track ids kept, else the stream's tracker), missing joints filled as absent and
their share in ``extra["missing_fraction"]``. MediaPipe CSVs are never taken for the label CSV.
(A single recording given to ``read_any`` is split into one sample per person instead.)
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SkeletonFormatError
from ..layouts import get_layout
from ..sample import SkeletonDataset, SkeletonSample, validate_array
from .estimators import fill_missing_joints
from .files import read_json
from .pyskl import infer_layout

log = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".npz")
JSON_SUFFIXES = (".json",)
_NPZ_KEYS = ("data", "skeleton", "keypoints", "keypoint")
COCO_JOINTS = 17
# label CSV columns with a meaning; any other column is kept in the sample's ``extra``
_CSV_COLUMNS = ("file", "label", "subject", "view", "setup", "split", "_line")


# ------------------------------------------------------------------------------------------
# arrays


def read_array_file(path: str | os.PathLike, layout: str | None = None) -> tuple[np.ndarray, str]:
    """Read one ``.npy`` / ``.npz`` skeleton array as float32 (T, M, V, C), and its layout."""
    from ...trust import check_npy_header, check_npz_members

    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = next((k for k in _NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise SkeletonFormatError(
                        path, f"several arrays ({', '.join(keys)}) and none named {', '.join(_NPZ_KEYS)}"
                    )
                check_npz_members(path, [key])  # the header's claimed size, before reading the data
                arr = z[key]
        else:
            check_npy_header(path)  # the header's claimed size, before reading the data
            arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise SkeletonFormatError(path, f"cannot read array file ({e})") from None
    if arr.ndim == 3:
        arr = arr[:, None]  # (T, V, C) -> (T, 1, V, C)
    if arr.ndim != 4:
        raise SkeletonFormatError(path, f"expected a (T, M, V, C) or (T, V, C) array, got shape {arr.shape}")
    lay = get_layout(layout).name if layout else infer_layout(arr.shape[2], path)
    # NaN marks a missing joint: filled as absent (zeros), share reported (readers/estimators.py)
    arr = validate_array(arr, lay, str(path), allow_nan=True)
    if np.isinf(arr).any():
        raise SkeletonFormatError(
            path, "infinite coordinate", where=f"frame {int(np.argwhere(np.isinf(arr))[0, 0])}"
        )
    arr, missing = fill_missing_joints(arr)
    if missing:
        log.warning("%s: %.1f %% of joints missing (NaN), filled as absent (zeros)", path, 100 * missing)
    return arr, lay


# ------------------------------------------------------------------------------------------
# pose-estimator JSON


def _person_keypoints(p: Any) -> np.ndarray:
    """One person -> (17, 3) x, y, score."""
    if isinstance(p, dict):
        kp = p.get("keypoints")
        if kp is None:
            raise ValueError("a person has no 'keypoints'")
        kp = np.asarray(kp, dtype=np.float64)
        if kp.ndim == 2 and kp.shape[1] == 2:
            sc = p.get("keypoint_scores", p.get("scores"))
            sc = np.ones(len(kp)) if sc is None else np.asarray(sc, dtype=np.float64).reshape(-1)
            if sc.shape[0] != kp.shape[0]:
                raise ValueError(f"{kp.shape[0]} keypoints but {sc.shape[0]} keypoint_scores")
            kp = np.concatenate([kp, sc[:, None]], axis=1)
    else:
        kp = np.asarray(p, dtype=np.float64)
    kp = kp.reshape(-1, 3) if kp.ndim == 1 and kp.size % 3 == 0 else kp
    if kp.shape != (COCO_JOINTS, 3):
        raise ValueError(f"expected 17 keypoints (51 numbers x, y, score), got shape {kp.shape}")
    return kp


def _frames_from_json(obj: Any) -> list[list[Any]]:
    """Normalise the three accepted shapes to a list of frames, each a list of raw persons."""
    if isinstance(obj, dict) and "instance_info" in obj:
        return [list(fr.get("instances", [])) for fr in obj["instance_info"]]
    if isinstance(obj, dict) and "frames" in obj:
        obj = obj["frames"]
    if isinstance(obj, list) and obj and isinstance(obj[0], dict) and "image_id" in obj[0]:
        by_image: dict[Any, list[Any]] = {}
        for det in obj:
            by_image.setdefault(det.get("image_id"), []).append(det)
        return [by_image[k] for k in sorted(by_image, key=lambda x: (str(type(x)), x))]
    if isinstance(obj, list):
        frames = []
        for fr in obj:
            if isinstance(fr, dict):
                fr = next((fr[k] for k in ("persons", "people", "instances") if k in fr), None)
                if fr is None:
                    raise ValueError("a frame object has no 'persons', 'people' or 'instances' list")
            frames.append(list(fr))
        return frames
    raise ValueError("not a pose JSON (expected mmpose 'instance_info', COCO results or a list of frames)")


def track_persons(frames: Sequence[Sequence[np.ndarray]], max_bodies: int) -> np.ndarray:
    """Link detections across frames by nearest centre; keep the best ``max_bodies`` tracks.

    ``frames[t]`` holds (17, 3) arrays. Returns (T, max_bodies, 17, 3) float32 with zeros where a
    kept track has no detection.
    """
    t_len = len(frames)
    tracks: list[dict[int, np.ndarray]] = []  # frame -> keypoints
    last: list[np.ndarray] = []  # last centre of each track
    for t, dets in enumerate(frames):
        if not dets:
            continue
        cents = np.stack([_centre(d) for d in dets])  # (D, 2)
        free = set(range(len(tracks)))
        if tracks:
            dist = np.linalg.norm(cents[:, None] - np.stack(last)[None], axis=-1)  # (D, K)
            order = np.dstack(np.unravel_index(np.argsort(dist, axis=None), dist.shape))[0]
            taken = set()
            for d, k in order:
                if d in taken or k not in free:
                    continue
                tracks[k][t] = dets[d]
                last[k] = cents[d]
                taken.add(d)
                free.discard(k)
            new = [d for d in range(len(dets)) if d not in taken]
        else:
            new = list(range(len(dets)))
        for d in new:
            tracks.append({t: dets[d]})
            last.append(cents[d])
    score = [sum(float(kp[:, 2].sum()) for kp in tr.values()) for tr in tracks]
    keep = sorted(range(len(tracks)), key=lambda k: -score[k])[:max_bodies]
    keep.sort(key=lambda k: min(tracks[k]))  # the earliest track first
    out = np.zeros((t_len, max_bodies, COCO_JOINTS, 3), dtype=np.float32)
    for m, k in enumerate(keep):
        fr = np.fromiter(tracks[k].keys(), dtype=np.int64)
        out[fr, m] = np.stack(list(tracks[k].values()))
    return out


def _centre(kp: np.ndarray) -> np.ndarray:
    conf = kp[:, 2] > 0
    pts = kp[conf, :2] if conf.any() else kp[:, :2]
    return pts.mean(axis=0)


def read_coco_json(path: str | os.PathLike, *, max_bodies: int = 2) -> SkeletonSample:
    """Per-frame COCO-17 keypoints from a pose estimator -> a ``coco17`` sample (x, y, score)."""
    path = Path(path)
    obj = read_json(path)
    try:
        raw_frames = _frames_from_json(obj)
    except (ValueError, TypeError, AttributeError) as e:
        raise SkeletonFormatError(path, str(e)) from None
    if not raw_frames:
        raise SkeletonFormatError(path, "no frames")
    frames = []
    for t, persons in enumerate(raw_frames):
        kps = []
        for i, p in enumerate(persons):
            try:
                kps.append(_person_keypoints(p))
            except (ValueError, TypeError) as e:
                raise SkeletonFormatError(path, str(e), where=f"frame {t}, person {i}") from None
            if not np.all(np.isfinite(kps[-1])):
                raise SkeletonFormatError(
                    path, "non-finite keypoint (NaN or inf)", where=f"frame {t}, person {i}"
                )
        frames.append(kps)
    if not any(frames):
        raise SkeletonFormatError(path, f"no person detected in any of its {len(frames)} frames")
    data = track_persons(frames, max_bodies)
    return SkeletonSample(data=data, layout="coco17", source=str(path), extra={"name": path.stem})


# ------------------------------------------------------------------------------------------
# folder + CSV


def find_label_csv(root: Path) -> Path | None:
    if (root / "labels.csv").is_file():
        return root / "labels.csv"
    from .estimators import sniff_estimator_file

    csvs = sorted(p for p in root.glob("*.csv") if not sniff_estimator_file(p))  # not MediaPipe output
    if len(csvs) > 1:
        raise SkeletonFormatError(root, f"several CSV files ({', '.join(p.name for p in csvs)}); name one")
    return csvs[0] if csvs else None


SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def read_label_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a label CSV (header ``file,label[,subject,view,setup,split]``), with line numbers.

    The whole CSV is refused (a SkeletonFormatError naming the line) for a row with more fields
    than the header, a ``split`` value that is not train / val / test (or a synonym: training,
    valid, validation, dev, testing), and a file listed twice. A UTF-8 byte-order mark is accepted.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            fields = [c.strip().lower() for c in (header or [])]
            if "file" not in fields:
                raise SkeletonFormatError(
                    path, f"the CSV needs a 'file' column; columns: {', '.join(fields) or 'none'}"
                )
            rows = []
            for cells in reader:
                ln = reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # blank line
                if len(cells) > len(fields):
                    raise SkeletonFormatError(
                        path,
                        f"{len(cells)} fields but the header has {len(fields)} ({', '.join(fields)}); "
                        "quote values that contain commas",
                        f"line {ln}",
                    )
                clean = {k: (v or "").strip() for k, v in zip(fields, cells)}
                clean["_line"] = str(ln)
                rows.append(clean)
    except UnicodeDecodeError as e:
        raise SkeletonFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise SkeletonFormatError(path, f"not a readable CSV ({e})") from None
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    if not rows:
        raise SkeletonFormatError(path, "the CSV has no rows")
    seen: dict[str, dict[str, str]] = {}
    for row in rows:
        where = f"line {row['_line']}"
        if row["file"] == "":
            raise SkeletonFormatError(path, "empty 'file' cell", where)
        split = row.get("split", "")
        if split:
            if split.lower() not in SPLIT_NAMES:
                raise SkeletonFormatError(
                    path,
                    f"split {split!r} is not one of train, val, test "
                    f"(or {', '.join(k for k in SPLIT_NAMES if k not in ('train', 'val', 'test'))})",
                    where,
                )
            row["split"] = SPLIT_NAMES[split.lower()]
        key = os.path.normpath(row["file"])
        if key in seen:
            first = seen[key]
            both = (
                f"labels {first.get('label', '')!r} and {row.get('label', '')!r}"
                if first.get("label", "") != row.get("label", "")
                else "twice"
            )
            raise SkeletonFormatError(
                path,
                f"file {row['file']!r} is listed on line {first['_line']} and line {row['_line']} ({both}); "
                "list each file once",
                where,
            )
        seen[key] = row
    _warn_unlabeled(path, fields, rows)
    return rows


def _warn_unlabeled(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    """Say what is done with rows that have no label (they become unlabeled samples, label -1)."""
    if "label" not in fields:
        log.warning(
            "%s: no 'label' column (columns: %s): all %d samples are unlabeled; they can be used for "
            "prediction but not for training or evaluation",
            path,
            ", ".join(fields),
            len(rows),
        )
        return
    empty = [r["_line"] for r in rows if r.get("label", "") == ""]
    if empty:
        lines = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
        log.warning(
            "%s: %d of %d rows have an empty label (line %s): those samples are unlabeled and left out "
            "of training and evaluation",
            path,
            len(empty),
            len(rows),
            lines,
        )


def resolve_classes(labels: Sequence[str], classes: Sequence[str] | None, csv_path: Path) -> list[str]:
    """The class list: given, else from the CSV's labels.

    Integer labels that are exactly ``0 ... K-1`` are class indices (classes ``"0" ... "K-1"``);
    any other set of integers (``0, 10, 20, 30`` or ``1 ... K``) is taken as class names, sorted by
    value, so no class without a sample is invented. Text labels are names, sorted.
    """
    if classes is not None:
        return list(classes)
    vals = sorted({x for x in labels if x != ""})
    if vals and all(_is_int(x) for x in vals):
        nums = sorted({int(x) for x in vals})
        if nums == list(range(len(nums))):
            return [str(i) for i in nums]
        log.info(
            "%s: integer labels %s are not 0..%d: taken as %d class names (give `classes` to name them)",
            csv_path,
            ", ".join(map(str, nums[:10])) + (" ..." if len(nums) > 10 else ""),
            len(nums) - 1,
            len(nums),
        )
        return [str(i) for i in nums]
    if any(_is_int(x) for x in vals):
        raise SkeletonFormatError(csv_path, "the label column mixes class names and integers; give `classes`")
    return vals


def _is_int(x: str) -> bool:
    try:
        int(x)
    except ValueError:
        return False
    return True


def _opt_int(row: dict[str, str], key: str, path: Path) -> int | None:
    v = row.get(key, "")
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise SkeletonFormatError(
            path, f"column {key!r} must be an integer, got {v!r}", f"line {row['_line']}"
        ) from None


def read_folder_row(
    root: Path, row: dict[str, str], csv_path: Path, classes: list[str], layout: str | None, max_bodies: int
) -> SkeletonSample:
    """One CSV row -> a sample (array or pose JSON file)."""
    where = f"line {row['_line']}"
    f = _inside(root, row["file"], csv_path, where)
    if not f.is_file() and not (f.is_dir() and _is_estimator_output(f)):
        raise SkeletonFormatError(csv_path, f"file {row['file']!r} not found in {root}", where)
    if _is_estimator_output(f):  # one sample: the file's label, its strongest persons as bodies
        from .estimators import read_estimator_samples

        s = read_estimator_samples(f, per_person=False, max_bodies=max_bodies)[0]
        if layout and get_layout(layout).name != s.layout:
            s = s.replace(data=_convert(s.data, s.layout, layout, f), layout=get_layout(layout).name)
    elif f.suffix.lower() in JSON_SUFFIXES:
        s = read_coco_json(f, max_bodies=max_bodies)
        if layout and get_layout(layout).name != "coco17":
            s = s.replace(data=_convert(s.data, "coco17", layout, f), layout=get_layout(layout).name)
    elif f.suffix.lower() in ARRAY_SUFFIXES:
        data, lay = read_array_file(f, layout)
        s = SkeletonSample(data=data, layout=lay, source=str(f), extra={"name": f.stem})
    else:
        raise SkeletonFormatError(
            csv_path,
            f"unsupported file type {f.suffix!r} (use .npy, .npz, .json, pose-estimator output: "
            ".jsonl, a MediaPipe .csv, an OpenPose folder)",
            where,
        )
    lab = row.get("label", "")
    label = -1
    if lab != "":
        if lab in classes:
            label = classes.index(lab)
        elif _is_int(lab) and str(int(lab)) in classes:  # "07" for class "7"
            label = classes.index(str(int(lab)))
        elif _is_int(lab):  # an index into the given classes
            label = int(lab)
            if not 0 <= label < len(classes):
                raise SkeletonFormatError(csv_path, f"label {label} is outside 0..{len(classes) - 1}", where)
        else:
            raise SkeletonFormatError(
                csv_path, f"label {lab!r} is not a known class ({', '.join(classes)})", where
            )
    extra = dict(s.extra)
    if row.get("split"):
        extra["split"] = row["split"]  # train / val / test (normalised by read_label_csv)
    for key, value in row.items():  # any other column (group, session, ...) is kept as written
        if key and key not in _CSV_COLUMNS and key not in extra:
            extra[key] = value
    return s.replace(
        label=label,
        label_name=classes[label] if label >= 0 else None,
        subject=_opt_int(row, "subject", csv_path),
        view=_opt_int(row, "view", csv_path),
        setup=_opt_int(row, "setup", csv_path),
        extra=extra,
    )


ESTIMATOR_SUFFIXES = (".jsonl", ".ndjson")


def _is_estimator_output(f: Path) -> bool:
    """An OpenPose folder, JSON lines, a MediaPipe CSV or estimator JSON (readers/estimators.py)."""
    from .estimators import sniff_estimator_dir, sniff_estimator_file

    return sniff_estimator_dir(f) if f.is_dir() else sniff_estimator_file(f)


def _inside(root: Path, name: str, csv_path: Path, where: str) -> Path:
    """``root / name``, refused when it is absolute or leads (by ``..`` or a symlink) out of ``root``."""
    rel = Path(name)
    if rel.is_absolute() or rel.drive:
        raise SkeletonFormatError(
            csv_path, f"file {name!r} is an absolute path; name files inside {root}", where
        )
    f = root / rel
    try:
        inside = f.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise SkeletonFormatError(csv_path, f"file {name!r} cannot be resolved ({e})", where) from None
    if not inside:
        raise SkeletonFormatError(
            csv_path,
            f"file {name!r} is outside the data folder {root} (by '..' or a symlink); refused",
            where,
        )
    return f


def _convert(data: np.ndarray, src: str, dst: str, path: Path) -> np.ndarray:
    from ..layouts import convert_layout

    try:
        return convert_layout(data, src, dst)
    except KeyError as e:
        raise SkeletonFormatError(path, str(e.args[0])) from None


def folder_rows(
    root: str | os.PathLike, csv_file: str | os.PathLike | None = None, classes: Sequence[str] | None = None
) -> tuple[Path, Path | None, list[dict[str, str]], list[str]]:
    """(folder, csv path or None, rows, classes) describing a bring-your-own folder."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {root}")
    if root.is_file() and root.suffix.lower() == ".csv":
        csv_file, root = root, root.parent
    csv_path = Path(csv_file) if csv_file else find_label_csv(root)
    if csv_path is None:
        files = sorted(
            p
            for p in root.iterdir()
            if p.suffix.lower() in ARRAY_SUFFIXES + JSON_SUFFIXES + ESTIMATOR_SUFFIXES
            or (p.suffix.lower() == ".csv" or p.is_dir())
            and _is_estimator_output(p)
        )
        if not files:
            raise SkeletonFormatError(
                root, "no .npy, .npz, .json or pose-estimator file and no labels.csv in this folder"
            )
        rows = [{"file": p.name, "label": "", "_line": "0"} for p in files]
        return root, None, rows, list(classes or [])
    rows = read_label_csv(csv_path)
    return root, csv_path, rows, resolve_classes([r.get("label", "") for r in rows], classes, csv_path)


def load_folder(
    root: str | os.PathLike,
    *,
    layout: str | None = None,
    classes: Sequence[str] | None = None,
    csv_file: str | os.PathLike | None = None,
    max_bodies: int = 2,
    skipped: list[dict[str, str]] | None = None,
) -> SkeletonDataset:
    """A bring-your-own folder as an in-memory dataset (see the module docstring).

    Bad rows / files are skipped, logged and appended to ``skipped`` as ``{"file", "error"}``.
    """
    root_p, csv_path, rows, cls = folder_rows(root, csv_file, classes)
    skipped = skipped if skipped is not None else []
    samples: list[SkeletonSample] = []
    for row in rows:
        try:
            samples.append(read_folder_row(root_p, row, csv_path or root_p, cls, layout, max_bodies))
        except SkeletonFormatError as e:
            skipped.append({"file": str(root_p / row["file"]), "error": str(e)})
            log.warning("skipped %s", e)
    if not samples:
        first = f"; first: {skipped[0]['error']}" if skipped else ""
        raise SkeletonFormatError(root, f"no readable sample ({len(skipped)} skipped{first})")
    lay = samples[0].layout
    mixed = [s for s in samples if s.layout != lay]
    if mixed:
        raise SkeletonFormatError(
            mixed[0].source, f"layout {mixed[0].layout!r} differs from {lay!r}; name one layout"
        )
    ncs = {s.data.shape[-1] for s in samples}
    if len(ncs) > 1:
        raise SkeletonFormatError(root, f"samples mix channel counts {sorted(ncs)}")
    m = max(s.num_bodies for s in samples)
    samples = [s if s.num_bodies == m else s.replace(data=_pad_bodies(s.data, m)) for s in samples]
    return SkeletonDataset(samples, cls, lay, name=root_p.name)


def _pad_bodies(data: np.ndarray, m: int) -> np.ndarray:
    pad = np.zeros((data.shape[0], m - data.shape[1]) + data.shape[2:], dtype=data.dtype)
    return np.concatenate([data, pad], axis=1)
