"""Skeleton layouts: joint names, bones, centre joint and body-part groups.

A layout is the one place that says what joint ``v`` of an array means. Every layout defines:

* ``joints``: names, in the order the arrays store them;
* ``bones``: ``(child, parent)`` pairs (0-based) forming a tree oriented towards ``center``; the
  bone stream is ``x[child] - x[parent]`` and the graph's inward edges are child -> parent;
* ``center``: the root joint of the tree (graph partition, bone stream root);
* ``origin``: joints whose mean is the body origin used for centring (often the centre itself,
  the hip midpoint where the layout has no trunk joint);
* ``parts``: the six body-part groups used for part-wise language alignment, ``head``, ``hand``,
  ``arm``, ``hip``, ``leg``, ``foot``. In every built-in layout they partition the joints: each
  joint belongs to exactly one part. ``hip`` is the trunk (pelvis and spine joints; the two hip
  joints in the 2D layouts, which have no spine); ``leg`` the hips and knees in the Kinect layouts,
  the knees in the 2D ones; ``arm`` shoulders and elbows; ``hand`` wrists and everything beyond;
  ``foot`` ankles and feet; ``head`` neck, head and face points.

Bone lists and where they come from:

* ``ntu25``: the Kinect v2 joint hierarchy as used for the NTU RGB+D bone streams of 2s-AGCN and
  CTR-GCN: the hand tip and the thumb both hang from the hand joint. (ST-GCN's original list
  chains tip -> thumb -> hand instead; the Kinect SDK's own sample draws thumb -> wrist. We keep
  one list, this one, everywhere.)
* ``kinect20``: the Kinect v1 SDK skeleton hierarchy (NW-UCLA, UTKinect-Action3D, MSR).
* ``coco17``: the COCO keypoint skeleton made a tree rooted at the nose (shoulders hang from the
  nose, no hip-hip or shoulder-shoulder edge), as ST-GCN/pyskl do for 2D COCO input.
* ``openpose18``: the OpenPose COCO-18 tree rooted at the neck (as in ST-GCN's Kinetics graph).
* ``mediapipe33``: MediaPipe Pose's 33 landmarks; its ``POSE_CONNECTIONS`` contain cycles (face,
  torso square, hand and foot triangles), broken here into a tree rooted at the nose: shoulders
  hang from the nose, hips from the shoulders, fingers from the wrist, heel and toe from the ankle.

Layout conversion (:func:`convert_layout`) is a fixed linear map per pair: a target joint is a
weighted sum of source joints, which covers renaming, dropping and synthesising joints that the
source lacks (an OpenPose neck is the shoulder midpoint, a COCO nose from NTU is extrapolated
from neck and head).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

PART_NAMES: tuple[str, ...] = ("head", "hand", "arm", "hip", "leg", "foot")
GLOBAL_TERM = "global"  # a pooling term over every joint (beside the parts)


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int
    parts: dict[str, tuple[int, ...]]
    origin: tuple[int, ...] = ()
    description: str = ""
    # joints (left_index, right_index) mirrored by a horizontal flip
    mirror_pairs: tuple[tuple[int, int], ...] = field(default=())
    # recorded in 3D (x, y, z: depth sensors) rather than 2D (x, y[, score]: pose estimators)
    three_d: bool = False

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def origin_joints(self) -> tuple[int, ...]:
        return self.origin or (self.center,)

    @property
    def parents(self) -> np.ndarray:
        """``parents[v]`` is the parent of joint v; the centre is its own parent (zero bone)."""
        p = np.arange(self.num_joints)
        for child, parent in self.bones:
            p[child] = parent
        return p

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(
                f"layout {self.name!r} has no joint {joint!r}; joints: {', '.join(self.joints)}"
            ) from None

    def part_of(self) -> np.ndarray:
        """``part_of()[v]`` is the index in PART_NAMES of joint v's part (layouts partition joints)."""
        out = np.full(self.num_joints, -1, dtype=np.int64)
        for k, name in enumerate(PART_NAMES):
            out[list(self.parts[name])] = k
        return out

    def permutation_for_flip(self) -> np.ndarray:
        """Joint permutation that swaps left and right (for a mirror augmentation)."""
        perm = np.arange(self.num_joints)
        for a, b in self.mirror_pairs:
            perm[a], perm[b] = b, a
        return perm


