"""Layouts and graphs: adjacency symmetry, connectivity, partition sums, part groups."""

from __future__ import annotations

import numpy as np
import pytest

from llmskel.data.graph import Graph, hop_distance
from llmskel.data.layouts import LAYOUTS, PART_NAMES, can_convert, convert_layout, get_layout

# the part groups we intend, written out by joint name so a reader can check them
INTENDED_PARTS = {
    "ntu25": {
        "head": {"neck", "head"},
        "hand": {
            "left wrist",
            "left hand",
            "right wrist",
            "right hand",
            "left hand tip",
            "left thumb",
            "right hand tip",
            "right thumb",
        },
        "arm": {"left shoulder", "left elbow", "right shoulder", "right elbow"},
        "hip": {"spine base", "spine mid", "spine shoulder"},
        "leg": {"left hip", "left knee", "right hip", "right knee"},
        "foot": {"left ankle", "left foot", "right ankle", "right foot"},
    },
    "kinect20": {
        "head": {"shoulder center", "head"},
        "hand": {"left wrist", "left hand", "right wrist", "right hand"},
        "arm": {"left shoulder", "left elbow", "right shoulder", "right elbow"},
        "hip": {"hip center", "spine"},
        "leg": {"left hip", "left knee", "right hip", "right knee"},
        "foot": {"left ankle", "left foot", "right ankle", "right foot"},
    },
    "coco17": {
        "head": {"nose", "left eye", "right eye", "left ear", "right ear"},
        "hand": {"left wrist", "right wrist"},
        "arm": {"left shoulder", "right shoulder", "left elbow", "right elbow"},
        "hip": {"left hip", "right hip"},
        "leg": {"left knee", "right knee"},
        "foot": {"left ankle", "right ankle"},
    },
    "openpose18": {
        "head": {"nose", "left eye", "right eye", "left ear", "right ear"},
        "hand": {"left wrist", "right wrist"},
        "arm": {"left shoulder", "right shoulder", "left elbow", "right elbow"},
        "hip": {"neck", "left hip", "right hip"},
        "leg": {"left knee", "right knee"},
        "foot": {"left ankle", "right ankle"},
    },
    "openpose25": {
        "head": {"nose", "left eye", "right eye", "left ear", "right ear"},
        "hand": {"left wrist", "right wrist"},
        "arm": {"left shoulder", "right shoulder", "left elbow", "right elbow"},
        "hip": {"neck", "mid hip", "left hip", "right hip"},
        "leg": {"left knee", "right knee"},
        "foot": {
            "left ankle",
            "right ankle",
            "left big toe",
            "left small toe",
            "left heel",
            "right big toe",
            "right small toe",
            "right heel",
        },
    },
    "mediapipe33": {
        "head": {
            "nose",
            "left eye inner",
            "left eye",
            "left eye outer",
            "right eye inner",
            "right eye",
            "right eye outer",
            "left ear",
            "right ear",
            "mouth left",
            "mouth right",
        },
        "hand": {
            "left wrist",
            "right wrist",
            "left pinky",
            "right pinky",
            "left index",
            "right index",
            "left thumb",
            "right thumb",
        },
        "arm": {"left shoulder", "right shoulder", "left elbow", "right elbow"},
        "hip": {"left hip", "right hip"},
        "leg": {"left knee", "right knee"},
        "foot": {
            "left ankle",
            "right ankle",
            "left heel",
            "right heel",
            "left foot index",
            "right foot index",
        },
    },
    # the same joints and parts as kinect20, in UTD-MHAD's order
    "utd20": {
        "head": {"shoulder center", "head"},
        "hand": {"left wrist", "left hand", "right wrist", "right hand"},
        "arm": {"left shoulder", "left elbow", "right shoulder", "right elbow"},
        "hip": {"hip center", "spine"},
        "leg": {"left hip", "left knee", "right hip", "right knee"},
        "foot": {"left ankle", "left foot", "right ankle", "right foot"},
    },
    "penn13": {
        "head": {"head"},
        "hand": {"left wrist", "right wrist"},
        "arm": {"left shoulder", "right shoulder", "left elbow", "right elbow"},
        "hip": {"left hip", "right hip"},
        "leg": {"left knee", "right knee"},
        "foot": {"left ankle", "right ankle"},
    },
}

