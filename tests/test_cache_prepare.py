"""The cache format, CachedSkeletonDataset, and resumable parallel preparation (+ the data CLI)."""

from __future__ import annotations

import json
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from llmskel.cli import main as cli_main
from llmskel.data import prepare as prepare_mod
from llmskel.data.cache import CachedSkeletonDataset, is_cache, write_cache
from llmskel.data.prepare import prepare_directory
from llmskel.data.readers.ntu import read_ntu_file
from llmskel.data.sample import SkeletonDataset, SkeletonSample
from llmskel.errors import SkeletonFormatError


def write_ntu(path: Path, frames: list[list[tuple[int, np.ndarray]]]) -> Path:
    """A .skeleton file: ``frames[t]`` lists (body id, (25, 3) joints)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for bid, joints in bodies:
            lines += [f"{bid} 0 1 1 1 1 0 0.01 -0.02 2", "25"]
            lines += [
                f"{x:.7g} {y:.7g} {z:.7g} 270.5 190.25 1000.5 500.25 -0.2 0.05 0.96 -0.12 2"
                for x, y, z in joints
            ]
    path.write_text("\n".join(lines) + "\n")
    return path


def body(rng: np.random.Generator) -> np.ndarray:
    """An upright (25, 3) body that moves a little."""
    j = np.stack([rng.normal(0, 0.1, 25), np.linspace(-0.8, 0.8, 25), np.full(25, 3.0)], axis=1)
    return j + rng.normal(0, 0.05, (1, 3))


def _dataset(n: int = 5, seed: int = 0) -> SkeletonDataset:
    rng = np.random.default_rng(seed)
    samples = [
        SkeletonSample(
            data=rng.normal(size=(3 + i, 1 + i % 2, 20, 3)).astype(np.float32),
            layout="kinect20",
            label=i % 3,
            label_name="abc"[i % 3],
            subject=i + 1,
            view=None if i == 0 else i % 3,
            source=f"/data/x{i}.json",
            extra={"take": i, "name": f"x{i}"},
        )
        for i in range(n)
    ]
    return SkeletonDataset(samples, ["a", "b", "c"], "kinect20", name="toy")


def test_cache_round_trip(tmp_path):
    ds = _dataset()
    out = write_cache(ds, tmp_path / "c")
    assert is_cache(out) and not is_cache(tmp_path)
    info = json.loads((out / "info.json").read_text())
    assert (
        info["num_bodies"] == 2
        and info["count"] == 5
        and info["total_frames"] == sum(3 + i for i in range(5))
    )
    assert np.load(out / "arrays.npy").shape == (info["total_frames"], 2, 20, 3)  # a plain .npy file too
    c = CachedSkeletonDataset(out)
    assert len(c) == 5 and c.classes == ["a", "b", "c"] and c.layout == "kinect20" and c.name == "toy"
    assert c.labels.tolist() == ds.labels.tolist() and c.lengths.tolist() == [3, 4, 5, 6, 7]
    for i in range(5):
        a, b = ds.get(i), c.get(i)
        m = a.num_bodies
        assert np.array_equal(b.data[:, :m], a.data) and not b.data[:, m:].any()
        assert (b.label, b.label_name, b.subject, b.view, b.source, b.extra) == (
            a.label, a.label_name, a.subject, a.view, a.source, a.extra,
        )  # fmt: skip
        assert c.meta(i)["extra"] == a.extra
    sub = c.subset([4, 1])
    assert len(sub) == 2 and sub.labels.tolist() == [1, 1] and np.array_equal(sub.get(0).data, c.get(4).data)
    t = c.with_transform(lambda s: s.num_frames)
    assert [t[i] for i in range(5)] == [3, 4, 5, 6, 7] and c.transform is None
    again = pickle.loads(pickle.dumps(sub))  # what a DataLoader worker receives: no array copy
    assert again._arr is None and np.array_equal(again.get(1).data, c.get(1).data)


def test_cache_reads_thousands_of_samples_per_second(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 2, 25, 3)).astype(np.float32)
    samples = (SkeletonSample(base, "ntu25", label=i % 7, source=f"s{i}") for i in range(3000))
    c = CachedSkeletonDataset(write_cache(samples, tmp_path / "c", classes=[str(i) for i in range(7)]))
    t0 = time.perf_counter()
    for i in range(len(c)):
        c.get(i)
    rate = len(c) / (time.perf_counter() - t0)
    assert rate > 2000, f"{rate:.0f} samples/s"


def test_corrupt_caches_name_the_file(tmp_path):
    out = write_cache(_dataset(), tmp_path / "c")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "info.json").unlink()
    with pytest.raises(
        SkeletonFormatError, match=r"bad/info.json: not a llmskel cache: info.json is missing"
    ):
        CachedSkeletonDataset(bad)
    shutil.copy(out / "info.json", bad / "info.json")
    lines = (out / "samples.jsonl").read_text().splitlines()
    (bad / "samples.jsonl").write_text("\n".join(lines[:2] + ["{oops"] + lines[3:]) + "\n")
    with pytest.raises(SkeletonFormatError, match=r"samples.jsonl \(line 3\): corrupt cache index entry"):
        CachedSkeletonDataset(bad)
    shutil.copy(out / "samples.jsonl", bad / "samples.jsonl")
    data = (out / "arrays.npy").read_bytes()
    (bad / "arrays.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(SkeletonFormatError, match=r"arrays.npy: corrupt cache: cannot read arrays.npy"):
        CachedSkeletonDataset(bad).get(0)
    with pytest.raises(FileNotFoundError, match="cache folder not found"):
        CachedSkeletonDataset(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------
# preparation


@pytest.fixture()
def ntu_src(tmp_path) -> Path:
    """Nine NTU files: six good, one truncated, one empty, one named in the authors' missing list."""
    src = tmp_path / "raw"
    src.mkdir()
    rng = np.random.default_rng(7)
    for k in range(6):
        frames = [[(100 + k, body(rng))] for _ in range(12 + k)]
        write_ntu(src / f"S001C001P{k + 1:03d}R001A{k + 1:03d}.skeleton", frames)
    (src / "S001C001P009R001A009.skeleton").write_text("5\n1\n72057594037931101 0 1 1\n")  # corrupt
    (src / "S001C003P009R001A010.skeleton").write_text("0\n")  # no skeleton
    write_ntu(src / "S001C002P005R002A008.skeleton", [[(1, body(rng))] for _ in range(12)])  # listed missing
    return src


