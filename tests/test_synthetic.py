"""The synthetic action set: determinism, kinematic consistency, camera space, descriptions that
match the motion, and a difficulty that is learnable but not trivial."""

from __future__ import annotations

import time

import numpy as np
import pytest

from llmskel.data import transforms as T
from llmskel.data.config import SyntheticConfig
from llmskel.data.layouts import PART_NAMES, convert_layout, get_layout
from llmskel.data.synthetic import (
    ACTION_NAMES,
    canonical_motion,
    generate_sample,
    make_synthetic_dataset,
    synthetic_descriptions,
)
from llmskel.data.synthetic_motion import ACTIONS, ANKLE_HEIGHT, DOFS
from llmskel.data.synthetic_text import moving_parts

NTU = get_layout("ntu25")


@pytest.fixture(scope="module")
def default_set():
    t0 = time.perf_counter()
    ds = make_synthetic_dataset(SyntheticConfig())
    return ds, time.perf_counter() - t0


def _present_frames(x: np.ndarray) -> np.ndarray:
    """(T', V, 3) frames of body 0 where every joint is present."""
    x = x[:, 0]
    return x[(x != 0).any(-1).all(-1)]


# ---------------------------------------------------------------------------------------------- basics


def test_catalogue_and_one_sample():
    assert len(ACTION_NAMES) >= 20 and len(set(ACTION_NAMES)) == len(ACTION_NAMES)
    for name in ("wave right hand", "clap", "jump", "squat", "kick", "punch", "sit down", "stand up", "bow",
                 "raise both arms", "march in place", "turn around"):  # fmt: skip
        assert name in ACTION_NAMES
    s = generate_sample("clap", subject=3, take=4, seed=1, num_frames=50)
    assert s.data.dtype == np.float32 and s.data.shape[1:] == (1, 25, 3)
    assert 50 <= s.num_frames <= 56  # a few empty frames may pad the ends
    assert (s.layout, s.label, s.label_name, s.subject) == ("ntu25", ACTION_NAMES.index("clap"), "clap", 3)
    assert s.view == 4 % 3 + 1 and s.source == "synthetic:clap/s3/t4"
    assert np.isfinite(s.data).all()


def test_unknown_action_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown synthetic action 'moonwalk'.*wave right hand"):
        generate_sample("moonwalk")


def test_determinism_under_seed():
    a = generate_sample("kick", subject=2, take=1, seed=4)
    b = generate_sample("kick", subject=2, take=1, seed=4)
    np.testing.assert_array_equal(a.data, b.data)
    c = generate_sample("kick", subject=2, take=1, seed=5)
    assert a.data.shape != c.data.shape or not np.allclose(a.data, c.data)
    cfg = SyntheticConfig(num_classes=3, samples_per_class=4, num_subjects=2, seed=2)
    d1, d2 = make_synthetic_dataset(cfg), make_synthetic_dataset(cfg)
    assert all(np.array_equal(x.data, y.data) for x, y in zip(d1.samples, d2.samples))


def test_dataset_structure(default_set):
    ds, seconds = default_set
    assert len(ds) == 20 * 24 and ds.classes == ACTION_NAMES[:20] and ds.layout == "ntu25"
    np.testing.assert_array_equal(ds.class_counts(), np.full(20, 24))
    assert {s.subject for s in ds.samples} == set(range(1, 9))
    assert {s.view for s in ds.samples} == {1, 2, 3}
    assert all(s.source == f"synthetic:{s.label_name}/s{s.subject}/t{s.extra['take']}" for s in ds.samples)
    lengths = np.array([s.num_frames for s in ds.samples])
    assert 40 <= lengths.min() and lengths.max() <= 100 and lengths.std() > 5
    # a few recordings lose frames: all-zero frames inside or at the ends
    with_gaps = sum(not T.frame_mask(s.data).all() for s in ds.samples)
    assert 0.1 * len(ds) < with_gaps < 0.7 * len(ds)
    assert seconds < 6.0, f"generating 480 samples took {seconds:.1f} s"


def test_invalid_config():
    with pytest.raises(ValueError, match="num_classes must be in 1..24"):
        make_synthetic_dataset(SyntheticConfig(num_classes=99))


def test_other_layouts_are_conversions():
    a = generate_sample("bow", subject=1, take=0, seed=0)
    b = generate_sample("bow", subject=1, take=0, seed=0, layout="kinect20")
    assert b.layout == "kinect20" and b.data.shape[2] == 20
    np.testing.assert_allclose(b.data, convert_layout(a.data, "ntu25", "kinect20"), atol=1e-6)
    c = make_synthetic_dataset(SyntheticConfig(num_classes=2, samples_per_class=1, layout="coco17"))
    assert c.layout == "coco17" and c.get(0).data.shape[2] == 17


