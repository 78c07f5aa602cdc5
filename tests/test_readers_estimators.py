"""Readers for pose-estimator output: OpenPose folders, MediaPipe JSON / CSV, mmpose / rtmlib JSON, JSON
lines; missing joints filled as absent and reported; NaN joints in bring-your-own arrays."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from llmskel.data.io import read_any
from llmskel.data.layouts import convert_layout, get_layout
from llmskel.data.readers.estimators import (
    clean_keypoints,
    read_estimator_output,
    read_mediapipe_csv,
    read_openpose_folder,
    read_pose_json,
    read_pose_jsonl,
)
from llmskel.errors import SkeletonFormatError


def _person(v: int, rng, x0: float = 100.0) -> np.ndarray:
    kp = np.concatenate([rng.uniform(x0, x0 + 50, size=(v, 2)), rng.uniform(0.5, 1.0, size=(v, 1))], axis=1)
    return kp


def test_openpose_body25_folder_keeps_ids_fills_missing_and_skips_a_bad_file(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "op"
    folder.mkdir()
    for t in (0, 1, 2, 10):  # frame numbers from the file names, not their count
        a, b = _person(25, rng), _person(25, rng, 400)
        a[4] = 0.0  # right wrist not detected: 0, 0, 0
        b[7, 2] = 0.02  # left wrist below the score threshold
        people = [{"person_id": [-1], "pose_keypoints_2d": a.ravel().tolist()},
                  {"person_id": [3], "pose_keypoints_2d": b.ravel().tolist()}]  # fmt: skip
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    (folder / "clip_000000000005_keypoints.json").write_text("{not json")
    rec = read_openpose_folder(folder)
    assert rec.layout == "openpose25" and [f.index for f in rec.frames] == [0, 1, 2, 10]
    assert len(rec.skipped) == 1 and "000000000005" in rec.skipped[0]["where"]
    p0, p1 = rec.frames[1].persons
    assert p0.track_id is None and p1.track_id == 3
    assert not p0.keypoints[4].any() and not p1.keypoints[7].any()  # filled as absent (zeros)
    assert p1.keypoints[6, 2] > 0.1  # confident joints keep their score
    assert rec.missing_fraction == pytest.approx(2 / 50)
    # BODY_25 -> COCO-17 keeps the shared joints by name
    coco = convert_layout(p1.keypoints, "openpose25", "coco17")
    names = get_layout("openpose25").joints
    assert np.array_equal(coco[5], p1.keypoints[names.index("left shoulder")])


def test_openpose_coco18_and_a_wrong_count(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "a_000000000000_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": _person(18, rng).ravel().tolist()}]})
    )
    (tmp_path / "a_000000000001_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]})
    )
    rec = read_openpose_folder(tmp_path)
    assert rec.layout == "openpose18" and rec.num_frames == 1
    assert "20 keypoints" in rec.skipped[0]["error"]


def test_mediapipe_json_and_csv_wide_and_long(tmp_path):
    rng = np.random.default_rng(2)
    frames = []
    for t in range(3):
        lms = [
            {"x": float(x), "y": float(y), "z": 0.1, "visibility": 0.9} for x, y in rng.uniform(0, 1, (33, 2))
        ]
        if t == 1:
            lms[15]["visibility"] = 0.01
            lms[16]["x"] = None  # NaN in the solution's output
        frames.append({"frame": t, "pose_landmarks": lms})
    (tmp_path / "mp.json").write_text(json.dumps(frames))
    rec = read_estimator_output(tmp_path / "mp.json")
    assert rec.layout == "mediapipe33" and rec.num_frames == 3
    kp = rec.frames[1].persons[0].keypoints
    assert kp.shape == (33, 3) and not kp[15].any() and not kp[16].any() and kp[0, 2] == pytest.approx(0.9)
    assert rec.frames[1].nan_joints == 1 and rec.missing_fraction == pytest.approx(2 / 99)

    header = ["frame", "person"] + [f"{c}{j}" for j in range(33) for c in ("x", "y", "z", "visibility")]
    rows = [",".join(header)]
    for t in range(2):
        for pid in (0, 1):
            vals = [f"{v:.4f}" for j in range(33) for v in (0.1 + pid * 0.5, 0.2, 0.0, 0.8)]
            rows.append(",".join([str(t), str(pid), *vals]))
    rows.append("x,0," + ",".join(["1"] * 132))  # a bad frame number
    (tmp_path / "wide.csv").write_text("\n".join(rows) + "\n")
    rec = read_mediapipe_csv(tmp_path / "wide.csv")
    assert rec.num_frames == 2 and [p.track_id for p in rec.frames[0].persons] == [0, 1]
    assert rec.skipped and rec.skipped[0]["where"] == "line 6"

    long = ["frame,landmark,x,y,z,visibility"]
    long += [f"{t},{j},0.{j + 10},0.5,0.0,{'nan' if j == 3 else 0.7}" for t in range(2) for j in range(33)]
    (tmp_path / "long.csv").write_text("\n".join(long) + "\n")
    rec = read_estimator_output(tmp_path / "long.csv")
    kp = rec.frames[1].persons[0].keypoints
    assert kp[10, 0] == pytest.approx(0.2) and not kp[3].any()


def test_mmpose_coco17_wholebody_and_rtmlib_arrays(tmp_path):
    rng = np.random.default_rng(3)
    body = _person(17, rng)
    mm = {"meta_info": {}, "instance_info": [
        {"frame_id": 1, "instances": [{"keypoints": body[:, :2].tolist(), "keypoint_scores": body[:, 2].tolist(),
                                       "track_id": 5}]},
        {"frame_id": 2, "instances": []},
    ]}  # fmt: skip
    (tmp_path / "mm.json").write_text(json.dumps(mm))
    rec = read_pose_json(tmp_path / "mm.json")
    assert rec.layout == "coco17" and rec.frames[0].persons[0].track_id == 5 and not rec.frames[1].persons
    np.testing.assert_allclose(rec.frames[0].persons[0].keypoints, body, rtol=1e-6)

    whole = _person(133, rng)
    (tmp_path / "wb.json").write_text(json.dumps(
        [{"frame_id": 0, "instances": [{"keypoints": whole[:, :2].tolist(), "keypoint_scores": whole[:, 2].tolist()}]}]
    ))  # fmt: skip
    kp = read_pose_json(tmp_path / "wb.json").frames[0].persons[0].keypoints
    assert kp.shape == (17, 3)
    np.testing.assert_allclose(kp, whole[:17], rtol=1e-6)  # the body of COCO-WholeBody

    two = [_person(17, rng), _person(17, rng, 500)]
    rtm = [
        {"frame": 0, "keypoints": [p[:, :2].tolist() for p in two], "scores": [p[:, 2].tolist() for p in two]}
    ]
    (tmp_path / "rtm.json").write_text(json.dumps(rtm))
    rec = read_pose_json(tmp_path / "rtm.json")
    assert len(rec.frames[0].persons) == 2


def test_json_lines_with_bad_lines_and_minus_one_marker():
    good = {
        "frame": 0,
        "layout": "coco17",
        "people": [{"id": 1, "keypoints": [[10.0, 20.0, 0.9]] * 16 + [[-1, -1, 0.5]]}],
    }
    lines = [
        json.dumps(good),
        "{oops",
        "",
        json.dumps({"frame": 2, "people": [{"keypoints": [[1, 2, 0.9]] * 5}]}),
    ]
    rec = read_pose_jsonl(lines)
    assert rec.num_frames == 1 and not rec.frames[0].persons[0].keypoints[16].any()
    wheres = [s["where"] for s in rec.skipped]
    assert wheres == ["line 2", "line 4"] and "5 joints" in rec.skipped[1]["error"]
    with pytest.raises(SkeletonFormatError, match="no readable frame"):
        read_pose_jsonl(["{oops"])


def test_clean_keypoints_rules():
    kp = np.array([[1, 2, 0.9], [0, 0, 0], [-1, -1, 0.8], [np.nan, 3, 0.9], [5, 6, 0.05]], np.float32)
    out, n = clean_keypoints(kp, min_score=0.1)
    assert n == 4 and out[0].tolist() == pytest.approx([1, 2, 0.9]) and not out[1:].any()
    xyz = np.array([[0.1, 0.2, -0.3], [np.nan, 0, 0]], np.float32)  # 3D: only NaN is missing
    out, n = clean_keypoints(xyz, has_score=False)
    assert n == 1 and out[0, 2] == pytest.approx(-0.3)


def test_folder_reader_reads_nan_joints_as_missing_and_reports_the_share(tmp_path, caplog):
    arr = np.random.default_rng(4).normal(size=(10, 1, 20, 3)).astype(np.float32)
    arr[2, 0, 5] = np.nan
    arr[3, 0, 6, 1] = np.nan
    np.save(tmp_path / "a.npy", arr)
    with caplog.at_level(logging.WARNING):
        (s,) = read_any(tmp_path / "a.npy")
    assert np.isfinite(s.data).all() and not s.data[2, 0, 5].any() and not s.data[3, 0, 6].any()
    assert np.array_equal(s.data[4], arr[4])
    assert "1.0 % of joints missing (NaN)" in caplog.text and "a.npy" in caplog.text
