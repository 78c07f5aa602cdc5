"""Hugging Face datasets export: Parquet splits + card, load_dataset / streaming round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmskel.cli import main as cli_main
from llmskel.data.config import DataConfig
from llmskel.data.hf import export_hf, load_hf_skeletons
from llmskel.data.sample import SkeletonDataset, SkeletonSample
from llmskel.data.sources import load_source
from llmskel.errors import SkeletonFormatError


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _dataset() -> SkeletonDataset:
    rng = np.random.default_rng(0)
    samples = [
        SkeletonSample(
            data=rng.normal(size=(4 + i, 1 + i % 2, 25, 3)).astype(np.float32),
            layout="ntu25",
            label=i % 3,
            label_name=["drink", "wave", "sit"][i % 3],
            subject=i % 4 + 1,
            view=None if i == 2 else 1,
            setup=3,
            source=f"/raw/s{i}.skeleton",
            extra={"name": f"s{i}", "replication": i},
        )
        for i in range(6)
    ]
    return SkeletonDataset(samples, ["drink", "wave", "sit"], "ntu25", name="toy")


def _padded(a: np.ndarray, m: int = 2) -> np.ndarray:
    return np.concatenate([a, np.zeros((a.shape[0], m - a.shape[1]) + a.shape[2:], a.dtype)], axis=1)


def test_export_loads_back_with_datasets(tmp_path):
    import datasets

    ds = _dataset()
    out = export_hf(ds, tmp_path / "exp", splits={"train": [0, 1, 2, 4], "test": [3, 5]})
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    card = (out / "README.md").read_text()
    assert "configs:" in card and "path: data/test-*.parquet" in card
    dd = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "c1"))
    assert set(dd) == {"train", "test"} and dd["train"].num_rows == 4 and dd["test"].num_rows == 2
    feats = dd["train"].features
    assert feats["label"].names == ["drink", "wave", "sit"]
    assert type(feats["skeleton"]).__name__ == "Array4D" and feats["skeleton"].shape == (None, 2, 25, 3)
    test = dd["test"].with_format("numpy")
    for j, i in enumerate([3, 5]):
        assert np.array_equal(test[j]["skeleton"], _padded(ds.get(i).data))
    row = dd["train"][2]
    assert row["view"] is None and row["subject"] == 3 and json.loads(row["extra"]) == {"replication": 2}
    streamed = datasets.load_dataset(str(out), split="test", streaming=True).with_format("numpy")
    arrays = [np.asarray(r["skeleton"]) for r in streamed]
    assert len(arrays) == 2 and all(
        np.array_equal(a, _padded(ds.get(i).data)) for a, i in zip(arrays, [3, 5])
    )


@pytest.mark.parametrize("streaming", [False, True])
def test_load_hf_skeletons_rebuilds_samples(tmp_path, streaming):
    ds = _dataset()
    out = export_hf(ds, tmp_path / "exp", splits={"train": [0, 1, 2, 3], "test": [4, 5]})
    back = load_hf_skeletons(out, "train", streaming=streaming, cache_dir=tmp_path / "c")
    assert back.classes == ds.classes and back.layout == "ntu25" and len(back) == 4
    for i in range(4):
        a, b = ds.get(i), back.get(i)
        assert np.array_equal(b.data, _padded(a.data))
        assert (b.label, b.label_name, b.subject, b.view, b.setup, b.source) == (
            a.label, a.label_name, a.subject, a.view, a.setup, Path(a.source).name,  # exports hold no local paths
        )  # fmt: skip
        assert b.extra == {**a.extra, "split": "train"}
    with pytest.raises(SkeletonFormatError, match="validation"):
        load_hf_skeletons(out, "validation", cache_dir=tmp_path / "c")


def test_unlabeled_samples_round_trip(tmp_path):
    ds = SkeletonDataset([SkeletonSample(np.ones((3, 1, 17, 3), np.float32), "coco17")], ["a"], "coco17")
    back = load_hf_skeletons(export_hf(ds, tmp_path / "exp"), "train", cache_dir=tmp_path / "c")
    assert (
        back.get(0).label == -1
        and back.layout == "coco17"
        and np.array_equal(back.get(0).data, ds.get(0).data)
    )


def test_export_cli_with_protocol_and_load_source(tmp_path, utkinect_dir, capsys):
    out = tmp_path / "exp"
    rc = cli_main(
        [
            "data",
            "export",
            "--src",
            str(utkinect_dir),
            "--out",
            str(out),
            "--dataset",
            "utkinect",
            "--protocol",
            "xsub",
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["splits"]["train"] + res["splits"]["test"] == 199 and res["layout"] == "kinect20"
    full, tr, te = load_source(DataConfig(dataset="hf", root=str(out), protocol="split"))
    assert len(full) == 199 and len(tr) == res["splits"]["train"] and len(te) == res["splits"]["test"]
    assert full.classes[0] == "walk" and {full.get(int(i)).subject % 2 for i in te} == {0}
    rc = cli_main(["data", "info", str(out), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["samples"] == 199
