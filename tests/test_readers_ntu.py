"""NTU RGB+D reader: the real sample, the fast vs careful parsers, denoising, names, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmskel.data.readers import ntu
from llmskel.data.readers.ntu import (
    NTU60_CLASSES,
    NTU120_CLASSES,
    NtuMissingSkeleton,
    denoise_ntu,
    load_ntu,
    ntu_missing_samples,
    parse_ntu_name,
    read_ntu_file,
    read_ntu_skeleton,
)
from llmskel.errors import SkeletonFormatError

LINES_PER_ONE_BODY_FRAME = 28  # body count + info + joint count + 25 joints


def write_ntu(path: Path, frames: list[list[tuple[int, np.ndarray]]], crlf: bool = False) -> Path:
    """Write a .skeleton file: ``frames[t]`` is a list of (body id, (25, 3) joints)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for bid, joints in bodies:
            lines.append(f"{bid} 0 1 1 1 1 0 0.02764709 -0.05745083 2")
            lines.append("25")
            for j, (x, y, z) in enumerate(joints):
                lines.append(
                    f"{x:.7g} {y:.7g} {z:.7g} 277.419 191.8218 {1000 + j}.25 {500 - j}.5 -0.2 0.05 0.96 -0.12 2"
                )
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    path.write_text(text)
    return path


def body(
    rng: np.random.Generator, centre=(0.0, 0.0, 3.0), motion: float = 0.05, wide: bool = False
) -> np.ndarray:
    """A plausible upright (25, 3) body (taller than wide), or a lying one with ``wide``."""
    j = np.zeros((25, 3))
    j[:, 1] = np.linspace(-0.8, 0.8, 25)  # tall
    j[:, 0] = rng.normal(0, 0.1, 25)
    if wide:
        j[:, [0, 1]] = j[:, [1, 0]]
    return j + np.asarray(centre) + rng.normal(0, motion, (1, 3))


# ------------------------------------------------------------------------------------------
# the real sample


def test_real_sample_numbers_match_the_file(ntu_sample_file):
    lines = ntu_sample_file.read_text().splitlines()
    s = read_ntu_file(ntu_sample_file)
    assert s.data.shape == (103, 2, 25, 3) and s.data.dtype == np.float32
    assert s.layout == "ntu25" and s.label == 0 and s.label_name == "drink water"
    assert (s.subject, s.view, s.setup, s.extra["replication"]) == (1, 1, 1, 1)
    assert not s.data[:, 1].any()  # one body: the second actor track is empty
    raw = read_ntu_skeleton(ntu_sample_file)
    assert raw.num_frames == 103 and raw.num_records == 103 and set(raw.body_counts) == {1}
    assert raw.body_id[0] == int(lines[2].split()[0]) == 72057594037931101
    for f, j in [(0, 0), (0, 24), (57, 11), (102, 3), (102, 24)]:
        fields = lines[1 + f * LINES_PER_ONE_BODY_FRAME + 3 + j].split()
        want = np.float32([float(v) for v in fields[:3]])
        assert np.array_equal(raw.joints[f, j], want)
        assert np.array_equal(s.data[f, 0, j], want)


def test_fast_and_careful_parsers_agree_on_the_real_sample(ntu_sample_file):
    text = ntu_sample_file.read_bytes()
    fast = ntu._parse_fast(text, str(ntu_sample_file), True)
    careful = ntu._parse_careful(text, str(ntu_sample_file), True)
    for key in ("body_counts", "frame", "body_id", "joints", "color", "tracking", "info"):
        assert np.array_equal(getattr(fast, key), getattr(careful, key)), key
    # colour coordinates and tracking states of the first joint line
    first = text.decode().splitlines()[4].split()
    assert np.array_equal(fast.color[0, 0], np.float32([float(first[5]), float(first[6])]))
    assert fast.tracking[0, 0] == int(first[11])


def test_decimal_parser_is_exact():
    rng = np.random.default_rng(0)
    toks = [f"{x:.{d}f}" for x, d in zip(rng.normal(0, 1000, 5000), rng.integers(0, 9, 5000))]
    toks += ["0", "-0.5", "7.", "123456789012", "-0.0000001"]
    text = (" ".join(toks) + "\n").encode()
    b = np.frombuffer(text, np.uint8)
    nonws = np.r_[False, b > 32]
    edges = np.flatnonzero(nonws[1:] != nonws[:-1])
    got = ntu._parse_decimals(b, edges[0::2], edges[1::2])
    assert np.array_equal(got, np.array([float(t) for t in toks]))