def _pairs(joints: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs for joints named 'left X' / 'right X'."""
    idx = {n: i for i, n in enumerate(joints)}
    out = []
    for n, i in idx.items():
        if n.startswith("left "):
            j = idx.get("right " + n[5:])
            if j is not None:
                out.append((i, j))
    return tuple(out)


def _make(
    name, joints, bones_1based_or_0, center, parts, origin=(), description="", one_based=False, three_d=False
) -> Layout:
    off = 1 if one_based else 0
    bones = tuple((c - off, p - off) for c, p in bones_1based_or_0)
    parts = {k: tuple(sorted(v_ - off for v_ in v)) for k, v in parts.items()}
    origin = tuple(o - off for o in origin)
    return Layout(
        name=name,
        joints=tuple(joints),
        bones=bones,
        center=center - off,
        parts=parts,
        origin=origin,
        description=description,
        mirror_pairs=_pairs(joints),
        three_d=three_d,
    )


# --------------------------------------------------------------------------------------------
# The tables below are kept compact on purpose (one joint list per layout reads like the docs).
# fmt: off

# NTU RGB+D (Kinect v2), 25 joints; numbers below are the 1-based joint ids of the NTU paper.
NTU25 = _make(
    "ntu25",
    ["spine base", "spine mid", "neck", "head",
     "left shoulder", "left elbow", "left wrist", "left hand",
     "right shoulder", "right elbow", "right wrist", "right hand",
     "left hip", "left knee", "left ankle", "left foot",
     "right hip", "right knee", "right ankle", "right foot",
     "spine shoulder", "left hand tip", "left thumb", "right hand tip", "right thumb"],
    [(1, 2), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
     (22, 8), (23, 8), (24, 12), (25, 12), (21, 2)],
    center=2,
    parts={"head": [3, 4], "hand": [7, 8, 11, 12, 22, 23, 24, 25], "arm": [5, 6, 9, 10],
           "hip": [1, 2, 21], "leg": [13, 14, 17, 18], "foot": [15, 16, 19, 20]},
    description="NTU RGB+D 60/120, Kinect v2, 25 joints",
    three_d=True,
    one_based=True,
)

# Kinect v1, 20 joints: NW-UCLA, UTKinect-Action3D, MSR Action3D (1-based ids below).
KINECT20 = _make(
    "kinect20",
    ["hip center", "spine", "shoulder center", "head",
     "left shoulder", "left elbow", "left wrist", "left hand",
     "right shoulder", "right elbow", "right wrist", "right hand",
     "left hip", "left knee", "left ankle", "left foot",
     "right hip", "right knee", "right ankle", "right foot"],
    [(1, 2), (3, 2), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)],
    center=2,
    parts={"head": [3, 4], "hand": [7, 8, 11, 12], "arm": [5, 6, 9, 10], "hip": [1, 2],
           "leg": [13, 14, 17, 18], "foot": [15, 16, 19, 20]},
    description="Kinect v1, 20 joints (NW-UCLA, UTKinect-Action3D)",
    three_d=True,
    one_based=True,
)

COCO17 = _make(
    "coco17",
    ["nose", "left eye", "right eye", "left ear", "right ear",
     "left shoulder", "right shoulder", "left elbow", "right elbow", "left wrist", "right wrist",
     "left hip", "right hip", "left knee", "right knee", "left ankle", "right ankle"],
    [(1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8),
     (11, 5), (12, 6), (13, 11), (14, 12), (15, 13), (16, 14)],
    center=0,
    origin=(11, 12),
    parts={"head": [0, 1, 2, 3, 4], "hand": [9, 10], "arm": [5, 6, 7, 8], "hip": [11, 12],
           "leg": [13, 14], "foot": [15, 16]},
    description="COCO keypoints, 17 joints (2D pose estimators: HRNet, ViTPose, RTMPose, YOLO-pose)",
)

OPENPOSE18 = _make(
    "openpose18",
    ["nose", "neck", "right shoulder", "right elbow", "right wrist",
     "left shoulder", "left elbow", "left wrist", "right hip", "right knee", "right ankle",
     "left hip", "left knee", "left ankle", "right eye", "left eye", "right ear", "left ear"],
    [(0, 1), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9),
     (11, 5), (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15)],
    center=1,
    origin=(8, 11),
    parts={"head": [0, 14, 15, 16, 17], "hand": [4, 7], "arm": [2, 3, 5, 6], "hip": [1, 8, 11],
           "leg": [9, 12], "foot": [10, 13]},
    description="OpenPose COCO-18 (Kinetics-skeleton), 18 joints",
)

MEDIAPIPE33 = _make(
    "mediapipe33",
    ["nose", "left eye inner", "left eye", "left eye outer", "right eye inner", "right eye",
     "right eye outer", "left ear", "right ear", "mouth left", "mouth right",
     "left shoulder", "right shoulder", "left elbow", "right elbow", "left wrist", "right wrist",
     "left pinky", "right pinky", "left index", "right index", "left thumb", "right thumb",
     "left hip", "right hip", "left knee", "right knee", "left ankle", "right ankle",
     "left heel", "right heel", "left foot index", "right foot index"],
    [(1, 0), (2, 1), (3, 2), (7, 3), (4, 0), (5, 4), (6, 5), (8, 6), (9, 0), (10, 0),
     (11, 0), (12, 0), (13, 11), (15, 13), (17, 15), (19, 15), (21, 15),
     (14, 12), (16, 14), (18, 16), (20, 16), (22, 16),
     (23, 11), (25, 23), (27, 25), (29, 27), (31, 27),
     (24, 12), (26, 24), (28, 26), (30, 28), (32, 28)],
    center=0,
    origin=(23, 24),
    parts={"head": list(range(0, 11)), "hand": [15, 16, 17, 18, 19, 20, 21, 22], "arm": [11, 12, 13, 14],
           "hip": [23, 24], "leg": [25, 26], "foot": [27, 28, 29, 30, 31, 32]},
    description="MediaPipe Pose (BlazePose), 33 landmarks",
)

# UTD-MHAD (Kinect v1, 20 joints) in the dataset's own order (Skeleton_joint_order.txt): head
# first, then down the trunk; the same 20 joints as ``kinect20`` in another order (1-based ids).
UTD20 = _make(
    "utd20",
    ["head", "shoulder center", "spine", "hip center",
     "left shoulder", "left elbow", "left wrist", "left hand",
     "right shoulder", "right elbow", "right wrist", "right hand",
     "left hip", "left knee", "left ankle", "left foot",
     "right hip", "right knee", "right ankle", "right foot"],
    [(1, 2), (2, 3), (4, 3), (5, 2), (6, 5), (7, 6), (8, 7), (9, 2), (10, 9), (11, 10),
     (12, 11), (13, 4), (14, 13), (15, 14), (16, 15), (17, 4), (18, 17), (19, 18), (20, 19)],
    center=3,
    parts={"head": [1, 2], "hand": [7, 8, 11, 12], "arm": [5, 6, 9, 10], "hip": [3, 4],
           "leg": [13, 14, 17, 18], "foot": [15, 16, 19, 20]},
    description="UTD-MHAD, Kinect v1, 20 joints in the dataset's own order (head first)",
    three_d=True,
    one_based=True,
)

# Penn Action, 13 joints annotated by hand in 2D image pixels (x, y, visibility); a tree rooted at
# the head: shoulders hang from the head, hips from the shoulders (there is no neck or spine).
PENN13 = _make(
    "penn13",
    ["head", "left shoulder", "right shoulder", "left elbow", "right elbow", "left wrist",
     "right wrist", "left hip", "right hip", "left knee", "right knee", "left ankle", "right ankle"],
    [(1, 0), (2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (7, 1), (8, 2), (9, 7), (10, 8),
     (11, 9), (12, 10)],
    center=0,
    origin=(7, 8),
    parts={"head": [0], "hand": [5, 6], "arm": [1, 2, 3, 4], "hip": [7, 8], "leg": [9, 10],
           "foot": [11, 12]},
    description="Penn Action, 13 joints, 2D image pixels with visibility",
)

# OpenPose BODY_25 (the default OpenPose model): COCO-18 plus a mid hip and three points per foot.
# The tree is rooted at the neck like OPENPOSE18; the hips hang from the mid hip, the toes and the
# heel from the ankle (OpenPose draws small toe -> big toe; here both toes hang from the ankle).
OPENPOSE25 = _make(
    "openpose25",
    ["nose", "neck", "right shoulder", "right elbow", "right wrist",
     "left shoulder", "left elbow", "left wrist", "mid hip", "right hip", "right knee", "right ankle",
     "left hip", "left knee", "left ankle", "right eye", "left eye", "right ear", "left ear",
     "left big toe", "left small toe", "left heel", "right big toe", "right small toe", "right heel"],
    [(0, 1), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 1), (9, 8), (10, 9), (11, 10),
     (12, 8), (13, 12), (14, 13), (15, 0), (16, 0), (17, 15), (18, 16),
     (19, 14), (20, 14), (21, 14), (22, 11), (23, 11), (24, 11)],
    center=1,
    origin=(8,),
    parts={"head": [0, 15, 16, 17, 18], "hand": [4, 7], "arm": [2, 3, 5, 6], "hip": [1, 8, 9, 12],
           "leg": [10, 13], "foot": [11, 14, 19, 20, 21, 22, 23, 24]},
    description="OpenPose BODY_25, 25 joints (2D)",
)

# The joint space every layout maps into (llmskel.data.joint_space): the 25 NTU-25 joints, bones and
# parts, centred on the hip midpoint (every layout has both hips; NTU's spine mid is absent in 2D).
OMNI25 = _make(
    "omni25",
    NTU25.joints,
    [(c + 1, p + 1) for c, p in NTU25.bones],
    center=2,
    parts={k: [v + 1 for v in vs] for k, vs in NTU25.parts.items()},
    origin=(13, 17),
    description="the joint space of multi-layout models: NTU-25 joints, absent ones masked (llmskel.data.joint_space)",
    three_d=True,
    one_based=True,
)
# fmt: on

LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (NTU25, KINECT20, COCO17, OPENPOSE18, OPENPOSE25, MEDIAPIPE33, UTD20, PENN13, OMNI25)
}
ALIASES = {
    "ntu": "ntu25",
    "ntu-25": "ntu25",
    "nturgbd": "ntu25",
    "kinect_v2": "ntu25",
    "kinect": "kinect20",
    "kinect-v1": "kinect20",
    "kinect_v1": "kinect20",
    "nw-ucla": "kinect20",
    "ucla": "kinect20",
    "utkinect": "kinect20",
    "coco": "coco17",
    "coco-17": "coco17",
    "openpose": "openpose18",
    "openpose-18": "openpose18",
    "kinetics": "openpose18",
    "mediapipe": "mediapipe33",
    "blazepose": "mediapipe33",
    "utd-mhad": "utd20",
    "utdmhad": "utd20",
    "penn": "penn13",
    "penn-action": "penn13",
    "body25": "openpose25",
    "body_25": "openpose25",
    "openpose-25": "openpose25",
    "joint-space": "omni25",
    "joint_space": "omni25",
}


def get_layout(name: str | Layout) -> Layout:
    """Look a layout up by name or alias; an unknown name lists the valid ones."""
    if isinstance(name, Layout):
        return name
    key = str(name).lower().strip()
    key = ALIASES.get(key, key)
    if key not in LAYOUTS:
        raise KeyError(f"unknown skeleton layout {name!r}; valid layouts: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[key]


# --------------------------------------------------------------------------------------------
# Conversion between layouts: target joint = sum_i w_i * source joint i.


def _mid(*idx: int) -> dict[int, float]:
    return {i: 1.0 / len(idx) for i in idx}


def _ntu_to(target: str) -> list[dict[int, float]]:
    n = {name: i for i, name in enumerate(NTU25.joints)}
    head, neck = n["head"], n["neck"]
    ls, rs = n["left shoulder"], n["right shoulder"]
    # face points from head, neck and the shoulder axis (NTU has no face joints)
    nose = {head: 1.35, neck: -0.35}

    def face(side: float, up: float, out: float) -> dict[int, float]:
        w = {head: 1.0 + up, neck: -up}
        w[ls] = w.get(ls, 0.0) + side * out
        w[rs] = w.get(rs, 0.0) - side * out
        return w

    if target == "kinect20":
        names = KINECT20.joints
        m = {"hip center": "spine base", "spine": "spine mid", "shoulder center": "spine shoulder"}
        return [{n[m.get(j, j)]: 1.0} for j in names]
    if target == "coco17":
        out = []
        for j in COCO17.joints:
            if j == "nose":
                out.append(nose)
            elif j in ("left eye", "right eye"):
                out.append(face(1.0 if j.startswith("left") else -1.0, 0.45, 0.12))
            elif j in ("left ear", "right ear"):
                out.append(face(1.0 if j.startswith("left") else -1.0, 0.2, 0.25))
            else:
                out.append({n[j]: 1.0})
        return out
    if target == "openpose18":
        out = []
        for j in OPENPOSE18.joints:
            if j == "nose":
                out.append(nose)
            elif j == "neck":
                out.append({n["spine shoulder"]: 1.0})
            elif j in ("left eye", "right eye"):
                out.append(face(1.0 if j.startswith("left") else -1.0, 0.45, 0.12))
            elif j in ("left ear", "right ear"):
                out.append(face(1.0 if j.startswith("left") else -1.0, 0.2, 0.25))
            else:
                out.append({n[j]: 1.0})
        return out
    if target == "mediapipe33":
        out = []
        for j in MEDIAPIPE33.joints:
            side = 1.0 if j.startswith("left") else -1.0
            if j == "nose":
                out.append(nose)
            elif "eye" in j:
                out.append(face(side, 0.45, 0.08 if "inner" in j else (0.12 if j.endswith("eye") else 0.16)))
            elif j.endswith("ear"):
                out.append(face(side, 0.2, 0.25))
            elif j.startswith("mouth"):
                s = 1.0 if j.endswith("left") else -1.0
                out.append(face(s, 0.1, 0.06))
            elif j.endswith(("pinky", "index")) and "foot" not in j:
                out.append({n[("left" if side > 0 else "right") + " hand tip"]: 1.0})
            elif j.endswith("thumb"):
                out.append({n[j]: 1.0})
            elif j.endswith("heel"):
                out.append({n[("left" if side > 0 else "right") + " ankle"]: 1.0})
            elif j.endswith("foot index"):
                out.append({n[("left" if side > 0 else "right") + " foot"]: 1.0})
            else:
                out.append({n[j]: 1.0})
        return out
    raise KeyError(target)


def _coco_to_openpose() -> list[dict[int, float]]:
    c = {name: i for i, name in enumerate(COCO17.joints)}
    out = []
    for j in OPENPOSE18.joints:
        out.append(_mid(c["left shoulder"], c["right shoulder"]) if j == "neck" else {c[j]: 1.0})
    return out


def _openpose_to_coco() -> list[dict[int, float]]:
    o = {name: i for i, name in enumerate(OPENPOSE18.joints)}
    return [{o[j]: 1.0} for j in COCO17.joints]


def _mediapipe_to_coco() -> list[dict[int, float]]:
    m = {name: i for i, name in enumerate(MEDIAPIPE33.joints)}
    return [{m[j]: 1.0} for j in COCO17.joints]


def _by_name(src: Layout, dst: Layout, rename: dict[str, str] | None = None) -> list[dict[int, float]]:
    """Rows mapping each ``dst`` joint to the ``src`` joint of the same name (after ``rename``)."""
    rename = rename or {}
    return [{src.index(rename.get(j, j)): 1.0} for j in dst.joints]


def _to_penn(src: Layout) -> list[dict[int, float]]:
    """Penn-13 from a layout with the same limb joints; the head from the layout's head point(s)."""
    rows = []
    for j in PENN13.joints:
        if j != "head":
            rows.append({src.index(j): 1.0})
        elif "head" in src.joints:
            rows.append({src.index("head"): 1.0})
        else:  # COCO-style face points: the head is their centre
            rows.append(_mid(*(src.index(n) for n in ("nose", "left ear", "right ear"))))
    return rows


_CONVERSIONS = {
    ("ntu25", "kinect20"): lambda: _ntu_to("kinect20"),
    ("ntu25", "coco17"): lambda: _ntu_to("coco17"),
    ("ntu25", "openpose18"): lambda: _ntu_to("openpose18"),
    ("ntu25", "mediapipe33"): lambda: _ntu_to("mediapipe33"),
    ("coco17", "openpose18"): _coco_to_openpose,
    ("openpose18", "coco17"): _openpose_to_coco,
    ("mediapipe33", "coco17"): _mediapipe_to_coco,
    ("mediapipe33", "openpose18"): lambda: _compose("mediapipe33", "coco17", "openpose18"),
    # UTD-MHAD holds the 20 Kinect v1 joints in another order: a permutation either way
    ("utd20", "kinect20"): lambda: _by_name(UTD20, KINECT20),
    ("kinect20", "utd20"): lambda: _by_name(KINECT20, UTD20),
    ("ntu25", "utd20"): lambda: _compose("ntu25", "kinect20", "utd20"),
    ("ntu25", "penn13"): lambda: _to_penn(NTU25),
    ("kinect20", "penn13"): lambda: _to_penn(KINECT20),
    ("utd20", "penn13"): lambda: _to_penn(UTD20),
    ("coco17", "penn13"): lambda: _to_penn(COCO17),
    ("mediapipe33", "penn13"): lambda: _compose("mediapipe33", "coco17", "penn13"),
}


def _openpose25_to(target: str) -> list[dict[int, float]]:
    """BODY_25 -> COCO-18 / COCO-17: the shared joints by name (mid hip and feet dropped)."""
    o = {name: i for i, name in enumerate(OPENPOSE25.joints)}
    return [{o[j]: 1.0} for j in get_layout(target).joints]


_CONVERSIONS.update({
    ("openpose25", "openpose18"): lambda: _openpose25_to("openpose18"),
    ("openpose25", "coco17"): lambda: _openpose25_to("coco17"),
})  # fmt: skip


def _compose(a: str, b: str, c: str) -> list[dict[int, float]]:
    m = conversion_matrix(b, c) @ conversion_matrix(a, b)
    return [{int(i): float(w) for i, w in enumerate(row) if w != 0.0} for row in m]


def conversion_matrix(src: str | Layout, dst: str | Layout) -> np.ndarray:
    """(V_dst, V_src) matrix W with ``x_dst[..., v, :] = sum_u W[v, u] * x_src[..., u, :]``."""
    s, d = get_layout(src), get_layout(dst)
    if s.name == d.name:
        return np.eye(s.num_joints, dtype=np.float32)
    key = (s.name, d.name)
    if key not in _CONVERSIONS:
        valid = sorted(f"{a}->{b}" for a, b in _CONVERSIONS)
        raise KeyError(f"no conversion from layout {s.name!r} to {d.name!r}; available: {', '.join(valid)}")
    rows = _CONVERSIONS[key]()
    w = np.zeros((d.num_joints, s.num_joints), dtype=np.float32)
    for v, row in enumerate(rows):
        for u, wt in row.items():
            w[v, u] = wt
    return w


def convert_layout(x: np.ndarray, src: str | Layout, dst: str | Layout) -> np.ndarray:
    """Convert joints of ``x`` (..., V_src, C) to layout ``dst`` (..., V_dst, C)."""
    s = get_layout(src)
    if x.shape[-2] != s.num_joints:
        raise ValueError(f"array has {x.shape[-2]} joints but layout {s.name!r} has {s.num_joints}")
    w = conversion_matrix(src, dst)
    return np.einsum("vu,...uc->...vc", w, x).astype(x.dtype, copy=False)


def can_convert(src: str | Layout, dst: str | Layout) -> bool:
    s, d = get_layout(src), get_layout(dst)
    return s.name == d.name or (s.name, d.name) in _CONVERSIONS


def part_pool_matrix(layout: str, terms: Sequence[Sequence[str]], hint: str = ""):
    """(len(terms), V) float32 tensor of mean-pooling weights over a layout's joints: row i averages
    the joints of term i's parts (a term is a tuple of part names, ``("hand", "arm")``; ``("global",)``
    is every joint). A term with no joints in the layout is a ``ConfigError`` (``hint`` is appended)."""
    import torch

    from ..errors import ConfigError

    lay = get_layout(layout)
    v = lay.num_joints
    pool = torch.zeros(len(terms), v)
    for i, term in enumerate(terms):
        if tuple(term) == (GLOBAL_TERM,):
            pool[i] = 1.0 / v
            continue
        joints = sorted({j for p in term for j in lay.parts.get(p, ())})
        if not joints:
            raise ConfigError(f"layout {lay.name!r} has no joints for term {'+'.join(term)!r}{hint}")
        pool[i, joints] = 1.0 / len(joints)
    return pool
