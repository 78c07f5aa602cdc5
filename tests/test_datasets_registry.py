"""The dataset registry: one record per dataset, read by config, sources, protocols, prepare, read_any
and ``data info``; and a user's own folder (protocol errors, extra CSV columns, zeroshot names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmskel.config import from_dict
from llmskel.data.config import DataConfig
from llmskel.data.datasets import (
    DatasetRecord,
    dataset_names,
    get_dataset,
    register_dataset,
    sniff,
    unregister_dataset,
)
from llmskel.data.io import read_any
from llmskel.data.prepare import formats, prepare_directory
from llmskel.data.protocols import valid_protocols
from llmskel.data.sample import SkeletonDataset, SkeletonSample
from llmskel.data.sources import load_source
from llmskel.errors import ConfigError, SkeletonFormatError


def test_builtin_records_and_aliases():
    names = dataset_names()
    for n in (
        "synthetic",
        "ntu",
        "nw-ucla",
        "utkinect",
        "utd-mhad",
        "penn-action",
        "folder",
        "pyskl",
        "cache",
        "hf",
    ):
        assert n in names
    assert get_dataset("UCLA").name == "nw-ucla" and get_dataset("utd").name == "utd-mhad"
    assert set(formats()) >= {"ntu", "nw-ucla", "utkinect", "folder", "pyskl", "utd-mhad", "penn-action"}
    assert valid_protocols("utd-mhad") == ("xsub", "loso-<subject>", "none")
    assert valid_protocols("penn-action")[0] == "official"
    # the config reads the registry: aliases become names, unknown names list the datasets
    cfg = from_dict(DataConfig, {"dataset": "utdmhad", "root": "x"}, prefix="data")
    assert cfg.dataset == "utd-mhad"
    with pytest.raises(
        ConfigError, match=r"'data.dataset'.*unknown dataset 'kth'; datasets: synthetic.*penn-action"
    ):
        from_dict(DataConfig, {"dataset": "kth", "root": "x"}, prefix="data")


# a dataset defined outside the package: its reader and its record, nothing else


def _find_toy(root):
    return sorted(root.glob("*.toy.npy"))


def _read_toy(path):
    path = Path(path)
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3 or arr.shape[1:] != (25, 3):
        raise SkeletonFormatError(path, f"expected T x 25 x 3, got shape {arr.shape}")
    label, subject = (int(x) for x in path.name.split(".")[0].split("_"))
    return SkeletonSample(
        data=arr[:, None].astype(np.float32),
        layout="ntu25",
        label=label,
        label_name=["hop", "spin"][label],
        subject=subject,
        source=str(path),
    )


def _load_toy(root, cfg):
    return SkeletonDataset([_read_toy(f) for f in _find_toy(root)], ["hop", "spin"], "ntu25", name="toy")


@pytest.fixture
def toy(tmp_path):
    rec = register_dataset(
        DatasetRecord(
            "toy",
            "a test dataset",
            layout="ntu25",
            classes=("hop", "spin"),
            protocols={"first-two": lambda m: "train" if m["subject"] <= 2 else "test"},
            default_protocol="first-two",
            load=_load_toy,
            find_files=_find_toy,
            read_file=_read_toy,
            sniff_file=lambda p: p.name.endswith(".toy.npy"),
            sniff_dir=lambda p: any(p.glob("*.toy.npy")),
            read_input=lambda p, layout, allow_pickle: (
                list(_load_toy(p, None).samples) if p.is_dir() else [_read_toy(p)]
            ),
            input_help="*.toy.npy (the toy dataset)",
        )
    )
    root = tmp_path / "toy"
    root.mkdir()
    rng = np.random.default_rng(0)
    for label in (0, 1):
        for subject in (1, 2, 3):
            np.save(root / f"{label}_{subject}.toy.npy", rng.normal(size=(6, 25, 3)).astype(np.float32))
    yield rec, root
    unregister_dataset("toy")


def test_a_registered_dataset_reaches_every_consumer(toy, tmp_path, capsys):
    rec, root = toy
    cfg = from_dict(DataConfig, {"dataset": "toy", "root": str(root)}, prefix="data")
    ds, tr, te = load_source(cfg)  # default protocol from the record
    assert len(ds) == 6 and tr.size == 4 and te.size == 2
    assert valid_protocols("toy")[:1] == ("first-two",)
    with pytest.raises(ConfigError, match="valid protocols: first-two, none, split"):
        load_source(DataConfig(dataset="toy", root=str(root), protocol="xview"))
    _, tr, te = load_source(DataConfig(dataset="toy", root=str(root), protocol="loso-3"))
    assert te.size == 2
    # prepare: one unit per file found; the cache keeps the dataset's name, so its protocols work
    rep = prepare_directory(root, tmp_path / "cache", fmt="toy", workers=0, progress=False)
    assert rep["samples"] == 6 and rep["error_count"] == 0 and rep["format"] == "toy"
    _, tr, te = load_source(DataConfig(dataset="cache", root=str(tmp_path / "cache")))
    assert (tr.size, te.size) == (4, 2)
    # read_any and data info recognise its files
    assert sniff(root) is rec and sniff(root / "0_1.toy.npy") is rec
    (s,) = read_any(root / "1_3.toy.npy")
    assert s.label_name == "spin"
    from llmskel.cli import main as cli_main

    assert cli_main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "6 samples" in out and "default protocol first-two: train 4, test 2" in out
    unregister_dataset("toy")
    with pytest.raises(ConfigError, match="unknown data format 'toy'"):
        prepare_directory(root, tmp_path / "cache2", fmt="toy", workers=0, progress=False)


# ------------------------------------------------------------------------------------------
# a user's own folder


def _own_folder(tmp_path, with_split=False):
    root = tmp_path / "mine"
    root.mkdir()
    rng = np.random.default_rng(1)
    lines = ["file,label,subject,group" + (",split" if with_split else "")]
    for i in range(4):
        np.save(root / f"clip{i}.npy", rng.normal(size=(5, 17, 3)).astype(np.float32))
        lines.append(
            f"clip{i}.npy,{'wave' if i % 2 else 'bow'},{i + 1},g{i // 2}" + (",train" if with_split else "")
        )
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_folder_default_protocol_error_lists_the_protocols(tmp_path):
    root = _own_folder(tmp_path)
    with pytest.raises(ConfigError, match="needs a split") as e:
        load_source(DataConfig(dataset="folder", root=str(root), layout="coco17"))
    msg = str(e.value)
    for p in ("xsub", "loso-<subject>", "none", "split:<name>"):
        assert p in msg
    # and the protocols it names work on this folder
    _, tr, te = load_source(DataConfig(dataset="folder", root=str(root), layout="coco17", protocol="xsub"))
    assert (tr.size, te.size) == (2, 2)


def test_folder_keeps_extra_csv_columns(tmp_path):
    root = _own_folder(tmp_path)
    ds, _, _ = load_source(DataConfig(dataset="folder", root=str(root), layout="coco17", protocol="none"))
    assert [ds.meta(i)["extra"]["group"] for i in range(4)] == ["g0", "g0", "g1", "g1"]
    rep = prepare_directory(root, tmp_path / "c", fmt="folder", layout="coco17", workers=0, progress=False)
    assert rep["samples"] == 4
    cached, _, _ = load_source(DataConfig(dataset="cache", root=str(tmp_path / "c"), protocol="none"))
    assert cached.meta(3)["extra"]["group"] == "g1"


def test_zeroshot_names_folder_results_by_file(tmp_path):
    from llmskel.methods.commands import _read_inputs

    root = _own_folder(tmp_path)
    samples, names = _read_inputs([str(root), "synthetic:clap"])
    assert len(samples) == 5
    assert names[:4] == [str(root / f"clip{i}.npy") for i in range(4)]
    assert names[4] == "synthetic:clap"