@pytest.mark.parametrize("crlf", [False, True])
def test_multi_body_file_parses_with_ids_and_frames(tmp_path, crlf):
    rng = np.random.default_rng(1)
    a, b = body(rng), body(rng, centre=(1, 0, 3))
    frames = [[(11, a)], [(11, a), (22, b)], [(22, b)]]
    f = write_ntu(tmp_path / "S002C003P004R002A050.skeleton", frames, crlf=crlf)
    raw = read_ntu_skeleton(f, full=True)
    assert raw.frame.tolist() == [0, 1, 1, 2] and raw.body_id.tolist() == [11, 11, 22, 22]
    assert np.allclose(raw.joints[2], b, atol=1e-5)
    assert raw.color[0, 3].tolist() == [1003.25, 497.5] and raw.tracking.max() == 2
    assert np.allclose(raw.info[0, 6:8], [0.02764709, -0.05745083])
    careful = ntu._parse_careful(f.read_bytes(), str(f), True)
    assert np.array_equal(careful.joints, raw.joints) and np.array_equal(careful.body_id, raw.body_id)


# ------------------------------------------------------------------------------------------
# denoising


def test_denoise_drops_short_and_spread_bodies_and_ranks_by_motion(tmp_path):
    rng = np.random.default_rng(2)
    t = 30
    frames: list[list[tuple[int, np.ndarray]]] = []
    for i in range(t):
        bodies = [(1, body(rng, motion=0.01))]  # calm actor, whole sequence
        bodies.append((2, body(rng, centre=(1.0, 0, 3), motion=0.2)))  # lively actor
        if 5 <= i < 10:
            bodies.append((3, body(rng, centre=(-1, 0, 3))))  # 5 frames: noise by length
        bodies.append((4, body(rng, centre=(0, -1, 4), wide=True)))  # lying: noise by spread
        frames.append(bodies)
    frames.insert(12, [])  # a frame without any body
    f = write_ntu(tmp_path / "S001C001P001R001A055.skeleton", frames)
    data, info = denoise_ntu(read_ntu_skeleton(f), num_bodies=2)
    assert data.shape == (t, 2, 25, 3)
    assert info.frames_without_body == 1 and info.frames_dropped == 1
    assert "length" in info.dropped_bodies["3"] and "spread" in info.dropped_bodies["4"]
    assert info.actors == [["2"], ["1"]]  # the most moving body first
    raw = read_ntu_skeleton(f)
    lively = raw.joints[raw.body_id == 2]
    assert np.array_equal(data[:, 0], lively)


def test_denoise_packs_non_overlapping_bodies_into_one_track(tmp_path):
    rng = np.random.default_rng(3)
    frames = [[(7, body(rng))] for _ in range(15)] + [[(8, body(rng))] for _ in range(15)]
    f = write_ntu(tmp_path / "S001C001P001R001A001.skeleton", frames)
    data, info = denoise_ntu(read_ntu_skeleton(f), num_bodies=2)
    assert data.shape[0] == 30 and not data[:, 1].any()  # re-identified person: one track
    assert sorted(info.actors[0]) == ["7", "8"]


def test_missing_skeleton_files(tmp_path):
    empty = tmp_path / "S001C002P005R002A008.skeleton"
    empty.write_text("0\n")
    with pytest.raises(NtuMissingSkeleton, match="missing skeleton"):
        read_ntu_file(empty)
    no_body = write_ntu(tmp_path / "S001C001P001R001A002.skeleton", [[], [], []])
    with pytest.raises(NtuMissingSkeleton, match="no body in any of its 3 frames"):
        read_ntu_file(no_body)


# ------------------------------------------------------------------------------------------
# names, classes, missing lists


def test_file_name_fields_and_bad_name():
    assert parse_ntu_name("/x/S017C003P020R001A059.skeleton") == {
        "setup": 17,
        "camera": 3,
        "performer": 20,
        "replication": 1,
        "action": 59,
    }
    with pytest.raises(SkeletonFormatError, match="SsssCcccPpppRrrrAaaa"):
        parse_ntu_name("drink.skeleton")


def test_missing_sample_lists():
    m60, m120 = ntu_missing_samples(60), ntu_missing_samples(120)
    assert len(m60) == 302 and len(m120) == 535 and m60 < m120
    assert {"S001C002P005R002A008", "S017C003P020R001A059", "S007C003P027R002A013"} <= m60
    assert "S019C001P046R001A075" in m120 - m60 and "S032C003P067R002A077" in m120
    assert all(int(n[1:4]) <= 17 for n in m60) and all(parse_ntu_name(n) for n in m120)


def test_class_names(gap_descriptions_dir):
    assert len(NTU120_CLASSES) == 120 == len(set(NTU120_CLASSES)) and NTU60_CLASSES == NTU120_CLASSES[:60]
    ref = [
        ln.strip()
        for ln in (gap_descriptions_dir / "ntu120_label_map.txt").read_text().splitlines()
        if ln.strip()
    ]
    assert NTU120_CLASSES == ref


# ------------------------------------------------------------------------------------------
# bad input: the error names the file, the line / frame and the problem


