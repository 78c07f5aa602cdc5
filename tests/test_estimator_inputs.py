"""Pose-estimator output read by every command (read_any, the dataset registry, the bring-your-own
folder): sniffing that leaves NW-UCLA and COCO-17 JSON to their readers, one sample per tracked
person with its share of missing joints, and predict / zeroshot / data info through the CLI."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from llmskel.cli import main as cli_main
from llmskel.data.datasets import sniff
from llmskel.data.io import read_any
from llmskel.data.readers.folder import load_folder
from llmskel.hub import SkeletonModel, SkeletonModelConfig
from llmskel.models import get_model_config

T = 20


def _person(rng, v: int, x0: float, t: int) -> np.ndarray:
    kp = np.concatenate([rng.uniform(0, 40, size=(v, 2)) + [x0 + 2 * t, 100], np.full((v, 1), 0.9)], axis=1)
    return kp


def openpose_folder(root, frames: int = T, v: int = 25, name: str = "clip"):
    """Two people without track ids (left and right), the left one missing its right wrist (joint 4)
    in every frame; plus a one-frame false detection far away."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for t in range(frames):
        a, b = _person(rng, v, 50, t), _person(rng, v, 600, -t)
        a[4] = 0.0
        people = [
            {"person_id": [-1], "pose_keypoints_2d": p.ravel().tolist()} for p in (b, a) if t % 2 or p is a
        ]
        people += [{"person_id": [-1], "pose_keypoints_2d": b.ravel().tolist()}] if t % 2 == 0 else []
        if t == 3:
            people.append({"person_id": [-1], "pose_keypoints_2d": _person(rng, v, 5000, 0).ravel().tolist()})
        (root / f"{name}_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return root


def mediapipe_csv(path, frames: int = T):
    rng = np.random.default_rng(1)
    head = ["frame"] + [f"{c}{j}" for j in range(33) for c in ("x", "y", "z", "visibility")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        for t in range(frames):
            kp = _person(rng, 33, 0.1, t) / 1000
            row = [t]
            for j in range(33):
                vis = 0.0 if j >= 25 else 0.9  # legs below the frame: not visible
                row += [kp[j, 0], kp[j, 1], 0.0, vis]
            w.writerow(row)
    return path


def mmpose_json(path, frames: int = T, k: int = 133):
    rng = np.random.default_rng(2)
    info = []
    for t in range(frames):
        inst = []
        for tid, x0 in ((7, 50), (9, 400)):
            kp = _person(rng, k, x0, t)
            inst.append(
                {"keypoints": kp[:, :2].tolist(), "keypoint_scores": kp[:, 2].tolist(), "track_id": tid}
            )
        info.append({"frame_id": t + 1, "instances": inst})
    path.write_text(json.dumps({"meta_info": {}, "instance_info": info}))
    return path


def coco_shapes(tmp_path):
    """COCO-17 JSON the COCO-17 reader has always read (no track ids, 17 keypoints)."""
    rng = np.random.default_rng(3)
    ps = [_person(rng, 17, 50, t) for t in range(4)]
    out = {
        "plain.json": [[p.ravel().tolist()] for p in ps],
        "persons.json": [{"persons": [{"keypoints": p.ravel().tolist()}]} for p in ps],
        "coco_results.json": [{"image_id": t, "category_id": 1, "keypoints": p.ravel().tolist()} for t, p in enumerate(ps)],
    }  # fmt: skip
    files = []
    for name, obj in out.items():
        (tmp_path / name).write_text(json.dumps(obj))
        files.append(tmp_path / name)
    return files


# ------------------------------------------------------------------------------ sniffing
def test_sniffing_leaves_real_nwucla_files_to_the_nwucla_reader(ucla_dir, tmp_path):
    files = sorted(ucla_dir.glob("*.json"))
    assert len(files) > 1000
    assert {sniff(f).name for f in files} == {"nw-ucla"}
    assert sniff(ucla_dir).name == "nw-ucla"
    # NW-UCLA content under another name is not estimator output either (no track, no OpenPose keys)
    other = tmp_path / "clip.json"
    shutil.copy(files[0], other)
    assert sniff(other).name == "folder"
    # OpenPose run on an NW-UCLA video names its frames after the video: still OpenPose
    op = openpose_folder(tmp_path / "op", frames=2, name="a01_s01_e00_v01")
    assert sniff(op).name == "pose-estimator"
    assert sniff(next(op.glob("*.json"))).name == "pose-estimator"


def test_sniffing_leaves_coco17_json_to_the_coco_reader_and_claims_estimator_output(tmp_path):
    for f in coco_shapes(tmp_path):
        assert sniff(f).name == "folder", f.name
        assert read_any(f)[0].data.shape == (4, 2, 17, 3)  # as before: two bodies, one sample
    (tmp_path / "labels.csv").write_text("file,label\nplain.json,a\n")
    assert sniff(tmp_path / "labels.csv") is None  # a label CSV is not MediaPipe output
    claimed = [
        openpose_folder(tmp_path / "op", frames=2),
        mediapipe_csv(tmp_path / "mp.csv", frames=2),
        mmpose_json(tmp_path / "mm.json", frames=2),
        mmpose_json(tmp_path / "mm17.json", frames=2, k=17),  # mmpose's own format, 17 keypoints
    ]
    mp = tmp_path / "mp.json"
    mp.write_text(json.dumps([{"landmarks": [{"x": 0.1, "y": 0.2, "visibility": 0.9}] * 33}]))
    rt = tmp_path / "rtm.json"
    rt.write_text(json.dumps([{"keypoints": [[[1, 2]] * 17], "scores": [[0.9] * 17]}]))
    lines = tmp_path / "frames.jsonl"
    lines.write_text(json.dumps({"frame": 0, "people": [{"id": 1, "keypoints": [[1, 2, 0.9]] * 17}]}) + "\n")
    for p in claimed + [mp, rt, lines]:
        assert sniff(p).name == "pose-estimator", p.name


# ------------------------------------------------------------------------------ one sample per person
def test_read_any_gives_one_sample_per_tracked_person_with_its_missing_share(tmp_path, caplog):
    op = openpose_folder(tmp_path / "op")
    samples = read_any(op)
    # two people (the detector's order changes every frame); the one-frame detection is left out
    assert len(samples) == 2 and all(
        s.layout == "openpose25" and s.data.shape == (T, 1, 25, 3) for s in samples
    )
    assert [s.source for s in samples] == [f"{op}#person0", f"{op}#person1"]
    left, right = samples
    assert left.data[:, 0, :, 0].max() < 300 < right.data[:, 0, :, 0].min()  # the tracker kept them apart
    assert left.extra["missing_fraction"] == pytest.approx(1 / 25) and right.extra["missing_fraction"] == 0
    assert not left.data[:, 0, 4].any()
    # a given track id is the person id; COCO-WholeBody-133 keeps the body (17 points)
    mm = read_any(mmpose_json(tmp_path / "mm.json"))
    assert (
        [s.extra["person"] for s in mm] == [7, 9] and mm[0].layout == "coco17" and mm[0].data.shape[2] == 17
    )
    # MediaPipe: invisible legs are missing, converted to a model's layout on request
    mp = read_any(mediapipe_csv(tmp_path / "mp.csv"), layout="coco17")
    assert len(mp) == 1 and mp[0].layout == "coco17"
    assert mp[0].extra["missing_fraction"] == pytest.approx(8 / 33, abs=1e-3)


def test_bring_your_own_folder_reads_estimator_files_one_labelled_sample_each(tmp_path):
    openpose_folder(tmp_path / "d" / "clip1")
    mediapipe_csv(tmp_path / "d" / "clip2.csv")
    mmpose_json(tmp_path / "d" / "clip3.json")
    (tmp_path / "d" / "labels.csv").write_text("file,label\nclip1,wave\nclip2.csv,clap\nclip3.json,wave\n")
    ds = load_folder(tmp_path / "d", layout="coco17", max_bodies=2)
    assert len(ds) == 3 and ds.classes == ["clap", "wave"] and ds.layout == "coco17"
    assert [s.label_name for s in ds.samples] == ["wave", "clap", "wave"]
    assert all(s.data.shape[1:] == (2, 17, 3) for s in ds.samples)  # the file's two strongest persons
    assert ds.samples[0].extra["missing_fraction"] == pytest.approx(1 / 25 / 2)
    # no labels.csv: two MediaPipe CSVs are data, not two candidate label files
    (tmp_path / "u").mkdir()
    mediapipe_csv(tmp_path / "u" / "a.csv")
    mediapipe_csv(tmp_path / "u" / "b.csv")
    ds = load_folder(tmp_path / "u")
    assert len(ds) == 2 and (ds.labels < 0).all() and ds.layout == "mediapipe33"


# ------------------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def coco_model(tmp_path_factory):
    arch = dict(get_model_config("ctrgcn_tiny"))
    arch.update(layout="coco17", num_classes=3, in_channels=3, num_bodies=1)
    cfg = SkeletonModelConfig(model=arch, classes=["wave", "clap", "kick"], layout="coco17",
                              preprocessing={"num_frames": 16, "num_bodies": 1})  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("models") / "coco"
    SkeletonModel(cfg).eval().save_pretrained(out)
    return out


def test_predict_reads_openpose_mediapipe_and_mmpose_per_person(tmp_path, coco_model, capsys):
    op = openpose_folder(tmp_path / "op")
    mp = mediapipe_csv(tmp_path / "mp.csv")
    mm = mmpose_json(tmp_path / "mm.json")
    rc = cli_main(["predict", "--model", str(coco_model), "--json", str(op), str(mp), str(mm)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert [r["input"] for r in res] == [f"{op}#person0", f"{op}#person1", str(mp) + "#person0",
                                         f"{mm}#person7", f"{mm}#person9"]  # fmt: skip
    assert all(r["label"] in ("wave", "clap", "kick") for r in res)
    assert res[0]["missing_joints"] == pytest.approx(1 / 25) and res[1]["missing_joints"] == 0
    # the same answer as the Python API on the same person
    model = SkeletonModel.from_pretrained(coco_model)
    assert model.predict([read_any(op)[1]])[0].label == res[1]["label"]


def test_data_info_reports_persons_and_missing_joints(tmp_path, capsys):
    op = openpose_folder(tmp_path / "op")
    assert cli_main(["data", "info", "--json", str(op)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["samples"] == 2 and info["layout"] == "openpose25" and info["num_bodies"] == 1
    assert info["missing_joints"]["per_sample"] == {"op#person0": pytest.approx(0.04), "op#person1": 0.0}
    assert cli_main(["data", "info", str(op)]) == 0
    assert "missing joints: 2.0 % on average" in capsys.readouterr().out


@pytest.mark.slow  # trains a tiny zero-shot model (about 30 s on a loaded machine)
def test_zeroshot_reads_estimator_output(tmp_path, train_tiny, text_cache, capsys):
    from llmskel.engine.config import load_experiment
    from llmskel.text.tiny import save_tiny_sentence_encoder

    text_dir = save_tiny_sentence_encoder(tmp_path / "bert16", hidden_size=16, seed=0)
    cfg = load_experiment(None, [
        "data.synthetic.num_classes=4", "data.synthetic.samples_per_class=3", "data.synthetic.num_subjects=2",
        "data.synthetic.num_frames=24", "data.num_frames=16", "data.num_bodies=1", "model.name=ctrgcn_tiny",
        "data.synthetic.layout=coco17", "train.batch_size=8", "train.progress=false", "train.trackers=[jsonl]",
        "train.epochs=1", "method=zeroshot", "zeroshot.unseen=[clap]", "zeroshot.text_max_length=128",
        f"zeroshot.text_encoder=sentence:{text_dir}", f"output_dir={tmp_path / 'run'}",
    ])  # fmt: skip
    res = train_tiny(cfg)
    model_dir = f"{res['run_dir']}/last"
    assert SkeletonModel.from_pretrained(model_dir).layout == "coco17"
    mm = mmpose_json(tmp_path / "mm.json")
    rc = cli_main(["zeroshot", "--model", model_dir, "--labels", "wave; jump", "--json", str(mm)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)["results"]
    assert [r["input"] for r in out] == [f"{mm}#person7", f"{mm}#person9"]
    assert all(r["label"] in ("wave", "jump") and "missing_joints" in r for r in out)
