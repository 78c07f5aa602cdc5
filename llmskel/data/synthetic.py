"""The synthetic action set: procedural skeletons of named actions (the embedded default dataset
and the test fixture).

Each action is a motion program over joint angles (:mod:`llmskel.data.synthetic_motion`) played
on a body model with forward kinematics, so the skeletons are kinematically consistent (bone
lengths do not change over time). Samples vary the way recordings do:

* **subject** (seeded by the subject id): height 1.55-1.90 m and per-segment lengths, movement
  amplitude, speed and resting posture;
* **take**: the view (``view`` 1, 2, 3: the person turned -45, 0 or +45 degrees from the camera,
  +-15 degrees), camera tilt (+-8 degrees), distance (2.6-3.4 m), height and sideways offset,
  amplitude and repetition count, timing (idle lead-in and tail, time warp), sequence length;
* **distractors and sensor**: small spontaneous movements everywhere, a spontaneous gesture
  (raising an arm a little, a glance aside, ...) in half of the samples, Gaussian joint noise
  (1 cm; more at the wrists, hands and feet), slow joint drift, a few missing (all-zero) frames.

Coordinates are metres in a Kinect-like camera space: ``y`` up, ``z`` the depth (about 3 m),
``x`` the sensor's left (a person facing the camera has the right shoulder at larger ``x``).
Skeletons are generated in the NTU-25 layout and converted when another layout is asked for.

Actions deliberately share body parts (``wave right hand``, ``point``, ``punch``, ``throw``,
``reach up`` and ``drink water`` all move the right arm; ``sit down``, ``stand up``, ``squat`` and
``bow`` the trunk and legs; ``sit down`` and ``stand up`` are the same poses in opposite order), so
that a model has to learn the movement, not a single pose.

:func:`synthetic_descriptions` writes the per-part texts (``head``, ``hand``, ``arm``, ``hip``,
``leg``, ``foot``), one sentence and synonyms of every action from its motion program, see
:mod:`llmskel.data.synthetic_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import SyntheticConfig
from .layouts import convert_layout, get_layout
from .sample import SkeletonDataset, SkeletonSample
from .synthetic_motion import (
    ACTIONS,
    REST_ANGLES,
    SEGMENTS,
    Action,
    Bump,
    Osc,
    Primitive,
    Ramp,
    axis_rotation,
    forward_kinematics,
    place_on_ground,
    rest_offsets,
)

ACTION_NAMES: list[str] = list(ACTIONS)
FPS = 30.0
VIEW_YAW = {1: -45.0, 2: 0.0, 3: 45.0}  # degrees the person is turned away from facing the camera


@dataclass(frozen=True)
class Subject:
    """Body and style of one synthetic subject."""

    height: float
    segment_scale: dict[str, float]
    amplitude: float
    speed: float
    posture: dict[str, float]  # degrees added to the resting angles


def make_subject(subject: int, seed: int = 0) -> Subject:
    """The body and style of subject ``subject`` (the same in every action and take)."""
    rng = np.random.default_rng([seed, 1, subject])
    height = float(rng.uniform(1.55, 1.90))
    scales = {g: float(s) for g, s in zip(SEGMENTS, rng.normal(1.0, 0.04, len(SEGMENTS)))}
    posture = {
        "trunk_flex": float(rng.normal(0.0, 3.0)),
        "l_sh_abd": float(rng.uniform(-4, 6)),
        "r_sh_abd": float(rng.uniform(-4, 6)),
        "l_elbow": float(rng.uniform(-6, 10)),
        "r_elbow": float(rng.uniform(-6, 10)),
        "neck_flex": float(rng.normal(0.0, 4.0)),
    }
    return Subject(height, scales, float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.8, 1.25)), posture)


def _vary(prim: Primitive, amp: float, cycles: float, phase: float, shift: float) -> Primitive:
    """A primitive with scaled amplitude, repetition count and shifted timing."""
    if isinstance(prim, Ramp):
        return replace(prim, to=prim.to * amp, t0=prim.t0 + shift, t1=prim.t1 + shift)
    if isinstance(prim, Bump):
        return replace(prim, peak=prim.peak * amp, t0=prim.t0 + shift, t1=prim.t1 + shift)
    if isinstance(prim, Osc):
        return replace(
            prim, amp=prim.amp * amp, cycles=max(1.0, prim.cycles * cycles), phase=prim.phase + phase
        )
    raise TypeError(prim)


def dof_curves(
    action: Action,
    u: np.ndarray,
    amplitude: float = 1.0,
    cycles: float = 1.0,
    phase: float = 0.0,
    shift: float = 0.0,
) -> dict[str, np.ndarray]:
    """DOF name -> (T,) curve of the (varied) program at normalised times ``u``, rest pose included."""
    uu = 1.0 - u if action.reverse else u
    out = {k: np.full(u.shape, v) for k, v in REST_ANGLES.items()}
    for dof, prims in action.program.items():
        # angles and translations scale with the subject's style; the whole-body turn does not
        a = 1.0 if dof == "root_yaw" else amplitude
        curve = sum((_vary(p, a, cycles, phase, shift)(uu) for p in prims), np.zeros(u.shape))
        out[dof] = out.get(dof, 0.0) + curve
    return out


def _idle(rng: np.random.Generator, t: int) -> dict[str, np.ndarray]:
    """Small spontaneous movements (degrees): sway, arm and head drift."""
    # fmt: off
    amps = {"trunk_flex": 1.5, "trunk_bend": 1.5, "trunk_twist": 2.0, "neck_flex": 3.0, "neck_yaw": 4.0,
            "l_sh_flex": 4.0, "r_sh_flex": 4.0, "l_sh_abd": 2.5, "r_sh_abd": 2.5, "l_elbow": 5.0,
            "r_elbow": 5.0, "l_wrist": 6.0, "r_wrist": 6.0, "l_knee": 2.0, "r_knee": 2.0}
    # fmt: on
    names = list(amps)
    a = np.array([amps[n] for n in names])[:, None]  # (D, 1)
    freq = rng.uniform(0.1, 0.7, (len(names), 2))  # Hz
    ph = rng.uniform(0, 2 * np.pi, (len(names), 2))
    tau = np.arange(t) / FPS
    waves = np.sin(2 * np.pi * freq[..., None] * tau + ph[..., None]).sum(axis=1) / np.sqrt(2)  # (D, T)
    sig = a * rng.uniform(0.5, 1.5, (len(names), 1)) * waves
    return dict(zip(names, sig))


# spontaneous gestures unrelated to the action: (DOF, smallest, largest excursion in degrees)
_FIDGETS = (
    ("l_sh_flex", 20, 45), ("r_sh_flex", 20, 45), ("l_sh_abd", 15, 35), ("r_sh_abd", 15, 35),
    ("l_elbow", 30, 70), ("r_elbow", 30, 70), ("trunk_flex", 8, 15), ("neck_yaw", -25, 25),
    ("l_knee", 10, 20), ("r_knee", 10, 20),
)  # fmt: skip


def _fidget(rng: np.random.Generator, u: np.ndarray) -> dict[str, np.ndarray]:
    """With probability 1/2, one spontaneous gesture (a bump on a random DOF at a random time)."""
    if rng.random() >= 0.5:
        return {}
    dof, lo, hi = _FIDGETS[int(rng.integers(len(_FIDGETS)))]
    t0 = float(rng.uniform(0.0, 0.7))
    return {dof: Bump(float(rng.uniform(lo, hi)), t0, t0 + float(rng.uniform(0.2, 0.3)), 0.3)(u)}


def _timeline(rng: np.random.Generator, t: int) -> np.ndarray:
    """(T,) normalised action time: idle lead-in and tail, then a gentle time warp."""
    lead, tail = rng.uniform(0.0, 0.12, 2)
    u = np.clip((np.arange(t) / max(t - 1, 1) - lead) / (1.0 - lead - tail), 0.0, 1.0)
    return u ** rng.uniform(0.85, 1.18)


def _camera(rng: np.random.Generator, view: int) -> tuple[np.ndarray, np.ndarray, float]:
    """World (floor frame, person facing +z) -> camera rotation (3, 3), translation (3,), yaw."""
    yaw = VIEW_YAW[view] + float(rng.uniform(-15, 15))
    face_camera = np.diag([-1.0, 1.0, -1.0])  # body forward (+z) towards the sensor (-z)
    tilt = axis_rotation(0, np.array(rng.uniform(-8, 8)))
    rot = tilt @ face_camera @ axis_rotation(1, np.array(yaw))
    trans = tilt @ np.array([rng.uniform(-0.35, 0.35), -rng.uniform(0.8, 1.1), rng.uniform(2.6, 3.4)])
    return rot, trans, yaw


def _sensor(rng: np.random.Generator, pos: np.ndarray) -> np.ndarray:
    """Joint noise (larger at hands, hand tips and feet) and slow per-joint drift."""
    t, v, _ = pos.shape
    sigma = np.full(v, 0.01)
    sigma[[7, 11, 15, 19, 6, 10]] = 0.018
    sigma[21:] = 0.025
    noise = rng.standard_normal(pos.shape) * sigma[None, :, None]
    freq = rng.uniform(0.2, 1.0, (v, 3))
    ph = rng.uniform(0, 2 * np.pi, (v, 3))
    tau = np.arange(t)[:, None, None] / FPS
    drift = 0.006 * np.sin(2 * np.pi * freq * tau + ph)
    return pos + noise + drift


def _drop_frames(rng: np.random.Generator, data: np.ndarray) -> np.ndarray:
    """Zero a few frames inside (tracking loss) and sometimes pad a few empty frames at the ends."""
    t = data.shape[0]
    if rng.random() < 0.3 and t > 10:
        data[rng.choice(np.arange(2, t - 2), size=int(rng.integers(1, 4)), replace=False)] = 0.0
    if rng.random() < 0.25:
        lead, tail = rng.integers(0, 4, 2)
        pad = np.zeros((1, *data.shape[1:]), data.dtype)
        data = np.concatenate([np.repeat(pad, lead, 0), data, np.repeat(pad, tail, 0)], axis=0)
    return data


def _action(name: str) -> Action:
    if name not in ACTIONS:
        raise KeyError(f"unknown synthetic action {name!r}; valid actions: {', '.join(ACTION_NAMES)}")
    return ACTIONS[name]


def _generate(
    action: str, subject: int, take: int, seed: int, num_frames: int | None, mean_frames: int, layout: str
) -> SkeletonSample:
    act = _action(action)
    body = make_subject(subject, seed)
    rng = np.random.default_rng([seed, 2, ACTION_NAMES.index(action), subject, take])
    if num_frames is None:
        num_frames = int(round(mean_frames / body.speed * rng.uniform(0.9, 1.1)))
    t = max(int(num_frames), 8)
    u = _timeline(rng, t)
    ang = dof_curves(
        act,
        u,
        amplitude=body.amplitude * rng.uniform(0.75, 1.25),
        cycles=rng.uniform(0.8, 1.25),
        phase=rng.uniform(-0.6, 0.6),
        shift=rng.uniform(-0.04, 0.04),
    )
    for k, v in body.posture.items():
        ang[k] = ang.get(k, 0.0) + v
    for k, v in _idle(rng, t).items():
        ang[k] = ang.get(k, 0.0) + v
    for k, v in _fidget(rng, u).items():
        ang[k] = ang.get(k, 0.0) + v
    offsets = rest_offsets(body.height, body.segment_scale)
    world = place_on_ground(forward_kinematics(ang, offsets), ang, act.stance, body.height)  # (T, 25, 3)
    view = take % 3 + 1
    rot, trans, yaw = _camera(rng, view)
    cam = world @ rot.T + trans
    data = _drop_frames(rng, _sensor(rng, cam)[:, None].astype(np.float32))  # (T, 1, 25, 3)
    if get_layout(layout).name != "ntu25":
        data = convert_layout(data, "ntu25", layout)
    return SkeletonSample(
        data=np.ascontiguousarray(data, dtype=np.float32),
        layout=get_layout(layout).name,
        label=ACTION_NAMES.index(action),
        label_name=action,
        subject=int(subject),
        view=view,
        source=f"synthetic:{action}/s{subject}/t{take}",
        extra={
            "take": int(take),
            "yaw": round(float(yaw), 2),
            "spatial_dims": 3,
            "height": round(body.height, 3),
        },
    )


def generate_sample(
    action: str,
    subject: int = 1,
    take: int = 0,
    seed: int = 0,
    num_frames: int | None = None,
    layout: str = "ntu25",
) -> SkeletonSample:
    """One synthetic recording of ``action`` by ``subject`` (take ``take``), deterministic given the
    arguments. ``num_frames`` fixes the length (before a few possible empty frames at the ends);
    by default it is about 64 frames, shorter for fast subjects."""
    return _generate(action, subject, take, seed, num_frames, 64, layout)


def make_synthetic_dataset(cfg: SyntheticConfig | None = None) -> SkeletonDataset:
    """The first ``cfg.num_classes`` actions, ``cfg.samples_per_class`` samples each.

    Sample ``k`` of a class is subject ``k % num_subjects + 1``, take ``k // num_subjects`` (the
    take sets the view: 1, 2, 3, 1, ...). Deterministic given ``cfg.seed``.
    """
    cfg = cfg or SyntheticConfig()
    if not 1 <= cfg.num_classes <= len(ACTION_NAMES):
        raise ValueError(f"synthetic num_classes must be in 1..{len(ACTION_NAMES)}, got {cfg.num_classes}")
    if cfg.num_subjects < 1 or cfg.samples_per_class < 1 or cfg.num_frames < 8:
        raise ValueError("synthetic num_subjects and samples_per_class must be >= 1, num_frames >= 8")
    classes = ACTION_NAMES[: cfg.num_classes]
    samples = []
    for name in classes:
        for k in range(cfg.samples_per_class):
            subject, take = k % cfg.num_subjects + 1, k // cfg.num_subjects
            samples.append(_generate(name, subject, take, cfg.seed, None, cfg.num_frames, cfg.layout))
    return SkeletonDataset(samples, classes, get_layout(cfg.layout).name, name="synthetic")


def canonical_motion(action: str, num_frames: int = 120) -> dict[str, np.ndarray]:
    """Noise-free motion of the nominal program for a 1.75 m body, in the floor frame (x left,
    y up, z forward): ``u`` (T,), ``angles`` (DOF -> (T,)), ``joints`` (T, 25, 3). Used to describe
    actions and in tests."""
    act = _action(action)
    u = np.linspace(0.0, 1.0, num_frames)
    ang = dof_curves(act, u)
    joints = place_on_ground(forward_kinematics(ang, rest_offsets()), ang, act.stance)
    return {"u": u, "angles": ang, "joints": joints}


def synthetic_descriptions() -> dict[str, dict[str, str | list[str]]]:
    """Per action: a description per body part (``head``, ``hand``, ``arm``, ``hip``, ``leg``,
    ``foot``), ``sentence`` and ``synonyms``, all written from the motion program."""
    from .synthetic_text import describe_action

    return {name: describe_action(name) for name in ACTION_NAMES}


__all__ = [
    "ACTION_NAMES",
    "Subject",
    "canonical_motion",
    "dof_curves",
    "generate_sample",
    "make_subject",
    "make_synthetic_dataset",
    "synthetic_descriptions",
]
