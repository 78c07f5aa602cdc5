"""NW-UCLA and UTKinect-Action3D readers: real data counts and protocols, numbers, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmskel.data.protocols import split_indices
from llmskel.data.readers.nwucla import NWUCLA_CLASSES, load_nwucla, read_nwucla_file
from llmskel.data.readers.utkinect import (
    UTKINECT_CLASSES,
    load_utkinect,
    parse_utkinect_labels,
    read_utkinect_joints,
)
from llmskel.errors import ConfigError, SkeletonFormatError


@pytest.fixture(scope="module")
def ucla(ucla_dir):
    return load_nwucla(ucla_dir)


def test_nwucla_real_counts_and_cross_view(ucla):
    assert len(ucla) == 1484 and ucla.classes == NWUCLA_CLASSES and ucla.layout == "kinect20"
    assert np.bincount(ucla.labels).tolist() == [150, 152, 141, 173, 148, 149, 142, 142, 145, 142]
    tr, te = split_indices(ucla, "xview")
    assert (len(tr), len(te)) == (1020, 464)
    assert {ucla.get(int(i)).view for i in te} == {3} and {ucla.get(int(i)).view for i in tr} == {1, 2}
    assert split_indices(ucla, "default")[0].tolist() == tr.tolist()


def test_nwucla_file_numbers_and_label_mapping(ucla_dir):
    f = ucla_dir / "a08_s03_e02_v01.json"
    raw = json.loads(f.read_text())
    s = read_nwucla_file(f)
    assert s.data.shape == (len(raw["skeletons"]), 1, 20, 3)
    assert np.array_equal(s.data[5, 0, 7], np.float32(raw["skeletons"][5][7]))
    # action id a08 is label 7 (ids 7 and 10 do not exist): index 6, "donning"
    assert (s.label, s.label_name, s.subject, s.view, s.extra["take"]) == (6, "donning", 3, 1, 2)


def _ucla_json(tmp_path: Path, name: str, d: object) -> Path:
    f = tmp_path / name
    f.write_text(json.dumps(d))
    return f


@pytest.mark.parametrize(
    "payload, match",
    [
        ({"file_name": "a01_s01_e00_v01", "skeletons": [[[0, 0, 0]] * 20] * 3}, r"missing key\(s\) 'label'"),
        (
            {"skeletons": [[[0, 0, 0]] * 20, [[0, 0, 0]] * 19], "label": 1},
            r"\(frame 1\): expected 20 joints x 3",
        ),
        (
            {"skeletons": [[[0, 0, 0]] * 20, [[0, "x", 0]] + [[0, 0, 0]] * 19], "label": 1},
            r"\(frame 1\): non-numeric",
        ),
        ({"skeletons": [], "label": 1}, "zero frames"),
        (
            {"skeletons": [[[0, 0, 0]] * 20, [[float("nan"), 0, 0]] * 20], "label": 1},
            r"\(frame 1\): non-finite",
        ),
        ({"skeletons": [[[0, 0, 0]] * 20], "label": 11}, r"'label' must be in 1-10"),
        ({"skeletons": [[[0, 0, 0]] * 20], "label": 3}, r"disagrees with the action a01"),
    ],
    ids=["no-label", "joint-count", "non-numeric", "zero-frames", "nan", "label-range", "label-vs-name"],
)
def test_nwucla_bad_files(tmp_path, payload, match):
    f = _ucla_json(tmp_path, "a01_s01_e00_v01.json", payload)
    with pytest.raises(SkeletonFormatError, match=match) as ei:
        read_nwucla_file(f)
    assert str(f) in str(ei.value)


def test_nwucla_truncated_json_and_folder_skips(tmp_path):
    good = {"skeletons": [[[0.1, 0.2, 3.0]] * 20] * 4, "label": 2}
    _ucla_json(tmp_path, "a02_s01_e00_v01.json", good)
    (tmp_path / "a02_s01_e00_v02.json").write_text(json.dumps(good)[:50])
    with pytest.raises(SkeletonFormatError, match="not valid JSON"):
        read_nwucla_file(tmp_path / "a02_s01_e00_v02.json")
    skipped: list[dict[str, str]] = []
    ds = load_nwucla(tmp_path, skipped=skipped)
    assert len(ds) == 1 and ds.get(0).label_name == "pick up with two hands"
    assert len(skipped) == 1 and skipped[0]["file"].endswith("a02_s01_e00_v02.json")


def test_dataset_folders_missing_or_without_files_name_the_folder(tmp_path):
    from llmskel.data.readers.ntu import load_ntu

    missing = tmp_path / "nowhere"
    for load, name in ((load_nwucla, "NW-UCLA"), (load_ntu, "NTU")):
        with pytest.raises(FileNotFoundError, match=f"{name} folder not found: {missing}"):
            load(missing)
    (tmp_path / "notes.json").write_text("{}")  # a JSON file, but not a NW-UCLA sequence name
    with pytest.raises(SkeletonFormatError, match=r"no NW-UCLA sequence \(aXX_sYY_eZZ_vWW.json\) file"):
        load_nwucla(tmp_path)
    with pytest.raises(SkeletonFormatError, match=f"{tmp_path}.*no NTU .skeleton file in this folder"):
        load_ntu(tmp_path)


# ------------------------------------------------------------------------------------------
# UTKinect


@pytest.fixture(scope="module")
def utk(utkinect_dir):
    skipped: list[dict] = []
    return load_utkinect(utkinect_dir, skipped=skipped), skipped


def test_utkinect_real_segments_and_the_nan_row(utk, caplog):
    ds, skipped = utk
    assert len(ds) == 199 and ds.classes == UTKINECT_CLASSES
    assert [s["segment"] for s in skipped] == ["s10_e02 carry"] and "NaN" in skipped[0]["reason"]
    assert np.bincount(ds.labels).tolist() == [20, 20, 20, 20, 19, 20, 20, 20, 20, 20]


def test_utkinect_segment_numbers_match_the_file(utk, utkinect_dir):
    ds, _ = utk
    s = next(ds.get(i) for i in range(len(ds)) if ds.get(i).extra["name"] == "s01_e01_sit_down")
    rows = [ln.split() for ln in (utkinect_dir / "joints_s01_e01.txt").read_text().splitlines() if ln.strip()]
    inside = [r for r in rows if 572 <= int(r[0]) <= 686]  # sitDown: 572 686
    assert s.num_frames == len(inside) and s.label_name == "sit down" and s.subject == 1
    assert np.array_equal(s.data[0, 0].ravel(), np.float32([float(v) for v in inside[0][1:]]))
    assert np.array_equal(s.data[-1, 0, 19], np.float32([float(v) for v in inside[-1][58:61]]))


def test_utkinect_protocols(utk):
    ds, _ = utk
    tr, te = split_indices(ds, "xsub")
    assert {ds.get(int(i)).subject % 2 for i in tr} == {1} and {ds.get(int(i)).subject % 2 for i in te} == {0}
    assert len(tr) + len(te) == 199
    tr3, te3 = split_indices(ds, "loso-3")
    assert {ds.get(int(i)).subject for i in te3} == {3} and len(te3) == 20 and len(tr3) == 179
    with pytest.raises(ConfigError, match=r"valid protocols: xsub, loso-<subject>, none"):
        split_indices(ds, "xview")


def test_utkinect_modified_label_file(utkinect_dir):
    ds = load_utkinect(utkinect_dir / "actionLabel_modified.txt")
    push = next(ds.get(i) for i in range(len(ds)) if ds.get(i).extra["name"] == "s03_e01_push")
    assert len(ds) == 199 and push.source.endswith("#3556-3622")


def _utk_folder(tmp_path: Path, labels: str, joints: dict[str, str]) -> Path:
    (tmp_path / "actionLabel.txt").write_text(labels)
    for take, text in joints.items():
        (tmp_path / f"joints_{take}.txt").write_text(text)
    return tmp_path


def _frames(ids) -> str:
    return "".join(f"{i} " + " ".join(f"{0.01 * i + j:.4f}" for j in range(60)) + "\n" for i in ids)


def test_utkinect_small_folder_duplicates_and_nan_rows(tmp_path):
    labels = "s01_e01\nwalk: 10 14\nsitDown: NaN NaN\nclapHands: 20 22\n"
    root = _utk_folder(tmp_path, labels, {"s01_e01": _frames([8, 10, 12, 12, 14, 16, 20, 21])})
    skipped: list[dict] = []
    ds = load_utkinect(root, skipped=skipped)
    assert [s.num_frames for s in ds.samples] == [4, 2]  # duplicate id 12 kept
    assert skipped[0]["segment"] == "s01_e01 sitDown" and skipped[0]["line"] == 3


@pytest.mark.parametrize(
    "labels, joints, match",
    [
        ("s01_e01\nwalk: 1 3\n", "1 0 0\n", r"joints_s01_e01.txt \(line 1\): expected a frame id and 20 x 3"),
        ("s01_e01\nwalk: 1 3\n", _frames([1]) + "2" + " x" * 60 + "\n", r"\(line 2\): non-numeric value 'x'"),
        ("s01_e01\nwalk: 1 3\n", _frames([1]).replace("0.0100", "nan", 1), r"\(line 1\): non-finite"),
        ("s01_e01\njump: 1 3\n", _frames([1]), r"actionLabel.txt \(line 2\): unknown action 'jump'"),
        ("walk: 1 3\n", _frames([1]), r"actionLabel.txt \(line 1\): an action line before any"),
        ("s01_e01\nwalk: 5 3\n", _frames([1]), r"\(line 2\): segment ends \(3\) before it starts \(5\)"),
    ],
    ids=["field-count", "non-numeric", "nan", "unknown-action", "no-header", "reversed"],
)
def test_utkinect_bad_files(tmp_path, labels, joints, match):
    root = _utk_folder(tmp_path, labels, {"s01_e01": joints})
    with pytest.raises(SkeletonFormatError, match=match):
        segs, _ = parse_utkinect_labels(root / "actionLabel.txt")
        read_utkinect_joints(root / "joints_s01_e01.txt")


def test_utkinect_segment_without_frames_is_reported(tmp_path):
    root = _utk_folder(tmp_path, "s01_e01\nwalk: 1 3\npush: 50 60\n", {"s01_e01": _frames([1, 2, 3])})
    skipped: list[dict] = []
    ds = load_utkinect(root, skipped=skipped)
    assert len(ds) == 1 and skipped[0]["segment"] == "s01_e01 push" and "50-60" in skipped[0]["reason"]