# ---------------------------------------------------------------------------------------------- kinematics


def test_camera_space_like_kinect():
    s = generate_sample("point", subject=4, take=1, seed=0)  # take 1 -> view 2, facing the camera
    x = _present_frames(s.data)
    assert 2.2 < x[..., 2].mean() < 3.8, "depth about 3 m"
    head, foot = NTU.index("head"), NTU.index("left foot")
    assert (x[:, head, 1] - x[:, foot, 1]).mean() > 1.2, "y is up"
    ls, rs = NTU.index("left shoulder"), NTU.index("right shoulder")
    assert (x[:, rs, 0] > x[:, ls, 0]).mean() > 0.95, (
        "a person facing the sensor has the right shoulder at +x"
    )


def test_bone_lengths_constant_over_time_and_per_subject():
    bones = [(c, p) for c, p in NTU.bones if c < 21]  # leave out the noisy hand tips and thumbs

    def lengths(s):
        x = _present_frames(s.data)
        return np.stack([np.linalg.norm(x[:, c] - x[:, p], axis=-1) for c, p in bones], axis=1)  # (T, B)

    a = lengths(generate_sample("jump", subject=5, take=0, seed=0))
    b = lengths(generate_sample("wave left hand", subject=5, take=2, seed=0))
    c = lengths(generate_sample("jump", subject=6, take=0, seed=0))
    assert np.median(a.std(axis=0)) < 0.02, "bone lengths vary only by sensor noise"
    assert a.std(axis=0).max() < 0.035
    np.testing.assert_allclose(np.median(a, axis=0), np.median(b, axis=0), atol=0.02)  # same body
    assert np.abs(np.median(a, axis=0) - np.median(c, axis=0)).max() > 0.02  # another body


def test_canonical_motion_feet_on_the_ground():
    m = canonical_motion("squat", 60)
    j = m["joints"]
    ankles = j[:, [NTU.index("left ankle"), NTU.index("right ankle")], 1] - ANKLE_HEIGHT
    soles = np.minimum(ankles, j[:, [NTU.index("left foot"), NTU.index("right foot")], 1])
    assert np.abs(soles.min(axis=1)).max() < 1e-6, "a sole touches the floor in every frame"
    assert j[:, 0, 1].max() - j[:, 0, 1].min() > 0.3, "the hips go down in a squat"
    jump = canonical_motion("jump", 60)["joints"]
    assert jump[:, [NTU.index("left foot"), NTU.index("right foot")], 1].min(axis=1).max() > 0.15


# ---------------------------------------------------------------------------------------------- descriptions


def test_descriptions_cover_every_action_and_part():
    d = synthetic_descriptions()
    assert list(d) == ACTION_NAMES
    for name, entry in d.items():
        assert set(entry) == {*PART_NAMES, "sentence", "synonyms"}
        assert all(isinstance(entry[p], str) and entry[p].endswith(".") for p in PART_NAMES)
        assert isinstance(entry["sentence"], str) and entry["sentence"].count(".") == 1
        assert f'"{name}"' in entry["sentence"]
        assert isinstance(entry["synonyms"], list) and all(isinstance(x, str) for x in entry["synonyms"])
        assert len(entry["synonyms"]) >= 2


def test_descriptions_follow_the_program():
    d = synthetic_descriptions()
    wave = d["wave right hand"]
    assert "right" in wave["arm"] and "left" not in wave["arm"]
    assert "above the head" in wave["hand"] and "repeatedly" in wave["hand"]
    assert (
        wave["leg"] == "The legs stay straight and still."
        and wave["foot"] == "The feet stay flat on the ground."
    )
    # the mirrored program gives the mirrored text
    swap = {"left": "right", "right": "left"}
    mirrored = {p: " ".join(swap.get(w, w) for w in d["wave left hand"][p].split(" ")) for p in PART_NAMES}
    assert mirrored == {p: wave[p] for p in PART_NAMES}
    # "stand up" is "sit down" played backwards, and the text says so
    assert "stay low" in d["sit down"]["hip"] and "rise" in d["stand up"]["hip"]
    assert (
        "bend to about 90 degrees" in d["sit down"]["leg"]
        and "straighten from about 90" in d["stand up"]["leg"]
    )
    assert "nods" in d["nod head"]["head"] and "left and right" in d["shake head"]["head"]
    assert d["nod head"]["hand"] == "The hands stay relaxed at the sides." and "together" in d["jump"]["foot"]
    # every DOF a program moves by more than the threshold shows up in its part's text
    for name, act in ACTIONS.items():
        mv = moving_parts(name)
        for dof in act.program:
            if DOFS[dof].unit == "deg" and np.abs(act.dof_curve(dof, np.linspace(0, 1, 200))).max() > 15:
                assert mv[DOFS[dof].part], (
                    f"{name}: {dof} moves but part {DOFS[dof].part} is described as still"
                )


