"""Bad input on the paths the first corpus (tests/test_bad_input.py) did not list.

Few-shot support sets, zero-shot label lists and label files, description files, ``ensemble`` score
files, prepared-cache index files, command-line overrides, ``train`` output and resume paths,
``describe`` output paths and ``hf.export_hf``. Every case runs the public entry point (the
command line through ``llmskel.cli.main``, or the documented Python function) on inputs generated
in ``tmp_path`` and checks: no exception escapes, the exit code, and that the message names the
file and the problem. Each of these cases was a traceback or a silent wrong answer before.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from llmskel.cli import main


def _arr(t: int = 12, v: int = 25, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(t, 1, v, 3)) + 1.0).astype(np.float32)


def _npy(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, _arr(seed=seed))
    return path


def _support(root: Path, classes: list[str], per: int = 2) -> Path:
    for i, c in enumerate(classes):
        for j in range(per):
            _npy(root / c / f"{j}.npy", seed=10 * i + j)
    return root


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and all output of ``llmskel ARGV``; an escaping exception fails the test."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert "Traceback" not in out
    return rc, out


# ---------------------------------------------------------------------------------- few-shot
# the support set is read before the model, so a missing model folder shows the support error


def _fewshot(support: Path | str, q: Path) -> list[str]:
    return ["fewshot", "--model", "no/such-model", "--support", str(support), "--query", str(q)]


@pytest.mark.parametrize(
    "build, names",
    [
        (lambda r: _support(r / "sup", ["clap"]), ["sup", "two classes"]),
        (lambda r: _support(r / "sup", ["clap", " "]), ["blank"]),
        (lambda r: _support(r / "sup", ["Clap", "clap "]), ["'Clap'", "case"]),
        (lambda r: _npy(r / "x.npy"), ["x.npy", "folder", ".csv"]),
    ],
    ids=["one-class", "blank-class-name", "classes-differ-by-case", "support-is-an-array-file"],
)
def test_fewshot_support_folder_problems_are_named(tmp_path, capsys, build, names):
    q = _npy(tmp_path / "q.npy")
    rc, out = _run(_fewshot(build(tmp_path), q), capsys)
    assert rc == 1, out
    for n in names:
        assert n in out, (n, out)


@pytest.mark.parametrize(
    "csv_text, names",
    [
        (b"\xff\xfe\x00garbage\x00" * 8, ["s.csv", "UTF-8"]),
        ("path,label\na.npy,clap\na.npy,kick\nb.npy,kick\n", ["s.csv (line 3)", "listed twice"]),
        ("path,label\na.npy,clap\n../outside.npy,kick\n", ["s.csv (line 3)", "outside"]),
        ("path,label\na.npy,clap\nb.npy,Clap\n", ["s.csv", "case"]),
        ("path,label\na.npy,clap\nb.npy,clap\n", ["s.csv", "two classes"]),
    ],
    ids=[
        "garbage-bytes",
        "one-file-two-labels",
        "path-outside-the-folder",
        "labels-differ-by-case",
        "one-class",
    ],
)
def test_fewshot_support_csv_problems_are_named(tmp_path, capsys, csv_text, names):
    d = tmp_path / "sup"
    _npy(d / "a.npy")
    _npy(d / "b.npy", seed=1)
    _npy(tmp_path / "outside.npy", seed=2)
    csv = d / "s.csv"
    (csv.write_bytes if isinstance(csv_text, bytes) else csv.write_text)(csv_text)
    rc, out = _run(_fewshot(csv, _npy(tmp_path / "q.npy")), capsys)
    assert rc == 1, out
    for n in names:
        assert n in out, (n, out)


def test_support_folder_skips_hidden_entries(tmp_path):
    from llmskel.methods.few_shot import load_support

    root = _support(tmp_path / "sup", ["clap", "kick"])
    _npy(root / ".ipynb_checkpoints" / "0.npy")  # was taken as a third class
    (root / "kick" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" * 8)  # was an unreadable-file error
    samples, labels = load_support(root)
    assert sorted(set(labels)) == ["clap", "kick"] and len(samples) == 4


# --------------------------------------------------------------------------------- zero-shot


def test_zeroshot_with_one_label_is_an_error(tmp_path, capsys):
    rc, out = _run(
        ["zeroshot", "--model", "no/such-model", "--labels", "wave", str(_npy(tmp_path / "q.npy"))], capsys
    )
    assert rc == 1 and "two labels" in out, out


def test_label_and_description_files_nested_too_deeply(tmp_path, capsys):
    deep = tmp_path / "labels.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    rc, out = _run(["zeroshot", "--model", "no/such-model", "--labels", f"@{deep}", str(_npy(tmp_path / "q.npy"))],
                   capsys)  # fmt: skip
    assert rc == 1 and "labels.json" in out and "nested too deeply" in out, out
    desc = tmp_path / "desc.json"
    desc.write_text('{"classes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    rc, out = _run(["descriptions", "check", str(desc)], capsys)
    assert rc == 1 and "desc.json" in out and "nested too deeply" in out, out


@pytest.mark.parametrize(
    "header", ['{"format_version": "two"}', "[1]"], ids=["version-not-an-int", "header-a-list"]
)
def test_description_file_with_a_bad_header(tmp_path, capsys, header):
    desc = tmp_path / "desc.json"
    desc.write_text('{"header": ' + header + ', "classes": {}}')
    rc, out = _run(["descriptions", "check", str(desc)], capsys)
    assert rc == 1 and "desc.json" in out and "header" in out, out


# ---------------------------------------------------------------------------------- ensemble


def _scores(path: Path, **change) -> Path:
    arrays = {"scores": np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32),
              "labels": np.arange(10) % 3, "indices": np.arange(10), "classes": np.array(["a", "b", "c"])}  # fmt: skip
    arrays.update(change)
    np.savez(path, **arrays)
    return path


def _nan_scores() -> np.ndarray:
    s = np.zeros((10, 3), np.float32)
    s[0, 0] = np.nan
    return s


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"scores": _nan_scores()}, "NaN"),
        ({"scores": np.zeros(10)}, "'scores' has shape (10,)"),
        ({"scores": np.zeros((7, 3))}, "expected 7 integers"),
        ({"scores": np.zeros((10, 5))}, "5 columns"),
        ({"labels": np.full(10, 7)}, "outside the 3 classes"),
        ({"labels": np.full(10, 0.5)}, "'labels' has shape"),
        ({"indices": np.zeros(10, int)}, "repeats"),
        ({"scores": np.zeros((0, 3)), "labels": np.zeros(0, int), "indices": np.zeros(0, int)}, "no samples"),
    ],
    ids=[
        "nan",
        "one-dim",
        "rows-vs-labels",
        "columns-vs-classes",
        "label-range",
        "float-labels",
        "duplicate-indices",
        "empty",
    ],  # fmt: skip
)
def test_ensemble_score_file_problems_are_named(tmp_path, capsys, change, problem):
    bad = _scores(tmp_path / "bad.npz", **change)
    good = _scores(tmp_path / "good.npz")
    rc, out = _run(["ensemble", str(good), str(bad), "--json"], capsys)
    assert rc == 1 and "bad.npz" in out and problem in out, out
    json.loads(out.splitlines()[0])  # --json: one JSON object with the error


# ---------------------------------------------------------------------------- prepared cache


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    from llmskel.data.prepare import prepare_directory

    root = tmp_path_factory.mktemp("cache")
    src = root / "src"
    for i in range(3):
        _npy(src / f"s{i}.npy", seed=i)
    (src / "labels.csv").write_text("file,label\ns0.npy,wave\ns1.npy,clap\ns2.npy,wave\n")
    prepare_directory(src, root / "c", fmt="folder", workers=0, progress=False, layout="ntu25")
    return root / "c"


def _edit_info(d: Path, **change) -> None:
    info = json.loads((d / "info.json").read_text())
    info.update(change)
    (d / "info.json").write_text(json.dumps(info))


def _edit_first_entry(d: Path, **change) -> None:
    lines = (d / "samples.jsonl").read_text().splitlines()
    m = json.loads(lines[0])
    m.update(change)
    lines[0] = json.dumps(m)
    (d / "samples.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "edit, names",
    [
        (lambda d: _edit_info(d, version="two"), ["info.json", "'version'"]),
        (lambda d: _edit_info(d, classes="wave"), ["info.json", "'classes'"]),
        (lambda d: _edit_info(d, num_bodies="2"), ["info.json", "'num_bodies'"]),
        (lambda d: _edit_info(d, channels=-3), ["info.json", "'channels'"]),
        (lambda d: _edit_info(d, layout=["ntu25"]), ["info.json", "'layout'"]),
        (lambda d: _edit_info(d, layout="ntu26"), ["info.json", "ntu26"]),
        (lambda d: _edit_first_entry(d, offset=1.5), ["samples.jsonl", "line 1", "integers"]),
        (lambda d: _edit_first_entry(d, length=2**70), ["samples.jsonl", "line 1", "outside arrays.npy"]),
        (lambda d: _edit_first_entry(d, label=-5), ["samples.jsonl", "line 1", "label >= -1"]),
        (lambda d: _edit_first_entry(d, length=True), ["samples.jsonl", "line 1", "integers"]),
    ],
    ids=[
        "version-a-word",
        "classes-a-string",
        "bodies-a-string",
        "negative-channels",
        "layout-a-list",
        "layout-unknown",
        "offset-a-float",
        "length-huge",
        "label-below-minus-one",
        "length-a-bool",
    ],  # fmt: skip
)
def test_cache_fields_of_the_wrong_type_or_size(tmp_path, capsys, cache_dir, edit, names):
    d = tmp_path / "c"
    shutil.copytree(cache_dir, d)
    edit(d)
    rc, out = _run(["data", "info", str(d)], capsys)
    assert rc == 1, out
    for n in names:
        assert n in out, (n, out)


def test_the_untouched_cache_still_reads(capsys, cache_dir):
    rc, out = _run(["data", "info", str(cache_dir)], capsys)
    assert rc == 0, out


# ------------------------------------------------------------------------- train and config


def test_a_section_override_after_its_keys_merges_or_is_refused(tmp_path, capsys):
    # `train={}` after `train.epochs=1` used to drop the epochs override silently (30 epochs ran):
    # a later section merges into the earlier keys (the later keys win); a scalar over them is refused
    from llmskel.config import parse_overrides

    assert parse_overrides(["train.epochs=1", "train={}"]) == {"train": {"epochs": 1}}
    assert parse_overrides(["model.overrides={drop_out: 0.2, a: 1}", "model.overrides={drop_out: 0.0}"]) == {
        "model": {"overrides": {"drop_out": 0.0, "a": 1}}
    }
    rc, out = _run(["train", "--output-dir", str(tmp_path / "run"), "train.epochs=1", "train=5"], capsys)
    assert rc == 1 and "train=5" in out and "conflicts" in out, out
    assert not (tmp_path / "run").exists()


def test_overrides_after_an_option_are_taken_not_refused(tmp_path, capsys):
    # `--config C a=1 --output-dir D b=2` used to stop with "unrecognized arguments: b=2" (argparse
    # takes a nargs="*" positional once); overrides now stand anywhere, in order, in both entry points
    from llmskel.cli import build_parser, parse_with_overrides
    from llmskel.engine.commands import train_main

    args = parse_with_overrides(
        build_parser(), ["train", "--config", "c.yaml", "a=1", "--output-dir", "d", "b=2"]
    )
    assert args.overrides == ["a=1", "b=2"] and args.output_dir == "d" and args.config == "c.yaml"
    # the override after --output-dir reaches the config: it conflicts with the earlier one, so nothing trains
    run = tmp_path / "run"
    rc, out = _run(["train", "train.epochs=1", "--output-dir", str(run), "train=5"], capsys)
    assert rc == 1 and "train=5" in out and "conflicts" in out, out
    assert train_main(["train.epochs=1", "--output-dir", str(run), "train=5"]) == 1
    assert "conflicts" in capsys.readouterr().err and not run.exists()
    # an unknown option, or a loose word that is no override, is still refused and named
    rc, out = _run(["train", "--output-dir", str(run), "a=1", "--bogus", "b=2"], capsys)
    assert rc == 2 and "unrecognized arguments: --bogus" in out, out
    rc, out = _run(["train", "a=1", "--output-dir", str(run), "stray"], capsys)
    assert rc == 2 and "unrecognized arguments: stray" in out, out
    assert not run.exists()


def test_train_resume_and_output_dir_that_are_files(tmp_path, capsys):
    f = tmp_path / "somefile"
    f.write_text("x")
    rc, out = _run(
        ["train", "--output-dir", str(tmp_path / "run"), "--resume", str(f), "train.epochs=1"], capsys
    )
    assert rc == 1 and "somefile is a file" in out, out
    rc, out = _run(["train", "--output-dir", str(f), "data.synthetic.num_classes=2",
                    "data.synthetic.samples_per_class=2", "train.epochs=1"], capsys)  # fmt: skip
    assert rc == 1 and "somefile" in out and "is a file" in out and "Errno" not in out, out


# ------------------------------------------------------------------------------ describe


def test_describe_output_paths_are_checked_before_the_model_loads(tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("wave\nkick\n")
    (tmp_path / "outdir").mkdir()
    base = ["describe", "--labels", str(labels), "--llm", str(tmp_path / "no-such-llm")]
    rc, out = _run([*base, "--out", str(tmp_path / "outdir")], capsys)
    assert rc == 1 and "--out" in out and "outdir is a folder" in out, out
    (tmp_path / "afile").write_text("x")
    rc, out = _run([*base, "--out", str(tmp_path / "afile" / "d.json")], capsys)
    assert rc == 1 and "afile is a file" in out, out
    rc, out = _run([*base, "--out", str(tmp_path / "d.json"), "--cache", str(tmp_path / "outdir")], capsys)
    assert rc == 1 and "--cache" in out and "is a folder" in out, out


# ------------------------------------------------------------------------------- export_hf


def test_export_hf_checks_its_output_folder_and_splits(tmp_path):
    pytest.importorskip("datasets")
    from llmskel.data.config import SyntheticConfig
    from llmskel.data.hf import export_hf
    from llmskel.data.synthetic import make_synthetic_dataset
    from llmskel.errors import ConfigError

    ds = make_synthetic_dataset(
        SyntheticConfig(num_classes=2, samples_per_class=1, num_subjects=1, num_frames=8)
    )
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ConfigError, match="afile is a file"):
        export_hf(ds, f)
    with pytest.raises(ConfigError, match="afile is a file"):
        export_hf(ds, f / "sub")
    with pytest.raises(ConfigError, match=r"split 'test': sample indices \[5\]"):
        export_hf(ds, tmp_path / "out", splits={"train": [0], "test": [5]})
    with pytest.raises(ConfigError, match="split names"):
        export_hf(ds, tmp_path / "out", splits={"a/b": [0]})
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ unreadable files in an input folder
@pytest.fixture(scope="module")
def ntu_model(tmp_path_factory) -> Path:
    import torch

    from llmskel.hub import SkeletonModel, SkeletonModelConfig
    from llmskel.models import get_model_config

    arch = dict(get_model_config("ctrgcn_tiny"), layout="ntu25", num_classes=2, in_channels=3, num_bodies=1)
    cfg = SkeletonModelConfig(model=arch, classes=["wave", "clap"], layout="ntu25",
                              preprocessing={"num_frames": 12, "num_bodies": 1})  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("models") / "ntu"
    SkeletonModel(cfg).eval().save_pretrained(out)
    return out


@pytest.mark.parametrize("command", ["predict", "fewshot"])
def test_unreadable_files_of_an_input_folder_are_listed_in_json(tmp_path, capsys, caplog, ntu_model, command):
    # a long job over a folder skips a bad file, says so on stderr, and lists it in --json
    d = tmp_path / "clips"
    _npy(d / "a.npy")
    (d / "b.npy").write_bytes(b"garbage")
    _npy(d / "c.npy", seed=1)
    (d / "labels.csv").write_text("file,label\na.npy,wave\nb.npy,clap\nc.npy,clap\n")
    extra = (
        ["--support", str(_support(tmp_path / "support", ["wave", "clap"])), "--query"]
        if command == "fewshot"
        else []
    )
    with caplog.at_level(logging.WARNING):
        rc = main([command, "--model", str(ntu_model), "--json", *extra, str(d)])
    cap = capsys.readouterr()
    assert rc == 0 and "skipped" in caplog.text and "b.npy" in caplog.text and "Traceback" not in cap.err
    res = json.loads(cap.out)
    assert sorted(Path(r["input"]).name for r in res["results"]) == ["a.npy", "c.npy"]
    assert [Path(s["file"]).name for s in res["skipped"]] == ["b.npy"]
    assert "not a valid .npy file" in res["skipped"][0]["error"]
    # nothing skipped: an empty list, the same shape
    rc = main([command, "--model", str(ntu_model), "--json", *extra, str(d / "a.npy")])
    assert rc == 0 and json.loads(capsys.readouterr().out)["skipped"] == []