@pytest.fixture()
def good_lines(tmp_path) -> list[str]:
    rng = np.random.default_rng(4)
    f = write_ntu(tmp_path / "S001C001P001R001A001.skeleton", [[(5, body(rng))] for _ in range(4)])
    return f.read_text().splitlines()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda ls: ls[:40], r"\(line 41, frame 2\): file is truncated: expected a joint line"),
        (
            lambda ls: ls[:4] + [ls[4].rsplit(" ", 1)[0] + " abc"] + ls[5:],
            r"line 5, frame 1\): non-numeric value 'abc'",
        ),
        (
            lambda ls: ls[:4] + [" ".join(ls[4].split()[:11])] + ls[5:],
            r"line 5, frame 1\): a joint line has 12 numbers",
        ),
        (
            lambda ls: ls[:31] + ["20"] + ls[32:],
            r"line 32, frame 2\): body has 20 joints; NTU RGB\+D bodies have 25",
        ),
        (
            lambda ls: ls[:60] + [" ".join(["nan"] + ls[60].split()[1:])] + ls[61:],
            r"line 61, frame 3\): non-finite",
        ),
        (lambda ls: ["x"] + ls[1:], r"line 1\): expected the frame count \(an integer\), got 'x'"),
        (lambda ls: ls + ["1"], r"line 114\): unexpected data after the last frame"),
        (lambda ls: ls[:2] + ["5 0 1 1"] + ls[3:], r"line 3, frame 1\): a body info line has 10 numbers"),
    ],
    ids=[
        "truncated",
        "non-numeric",
        "short-line",
        "joint-count",
        "nan",
        "frame-count",
        "trailing",
        "info-line",
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, good_lines, edit, match):
    f = tmp_path / "S001C001P001R001A001.skeleton"
    f.write_text("\n".join(edit(list(good_lines))) + "\n")
    with pytest.raises(SkeletonFormatError, match=match) as ei:
        read_ntu_skeleton(f)
    assert ei.value.path == str(f)


def test_fast_parser_hands_odd_but_valid_files_to_the_careful_one(tmp_path, good_lines):
    f = tmp_path / "S001C001P001R001A001.skeleton"
    f.write_text("\n".join(good_lines) + "\n")
    ref = read_ntu_skeleton(f)
    # blank lines and doubled spaces: not canonical, still readable
    f.write_text("\n\n".join(good_lines).replace(" ", "  ") + "\n")
    odd = read_ntu_skeleton(f)
    assert np.array_equal(odd.joints, ref.joints) and np.array_equal(odd.body_id, ref.body_id)
    # exponent notation is read by the careful parser
    f.write_text("\n".join(good_lines).replace(good_lines[4].split()[0], "1.5E-05", 1) + "\n")
    assert read_ntu_skeleton(f).joints[0, 0, 0] == np.float32(1.5e-05)


def test_load_ntu_folder_skips_and_lists_bad_files(tmp_path):
    rng = np.random.default_rng(5)
    write_ntu(tmp_path / "S001C001P001R001A001.skeleton", [[(1, body(rng))] for _ in range(20)])
    write_ntu(tmp_path / "S001C002P002R001A002.skeleton", [[(1, body(rng))] for _ in range(20)])
    (tmp_path / "S001C003P003R001A003.skeleton").write_text("3\n1\n")  # truncated
    (tmp_path / "S001C001P004R001A004.skeleton").write_text("0\n")  # missing skeleton
    skipped: list[dict[str, str]] = []
    ds = load_ntu(tmp_path, skipped=skipped, ignore=["S001C002P002R001A002"])
    assert len(ds) == 1 and ds.classes == NTU60_CLASSES and ds.get(0).label == 0
    reasons = {Path(s["file"]).stem: s["error"] for s in skipped}
    assert reasons["S001C002P002R001A002"] == "in the ignore list"
    assert (
        "truncated" in reasons["S001C003P003R001A003"]
        and "missing skeleton" in reasons["S001C001P004R001A004"]
    )


def test_load_dataset_lists_a_raw_ntu_folder_once_and_suggests_a_cache_when_large(
    tmp_path, monkeypatch, caplog
):
    from llmskel.data.config import DataConfig
    from llmskel.data.sources import load_dataset

    rng = np.random.default_rng(6)
    for a in (1, 2, 3):
        write_ntu(tmp_path / f"S001C001P001R001A00{a}.skeleton", [[(1, body(rng))] for _ in range(10)])
    scans = []
    listed = ntu.find_ntu_files
    monkeypatch.setattr(ntu, "find_ntu_files", lambda root: scans.append(str(root)) or listed(root))
    cfg = DataConfig(dataset="ntu", root=str(tmp_path))
    with caplog.at_level("WARNING", logger=ntu.log.name):
        ds, kind = load_dataset(cfg)
    assert (len(ds), kind) == (3, "ntu") and scans == [str(tmp_path)]
    assert "prepare" not in caplog.text  # 3 files: small, no advice
    monkeypatch.setattr(ntu, "LARGE_RAW_NTU", 2)
    with caplog.at_level("WARNING", logger=ntu.log.name):
        load_dataset(cfg)
    assert "reading 3 raw NTU files" in caplog.text and "llmskel data prepare --format ntu" in caplog.text
    assert len(scans) == 2
