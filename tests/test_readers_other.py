"""pyskl pickles, bring-your-own folders, pose-estimator JSON, read_any, protocols and load_source."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from llmskel.data.config import DataConfig, SyntheticConfig
from llmskel.data.io import read_any
from llmskel.data.protocols import split_indices
from llmskel.data.readers.folder import load_folder, read_coco_json, track_persons
from llmskel.data.readers.pyskl import PickleNotAllowedError, load_pyskl
from llmskel.data.sample import SkeletonDataset, SkeletonSample
from llmskel.data.sources import load_source
from llmskel.errors import ConfigError, SkeletonFormatError

# ------------------------------------------------------------------------------------------
# pyskl / mmaction2 pickles


def _pyskl_file(tmp_path: Path, bad: bool = False) -> tuple[Path, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    kps = [rng.normal(size=(2, t, 17, 2)).astype(np.float32) for t in (5, 8, 6)]
    anns = [
        {
            "frame_dir": f"clip{i}",
            "label": i % 2,
            "keypoint": kp,
            "keypoint_score": np.full(kp.shape[:3], 0.5, np.float32),
            "total_frames": kp.shape[1],
            "img_shape": (480, 640),
        }
        for i, kp in enumerate(kps)
    ]
    if bad:
        anns.append({"frame_dir": "broken", "label": 0, "keypoint": np.zeros((2, 4, 15, 2))})
    obj = {"split": {"xsub_train": ["clip0", "clip1"], "xsub_val": ["clip2"]}, "annotations": anns}
    f = tmp_path / "anno.pkl"
    f.write_bytes(pickle.dumps(obj))
    return f, kps


def test_pyskl_needs_an_explicit_opt_in(tmp_path):
    f, _ = _pyskl_file(tmp_path)
    with pytest.raises(PickleNotAllowedError, match="runs arbitrary code") as ei:
        load_pyskl(f)
    assert "allow_pickle=True" in str(ei.value) and "--allow-pickle" in str(ei.value)


def test_pyskl_reads_keypoints_scores_and_splits(tmp_path):
    f, kps = _pyskl_file(tmp_path, bad=True)
    skipped: list[dict] = []
    ds = load_pyskl(f, allow_pickle=True, skipped=skipped)
    assert len(ds) == 3 and ds.layout == "coco17" and ds.classes == ["class_0", "class_1"]
    s = ds.get(1)
    assert s.data.shape == (8, 2, 17, 3)
    assert np.array_equal(s.data[..., :2], kps[1].transpose(1, 0, 2, 3)) and np.all(s.data[..., 2] == 0.5)
    assert s.extra["splits"] == ["xsub_train"] and s.extra["img_shape"] == [480, 640]
    assert (
        "annotation 3 (broken)" in skipped[0]["error"]
        and "no built-in layout has 15 joints" in skipped[0]["error"]
    )
    tr, te = split_indices(ds, "split:xsub")
    assert tr.tolist() == [0, 1] and te.tolist() == [2]
    assert split_indices(ds, "split:xsub_val,xsub_train")[0].tolist() == [2]
    with pytest.raises(ConfigError, match="split names in the data: xsub_train, xsub_val"):
        split_indices(ds, "split:xview")
    with pytest.raises(
        SkeletonFormatError,
        match=r"no readable annotation \(4 skipped; first: .*17 joints but layout 'ntu25' has 25",
    ):
        load_pyskl(f, allow_pickle=True, layout="ntu25")


# ------------------------------------------------------------------------------------------
# bring-your-own folder


def _folder(tmp_path: Path, csv: str, arrays: dict[str, np.ndarray]) -> Path:
    for name, a in arrays.items():
        if name.endswith(".npz"):
            np.savez(tmp_path / name, data=a)
        else:
            np.save(tmp_path / name, a)
    (tmp_path / "labels.csv").write_text(csv)
    return tmp_path


def test_folder_arrays_with_named_labels_and_split(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 25, 3)).astype(np.float32)  # (T, V, C): one body
    b = rng.normal(size=(4, 2, 25, 3)).astype(np.float32)
    csv = "file,label,subject,split\na.npy,wave,1,train\nb.npz,clap,2,test\n"
    ds = load_folder(_folder(tmp_path, csv, {"a.npy": a, "b.npz": b}))
    assert ds.classes == ["clap", "wave"] and ds.layout == "ntu25"  # layout inferred from 25 joints
    s0, s1 = ds.get(0), ds.get(1)
    assert s0.data.shape == (6, 2, 25, 3) and np.array_equal(s0.data[:, 0], a) and not s0.data[:, 1].any()
    assert np.array_equal(s1.data, b) and (s0.label_name, s1.label_name, s0.subject) == ("wave", "clap", 1)
    assert [x.tolist() for x in split_indices(ds, "split")] == [[0], [1]]


def test_folder_integer_labels_given_classes_and_bad_rows(tmp_path):
    rng = np.random.default_rng(2)
    good = rng.normal(size=(5, 1, 20, 3)).astype(np.float32)
    inf = good.copy()
    inf[3, 0, 4, 1] = np.inf  # NaN marks a missing joint (tests/test_readers_estimators.py); inf is an error
    csv = "file,label\ng.npy,1\ninf.npy,0\nmissing.npy,0\ng2.npy,7\n"
    skipped: list[dict] = []
    ds = load_folder(
        _folder(tmp_path, csv, {"g.npy": good, "g2.npy": good, "inf.npy": inf}),
        classes=["a", "b"],
        skipped=skipped,
    )
    assert len(ds) == 1 and ds.get(0).label_name == "b" and ds.layout == "kinect20"
    errors = " | ".join(s["error"] for s in skipped)
    assert "inf.npy (frame 3): infinite coordinate" in errors
    assert "labels.csv (line 4): file 'missing.npy' not found" in errors
    assert "labels.csv (line 5): label 7 is outside 0..1" in errors


def test_folder_wrong_layout_and_no_csv(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 17, 3), np.float32))
    with pytest.raises(SkeletonFormatError, match="17 joints per body but layout 'ntu25' has 25"):
        read_any(tmp_path / "x.npy", layout="ntu25")
    ds = load_folder(tmp_path)  # no CSV: unlabeled samples
    assert len(ds) == 1 and ds.get(0).label == -1 and ds.layout == "coco17"


# ------------------------------------------------------------------------------------------
# pose-estimator JSON (COCO-17)


def _person(cx: float, cy: float, score: float = 0.9) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, 0] = cx + np.linspace(-10, 10, 17)
    kp[:, 1] = cy + np.linspace(-40, 40, 17)
    kp[:, 2] = score
    return kp


def test_coco_json_three_shapes_and_tracking(tmp_path):
    left = [_person(100 + 2 * t, 200) for t in range(4)]
    right = [_person(400 - 2 * t, 210, 0.8) for t in range(4)]
    order = [
        (left[t], right[t]) if t % 2 == 0 else (right[t], left[t]) for t in range(4)
    ]  # detector order swaps
    plain = [
        {"persons": [{"keypoints": a.ravel().tolist()}, {"keypoints": b.ravel().tolist()}]} for a, b in order
    ]
    mmpose = {
        "instance_info": [
            {
                "frame_id": t + 1,
                "instances": [
                    {"keypoints": p[:, :2].tolist(), "keypoint_scores": p[:, 2].tolist()} for p in pair
                ],
            }
            for t, pair in enumerate(order)
        ]
    }
    coco = [
        {"image_id": t, "category_id": 1, "keypoints": p.ravel().tolist()}
        for t, pair in enumerate(order)
        for p in pair
    ]
    for name, obj in [("plain", plain), ("mmpose", mmpose), ("coco", coco)]:
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(obj))
        s = read_coco_json(f)
        assert s.layout == "coco17" and s.data.shape == (4, 2, 17, 3), name
        assert np.allclose(s.data[:, 0], np.stack(left)) and np.allclose(s.data[:, 1], np.stack(right)), name


def test_tracking_keeps_the_strongest_tracks_and_zero_fills():
    frames = [[_person(0, 0)], [], [_person(1, 0), _person(500, 500, 0.1)], [_person(2, 0)]]
    out = track_persons(frames, max_bodies=1)
    assert out.shape == (4, 1, 17, 3) and not out[1].any() and np.allclose(out[3, 0], _person(2, 0))


@pytest.mark.parametrize(
    "obj, match",
    [
        ([{"persons": [{"keypoints": [1, 2, 3] * 16}]}], r"\(frame 0, person 0\): expected 17 keypoints"),
        ([[], []], "no person detected in any of its 2 frames"),
        ({"foo": 1}, "not a pose JSON"),
        ([[[float("nan")] * 51]], r"\(frame 0, person 0\): non-finite"),
    ],
    ids=["wrong-count", "no-person", "unknown-shape", "nan"],
)
def test_coco_json_bad_files(tmp_path, obj, match):
    f = tmp_path / "pose.json"
    f.write_text(json.dumps(obj))
    with pytest.raises(SkeletonFormatError, match=match):
        read_coco_json(f)


# ------------------------------------------------------------------------------------------
# read_any


def test_read_any_detects_formats(tmp_path, ntu_sample_file, ucla_dir):
    assert read_any(ntu_sample_file)[0].layout == "ntu25"
    assert read_any(ucla_dir / "a01_s01_e00_v01.json")[0].label_name == "pick up with one hand"
    coco = read_any(ntu_sample_file, layout="coco17")[0]
    assert coco.layout == "coco17" and coco.data.shape == (103, 2, 17, 3)
    np.savez(tmp_path / "x.npz", data=np.ones((3, 2, 18, 3), np.float32))
    assert read_any(tmp_path / "x.npz")[0].layout == "openpose18"
    (tmp_path / "x.csv.gz").write_text("")
    with pytest.raises(
        SkeletonFormatError, match=r"unknown input type '.gz'; supported inputs: synthetic:<action>"
    ):
        read_any(tmp_path / "x.csv.gz")
    with pytest.raises(FileNotFoundError, match="input not found"):
        read_any(tmp_path / "nope.skeleton")


def test_read_any_synthetic():
    from llmskel.data.synthetic import ACTION_NAMES

    s = read_any(f"synthetic:{ACTION_NAMES[1]}")[0]
    assert s.layout == "ntu25" and s.label_name == ACTION_NAMES[1]
    with pytest.raises(KeyError, match="unknown synthetic action 'fly'"):
        read_any("synthetic:fly")


# ------------------------------------------------------------------------------------------
# protocols and load_source


def _meta_dataset(name: str, metas: list[dict]) -> SkeletonDataset:
    samples = [
        SkeletonSample(
            np.zeros((2, 2, 25, 3), np.float32),
            "ntu25",
            label=m.get("label", 0),
            **{k: v for k, v in m.items() if k != "label"},
        )
        for m in metas
    ]
    return SkeletonDataset(samples, [f"c{i}" for i in range(120)], "ntu25", name=name)


def test_ntu_protocols():
    metas = [
        dict(subject=1, view=1, setup=1),  # xsub train, xview test
        dict(subject=3, view=2, setup=2),  # xsub test, xview train
        dict(subject=45, view=3, setup=18),  # NTU-120 only: train in 120-xsub, even setup
        dict(subject=44, view=1, setup=19),
    ]
    ds = _meta_dataset("ntu", metas)
    assert [x.tolist() for x in split_indices(ds, "ntu60-xsub")] == [[0], [1]]
    assert [x.tolist() for x in split_indices(ds, "ntu60-xview")] == [[1], [0]]
    assert [x.tolist() for x in split_indices(ds, "ntu120-xsub")] == [[0, 2], [1, 3]]
    assert [x.tolist() for x in split_indices(ds, "ntu120-xset")] == [[1, 2], [0, 3]]
    assert split_indices(ds, "default")[0].tolist() == [0, 2]  # 120 classes: NTU-120 X-Sub
    with pytest.raises(
        ConfigError, match=r"unknown protocol 'xsub60'.*valid protocols: ntu60-xsub, ntu60-xview"
    ):
        split_indices(ds, "xsub60")
    with pytest.raises(ConfigError, match="needs the subject of every sample"):
        split_indices(_meta_dataset("ntu", [dict(view=1, setup=1)]), "ntu120-xsub")


def test_load_source_synthetic_with_class_restriction():
    from llmskel.data.synthetic import ACTION_NAMES

    cfg = DataConfig(
        dataset="synthetic", synthetic=SyntheticConfig(num_classes=4, samples_per_class=4, num_subjects=4)
    )
    ds, tr, te = load_source(cfg)
    assert {ds.get(int(i)).subject % 2 for i in tr} == {1} and {ds.get(int(i)).subject % 2 for i in te} == {0}
    cfg.train_classes = ACTION_NAMES[:2]
    cfg.test_classes = ACTION_NAMES[2:4]
    _, tr2, te2 = load_source(cfg)
    assert set(ds.labels[tr2]) == {0, 1} and set(ds.labels[te2]) == {2, 3} and set(tr2) <= set(tr)
    cfg.test_classes = ["levitate"]
    with pytest.raises(ConfigError, match=r"unknown class\(es\) 'levitate'; classes of 'synthetic': "):
        load_source(cfg)


def test_load_source_real_and_missing_root(tmp_path, utkinect_dir):
    ds, tr, te = load_source(DataConfig(dataset="utkinect", root=str(utkinect_dir), protocol="loso-2"))
    assert len(ds) == 199 and len(te) == 20
    with pytest.raises(FileNotFoundError, match=r"data.root for dataset 'nw-ucla' not found: .*nowhere"):
        load_source(DataConfig(dataset="nw-ucla", root=str(tmp_path / "nowhere")))
