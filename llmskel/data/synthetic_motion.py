"""Body model and motion programs behind the synthetic action set (:mod:`llmskel.data.synthetic`).

**Body model.** The NTU-25 joint tree (``llmskel.data.layouts.NTU25``) with rest offsets in metres
for a 1.75 m person, in a *body frame*: ``x`` to the person's left, ``y`` up, ``z`` forward.
Forward kinematics is bone-based: each bone ``parent -> child`` has a local rotation ``L`` (built
from the joint angles below) relative to its parent bone, ``G_child = G_parent @ L`` and
``p_child = p_parent + G_child @ offset``. The root (spine base) carries the yaw of the whole body.
At the shoulder the upper arm first rotates about its own axis (twist), then moves out in the
frontal plane (abduction), then forward (flexion): an arm raised forward to 165 degrees with 20
degrees of abduction stays 20 degrees out to the side overhead. The hip composes the same way.

**Degrees of freedom** (:data:`DOFS`): trunk flexion / side bend / twist (split over the two spine
bones), neck flexion / yaw, per side shoulder flexion / abduction / internal rotation, elbow and
wrist flexion, hip flexion / abduction, knee and ankle flexion (degrees), plus root yaw (degrees),
sideways and forward root translation and an airborne lift (metres).

**Motion program.** An action maps DOF names to sums of primitives evaluated on the normalised
time ``u`` in [0, 1] of the action's active part: :class:`Ramp` (change and hold), :class:`Bump`
(go, hold, come back) and :class:`Osc` (repeated movement, optionally half-wave). The same
structure drives the generator and the text descriptions, so the text says what the program moves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# ----------------------------------------------------------------------------------------------
# primitives


def _smooth(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


@dataclass(frozen=True)
class Ramp:
    """Change by ``to`` between ``t0`` and ``t1`` and stay there."""

    to: float
    t0: float = 0.1
    t1: float = 0.9

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return self.to * _smooth((u - self.t0) / max(self.t1 - self.t0, 1e-6))


@dataclass(frozen=True)
class Bump:
    """Go to ``peak``, hold for the fraction ``hold`` of the window ``[t0, t1]``, come back."""

    peak: float
    t0: float = 0.05
    t1: float = 0.95
    hold: float = 0.5

    def __call__(self, u: np.ndarray) -> np.ndarray:
        r = max((self.t1 - self.t0) * (1.0 - self.hold) / 2.0, 1e-6)
        return self.peak * (_smooth((u - self.t0) / r) - _smooth((u - self.t1 + r) / r))


@dataclass(frozen=True)
class Osc:
    """``amp * sin(2 pi cycles s + phase)`` over the window (``s`` its local time), faded in and
    out; ``half`` keeps the positive half-waves only (steps, hops)."""

    amp: float
    cycles: float
    t0: float = 0.1
    t1: float = 0.9
    phase: float = 0.0
    half: bool = False

    def __call__(self, u: np.ndarray) -> np.ndarray:
        span = max(self.t1 - self.t0, 1e-6)
        s = (u - self.t0) / span
        w = np.sin(2.0 * np.pi * self.cycles * s + self.phase)
        if self.half:
            w = np.maximum(w, 0.0)
        fade = min(0.5 / max(self.cycles, 1e-6), 0.5) * 0.5
        env = _smooth(s / fade) - _smooth((s - 1.0 + fade) / fade)
        return self.amp * w * env


Primitive = Ramp | Bump | Osc


# ----------------------------------------------------------------------------------------------
# degrees of freedom


@dataclass(frozen=True)
class Dof:
    """One degree of freedom, its body part and the words used to describe its movement."""

    part: str
    subject: str  # "the right elbow"; for paired DOFs the plural is `plural`
    pos: str  # moving towards positive values, from neutral
    neg: str  # moving towards negative values, from neutral
    back: str  # returning to neutral
    osc: str  # repeated movement
    unit: str = "deg"
    plural: str = ""


def _side(side: str, part: str, subject: str, plural: str, pos, neg, back, osc) -> Dof:
    return Dof(part, f"the {side} {subject}", pos, neg, back, osc, plural=f"both {plural}")


def _make_dofs() -> dict[str, Dof]:
    # fmt: off
    d = {
        "root_yaw": Dof("hip", "the whole body", "turns to the left", "turns to the right",
                        "turns back to the front", "turns from side to side"),
        "root_x": Dof("hip", "the body", "moves sideways to the left", "moves sideways to the right",
                      "moves back to where it started", "sways from side to side", unit="m"),
        "root_z": Dof("hip", "the body", "moves forward", "moves backward", "moves back to where it started",
                      "rocks forward and back", unit="m"),
        "lift": Dof("hip", "the body", "rises off the ground", "sinks", "lands again",
                    "bounces up and down", unit="m"),
        "trunk_flex": Dof("hip", "the trunk", "bends forward", "leans back", "straightens up",
                          "rocks forward and back"),
        "trunk_bend": Dof("hip", "the trunk", "leans to the right", "leans to the left", "straightens up",
                          "sways from side to side"),
        "trunk_twist": Dof("hip", "the upper body", "twists to the left", "twists to the right",
                           "turns back to the front", "twists from side to side"),
        "neck_flex": Dof("head", "the head", "tilts down", "tilts back", "comes back up", "nods up and down"),
        "neck_yaw": Dof("head", "the head", "turns to the left", "turns to the right",
                        "turns back to the front", "turns left and right"),
    }
    for side in ("left", "right"):
        k = side[0]
        d.update({
            f"{k}_sh_flex": _side(side, "arm", "arm", "arms", "raises forward", "swings backward",
                                  "lowers", "swings forward and back"),
            f"{k}_sh_abd": _side(side, "arm", "arm", "arms", "lifts out to the side",
                                 "moves across the body", "comes back to the side", "moves in and out"),
            f"{k}_sh_twist": _side(side, "arm", "upper arm", "upper arms", "rotates inward",
                                   "rotates outward", "rotates back", "rotates in and out"),
            f"{k}_elbow": _side(side, "arm", "elbow", "elbows", "bends", "overextends", "straightens",
                                "bends and straightens"),
            f"{k}_wrist": _side(side, "hand", "wrist", "wrists", "flexes", "bends back", "relaxes",
                                "flicks back and forth"),
            f"{k}_hip_flex": _side(side, "leg", "thigh", "thighs", "lifts forward", "swings backward",
                                   "lowers", "lifts and lowers"),
            f"{k}_hip_abd": _side(side, "leg", "leg", "legs", "moves out to the side", "crosses inward",
                                  "comes back under the body", "moves out and in"),
            f"{k}_knee": _side(side, "leg", "knee", "knees", "bends", "overextends", "straightens",
                               "bends and straightens"),
            f"{k}_ankle": _side(side, "foot", "ankle", "ankles", "pulls the toes up",
                                "rises onto the toes", "flattens the foot",
                                "flexes up and down"),
        })
    # fmt: on
    return d


DOFS: dict[str, Dof] = _make_dofs()

# joint angles of the relaxed standing pose (added to every program)
REST_ANGLES: dict[str, float] = {"l_sh_abd": 8.0, "r_sh_abd": 8.0, "l_elbow": 12.0, "r_elbow": 12.0}

_MIRROR_SIGN = {"root_yaw", "root_x", "trunk_bend", "trunk_twist", "neck_yaw"}


# ----------------------------------------------------------------------------------------------
# actions


@dataclass(frozen=True)
class Action:
    """A motion program: DOF -> primitives, plus how the feet touch the ground.

    ``stance``: legs whose ankles stay planted (``both``, ``left``, ``right`` or ``none``); the
    root is shifted so that those ankles do not slide. ``reverse``: the program is played
    backwards (``stand up`` is ``sit down`` reversed). ``aliases``: other names of the action.
    """

    name: str
    program: dict[str, tuple[Primitive, ...]]
    stance: str = "both"
    reverse: bool = False
    aliases: tuple[str, ...] = ()

    def dof_curve(self, dof: str, u: np.ndarray) -> np.ndarray:
        uu = 1.0 - u if self.reverse else u
        out = np.zeros_like(uu, dtype=np.float64)
        for prim in self.program.get(dof, ()):
            out = out + prim(uu)
        return out


def _both(name: str, *prims: Primitive) -> dict[str, tuple[Primitive, ...]]:
    return {f"l_{name}": prims, f"r_{name}": prims}


def _mirror_program(program: dict[str, tuple[Primitive, ...]]) -> dict[str, tuple[Primitive, ...]]:
    out = {}
    for dof, prims in program.items():
        new = {"l_": "r_", "r_": "l_"}.get(dof[:2], dof[:2]) + dof[2:] if dof[:2] in ("l_", "r_") else dof
        if dof in _MIRROR_SIGN:
            prims = tuple(
                replace(p, to=-p.to)
                if isinstance(p, Ramp)
                else replace(p, peak=-p.peak)
                if isinstance(p, Bump)
                else replace(p, amp=-p.amp)
                for p in prims
            )
        out[new] = prims
    return out


def _catalogue() -> list[Action]:
    wave_right = {
        "r_sh_abd": (Bump(95, 0.0, 1.0, 0.6),),
        "r_sh_twist": (Bump(-85, 0.0, 1.0, 0.6),),
        "r_sh_flex": (Bump(15, 0.0, 1.0, 0.6),),
        "r_elbow": (Bump(70, 0.0, 1.0, 0.6), Osc(30, 4, 0.22, 0.78)),
    }
    sit = {
        **_both("hip_flex", Ramp(90, 0.15, 0.8)),
        **_both("knee", Ramp(90, 0.15, 0.8)),
        "trunk_flex": (Bump(35, 0.15, 0.8, 0.0), Ramp(8, 0.15, 0.8)),
        **_both("sh_flex", Bump(25, 0.15, 0.8, 0.0)),
    }
    # fmt: off
    return [
        Action("wave right hand", wave_right, aliases=("waving the right hand", "greet with the right hand")),
        Action("wave left hand", _mirror_program(wave_right),
               aliases=("waving the left hand", "greet with the left hand")),
        Action("clap", {
            **_both("sh_flex", Bump(55, 0.0, 1.0, 0.65)),
            **_both("sh_twist", Bump(45, 0.0, 1.0, 0.65)),
            **_both("elbow", Bump(60, 0.0, 1.0, 0.65)),
            **_both("sh_abd", Bump(-8, 0.0, 1.0, 0.65), Osc(12, 5, 0.2, 0.8)),
        }, aliases=("clapping", "clap hands", "applaud")),
        Action("jump", {
            **_both("knee", Bump(70, 0.1, 0.42, 0.2), Bump(45, 0.62, 0.88, 0.1)),
            **_both("hip_flex", Bump(60, 0.1, 0.42, 0.2), Bump(35, 0.62, 0.88, 0.1)),
            **_both("ankle", Bump(20, 0.1, 0.42, 0.2)),
            "trunk_flex": (Bump(25, 0.1, 0.42, 0.2), Bump(15, 0.62, 0.88, 0.1)),
            "lift": (Bump(0.28, 0.4, 0.64, 0.0),),
            **_both("sh_flex", Bump(-35, 0.1, 0.4, 0.2), Bump(110, 0.38, 0.66, 0.1)),
        }, aliases=("jump up", "jumping", "leap up")),
        Action("squat", {
            **_both("hip_flex", Bump(100, 0.1, 0.9, 0.35)),
            **_both("knee", Bump(115, 0.1, 0.9, 0.35)),
            **_both("ankle", Bump(30, 0.1, 0.9, 0.35)),
            "trunk_flex": (Bump(25, 0.1, 0.9, 0.35),),
            **_both("sh_flex", Bump(80, 0.1, 0.9, 0.35)),
        }, aliases=("squat down", "deep knee bend", "crouch and rise")),
        Action("kick", {
            "r_hip_flex": (Bump(75, 0.3, 0.7, 0.1),),
            "r_knee": (Bump(70, 0.15, 0.45, 0.2), Bump(40, 0.6, 0.82, 0.1)),
            "l_knee": (Bump(12, 0.2, 0.8, 0.5),),
            **_both("sh_abd", Bump(20, 0.15, 0.85, 0.5)),
            "trunk_flex": (Bump(-15, 0.25, 0.75, 0.3),),
        }, stance="left", aliases=("kick something", "front kick with the right leg", "kicking")),
        Action("punch", {
            **_both("sh_flex", Bump(35, 0.0, 1.0, 0.8)),
            **_both("elbow", Bump(115, 0.0, 1.0, 0.8)),
            "r_sh_flex": (Bump(35, 0.0, 1.0, 0.8), Bump(50, 0.35, 0.65, 0.15)),
            "r_elbow": (Bump(115, 0.0, 1.0, 0.8), Bump(-110, 0.35, 0.65, 0.15)),
            "trunk_twist": (Bump(15, 0.35, 0.65, 0.15),),
        }, aliases=("punching", "throw a punch", "strike with the right fist")),
        Action("sit down", sit, aliases=("sitting down", "take a seat")),
        Action("stand up", sit, reverse=True, aliases=("standing up", "get up from a chair", "rise")),
        Action("bow", {
            "trunk_flex": (Bump(55, 0.1, 0.9, 0.3),),
            "neck_flex": (Bump(15, 0.1, 0.9, 0.3),),
            **_both("sh_flex", Bump(45, 0.1, 0.9, 0.3)),
        }, aliases=("bowing", "take a bow", "bend forward to greet")),
        Action("raise both arms", {
            **_both("sh_flex", Bump(165, 0.1, 0.9, 0.4)),
            **_both("sh_abd", Bump(20, 0.1, 0.9, 0.4)),
        }, aliases=("raising both hands", "hands up", "lift both arms overhead")),
        Action("march in place", {
            "l_hip_flex": (Osc(55, 3, half=True),), "r_hip_flex": (Osc(55, 3, phase=np.pi, half=True),),
            "l_knee": (Osc(75, 3, half=True),), "r_knee": (Osc(75, 3, phase=np.pi, half=True),),
            "l_sh_flex": (Osc(25, 3, phase=np.pi),), "r_sh_flex": (Osc(25, 3),),
        }, stance="none", aliases=("marching on the spot", "step in place", "march")),
        Action("turn around", {
            "root_yaw": (Ramp(180, 0.1, 0.9),),
            "l_hip_flex": (Osc(30, 3, half=True),), "r_hip_flex": (Osc(30, 3, phase=np.pi, half=True),),
            "l_knee": (Osc(50, 3, half=True),), "r_knee": (Osc(50, 3, phase=np.pi, half=True),),
        }, stance="none", aliases=("turning around", "turn to face the other way", "spin around")),
        Action("point", {
            "r_sh_flex": (Bump(90, 0.15, 0.85, 0.6),),
            "r_sh_abd": (Bump(15, 0.15, 0.85, 0.6),),
            "r_elbow": (Bump(-10, 0.15, 0.85, 0.6),),
            "r_wrist": (Bump(-10, 0.15, 0.85, 0.6),),
        }, aliases=("pointing to something", "point forward with the right hand", "point at")),
        Action("throw", {
            "r_sh_abd": (Bump(90, 0.05, 0.6, 0.3),),
            "r_sh_twist": (Bump(-90, 0.05, 0.6, 0.3),),
            "r_elbow": (Bump(90, 0.05, 0.62, 0.3),),
            "r_sh_flex": (Bump(100, 0.5, 0.85, 0.1),),
            "r_wrist": (Bump(30, 0.55, 0.75, 0.0),),
            "trunk_twist": (Bump(-20, 0.05, 0.5, 0.2), Bump(25, 0.5, 0.85, 0.1)),
            "l_sh_flex": (Bump(60, 0.15, 0.65, 0.3),),
        }, aliases=("throwing", "throw a ball overhand", "toss something")),
        Action("nod head", {
            "neck_flex": (Bump(8, 0.1, 0.9, 0.8), Osc(25, 3, 0.15, 0.85)),
        }, aliases=("nodding", "nod yes", "nod the head")),
        Action("shake head", {
            "neck_yaw": (Osc(45, 3, 0.15, 0.85),),
        }, aliases=("shaking the head", "shake head no", "head shake")),
        Action("reach up", {
            "r_sh_flex": (Bump(170, 0.15, 0.85, 0.45),),
            "r_elbow": (Bump(-10, 0.15, 0.85, 0.45),),
            **_both("ankle", Bump(-25, 0.2, 0.8, 0.4)),
            "trunk_bend": (Bump(-12, 0.15, 0.85, 0.45),),
        }, aliases=("reaching up with the right hand", "reach for a high shelf", "stretch one arm up")),
        Action("drink water", {
            "r_sh_flex": (Bump(45, 0.1, 0.9, 0.45),),
            "r_elbow": (Bump(120, 0.1, 0.9, 0.45),),
            "r_sh_twist": (Bump(35, 0.1, 0.9, 0.45),),
            "r_sh_abd": (Bump(-10, 0.1, 0.9, 0.45),),
            "neck_flex": (Bump(-20, 0.3, 0.7, 0.3),),
        }, aliases=("drinking", "bring a cup to the mouth", "hand to mouth")),
        Action("cross arms", {
            **_both("sh_flex", Bump(25, 0.1, 0.9, 0.6)),
            **_both("sh_abd", Bump(-15, 0.1, 0.9, 0.6)),
            **_both("sh_twist", Bump(70, 0.1, 0.9, 0.6)),
            **_both("elbow", Bump(80, 0.1, 0.9, 0.6)),
        }, aliases=("crossing the arms", "fold arms across the chest", "arms crossed")),
        Action("side step", {
            "root_x": (Ramp(0.35, 0.1, 0.45), Ramp(-0.35, 0.55, 0.9)),
            "l_hip_abd": (Bump(22, 0.1, 0.3, 0.0), Bump(22, 0.72, 0.92, 0.0)),
            "r_hip_abd": (Bump(22, 0.28, 0.48, 0.0), Bump(22, 0.53, 0.73, 0.0)),
            **_both("knee", Osc(15, 4, 0.1, 0.92, half=True)),
        }, stance="none", aliases=("step sideways", "sidestep to the left and back", "shuffle sideways")),
        Action("stretch arms out", {
            **_both("sh_abd", Bump(82, 0.1, 0.9, 0.5)),
            **_both("elbow", Bump(-10, 0.1, 0.9, 0.5)),
        }, aliases=("arms out to the sides", "spread the arms", "T-pose")),
        Action("hop on one leg", {
            "r_knee": (Bump(80, 0.0, 1.0, 0.8),),
            "r_hip_flex": (Bump(20, 0.0, 1.0, 0.8),),
            "lift": (Osc(0.1, 4, 0.15, 0.85, half=True),),
            "l_knee": (Osc(25, 4, 0.15, 0.85, phase=np.pi, half=True),),
            **_both("sh_abd", Bump(25, 0.0, 1.0, 0.8)),
        }, stance="left", aliases=("hopping on the left foot", "one-legged hop", "hop")),
        Action("touch head", {
            "r_sh_abd": (Bump(110, 0.1, 0.9, 0.5),),
            "r_sh_flex": (Bump(40, 0.1, 0.9, 0.5),),
            "r_elbow": (Bump(120, 0.1, 0.9, 0.5), Osc(8, 3, 0.3, 0.7)),
            "r_sh_twist": (Bump(-30, 0.1, 0.9, 0.5),),
        }, aliases=("touching the head", "put a hand on the head", "scratch the head")),
    ]
    # fmt: on


ACTIONS: dict[str, Action] = {a.name: a for a in _catalogue()}


# ----------------------------------------------------------------------------------------------
# body model and forward kinematics (NTU-25 joint indices)

# joint: (parent, rest offset in metres for a 1.75 m person, segment group for limb-length variation)
# fmt: off
_BODY: dict[int, tuple[int, tuple[float, float, float], str]] = {
    1: (0, (0.0, 0.25, -0.02), "torso"), 20: (1, (0.0, 0.22, 0.0), "torso"),
    2: (20, (0.0, 0.07, 0.01), "head"), 3: (2, (0.0, 0.12, 0.04), "head"),
    4: (20, (0.17, -0.03, -0.01), "shoulders"), 8: (20, (-0.17, -0.03, -0.01), "shoulders"),
    5: (4, (0.0, -0.28, 0.0), "upper_arm"), 9: (8, (0.0, -0.28, 0.0), "upper_arm"),
    6: (5, (0.0, -0.25, 0.0), "forearm"), 10: (9, (0.0, -0.25, 0.0), "forearm"),
    7: (6, (0.0, -0.07, 0.0), "hand"), 11: (10, (0.0, -0.07, 0.0), "hand"),
    21: (7, (0.0, -0.07, 0.01), "hand"), 23: (11, (0.0, -0.07, 0.01), "hand"),
    22: (7, (-0.02, -0.03, 0.04), "hand"), 24: (11, (0.02, -0.03, 0.04), "hand"),
    12: (0, (0.09, -0.05, 0.0), "hips"), 16: (0, (-0.09, -0.05, 0.0), "hips"),
    13: (12, (0.0, -0.42, 0.0), "thigh"), 17: (16, (0.0, -0.42, 0.0), "thigh"),
    14: (13, (0.0, -0.40, 0.0), "shank"), 18: (17, (0.0, -0.40, 0.0), "shank"),
    15: (14, (0.0, -0.06, 0.11), "foot"), 19: (18, (0.0, -0.06, 0.11), "foot"),
}
# parents before children
FK_ORDER: tuple[int, ...] = (1, 20, 2, 3, 4, 5, 6, 7, 21, 22, 8, 9, 10, 11, 23, 24, 12, 13, 14, 15, 16, 17, 18, 19)
# fmt: on
SEGMENTS: tuple[str, ...] = tuple(sorted({g for _, _, g in _BODY.values()}))
NUM_JOINTS = 25
ANKLE_HEIGHT = 0.07  # ankle joint above the sole, metres (1.75 m person)
FEET, ANKLES = (15, 19), (14, 18)


def rest_offsets(height: float = 1.75, segment_scale: dict[str, float] | None = None) -> np.ndarray:
    """(25, 3) rest offsets of each joint from its parent (root row zero), scaled to ``height``."""
    off = np.zeros((NUM_JOINTS, 3))
    for j, (_, o, group) in _BODY.items():
        off[j] = np.asarray(o) * (height / 1.75) * (segment_scale or {}).get(group, 1.0)
    return off


def axis_rotation(axis: int, deg: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about axis 0 (x), 1 (y) or 2 (z) by ``deg`` degrees."""
    a = np.deg2rad(np.asarray(deg, np.float64))
    c, s = np.cos(a), np.sin(a)
    r = np.zeros((*a.shape, 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


def _local_rotations(ang: dict[str, np.ndarray], t: int) -> dict[int, np.ndarray]:
    """Local rotation (T, 3, 3) of the bone ending at each joint that has one."""

    def get(name: str) -> np.ndarray:
        return ang.get(name, np.zeros(t))

    rot = axis_rotation  # rot(axis, degrees): 0 = x (left), 1 = y (up), 2 = z (forward)

    trunk = rot(2, get("trunk_bend") / 2) @ rot(0, get("trunk_flex") / 2) @ rot(1, get("trunk_twist") / 2)
    out = {1: trunk, 20: trunk}
    out[2] = rot(0, get("neck_flex") * 0.4) @ rot(1, get("neck_yaw") * 0.5)
    out[3] = rot(0, get("neck_flex") * 0.6) @ rot(1, get("neck_yaw") * 0.5)
    for k, s, (elbow, wrist, hand, knee, ankle, foot) in (
        ("l", 1.0, (5, 6, 7, 13, 14, 15)),
        ("r", -1.0, (9, 10, 11, 17, 18, 19)),
    ):
        out[elbow] = (
            rot(0, -get(f"{k}_sh_flex")) @ rot(2, s * get(f"{k}_sh_abd")) @ rot(1, -s * get(f"{k}_sh_twist"))
        )
        out[wrist] = rot(0, -get(f"{k}_elbow"))
        out[hand] = rot(0, -get(f"{k}_wrist"))
        out[knee] = rot(0, -get(f"{k}_hip_flex")) @ rot(2, s * get(f"{k}_hip_abd"))
        out[ankle] = rot(0, get(f"{k}_knee"))
        out[foot] = rot(0, -get(f"{k}_ankle"))
    return out


def forward_kinematics(ang: dict[str, np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """Joint positions (T, 25, 3) in the body frame with the spine base at the origin.

    ``ang`` maps DOF names to (T,) degree curves (missing DOFs are zero); ``offsets`` comes from
    :func:`rest_offsets`. The root yaw is applied; root translation and ground contact are not.
    """
    t = len(next(iter(ang.values())))
    local = _local_rotations(ang, t)
    frames = {0: axis_rotation(1, ang.get("root_yaw", np.zeros(t)))}
    pos = np.zeros((t, NUM_JOINTS, 3))
    for j in FK_ORDER:
        parent = _BODY[j][0]
        g = frames[parent] @ local[j] if j in local else frames[parent]
        frames[j] = g
        pos[:, j] = pos[:, parent] + g @ offsets[j]
    return pos


def place_on_ground(
    pos: np.ndarray, ang: dict[str, np.ndarray], stance: str, height: float = 1.75
) -> np.ndarray:
    """Translate body-frame joints (T, 25, 3) so the lowest sole touches ``y = 0``, planted ankles do
    not slide, and root translation / lift are added. Returns world positions (floor frame)."""
    t = pos.shape[0]
    sole = np.minimum(pos[:, ANKLES, 1] - ANKLE_HEIGHT * height / 1.75, pos[:, FEET, 1]).min(axis=1)  # (T,)
    shift = np.zeros((t, 3))
    shift[:, 1] = -sole + ang.get("lift", np.zeros(t))
    planted = {"both": list(ANKLES), "left": [ANKLES[0]], "right": [ANKLES[1]]}.get(stance, [])
    if planted:
        drift = pos[:, planted][:, :, [0, 2]].mean(axis=1) - pos[:1, planted][:, :, [0, 2]].mean(axis=1)
        shift[:, [0, 2]] -= drift
    shift[:, 0] += ang.get("root_x", np.zeros(t))
    shift[:, 2] += ang.get("root_z", np.zeros(t))
    return pos + shift[:, None, :]
