"""`llmskel demo`: the README's first command, on a tiny budget."""

from __future__ import annotations

import json

from test_train import TINY

from llmskel.cli import main


def test_demo_trains_then_classifies_new_subjects(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    rc = main(["demo", "--json", "--epochs", "2", "--output-dir", str(out_dir), *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    res = json.loads(out)
    # the model folder the demo classified with is the one a user loads
    assert (out_dir / "best" / "model.safetensors").is_file() and res["model"] == str(out_dir / "best")
    # one recording per class (4) for each of the two new subjects, labelled with their true class
    assert res["num_new"] == 8 and len(res["predictions"]) == 8
    assert {p["subject"] for p in res["predictions"]} == {101, 102}
    # the Prediction shape: label / score = the answer, top_k the ranking, target = the true class
    classes = {p["target"] for p in res["predictions"]}
    assert len(classes) == 4 and all({t["label"] for t in p["top_k"]} <= classes and p["label"] == p["top_k"][0]["label"]
                                     and len(p["top_k"]) == 3 for p in res["predictions"])  # fmt: skip
    correct = sum(p["label"] == p["target"] for p in res["predictions"])
    assert res["new_subject_top1"] == correct / 8
    assert 0.0 <= res["test_top1"] <= 1.0
