"""Saving and loading trained models as Hub folders: identical outputs, strict loading, clear failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from llmskel.errors import CheckpointError, SkeletonFormatError
from llmskel.hub import SkeletonModel, SkeletonModelConfig, push_model
from llmskel.models import get_model_config


def tiny_model(layout: str = "ntu25", classes=("wave", "clap", "kick")) -> SkeletonModel:
    arch = dict(get_model_config("ctrgcn_tiny"))
    arch.update(layout=layout, num_classes=len(classes), in_channels=3, num_bodies=2)
    cfg = SkeletonModelConfig(model=arch, classes=list(classes), layout=layout,
                              preprocessing={"num_frames": 16, "num_bodies": 2, "stream": "joint"},
                              training={"dataset": "synthetic", "protocol": "xsub", "metrics": {"test_top1": 0.5}})  # fmt: skip
    torch.manual_seed(0)
    return SkeletonModel(cfg).eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in (tmp_path / "m").iterdir()}
    card = (tmp_path / "m" / "README.md").read_text()
    assert "library_name: llmskel" in card and "| test_top1 | 0.5000 |" in card and "Intended use" in card
    m2 = SkeletonModel.from_pretrained(tmp_path / "m")
    assert m2.classes == ["wave", "clap", "kick"] and m2.layout == "ntu25"
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(m(x).logits, m2(x).logits, rtol=0, atol=0)
    # predictions on raw (T, M, V, C) arrays go through the saved preprocessing
    arr = np.random.default_rng(0).normal(size=(30, 2, 25, 3)).astype(np.float32)
    np.testing.assert_allclose(m.predict_proba([arr]), m2.predict_proba([arr]), rtol=1e-6)
    top = m2.predict([arr], top_k=2)[0]
    assert len(top.top_k) == 2 and top.label == top.top_k[0].label in m2.classes
    assert top.score == top.top_k[0].score >= top.top_k[1].score and top.target is None


def test_strict_loading_names_missing_and_unexpected_keys(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    w = load_file(str(tmp_path / "m" / "model.safetensors"))
    head_key = next(k for k in w if "head" in k)
    w2 = dict(w)
    del w2[head_key]
    w2["encoder.extra.weight"] = torch.zeros(1)
    save_file(w2, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        SkeletonModel.from_pretrained(tmp_path / "m")
    assert head_key in str(e.value) and "encoder.extra.weight" in str(e.value)


def test_class_count_mismatch_is_a_shape_error(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["classes"] = ["a", "b"]
    cfg["model"]["num_classes"] = 2
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        SkeletonModel.from_pretrained(tmp_path / "m")


def test_corrupt_or_missing_files(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="corrupt or unreadable weights"):
        SkeletonModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights file is missing"):
        SkeletonModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt config"):
        SkeletonModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(
        json.dumps({"model": {}, "classes": [], "layout": "ntu25", "x": 1})
    )
    with pytest.raises(CheckpointError, match="unknown keys \\['x'\\]"):
        SkeletonModel.from_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="does not exist"):
        SkeletonModel.from_pretrained(tmp_path / "nothing" / "here")


def test_hub_id_offline_and_push_offline_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="not a local folder and could not be fetched"):
        SkeletonModel.from_pretrained("someone/llmskel-model-that-is-not-cached")
    tiny_model().save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match="cannot push"):
        push_model(tmp_path / "m", "someone/llmskel-test")
    with pytest.raises(CheckpointError, match="not a saved llmskel model"):
        push_model(tmp_path, "someone/llmskel-test")


def test_layout_mismatch_and_conversion(tmp_path):
    m = tiny_model(layout="kinect20")
    coco = np.random.default_rng(1).normal(size=(20, 1, 17, 3)).astype(np.float32)
    from llmskel.data.sample import SkeletonSample

    with pytest.raises(SkeletonFormatError, match="cannot be used with this model, which expects 'kinect20'"):
        m.predict_proba([SkeletonSample(coco, "coco17", source="clip.json")])
    # NTU-25 input converts to the model's Kinect-20 layout
    ntu = np.random.default_rng(2).normal(size=(20, 1, 25, 3)).astype(np.float32)
    p = m.predict_proba([SkeletonSample(ntu, "ntu25")])
    assert p.shape == (1, 3) and np.isclose(p.sum(), 1.0)