def _cache_bytes(path: Path) -> tuple[bytes, str]:
    return (path / "arrays.npy").read_bytes(), (path / "samples.jsonl").read_text()


def test_prepare_ntu_reports_bad_files_and_matches_the_reader(tmp_path, ntu_src):
    report = prepare_directory(ntu_src, tmp_path / "c", fmt="ntu", workers=0, progress=False)
    assert report["complete"] and report["samples"] == 6 and report["units"] == 8
    assert report["error_count"] == 1 and report["errors"][0]["file"] == "S001C001P009R001A009.skeleton"
    assert "(line 3, frame 1): a body info line has 10 numbers" in report["errors"][0]["error"]
    assert [m["file"] for m in report["missing_skeletons"]] == ["S001C003P009R001A010.skeleton"]
    assert report["ignored"] == ["S001C002P005R002A008.skeleton"]
    assert json.loads((tmp_path / "c" / "report.json").read_text())["errors"] == report["errors"]
    assert not (tmp_path / "c" / "shards").exists()
    c = CachedSkeletonDataset(tmp_path / "c")
    assert c.name == "ntu" and len(c.classes) == 60
    for i, f in enumerate(sorted(ntu_src.glob("S001C001P00[1-6]*.skeleton"))):
        ref = read_ntu_file(f, classes=c.classes)
        got = c.get(i)
        assert np.array_equal(got.data, ref.data) and got.label == ref.label and got.subject == ref.subject


def test_prepare_resumes_without_redoing_finished_files(tmp_path, ntu_src):
    one_shot = prepare_directory(ntu_src, tmp_path / "ref", fmt="ntu", workers=0, progress=False)
    first = prepare_directory(
        ntu_src, tmp_path / "c", fmt="ntu", workers=0, shard_size=2, max_files=3, progress=False
    )
    assert not first["complete"] and first["processed_this_run"] == 3 and first["remaining"] == 5
    assert len(list((tmp_path / "c" / "shards").glob("shard-*.json"))) == 2  # flushed every 2 files
    assert not is_cache(tmp_path / "c")
    # a finished file that is now unreadable: the rerun must not read it again
    done_file = ntu_src / "S001C001P001R001A001.skeleton"
    keep = done_file.read_bytes()
    done_file.write_text("garbage\n")
    second = prepare_directory(ntu_src, tmp_path / "c", fmt="ntu", workers=2, shard_size=2, progress=False)
    done_file.write_bytes(keep)
    assert second["complete"] and second["processed_this_run"] == 5 and second["already_done"] == 3
    assert second["error_count"] == 1 and second["samples"] == one_shot["samples"] == 6
    assert _cache_bytes(tmp_path / "c") == _cache_bytes(tmp_path / "ref")
    third = prepare_directory(ntu_src, tmp_path / "c", fmt="ntu", workers=0, progress=False)
    assert third.get("already_complete") is True


