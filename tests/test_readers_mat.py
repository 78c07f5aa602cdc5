"""UTD-MHAD and Penn Action (MATLAB .mat) readers: real files, generated bad files, and the dataset
records that route them to config, protocols, prepare, read_any and ``data info``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from llmskel.cli import main as cli_main
from llmskel.data.config import DataConfig
from llmskel.data.io import read_any
from llmskel.data.layouts import convert_layout, get_layout
from llmskel.data.prepare import prepare_directory
from llmskel.data.readers.penn_action import PENN_ACTION_CLASSES, load_penn_action, read_penn_action_file
from llmskel.data.readers.utd_mhad import UTD_MHAD_CLASSES, load_utd_mhad, read_utd_mhad_file
from llmskel.data.sources import load_source
from llmskel.errors import SkeletonFormatError

# ------------------------------------------------------------------------------------------
# real files


@pytest.fixture(scope="module")
def utd(utd_mhad_dir):
    return load_source(DataConfig(dataset="utd-mhad", root=str(utd_mhad_dir)))


@pytest.fixture(scope="module")
def penn(penn_action_dir):
    return load_source(DataConfig(dataset="penn", root=str(penn_action_dir)))  # an alias


def test_utd_mhad_real_dataset_and_cross_subject(utd, utd_mhad_dir):
    ds, tr, te = utd
    assert ds.name == "utd-mhad" and len(ds) == 861 and ds.layout == "utd20"
    assert ds.classes == UTD_MHAD_CLASSES and len(ds.classes) == 27
    assert (tr.size, te.size) == (431, 430)
    assert all(ds.meta(int(i))["subject"] % 2 == 1 for i in tr)
    assert all(ds.meta(int(i))["subject"] % 2 == 0 for i in te)
    # the sample is the file's d_skel, (20, 3, T) -> (T, 1, 20, 3), label from the name
    f = utd_mhad_dir / "a1_s1_t1_skeleton.mat"
    raw = scipy.io.loadmat(f)["d_skel"]
    s = read_utd_mhad_file(f)
    assert s.data.shape == (raw.shape[2], 1, 20, 3) and s.label == 0
    assert s.label_name == "right arm swipe to the left" and s.subject == 1 and s.extra["take"] == 1
    np.testing.assert_allclose(s.data[:, 0], raw.transpose(2, 0, 1).astype(np.float32))
    # head first in the file's order; kinect20 keeps the head at index 3 and the hip centre at 0
    k = convert_layout(s.data, "utd20", "kinect20")
    np.testing.assert_array_equal(k[:, 0, 3], s.data[:, 0, 0])
    np.testing.assert_array_equal(k[:, 0, 0], s.data[:, 0, 3])
    # the head is above the hip centre (y up, metres) in the real data
    assert (s.data[:, 0, 0, 1] > s.data[:, 0, 3, 1]).all()


def test_penn_action_real_dataset_and_official_split(penn, penn_action_dir):
    ds, tr, te = penn
    assert ds.name == "penn-action" and len(ds) == 2326 and ds.layout == "penn13"
    assert ds.classes == PENN_ACTION_CLASSES and len(ds.classes) == 15
    assert (tr.size, te.size) == (1258, 1068)
    s = read_penn_action_file(penn_action_dir / "0001.mat")
    raw = scipy.io.loadmat(penn_action_dir / "0001.mat")
    assert s.data.shape == (raw["x"].shape[0], 1, 13, 3)
    np.testing.assert_array_equal(s.data[:, 0, :, 0], raw["x"].astype(np.float32))
    np.testing.assert_array_equal(s.data[:, 0, :, 1], raw["y"].astype(np.float32))
    np.testing.assert_array_equal(s.data[:, 0, :, 2], raw["visibility"].astype(np.float32))
    assert s.label_name == "baseball pitch" and s.extra["split"] == "test" and s.extra["pose"] == "back"
    assert s.extra["image_size"] == [480, 360]


def test_data_info_on_the_new_datasets(utd_mhad_dir, penn_action_dir, capsys):
    assert cli_main(["data", "info", str(utd_mhad_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "utd-mhad" and info["samples"] == 861 and info["num_classes"] == 27
    assert info["protocol"] == {"name": "xsub", "train": 431, "test": 430}
    assert cli_main(["data", "info", str(penn_action_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "penn-action" and info["layout"] == "penn13" and info["channels"] == 3
    assert info["protocol"] == {"name": "official", "train": 1258, "test": 1068}


def test_read_any_recognises_single_mat_files(utd_mhad_dir, penn_action_dir):
    (u,) = read_any(utd_mhad_dir / "a27_s8_t1_skeleton.mat")
    assert u.layout == "utd20" and u.label_name == "squat (two arms stretch out)" and u.subject == 8
    (k,) = read_any(utd_mhad_dir / "a27_s8_t1_skeleton.mat", layout="kinect20")
    assert k.layout == "kinect20"
    (p,) = read_any(penn_action_dir / "2326.mat")
    assert p.layout == "penn13" and p.label_name in PENN_ACTION_CLASSES


# ------------------------------------------------------------------------------------------
# generated files: good and bad


def _utd(path, d_skel, key="d_skel"):
    scipy.io.savemat(path, {key: d_skel})
    return path


def _penn(path, t=5, **over):
    rng = np.random.default_rng(0)
    d = {
        "x": rng.uniform(0, 300, (t, 13)),
        "y": rng.uniform(0, 300, (t, 13)),
        "visibility": np.ones((t, 13), dtype=np.uint8),
        "action": "golf_swing",
        "pose": "front",
        "train": np.array([[1]]),
        "nframes": np.array([[t]]),
        "dimensions": np.array([[360, 480, t]]),
    }
    d.update(over)
    d = {k: v for k, v in d.items() if v is not None}
    scipy.io.savemat(path, d)
    return path


def test_utd_mhad_bad_files_name_the_file_and_problem(tmp_path):
    good = np.random.default_rng(0).normal(size=(20, 3, 7))
    ok = read_utd_mhad_file(_utd(tmp_path / "a3_s2_t1_skeleton.mat", good))
    assert ok.data.shape == (7, 1, 20, 3) and ok.label_name == "right hand wave"
    cases = {
        "a1_s1_t1_skeleton.mat": ((good, "skeleton"), "no variable 'd_skel'"),
        "a1_s1_t2_skeleton.mat": ((good[:, :2], "d_skel"), r"must be 20 x 3 x T, got shape \(20, 2, 7\)"),
        "a1_s1_t3_skeleton.mat": ((np.zeros((20, 3, 0)), "d_skel"), "zero frames"),
        "a1_s1_t4_skeleton.mat": ((np.where(np.arange(7) == 4, np.nan, good), "d_skel"), "NaN"),
        "a28_s1_t1_skeleton.mat": ((good, "d_skel"), "outside 1-27"),
    }
    for name, ((arr, key), problem) in cases.items():
        with pytest.raises(SkeletonFormatError, match=problem) as e:
            read_utd_mhad_file(_utd(tmp_path / name, arr, key))
        assert name in str(e.value)
    nan = str(
        pytest.raises(SkeletonFormatError, read_utd_mhad_file, tmp_path / "a1_s1_t4_skeleton.mat").value
    )
    assert "frame 4" in nan
    (tmp_path / "a2_s1_t1_skeleton.mat").write_bytes(b"not a mat file")
    with pytest.raises(SkeletonFormatError, match="a2_s1_t1_skeleton.mat: not a readable MATLAB"):
        read_utd_mhad_file(tmp_path / "a2_s1_t1_skeleton.mat")
    # a folder-level job skips the bad files and reports each
    skipped = []
    ds = load_utd_mhad(tmp_path, skipped=skipped)
    assert len(ds) == 1 and len(skipped) == len(cases) + 1
    rep = prepare_directory(tmp_path, tmp_path / "cache", fmt="utd-mhad", workers=0, progress=False)
    assert rep["samples"] == 1 and rep["error_count"] == len(cases) + 1
    assert any("no variable 'd_skel'" in e["error"] for e in rep["errors"])


def test_penn_action_bad_files_name_the_file_and_problem(tmp_path):
    ok = read_penn_action_file(_penn(tmp_path / "0001.mat"))
    assert ok.data.shape == (5, 1, 13, 3) and ok.label_name == "golf swing" and ok.extra["split"] == "train"
    x = np.random.default_rng(1).uniform(0, 300, (5, 13))
    cases = {
        "0002.mat": ({"visibility": None}, "missing variable\\(s\\) 'visibility'"),
        "0003.mat": ({"x": x[:, :12]}, "'x' must be T x 13, got shape \\(5, 12\\)"),
        "0004.mat": ({"y": x[:4]}, "differ in shape"),
        "0005.mat": ({"x": np.where(np.arange(13) == 2, np.nan, x)}, "NaN"),
        "0006.mat": (
            {"x": np.zeros((0, 13)), "y": np.zeros((0, 13)), "visibility": np.zeros((0, 13))},
            "zero frames",
        ),
        "0007.mat": ({"action": "curling"}, "unknown action 'curling'"),
        "0008.mat": ({"nframes": np.array([[9]])}, "'nframes' is 9 but 'x' has 5 frames"),
        "0009.mat": ({"train": np.array([[0]])}, "'train' must be 1 \\(train\\) or -1"),
    }
    for name, (over, problem) in cases.items():
        with pytest.raises(SkeletonFormatError, match=problem) as e:
            read_penn_action_file(_penn(tmp_path / name, **over))
        assert name in str(e.value)
    skipped = []
    ds = load_penn_action(tmp_path, skipped=skipped)
    assert len(ds) == 1 and {s["file"].rsplit("/", 1)[1] for s in skipped} == set(cases)
    rep = prepare_directory(tmp_path, tmp_path / "cache", fmt="penn-action", workers=0, progress=False)
    assert rep["samples"] == 1 and rep["error_count"] == len(cases)
    # the cache keeps the split, so the official protocol works on it
    ds2, tr, te = load_source(DataConfig(dataset="penn-action", root=str(tmp_path / "cache")))
    assert ds2.name == "penn-action" and tr.tolist() == [0] and te.size == 0


def test_read_any_refuses_an_unknown_mat_file(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"foo": np.zeros(3)})
    with pytest.raises(SkeletonFormatError, match="other.mat: unknown input type '.mat'; supported inputs"):
        read_any(tmp_path / "other.mat")


def test_layouts_of_the_new_datasets():
    utd, k20, penn = get_layout("utd20"), get_layout("kinect20"), get_layout("penn13")
    assert utd.joints[0] == "head" and set(utd.joints) == set(k20.joints)
    # the same skeleton tree as kinect20, joint for joint
    assert {(utd.joints[c], utd.joints[p]) for c, p in utd.bones} == {
        (k20.joints[c], k20.joints[p]) for c, p in k20.bones
    }
    assert penn.num_joints == 13 and len(penn.bones) == 12 and get_layout("penn").name == "penn13"
    coco = np.random.default_rng(0).normal(size=(2, 1, 17, 3)).astype(np.float32)
    out = convert_layout(coco, "coco17", "penn13")
    np.testing.assert_allclose(out[..., 1:, :], coco[..., 5:, :], rtol=1e-6)  # limbs in the same order
    np.testing.assert_allclose(out[..., 0, :], coco[..., [0, 3, 4], :].mean(-2), rtol=1e-5)