def _part_energy(s) -> dict[str, float]:
    """Smoothed temporal spread per part: hands and arms in the trunk frame, the head's bones in
    the trunk frame, trunk, legs and feet in camera space."""
    x = _present_frames(s.data)
    k = np.ones(5) / 5
    x = np.apply_along_axis(lambda a: np.convolve(a, k, mode="valid"), 0, x)
    rel = x - x[:, :1]
    top = NTU.index("spine shoulder")
    up = rel[:, top] / np.linalg.norm(rel[:, top], axis=-1, keepdims=True)
    across = x[:, NTU.index("right shoulder")] - x[:, NTU.index("left shoulder")]
    across -= (across * up).sum(-1, keepdims=True) * up
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    body = np.einsum("tij,tvj->tvi", np.stack([across, up, np.cross(across, up)], axis=1), rel)
    bones = body - body[:, NTU.parents]

    def spread(a):
        return float(np.linalg.norm(a.std(axis=0), axis=-1).mean())

    p = {k: list(v) for k, v in NTU.parts.items()}
    return {
        "head": spread(bones[:, p["head"]]),
        "hand": spread(body[:, p["hand"]]),
        "arm": spread(body[:, p["arm"]]),
        "hip": spread(x[:, p["hip"] + [NTU.index("left shoulder"), NTU.index("right shoulder")]]),
        "leg": spread(x[:, p["leg"]]),
        "foot": spread(x[:, p["foot"]]),
    }


def test_parts_said_to_move_are_the_ones_that_move():
    """Across actions, a part's motion energy separates the actions whose text says it moves from
    those whose text says it is still (area under the ROC curve per part)."""
    energy = {
        name: np.mean(
            [
                list(_part_energy(generate_sample(name, subject=s, take=t, seed=9)).values())
                for s in (1, 2)
                for t in (0, 1)
            ],
            axis=0,
        )
        for name in ACTION_NAMES
    }
    for k, part in enumerate(PART_NAMES):
        moving = [energy[n][k] for n in ACTION_NAMES if moving_parts(n)[part]]
        still = [energy[n][k] for n in ACTION_NAMES if not moving_parts(n)[part]]
        auc = np.mean([[a > b for b in still] for a in moving])
        assert auc >= (0.95 if part in ("hand", "arm", "leg") else 0.85), f"{part}: AUC {auc:.2f}"
    wave = dict(zip(PART_NAMES, energy["wave right hand"]))
    assert wave["hand"] > 3 * wave["leg"] and wave["hand"] > 3 * wave["foot"]
    rh, lh = NTU.index("right hand"), NTU.index("left hand")
    x = _present_frames(generate_sample("wave right hand", subject=3, take=1, seed=0).data)
    assert x[:, rh].std(axis=0).sum() > 3 * x[:, lh].std(axis=0).sum()


# ---------------------------------------------------------------------------------------------- difficulty


def test_learnable_but_not_trivial(default_set):
    """Nearest class centroid on per-joint motion statistics, odd subjects train, even test:
    far above chance (5%), clearly below perfect."""
    ds, _ = default_set

    def features(s):
        x = T.resize_time(T.trim_empty_frames(s.data), 32)[:, 0]  # (T, V, 3)
        present = (x != 0).any(-1, keepdims=True)
        rel = np.where(present, x - x[:, :1], 0.0)
        return np.concatenate([rel.std(axis=0).ravel(), rel.mean(axis=0).ravel()])

    X = np.stack([features(s) for s in ds.samples])
    y = ds.labels
    subject = np.array([s.subject for s in ds.samples])
    train, test = subject % 2 == 1, subject % 2 == 0
    mu, sd = X[train].mean(0), X[train].std(0) + 1e-6
    Z = (X - mu) / sd
    centroids = np.stack([Z[train & (y == c)].mean(0) for c in range(ds.num_classes)])
    pred = np.argmin(((Z[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    acc = float((pred == y[test]).mean())
    assert 0.5 < acc < 0.97, f"nearest-centroid accuracy {acc:.3f}"
    # the hardest pairs are the ones built to be hard: same poses in opposite order, head-only motion
    sit, stand = ACTION_NAMES.index("sit down"), ACTION_NAMES.index("stand up")
    confused = ((y[test] == sit) & (pred == stand)) | ((y[test] == stand) & (pred == sit))
    assert confused.sum() >= 2
