"""A generated corpus of broken inputs, run through the public command line.

Every reader's format (NTU ``.skeleton``, NW-UCLA JSON, UTKinect joints + label file, COCO JSON,
bring-your-own ``.npy`` / ``.npz`` / ``.json`` + ``labels.csv``, pyskl pickles, Hugging Face
Parquet, prepared caches) is written broken in ``tmp_path``: empty, truncated, garbage bytes,
non-numeric, NaN / inf, wrong joint counts, zero frames, zero bodies, huge size claims, deep
nesting, CSV variants. Each case runs ``llmskel.cli.main([...])`` (``data info``, ``data show``,
``data prepare``, ``data export``, ``predict``, ``eval``) and checks: no exception escapes (no
traceback), the exit code, and that the output names the file (and the problem).

``benchmarks/bad_input.py`` runs the same corpus against any checkout to count clear errors,
tracebacks, silent wrong results and hangs.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

# ------------------------------------------------------------------------------------------
# good inputs of each format, and writers for broken ones


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def ntu_text(frames: int = 4, joints: int = 25, frame_count: int | None = None, bodies: int = 1) -> str:
    rng = _rng(1)
    lines = [str(frames if frame_count is None else frame_count)]
    for _ in range(frames):
        lines.append(str(bodies))
        for b in range(bodies):
            lines.append(f"7205759403793110{b} 0 1 1 1 1 0 0.02 0.05 2")
            lines.append(str(joints))
            for _ in range(joints):
                xyz = rng.normal(size=3) + [0, 0, 3]
                lines.append(
                    " ".join(f"{v:.5f}" for v in xyz) + " 277.4 191.8 1036.2 519.1 -0.2 0.05 0.96 -0.12 2"
                )
    return "\n".join(lines) + "\n"


NTU_NAME = "S001C001P001R001A001.skeleton"
UCLA_NAME = "a01_s01_e01_v03.json"


def ucla_obj(frames: int = 5, joints: int = 20) -> dict:
    sk = (_rng(2).normal(size=(frames, joints, 3)) + [0, 0, 3]).round(4).tolist()
    return {"file_name": UCLA_NAME[:-5], "skeletons": sk, "label": 1}


def utk_joints(frames: int = 8, joints: int = 20, start: int = 10) -> str:
    rng = _rng(3)
    return "".join(
        f"{start + t} " + " ".join(f"{v:.4f}" for v in rng.normal(size=joints * 3) + 1.0) + "\n"
        for t in range(frames)
    )


def coco_frames(frames: int = 4, keypoints: int = 17) -> list:
    rng = _rng(4)
    out = []
    for _ in range(frames):
        kp = np.concatenate([rng.uniform(50, 200, size=(keypoints, 2)), np.full((keypoints, 1), 0.9)], 1)
        out.append([{"keypoints": kp.round(2).reshape(-1).tolist()}])
    return out


def skel_array(t: int = 6, m: int = 1, v: int = 25, c: int = 3) -> np.ndarray:
    return (_rng(5).normal(size=(t, m, v, c)) + 1.0).astype(np.float32)


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def garbage(n: int = 512) -> bytes:
    return bytes(_rng(6).integers(0, 256, size=n, dtype=np.uint8))


def npy_header_claim(shape: tuple[int, ...]) -> bytes:
    """A .npy file whose header claims ``shape`` (float32) but holds 64 bytes of data."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


class Payload:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


# ------------------------------------------------------------------------------------------
# the corpus


@dataclass
class Case:
    argv: list[str]
    rc: int  # expected exit code
    names: list[str]  # each must appear in stdout + stderr (the file, the problem)
    absent: list[Path] = field(default_factory=list)  # must not exist afterwards
    kind: str = ""


Builder = Callable[[Path, dict[str, Path]], Case]
CASES: dict[str, Builder] = {}


def case(kind: str):
    def deco(fn: Builder) -> Builder:
        name = f"{kind}-{fn.__name__.lstrip('_').replace('_', '-')}"

        def build(root: Path, models: dict[str, Path]) -> Case:
            c = fn(root, models)
            c.kind = kind
            return c

        CASES[name] = build
        return fn

    return deco