def test_prepare_flushes_what_it_read_when_interrupted(tmp_path, ntu_src, monkeypatch):
    real = prepare_mod._read_unit
    calls = []

    def flaky(fmt, payload, denoise):
        calls.append(payload["path"])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(fmt, payload, denoise)

    monkeypatch.setattr(prepare_mod, "_read_unit", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_directory(ntu_src, tmp_path / "c", fmt="ntu", workers=0, shard_size=100, progress=False)
    monkeypatch.setattr(prepare_mod, "_read_unit", real)
    report = prepare_directory(ntu_src, tmp_path / "c", fmt="ntu", workers=0, progress=False)
    assert report["already_done"] == 3 and report["processed_this_run"] == 5 and report["samples"] == 6


def test_prepare_ignore_list_and_cli_json(tmp_path, ntu_src, capsys):
    ign = tmp_path / "ignore.txt"
    ign.write_text("# names to skip\nS001C001P002R001A002\nS001C001P003R001A003.skeleton\n")
    rc = cli_main(
        ["data", "prepare", "--format", "ntu", "--src", str(ntu_src), "--out", str(tmp_path / "c"),
         "--workers", "0", "--ignore-list", str(ign), "--json"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["samples"] == 4 and "S001C001P002R001A002.skeleton" in report["ignored"]
    rc = cli_main(["data", "info", str(tmp_path / "c"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert (
        rc == 0
        and info["samples"] == 4
        and info["layout"] == "ntu25"
        and info["per_class"]["drink water"] == 1
    )
    assert info["frames"]["min"] == 12 and info["frames"]["max"] == 17


def test_prepare_other_formats(tmp_path, ucla_dir, utkinect_dir):
    src = tmp_path / "ucla"
    src.mkdir()
    for f in sorted(ucla_dir.glob("a0[12]_s01_e00_v0*.json")):
        shutil.copy(f, src / f.name)
    (src / "a03_s01_e00_v01.json").write_text('{"skeletons": [[1, 2]], "label": 3}')
    rep = prepare_directory(src, tmp_path / "cu", fmt="nw-ucla", workers=0, progress=False)
    assert (
        rep["samples"] == 6
        and rep["error_count"] == 1
        and "a03_s01_e00_v01.json" in rep["errors"][0]["error"]
    )
    assert CachedSkeletonDataset(tmp_path / "cu").get(0).label_name == "pick up with one hand"
    rep = prepare_directory(utkinect_dir, tmp_path / "ck", fmt="utkinect", workers=0, progress=False)
    assert rep["samples"] == 199 and [s["segment"] for s in rep["skipped_segments"]] == ["s10_e02 carry"]
    ck = CachedSkeletonDataset(tmp_path / "ck")
    assert ck.name == "utkinect" and len(ck) == 199


def test_prepare_folder_and_errors(tmp_path):
    src = tmp_path / "own"
    src.mkdir()
    rng = np.random.default_rng(3)
    np.save(src / "a.npy", rng.normal(size=(5, 17, 3)).astype(np.float32))
    np.save(src / "b.npy", rng.normal(size=(7, 2, 17, 3)).astype(np.float32))
    (src / "labels.csv").write_text("file,label\na.npy,run\nb.npy,jump\nc.npy,run\n")
    rep = prepare_directory(src, tmp_path / "c", fmt="folder", workers=0, progress=False)
    assert rep["samples"] == 2 and rep["error_count"] == 1 and "c.npy" in rep["errors"][0]["error"]
    c = CachedSkeletonDataset(tmp_path / "c")
    assert c.layout == "coco17" and c.classes == ["jump", "run"] and c.get(1).data.shape == (7, 2, 17, 3)
    with pytest.raises(FileNotFoundError, match="source not found"):
        prepare_directory(tmp_path / "none", tmp_path / "x", fmt="ntu")
    assert (
        cli_main(
            [
                "data",
                "prepare",
                "--format",
                "ntu",
                "--src",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )


def test_show_writes_a_gif(tmp_path, capsys):
    out = tmp_path / "s.gif"
    ds = _dataset(2)
    write_cache(ds, tmp_path / "c")
    rc = cli_main(["data", "show", str(tmp_path / "c"), "--index", "1", "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.is_file() and out.read_bytes()[:3] == b"GIF" and res["frames"] == 4


def test_prepare_pyskl_needs_the_opt_in(tmp_path, capsys):
    rng = np.random.default_rng(4)
    anns = [
        {
            "frame_dir": f"S001C00{i + 1}P001R001A00{i + 1}",
            "label": i,
            "keypoint": rng.normal(size=(1, 6, 25, 3)),
        }
        for i in range(3)
    ]
    f = tmp_path / "ntu.pkl"
    f.write_bytes(pickle.dumps({"split": {"xsub_train": [anns[0]["frame_dir"]]}, "annotations": anns}))
    rc = cli_main(["data", "prepare", "--format", "pyskl", "--src", str(f), "--out", str(tmp_path / "c")])
    assert rc == 1 and "unpickling runs arbitrary code" in capsys.readouterr().err
    rep = prepare_directory(f, tmp_path / "c", fmt="pyskl", allow_pickle=True, workers=0, progress=False)
    c = CachedSkeletonDataset(tmp_path / "c")
    assert rep["samples"] == 3 and c.layout == "ntu25" and c.classes[2] == "brush teeth"
    assert c.get(0).extra["splits"] == ["xsub_train"] and (c.get(2).view, c.get(2).subject) == (3, 1)
    assert np.allclose(c.get(1).data[:, 0], anns[1]["keypoint"][0])