INTENDED_PARTS["omni25"] = INTENDED_PARTS["ntu25"]  # the joint space has NTU-25's joints and parts


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_parts_are_the_intended_partition(name):
    lay = LAYOUTS[name]
    assert set(lay.parts) == set(PART_NAMES)
    for part, joints in INTENDED_PARTS[name].items():
        assert {lay.joints[i] for i in lay.parts[part]} == joints, part
    # every joint in exactly one part
    counts = np.zeros(lay.num_joints, dtype=int)
    for idx in lay.parts.values():
        counts[list(idx)] += 1
    assert (counts == 1).all(), [lay.joints[i] for i in np.flatnonzero(counts != 1)]
    assert (lay.part_of() >= 0).all()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_bones_form_a_tree_towards_the_centre(name):
    lay = LAYOUTS[name]
    assert len(lay.bones) == lay.num_joints - 1
    children = [c for c, _ in lay.bones]
    assert len(set(children)) == len(children) and lay.center not in children
    dist = hop_distance(lay.num_joints, lay.bones)
    assert np.isfinite(dist).all(), "graph is not connected"
    # every bone points from a joint to one closer to the centre
    for c, p in lay.bones:
        assert dist[lay.center, p] == dist[lay.center, c] - 1
    # following parents from any joint reaches the centre
    parents = lay.parents
    for v in range(lay.num_joints):
        u, steps = v, 0
        while u != lay.center:
            u, steps = parents[u], steps + 1
            assert steps <= lay.num_joints
    assert len(lay.mirror_pairs) > 0


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_spatial_graph(name):
    lay = LAYOUTS[name]
    g = Graph(name, mode="spatial")
    v = lay.num_joints
    assert g.A.shape == (3, v, v) and g.A.dtype == np.float32
    assert np.array_equal(g.A[0], np.eye(v))
    # raw adjacency symmetric; inward and outward are each other's transpose
    assert np.array_equal(g.binary, g.binary.T)
    assert np.array_equal(g.inward, g.outward.T)
    # partition sums: self + inward + outward covers I + undirected edges exactly once
    assert np.array_equal(g.self_link + g.inward + g.outward, np.eye(v) + g.binary)
    assert int(g.binary.sum()) == 2 * len(lay.bones)
    # normalised columns sum to 1 where a joint has edges of that subset, 0 otherwise
    for k, raw in ((1, g.inward), (2, g.outward)):
        col = g.A[k].sum(axis=0)
        has = raw.sum(axis=0) > 0
        np.testing.assert_allclose(col[has], 1.0, rtol=1e-6)
        assert (col[~has] == 0).all()
    # the centre has no inward edge leaving it (it is the root)
    assert g.inward[:, lay.center].sum() == 0


def test_uniform_graph_is_symmetric_before_normalisation():
    g = Graph("kinect20", mode="uniform")
    assert g.A.shape == (1, 20, 20)
    np.testing.assert_allclose(g.A.sum(axis=0).sum(axis=0), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="valid modes"):
        Graph("kinect20", mode="nope")


def test_unknown_layout_lists_valid_names():
    with pytest.raises(
        KeyError, match="valid layouts: coco17, kinect20, mediapipe33, ntu25, omni25, openpose18"
    ):
        get_layout("ntu26")
    assert get_layout("NW-UCLA").name == "kinect20"


def test_known_ntu_joints_and_bones():
    ntu = get_layout("ntu25")
    # 1-based NTU ids: 21 spine shoulder hangs from 2 spine mid; 22/23 tip and thumb from 8 hand
    assert (20, 1) in ntu.bones and (21, 7) in ntu.bones and (22, 7) in ntu.bones
    assert ntu.joints[ntu.center] == "spine mid"
    assert ntu.index("right hand") == 11


def test_layout_conversion_is_linear_and_keeps_shared_joints():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 25, 3)).astype(np.float32)
    k = convert_layout(x, "ntu25", "kinect20")
    assert k.shape == (5, 2, 20, 3)
    ntu, kin = get_layout("ntu25"), get_layout("kinect20")
    np.testing.assert_array_equal(k[:, :, kin.index("right wrist")], x[:, :, ntu.index("right wrist")])
    np.testing.assert_array_equal(k[:, :, kin.index("shoulder center")], x[:, :, ntu.index("spine shoulder")])
    c = convert_layout(x, "ntu25", "coco17")
    coco = get_layout("coco17")
    np.testing.assert_array_equal(c[:, :, coco.index("left knee")], x[:, :, ntu.index("left knee")])
    # the nose lies on the neck->head line beyond the head
    nose = c[:, :, coco.index("nose")]
    head, neck = x[:, :, ntu.index("head")], x[:, :, ntu.index("neck")]
    np.testing.assert_allclose(nose, head + 0.35 * (head - neck), rtol=1e-5, atol=1e-6)
    o = convert_layout(c, "coco17", "openpose18")
    op = get_layout("openpose18")
    np.testing.assert_allclose(
        o[:, :, op.index("neck")],
        0.5 * (c[:, :, coco.index("left shoulder")] + c[:, :, coco.index("right shoulder")]),
        rtol=1e-6,
    )
    assert can_convert("mediapipe33", "openpose18") and not can_convert("coco17", "ntu25")
    with pytest.raises(KeyError, match="no conversion"):
        convert_layout(c, "coco17", "ntu25")
    with pytest.raises(ValueError, match="has 25"):
        convert_layout(x[:, :, :20], "ntu25", "coco17")


def test_flip_permutation_swaps_sides():
    lay = get_layout("ntu25")
    perm = lay.permutation_for_flip()
    assert lay.joints[perm[lay.index("left hand")]] == "right hand"
    assert perm[lay.index("head")] == lay.index("head")
    assert sorted(perm) == list(range(25))