def _w(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _info(path: Path, *extra: str) -> list[str]:
    return ["data", "info", str(path), *extra]


# ---- NTU .skeleton --------------------------------------------------------------------------


def _ntu_bad_joint(token: str) -> str:
    """A good file whose first joint's x is ``token``."""
    lines = ntu_text().split("\n")
    lines[4] = token + " " + lines[4].split(" ", 1)[1]
    return "\n".join(lines)


def _ntu_err(text: str | bytes, problem: str) -> Builder:
    def fn(root: Path, models: dict[str, Path]) -> Case:
        f = _w(root / NTU_NAME, text)
        return Case(_info(f), 1, [NTU_NAME, problem])

    return fn


for _name, _text, _problem in [
    ("empty", "", ""),
    ("truncated", ntu_text()[:700], ""),
    ("garbage", garbage(), ""),
    ("non-numeric", ntu_text().replace("277.4", "abc", 1), ""),
    ("nan", _ntu_bad_joint("nan"), ""),
    ("inf", _ntu_bad_joint("inf"), ""),
    ("joints-24", ntu_text(joints=24), ""),
    ("zero-frames", "0\n", ""),
    ("huge-frame-count", ntu_text(frames=1, frame_count=10**12), ""),
    ("huge-body-count", "1\n999999999\n", ""),
]:
    CASES[f"ntu-{_name}"] = (lambda t, p: lambda root, models: _kind(_ntu_err(t, p)(root, models), "ntu"))(
        _text, _problem
    )


def _kind(c: Case, kind: str) -> Case:
    c.kind = kind
    return c


@case("ntu")
def _predict_into_two_channel_model(root, models):
    f = _w(root / NTU_NAME, ntu_text())
    return Case(["predict", "--model", str(models["coco17_2ch"]), str(f)], 1, [NTU_NAME])


# ---- NW-UCLA JSON ---------------------------------------------------------------------------


def _ucla_err(text: str | bytes, problem: str = "") -> Builder:
    def fn(root: Path, models: dict[str, Path]) -> Case:
        f = _w(root / UCLA_NAME, text)
        return Case(_info(f), 1, [UCLA_NAME, problem])

    return fn


_good_ucla = json.dumps(ucla_obj())
for _name, _text, _problem in [
    ("empty", "", "not valid JSON"),
    ("truncated", _good_ucla[: len(_good_ucla) // 2], "not valid JSON"),
    ("garbage", garbage(), ""),
    ("non-numeric", _good_ucla.replace(",", ', "x"', 1).replace('"x"', '"x"', 1), ""),
    ("nan", json.dumps({**ucla_obj(), "skeletons": [[[float("nan")] * 3] * 20] * 3}), "non-finite"),
    ("inf", json.dumps({**ucla_obj(), "skeletons": [[[float("inf")] * 3] * 20] * 3}), "non-finite"),
    ("joints-19", json.dumps(ucla_obj(joints=19)), "20"),
    ("zero-frames", json.dumps({**ucla_obj(), "skeletons": []}), "zero frames"),
    ("deep-nesting", deep_json(), "nested too deeply"),
    ("deep-skeletons", json.dumps({**ucla_obj(), "skeletons": json.loads(deep_json(200))}), ""),
    ("not-an-object", "[1, 2, 3]", ""),
]:
    CASES[f"nw-ucla-{_name}"] = (
        lambda t, p: lambda root, models: _kind(_ucla_err(t, p)(root, models), "nw-ucla")
    )(_text, _problem)


@case("nw-ucla")
def _folder_info_with_one_deep_file(root, models):
    d = root / "ucla"
    _w(d / UCLA_NAME, json.dumps(ucla_obj()))
    _w(d / "a01_s02_e01_v03.json", deep_json())
    return Case(_info(d), 0, ["a01_s02_e01_v03.json", "nested too deeply"])


@case("nw-ucla")
def _folder_eval_with_one_deep_file(root, models):
    d = root / "ucla"
    _w(d / UCLA_NAME, json.dumps(ucla_obj()))
    _w(d / "a01_s02_e01_v03.json", deep_json())
    argv = ["eval", "--model", str(models["kinect20"]), "--data", f"nw-ucla:{d}", "--split", "all",
            "--no-robustness"]  # fmt: skip
    return Case(argv, 0, ["a01_s02_e01_v03.json", "samples: 1"])


@case("nw-ucla")
def _prepare_with_one_deep_file(root, models):
    d = root / "ucla"
    _w(d / UCLA_NAME, json.dumps(ucla_obj()))
    _w(d / "a01_s02_e01_v03.json", deep_json())
    argv = ["data", "prepare", "--format", "nw-ucla", "--src", str(d), "--out", str(root / "cache"),
            "--workers", "0"]  # fmt: skip
    return Case(argv, 0, ["a01_s02_e01_v03.json", "errors: 1"])


# ---- UTKinect -------------------------------------------------------------------------------


def _utk(root: Path, joints: str | bytes, labels: str = "s01_e01\nwalk: 10 15\n") -> Path:
    d = root / "utk"
    _w(d / "joints_s01_e01.txt", joints)
    _w(d / "actionLabel.txt", labels)
    return d


for _name, _joints, _labels, _file, _problem in [
    ("empty", "", None, "joints_s01_e01.txt", ""),
    ("garbage", garbage(), None, "joints_s01_e01.txt", ""),
    ("non-numeric", utk_joints().replace("1", "x", 3), None, "joints_s01_e01.txt", ""),
    ("nan", utk_joints().replace(" ", " nan ", 1), None, "joints_s01_e01.txt", ""),
    ("inf", "10 " + " ".join(["inf"] * 60) + "\n", None, "joints_s01_e01.txt", ""),
    ("joints-19", utk_joints(joints=19), None, "joints_s01_e01.txt", ""),
    ("labels-garbage", utk_joints(), "s01_e01\n\x00\x01garbage", "actionLabel.txt", "line 2"),
    ("labels-empty", utk_joints(), "", "actionLabel.txt", ""),
    ("labels-end-before-start", utk_joints(), "s01_e01\nwalk: 15 10\n", "actionLabel.txt", "line 2"),
    ("labels-non-numeric", utk_joints(), "s01_e01\nwalk: a b\n", "actionLabel.txt", "line 2"),
    ("labels-outside-recording", utk_joints(), "s01_e01\nwalk: 500 900\n", "joints_s01_e01.txt", "500-900"),
]:
    CASES[f"utkinect-{_name}"] = (
        lambda j, lab, f, p: (
            lambda root, models: Case(
                _info(_utk(root, j, *([lab] if lab is not None else []))), 1, [f, p], kind="utkinect"
            )
        )
    )(_joints, _labels, _file, _problem)


@case("utkinect")
def _label_range_to_frame_999999999(root, models):
    d = _utk(root, utk_joints(), "s01_e01\nwalk: 10 999999999\n")
    # read (the frames that exist), with a WARNING naming the file, the row and the range
    return Case(_info(d), 0, ["WARNING", "joints_s01_e01.txt", "line 2", "10-999999999"])


# ---- COCO JSON ------------------------------------------------------------------------------


def _coco_err(text: str | bytes, problem: str = "") -> Builder:
    def fn(root: Path, models: dict[str, Path]) -> Case:
        f = _w(root / "pose.json", text)
        return Case(_info(f), 1, ["pose.json", problem])

    return fn


_good_coco = json.dumps(coco_frames())
for _name, _text, _problem in [
    ("empty", "", "not valid JSON"),
    ("truncated", _good_coco[: len(_good_coco) // 2], "not valid JSON"),
    ("garbage", garbage(), ""),
    ("non-numeric", json.dumps([[{"keypoints": ["x"] * 51}]]), ""),
    ("nan", json.dumps([[{"keypoints": [float("nan")] * 51}]]), "non-finite"),
    ("inf", json.dumps([[{"keypoints": [float("inf")] * 51}]]), "non-finite"),
    ("keypoints-16", json.dumps(coco_frames(keypoints=16)), "17 keypoints"),
    ("zero-frames", "[]", "no frames"),
    ("no-person", "[[], []]", "no person"),
    ("deep-nesting", deep_json(), "nested too deeply"),
    ("deep-dict-nesting", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("deep-keypoints", json.dumps([[{"keypoints": json.loads(deep_json(200))}]]), ""),
    ("not-utf8", b"\xff\xfe[[" + garbage(64), ""),
]:
    CASES[f"coco-{_name}"] = (lambda t, p: lambda root, models: _kind(_coco_err(t, p)(root, models), "coco"))(
        _text, _problem
    )


# ---- bring-your-own arrays ------------------------------------------------------------------


def _npy(root: Path, name: str, arr: np.ndarray | bytes) -> Path:
    f = root / name
    if isinstance(arr, bytes):
        return _w(f, arr)
    np.save(f, arr)
    return f


for _name, _arr, _problem in [
    ("empty", b"", ""),
    ("truncated", None, ""),
    ("garbage", garbage(), ""),
    ("inf", np.full((6, 1, 25, 3), np.inf, np.float32), "infinite"),
    ("joints-24", skel_array(v=24), "24 joints"),
    ("zero-frames", skel_array(t=0), "zero frames"),
    ("zero-bodies", np.zeros((6, 0, 25, 3), np.float32), "no body"),
    ("all-zero", np.zeros((6, 1, 25, 3), np.float32), "no body"),
    ("rank-2", np.ones((6, 75), np.float32), "shape"),
    ("channels-7", skel_array(c=7), "channels"),
    ("strings", np.array([["a"] * 3] * 25 * 2).reshape(2, 25, 3), ""),
    ("object-dtype", np.array([None, 1], dtype=object), ""),
]:
    CASES[f"npy-{_name}"] = (
        lambda a, p, n: (
            lambda root, models: Case(
                _info(
                    _npy(root, "clip.npy", a)
                    if a is not None
                    else _w(root / "clip.npy", (lambda b: b[: len(b) - 300])(_npy_bytes(skel_array())))
                ),
                1,
                ["clip.npy", p],
                kind="npy",
            )
        )
    )(_arr, _problem, _name)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@case("npy")
def _nan_joint_is_missing(root, models):
    """A bring-your-own array has no other way to mark a missing joint (pose estimators write NaN):
    NaN joints are read as missing, filled as absent, and the share is reported naming the file."""
    arr = np.where(np.arange(6 * 25 * 3).reshape(6, 1, 25, 3) == 7, np.nan, 1.0).astype(np.float32)
    return Case(_info(_npy(root, "clip.npy", arr)), 0, ["clip.npy", "missing (NaN)"])


@case("npy")
def _huge_shape_claim(root, models):
    f = _w(root / "clip.npy", npy_header_claim((10**9, 2, 25, 3)))
    return Case(_info(f), 1, ["clip.npy"])


@case("npy")
def _npz_two_unnamed_arrays(root, models):
    np.savez(root / "clip.npz", a=skel_array(), b=skel_array())
    return Case(_info(root / "clip.npz"), 1, ["clip.npz", "several arrays"])


@case("npy")
def _npz_empty_archive(root, models):
    np.savez(root / "clip.npz")
    return Case(_info(root / "clip.npz"), 1, ["clip.npz"])


@case("npy")
def _npz_garbage(root, models):
    f = _w(root / "clip.npz", b"PK\x03\x04" + garbage())
    return Case(_info(f), 1, ["clip.npz"])


@case("npy")
def _predict_zero_bodies(root, models):
    f = _npy(root, "clip.npy", np.zeros((6, 0, 25, 3), np.float32))
    return Case(["predict", "--model", str(models["ntu25"]), str(f)], 1, ["clip.npy", "no body"])


@case("npy")
def _predict_two_channels_into_three_channel_model(root, models):
    f = _npy(root, "clip.npy", skel_array(c=2))
    return Case(["predict", "--model", str(models["ntu25"]), str(f)], 1, ["clip.npy", "channels"])


@case("npy")
def _show_zero_bodies(root, models):
    f = _npy(root, "clip.npy", np.zeros((6, 0, 25, 3), np.float32))
    out = root / "out.gif"
    return Case(["data", "show", str(f), "--out", str(out)], 1, ["clip.npy", "no body"], absent=[out])


# ---- bring-your-own folder + labels.csv -----------------------------------------------------


def _folder(
    root: Path, csv_text: str | bytes | None, files: dict[str, np.ndarray | str] | None = None
) -> Path:
    d = root / "mine"
    d.mkdir(parents=True, exist_ok=True)
    files = files if files is not None else {"a.npy": skel_array(), "b.npy": skel_array(t=7)}
    for name, arr in files.items():
        if isinstance(arr, str):
            _w(d / name, arr)
        else:
            np.save(d / name, arr)
    if csv_text is not None:
        _w(d / "labels.csv", csv_text)
    return d


def _eval_folder(models: dict[str, Path], d: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(models["ntu25"]), "--data", f"folder:{d}", "--protocol", "none",
            "--no-robustness", *extra]  # fmt: skip


@case("csv")
def _utf8_bom_accepted(root, models):
    d = _folder(root, "\ufefffile,label\na.npy,wave\nb.npy,clap\n".encode())
    return Case(_info(d, "--json"), 0, ['"num_classes": 2', '"clap": 1', '"unlabeled": 0'])


@case("csv")
def _row_with_more_fields_than_header(root, models):
    d = _folder(root, "file,label\na.npy,wave\nb.npy,clap,extra,more\n")
    return Case(_info(d), 1, ["labels.csv", "line 3", "4 fields"])


@case("csv")
def _no_label_column_warns(root, models):
    d = _folder(root, "file,subject\na.npy,1\nb.npy,2\n")
    return Case(_info(d), 0, ["labels.csv", "no 'label' column", "unlabeled"])


@case("csv")
def _no_label_column_eval_is_an_error(root, models):
    d = _folder(root, "file,subject\na.npy,1\nb.npy,2\n")
    return Case(_eval_folder(models, d), 1, ["mine", "none of its 2 samples has a label"])


@case("csv")
def _empty_label_cells_eval_is_an_error(root, models):
    d = _folder(root, "file,label\na.npy,\nb.npy,\n")
    return Case(
        _eval_folder(models, d), 1, ["labels.csv", "empty label", "none of its 2 samples has a label"]
    )


@case("csv")
def _some_empty_labels_warn(root, models):
    d = _folder(root, "file,label\na.npy,wave\nb.npy,\n")
    return Case(_eval_folder(models, d), 0, ["labels.csv", "line 3", "1 of 2 samples have no label"])


@case("csv")
def _same_file_twice_with_two_labels(root, models):
    d = _folder(root, "file,label\na.npy,wave\n./a.npy,clap\nb.npy,clap\n")
    return Case(_info(d), 1, ["labels.csv", "line 2", "line 3", "'wave'", "'clap'"])


@case("csv")
def _integer_labels_are_not_stretched_to_a_range(root, models):
    files = {f"{i}.npy": skel_array(t=5 + i) for i in range(4)}
    d = _folder(root, "file,label\n0.npy,0\n1.npy,10\n2.npy,20\n3.npy,30\n", files)
    return Case(_info(d, "--json"), 0, ['"num_classes": 4', '"30": 1'])


@case("csv")
def _split_validation_is_a_synonym(root, models):
    d = _folder(root, "file,label,split\na.npy,wave,training\nb.npy,clap,validation\n")
    return Case(_eval_folder(models, d)[:-1] + ["--protocol", "split", "--no-robustness"], 0, ["samples: 1"])


@case("csv")
def _split_unknown_value(root, models):
    d = _folder(root, "file,label,split\na.npy,wave,train\nb.npy,clap,holdout\n")
    return Case(_info(d), 1, ["labels.csv", "line 3", "'holdout'"])


@case("csv")
def _path_escaping_the_folder(root, models):
    np.save(root / "secret.npy", skel_array())
    d = _folder(root, "file,label\na.npy,wave\n../secret.npy,clap\n")
    return Case(_info(d, "--json"), 0, ["secret.npy", "outside the data folder", '"samples": 1'])


@case("csv")
def _absolute_path(root, models):
    np.save(root / "secret.npy", skel_array())
    d = _folder(root, f"file,label\na.npy,wave\n{root / 'secret.npy'},clap\n")
    return Case(_info(d, "--json"), 0, ["secret.npy", "absolute path", '"samples": 1'])


@case("csv")
def _symlink_out_of_the_folder(root, models):
    np.save(root / "secret.npy", skel_array())
    d = _folder(root, "file,label\na.npy,wave\nlink.npy,clap\n")
    (d / "link.npy").symlink_to(root / "secret.npy")
    return Case(_info(d, "--json"), 0, ["link.npy", "outside the data folder", '"samples": 1'])


@case("csv")
def _only_row_escapes(root, models):
    np.save(root / "secret.npy", skel_array())
    d = _folder(root, "file,label\n../secret.npy,clap\n", files={})
    return Case(_info(d), 1, ["secret.npy", "outside the data folder"])


@case("csv")
def _csv_garbage_bytes(root, models):
    d = _folder(root, b"file,label\n" + garbage())
    return Case(_info(d), 1, ["labels.csv"])


@case("csv")
def _csv_empty(root, models):
    d = _folder(root, "")
    return Case(_info(d), 1, ["labels.csv", "'file' column"])


@case("csv")
def _csv_header_only(root, models):
    d = _folder(root, "file,label\n")
    return Case(_info(d), 1, ["labels.csv", "no rows"])


@case("csv")
def _csv_unknown_class(root, models):
    d = _folder(root, "file,label\na.npy,wave\nb.npy,clap\n")
    argv = ["data", "prepare", "--format", "folder", "--src", str(d), "--out", str(root / "c"),
            "--workers", "0", "--classes", "wave"]  # fmt: skip
    return Case(argv, 0, ["labels.csv", "line 3", "'clap' is not a known class"])


@case("csv")
def _folder_with_one_deep_json(root, models):
    d = _folder(root, "file,label\na.npy,wave\nb.npy,clap\nbad.json,clap\n", {
        "a.npy": skel_array(), "b.npy": skel_array(), "bad.json": deep_json()})  # fmt: skip
    return Case(_info(d), 0, ["bad.json", "nested too deeply"])


# ---- pyskl pickles: never unpickled without the opt-in --------------------------------------


@case("pyskl")
def _pickle_refused_by_info(root, models):
    marker = root / "pwned.txt"
    f = _w(root / "ann.pkl", pickle.dumps(Payload(str(marker))))
    return Case(_info(f), 1, ["ann.pkl", "--allow-pickle"], absent=[marker])


@case("pyskl")
def _pickle_refused_by_prepare(root, models):
    marker = root / "pwned.txt"
    f = _w(root / "ann.pkl", pickle.dumps(Payload(str(marker))))
    argv = [
        "data",
        "prepare",
        "--format",
        "pyskl",
        "--src",
        str(f),
        "--out",
        str(root / "c"),
        "--workers",
        "0",
    ]
    return Case(argv, 1, ["ann.pkl", "allow_pickle"], absent=[marker])


@case("pyskl")
def _pickle_refused_by_predict(root, models):
    marker = root / "pwned.txt"
    f = _w(root / "ann.pkl", pickle.dumps(Payload(str(marker))))
    return Case(["predict", "--model", str(models["ntu25"]), str(f)], 1, ["ann.pkl"], absent=[marker])


@case("pyskl")
def _pickled_npy_refused(root, models):
    marker = root / "pwned.txt"
    f = root / "clip.npy"
    np.save(f, np.array([Payload(str(marker))], dtype=object), allow_pickle=True)
    return Case(_info(f), 1, ["clip.npy"], absent=[marker])


@case("pyskl")
def _garbage_pickle_with_opt_in(root, models):
    f = _w(root / "ann.pkl", garbage())
    return Case(_info(f, "--allow-pickle"), 1, ["ann.pkl"])


# ---- other inputs: Parquet exports, caches --------------------------------------------------


@case("other")
def _parquet_garbage(root, models):
    f = _w(root / "train-00000.parquet", garbage())
    return Case(_info(f), 1, ["train-00000.parquet"])


@case("other")
def _cache_info_deep_nesting(root, models):
    d = root / "cache"
    _w(d / "info.json", deep_json())
    _w(d / "samples.jsonl", "")
    return Case(_info(d), 1, ["info.json"])


@case("other")
def _cache_info_garbage(root, models):
    d = root / "cache"
    _w(d / "info.json", garbage())
    return Case(_info(d), 1, ["info.json"])


# ---- output paths ---------------------------------------------------------------------------


@case("output")
def _show_out_is_a_folder(root, models):
    (root / "gifs").mkdir()
    return Case(["data", "show", "synthetic:clap", "--out", str(root / "gifs")], 1, ["gifs", "folder"])


@case("output")
def _prepare_out_is_a_file(root, models):
    d = _folder(root, "file,label\na.npy,wave\nb.npy,clap\n")
    out = _w(root / "out.txt", "keep me")
    argv = ["data", "prepare", "--format", "folder", "--src", str(d), "--out", str(out), "--workers", "0"]
    return Case(argv, 1, ["out.txt", "is a file"])


@case("output")
def _export_out_is_a_file(root, models):
    out = _w(root / "out.txt", "keep me")
    return Case(["data", "export", "--src", "synthetic:clap", "--out", str(out)], 1, ["out.txt", "is a file"])


@case("output")
def _show_out_under_a_file(root, models):
    f = _w(root / "afile", "x")
    return Case(["data", "show", "synthetic:clap", "--out", str(f / "x.gif")], 1, ["afile"])


# ------------------------------------------------------------------------------------------
# running a case


def make_models(root: Path) -> dict[str, Path]:
    """Tiny saved classifiers (random weights) for the layouts the corpus feeds them."""
    import torch

    from llmskel.data.readers.nwucla import NWUCLA_CLASSES
    from llmskel.hub import SkeletonModel, SkeletonModelConfig
    from llmskel.models import get_model_config

    out = {}
    for key, layout, classes, ch in [
        ("ntu25", "ntu25", ["wave", "clap", "kick"], 3),
        ("kinect20", "kinect20", NWUCLA_CLASSES, 3),
        ("coco17_2ch", "coco17", ["wave", "clap"], 2),
    ]:
        arch = dict(get_model_config("ctrgcn_tiny"))
        arch.update(layout=layout, num_classes=len(classes), in_channels=ch, num_bodies=2)
        cfg = SkeletonModelConfig(model=arch, classes=list(classes), layout=layout,
                                  preprocessing={"num_frames": 8, "num_bodies": 2, "stream": "joint"})  # fmt: skip
        torch.manual_seed(0)
        SkeletonModel(cfg).eval().save_pretrained(root / key)
        out[key] = root / key
    return out


@dataclass
class Outcome:
    rc: int | None
    out: str
    error: BaseException | None = None  # an exception that escaped main: a traceback


def run_cli(argv: list[str], read_output: Callable[[], str]) -> Outcome:
    from llmskel.cli import main

    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        return Outcome(int(e.code or 0), read_output())
    except BaseException as e:  # noqa: BLE001 - the point is to see it
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(None, read_output(), e)
    return Outcome(rc, read_output())


def judge(c: Case, o: Outcome) -> str:
    """'clear' (expected code, file and problem named), 'traceback', 'silent' (success where an
    error or a warning was due, or the wrong answer), or 'unclear' (an error that names neither)."""
    if o.error is not None or "Traceback" in o.out:
        return "traceback"
    named = all(n in o.out for n in c.names if n) and not any(p.exists() for p in c.absent)
    if o.rc == c.rc and named:
        return "clear"
    if o.rc == 0 or any(p.exists() for p in c.absent):
        return "silent"
    return "unclear"


# ------------------------------------------------------------------------------------------
# the tests


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("models"))


PENDING: dict[str, str] = {}  # cases known to fail, with the reason (none at present)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=PENDING[n], strict=False)) if n in PENDING else n
        for n in sorted(CASES)
    ],  # fmt: skip
)
def test_bad_input(name, tmp_path, models, capsys, caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.INFO)
    root = tmp_path / "in"
    root.mkdir()
    monkeypatch.chdir(tmp_path)
    c = CASES[name](root, models)

    def read() -> str:
        cap = capsys.readouterr()
        return cap.out + cap.err + "\n" + "\n".join(f"{r.levelname} {r.getMessage()}" for r in caplog.records)

    o = run_cli(c.argv, read)
    if o.error is not None:
        raise o.error
    assert "Traceback" not in o.out
    assert o.rc == c.rc, o.out
    for n in c.names:
        assert n in o.out, (n, o.out)
    for p in c.absent:
        assert not p.exists(), f"{p} was written"


def test_corpus_covers_every_reader_format():
    kinds = {}
    for name in CASES:
        kinds.setdefault(name.split("-")[0], 0)
        kinds[name.split("-")[0]] += 1
    assert {"ntu", "nw", "utkinect", "coco", "npy", "csv", "pyskl", "other", "output"} <= set(kinds)
    assert sum(kinds.values()) >= 80


# ---- the Python API ------------------------------------------------------------------------


def test_predict_takes_one_array_as_one_sample(models):
    from llmskel.hub import SkeletonModel

    m = SkeletonModel.from_pretrained(models["ntu25"])
    x = skel_array(t=30, m=2)
    one = m.predict(x, top_k=2)
    assert len(one) == 1 and len(one[0].top_k) == 2  # not one prediction per frame
    assert m.predict_proba(x).shape == (1, 3)
    np.testing.assert_allclose(m.predict_proba(x), m.predict_proba([x]), rtol=1e-6)
    assert m.predict_proba(x[:, 0]).shape == (1, 3)  # (T, V, C): one body
    assert m.predict_proba(np.stack([x, x])).shape == (2, 3)  # (N, T, M, V, C)
    import torch

    assert m.predict_proba(torch.as_tensor(x)).shape == (1, 3)


def test_predict_checks_joints_and_channels(models):
    from llmskel.errors import SkeletonFormatError
    from llmskel.hub import SkeletonModel

    m = SkeletonModel.from_pretrained(models["ntu25"])
    with pytest.raises(SkeletonFormatError, match="24 joints per body but layout 'ntu25' has 25"):
        m.predict(skel_array(v=24))
    with pytest.raises(SkeletonFormatError, match="2 channels per joint, but this model takes 3"):
        m.predict(skel_array(c=2))
    with pytest.raises(SkeletonFormatError, match="no body"):
        m.predict(np.zeros((5, 0, 25, 3), np.float32))
    with pytest.raises(SkeletonFormatError, match="got an array of shape"):
        m.predict(np.zeros((5, 25), np.float32))


def test_folder_refuses_paths_out_of_the_folder_without_reading_them(tmp_path):
    from llmskel.data.readers.folder import load_folder

    d = tmp_path / "mine"
    d.mkdir()
    np.save(d / "a.npy", skel_array())
    np.save(tmp_path / "secret.npy", skel_array())
    (d / "labels.csv").write_text(f"file,label\na.npy,x\n../secret.npy,y\n{tmp_path / 'secret.npy'},y\n")
    skipped: list[dict[str, str]] = []
    ds = load_folder(d, skipped=skipped)
    assert len(ds) == 1 and [s.source for s in ds.samples] == [str(d / "a.npy")]
    assert len(skipped) == 2 and all("secret.npy" in s["error"] for s in skipped)


def test_csv_split_synonyms_are_normalised(tmp_path):
    from llmskel.data.protocols import split_indices
    from llmskel.data.readers.folder import load_folder

    d = tmp_path / "mine"
    d.mkdir()
    names = ["train", "Training", "val", "validation", "dev", "test", "TESTING"]
    for i, _ in enumerate(names):
        np.save(d / f"{i}.npy", skel_array(t=4 + i))
    (d / "labels.csv").write_text(
        "file,label,split\n" + "".join(f"{i}.npy,a,{n}\n" for i, n in enumerate(names))
    )
    ds = load_folder(d)
    assert [s.extra["split"] for s in ds.samples] == ["train", "train", "val", "val", "val", "test", "test"]
    tr, te = split_indices(ds, "split", "other")
    assert list(tr) == [0, 1] and list(te) == [2, 3, 4, 5, 6]


def test_dense_integer_labels_are_indices(tmp_path):
    from llmskel.data.readers.folder import load_folder

    d = tmp_path / "mine"
    d.mkdir()
    for i in range(3):
        np.save(d / f"{i}.npy", skel_array(t=4 + i))
    (d / "labels.csv").write_text("file,label\n0.npy,2\n1.npy,0\n2.npy,1\n")
    ds = load_folder(d)
    assert ds.classes == ["0", "1", "2"] and list(ds.labels) == [2, 0, 1]
    (d / "labels.csv").write_text("file,label\n0.npy,1\n1.npy,3\n2.npy,3\n")  # not 0..K-1: names
    ds = load_folder(d)
    assert ds.classes == ["1", "3"] and list(ds.labels) == [0, 1, 1]


if os.name == "nt":  # pragma: no cover - symlinks need privileges there
    CASES.pop("csv-symlink-out-of-the-folder", None)
