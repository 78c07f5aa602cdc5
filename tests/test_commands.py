"""The engine's commands on tiny trained runs: two streams fused by `ensemble`, `eval` with the
robustness table, `predict` on a file written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_train import tiny_cfg

from llmskel.cli import main
from llmskel.engine.trainer import training_function


@pytest.fixture(scope="module")
def two_streams(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streams")
    runs = {}
    for stream in ("joint", "bone"):
        res = training_function(tiny_cfg(tmp, "train.epochs=2", f"data.stream={stream}", name=stream))
        runs[stream] = Path(res["run_dir"])
    return runs


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_bone_stream_model_records_its_stream(two_streams):
    cfg = json.loads((two_streams["bone"] / "best" / "config.json").read_text())
    assert cfg["preprocessing"]["stream"] == "bone"


def test_ensemble_fuses_two_streams_by_weight(two_streams, capsys):
    files = [str(two_streams[s] / "scores" / "test_scores.npz") for s in ("joint", "bone")]
    assert main(["ensemble", *files, "--weights", "1", "0.5", "--json"]) == 0
    res = _json(capsys)
    z = [np.load(f) for f in files]
    order = [np.argsort(a["indices"]) for a in z]
    fused = z[0]["scores"][order[0]] + 0.5 * z[1]["scores"][order[1]]
    labels = z[0]["labels"][order[0]]
    assert res["num_samples"] == 16 and [s["weight"] for s in res["streams"]] == [1.0, 0.5]
    assert res["top1"] == pytest.approx(float((fused.argmax(1) == labels).mean()))
    # each stream's own accuracy is the one its run reported
    for s, name in zip(res["streams"], ("joint", "bone")):
        metrics = json.loads((two_streams[name] / "metrics.json").read_text())
        assert s["top1"] == pytest.approx(metrics["history"][-1]["top1"])


def test_ensemble_refuses_mismatched_files(two_streams, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    good = str(two_streams["joint"] / "scores" / "test_scores.npz")
    assert main(["ensemble", good, str(bad)]) == 1
    assert "bad.npz" in capsys.readouterr().err
    assert main(["ensemble", good, good, "--weights", "1"]) == 1
    assert "--weights has 1 values for 2 score files" in capsys.readouterr().err


def test_eval_reports_clean_and_corrupted_accuracy(two_streams, capsys):
    run = two_streams["joint"]
    assert main(["eval", "--model", str(run / "last"), "--data", str(run / "config.yaml"), "--json"]) == 0
    res = _json(capsys)
    metrics = json.loads((run / "metrics.json").read_text())
    assert res["num_samples"] == 16 and res["top1"] == pytest.approx(metrics["history"][-1]["top1"])
    names = set(res["robustness"])
    assert {"drop_frames_10%", "drop_frames_50%", "noise_std_0.01", "occlude_hand"} <= names, names
    assert np.asarray(res["confusion_matrix"]).sum() == 16


def test_predict_reads_a_file_and_ranks_the_model_classes(two_streams, tmp_path, capsys):
    from llmskel.data.synthetic import generate_sample

    run = two_streams["joint"]
    classes = json.loads((run / "best" / "config.json").read_text())["classes"]
    s = generate_sample(classes[1], subject=9, seed=3)
    path = tmp_path / "clip.npy"
    np.save(path, s.data)
    assert (
        main(
            [
                "predict",
                "--model",
                str(run / "best"),
                "--layout",
                "ntu25",
                "--top-k",
                "3",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    res = _json(capsys)
    (r,) = res["results"]
    # the Prediction shape: label / score the answer, top_k the ranking, target the ground truth (none: a .npy)
    assert len(r["top_k"]) == 3 and {p["label"] for p in r["top_k"]} <= set(classes) and r["target"] is None
    assert r["label"] == r["top_k"][0]["label"] and r["score"] == r["top_k"][0]["score"]
    assert sum(p["score"] for p in r["top_k"]) <= 1.0 + 1e-6
