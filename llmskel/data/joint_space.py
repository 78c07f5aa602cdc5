"""One joint space that every layout maps into, and random camera projections from 3D to 2D.

**The joint space** (layout ``omni25``) has the 25 joints, bones and body parts of NTU-25, with the
hip midpoint as origin. :func:`to_joint_space` maps a sample of any supported layout into it:

* a joint the layout measures under the same name lands on that joint (``left wrist`` stays
  ``left wrist``; Kinect v1's ``hip center`` / ``spine`` / ``shoulder center`` are NTU's ``spine
  base`` / ``spine mid`` / ``spine shoulder``; MediaPipe's ``left index`` is the ``left hand tip``);
* a few joints are the midpoint of two measured joints that define them anatomically, and only
  where the layout has no such joint: ``spine base`` = hip midpoint, ``spine shoulder`` = shoulder
  midpoint (OpenPose's ``neck`` is exactly that point), ``head`` = ear midpoint (COCO-17, OpenPose,
  MediaPipe). A derived joint is absent in a frame where either of its two joints is absent;
* every other joint is **masked**: zero, and marked absent. Nothing is invented: a COCO-17 sample
  has no ``spine mid``, ``neck``, ``hand``, ``foot``, hand tips or thumbs (:data:`JOINT_SPACE_TABLE`
  lists, per layout, which joints are measured, derived and masked).

**How the encoder sees the mask.** The pipeline (:class:`~llmskel.data.pipeline.SkeletonPipeline`
with ``data.joint_space``) keeps masked joints at zero through every transform and gives the model
one more channel: a 3D model reads ``(x, y, z, mask)``, a 2D model ``(x, y, score)`` where the
score is the pose estimator's confidence (Penn Action's visibility; 1 for a projected 3D joint) and
0 for a masked joint. So a zero coordinate never means "at the origin" to the model: the mask or
score channel says whether the joint exists. (Masked pooling would hide absent joints from the
pooled feature only; the channel also tells every graph layer, at no cost.)

**Coordinates.** 2D layouts are image coordinates (``y`` grows downwards); the joint space has
``y`` up, so 2D samples get ``y`` negated on the way in. The pipeline then centres every sample on
the hip midpoint of its first valid frame and, with ``data.normalize_scale``, divides by the mean
torso length (hip midpoint to shoulder centre): pixels and metres both become "torso lengths".

**2D and 3D.** A model takes 3D (``data.spatial_dims: 3``) or 2D (``2``) input, recorded in its
folder. A 3D sample given to a 2D model is projected (:func:`project_to_2d`): at training time by
a random camera (yaw, pitch, perspective or orthographic, keypoint noise, a random score channel;
``data.project``), at evaluation by a frontal orthographic camera (depth dropped). A 2D sample is
never given to a 3D model: :class:`TwoDInputError` names both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SkeletonFormatError
from .layouts import OMNI25, get_layout

JOINT_SPACE = OMNI25.name

# per layout: joint-space joint -> source joint name, or a tuple of two source joints (their midpoint)
_RENAMES: dict[str, dict[str, str | tuple[str, str]]] = {
    "ntu25": {},
    "kinect20": {"spine base": "hip center", "spine mid": "spine", "spine shoulder": "shoulder center"},
    "utd20": {"spine base": "hip center", "spine mid": "spine", "spine shoulder": "shoulder center"},
    "coco17": {
        "spine base": ("left hip", "right hip"),
        "spine shoulder": ("left shoulder", "right shoulder"),
        "head": ("left ear", "right ear"),
    },
    "openpose18": {
        "spine base": ("left hip", "right hip"),
        "spine shoulder": "neck",
        "head": ("left ear", "right ear"),
    },
    "openpose25": {  # BODY_25: COCO-18 plus a measured mid hip and three points per foot
        "spine base": "mid hip",
        "spine shoulder": "neck",
        "head": ("left ear", "right ear"),
        "left foot": "left big toe",
        "right foot": "right big toe",
    },
    "mediapipe33": {
        "spine base": ("left hip", "right hip"),
        "spine shoulder": ("left shoulder", "right shoulder"),
        "head": ("left ear", "right ear"),
        "left hand tip": "left index",
        "right hand tip": "right index",
        "left foot": "left foot index",
        "right foot": "right foot index",
    },
    "penn13": {
        "spine base": ("left hip", "right hip"),
        "spine shoulder": ("left shoulder", "right shoulder"),
    },
    JOINT_SPACE: {},
}


def _table(layout: str) -> list[tuple[int, ...]]:
    """Per joint-space joint, the source joint indices it is the mean of (empty: masked)."""
    lay = get_layout(layout)
    if lay.name not in _RENAMES:
        supported = ", ".join(sorted(_RENAMES))
        raise KeyError(f"layout {lay.name!r} has no mapping into the joint space; supported: {supported}")
    rename = _RENAMES[lay.name]
    rows: list[tuple[int, ...]] = []
    for j in OMNI25.joints:
        src = rename.get(j, j)
        names = src if isinstance(src, tuple) else (src,)
        if all(n in lay.joints for n in names):
            rows.append(tuple(lay.joints.index(n) for n in names))
        else:
            rows.append(())
    return rows


def joint_space_matrix(layout: str) -> np.ndarray:
    """(25, V_layout) matrix W: ``x_joint_space[v] = sum_u W[v, u] * x_layout[u]`` (rows of zeros: masked)."""
    rows = _table(layout)
    w = np.zeros((OMNI25.num_joints, get_layout(layout).num_joints), np.float32)
    for v, src in enumerate(rows):
        for u in src:
            w[v, u] = 1.0 / len(src)
    return w


def layout_mask(layout: str) -> np.ndarray:
    """(25,) bool: joint-space joints that ``layout`` provides (measured or derived)."""
    return np.array([bool(r) for r in _table(layout)])


def joint_space_table() -> dict[str, dict[str, list[str]]]:
    """Per layout: which joint-space joints are measured, derived (a midpoint) and masked."""
    out = {}
    for name in _RENAMES:
        if name == JOINT_SPACE:
            continue
        rows = _table(name)
        out[name] = {
            "measured": [j for j, r in zip(OMNI25.joints, rows) if len(r) == 1],
            "derived": [j for j, r in zip(OMNI25.joints, rows) if len(r) == 2],
            "masked": [j for j, r in zip(OMNI25.joints, rows) if not r],
        }
    return out


def can_map(layout: str) -> bool:
    try:
        return get_layout(layout).name in _RENAMES
    except KeyError:
        return False


def sample_spatial_dims(
    layout: str, channels: int, extra: dict | None = None, default: int | None = None
) -> int:
    """2 or 3: ``extra["spatial_dims"]`` when the sample says, else 2 for 2-channel data or 2D layouts."""
    if extra and "spatial_dims" in extra:
        return int(extra["spatial_dims"])
    if channels < 3:
        return 2
    lay = get_layout(layout)
    if lay.name == JOINT_SPACE and default is not None:
        return int(default)
    return 3 if lay.three_d else 2


class TwoDInputError(SkeletonFormatError):
    """2D skeletons given to a model (or a training run) that takes 3D ones."""


def check_dims(source, layout: str, in_dims: int, model_dims: int) -> None:
    if model_dims == 3 and in_dims == 2:
        raise TwoDInputError(
            source,
            f"2D input (layout {get_layout(layout).name}: x, y[, score]) given to a model that takes 3D "
            "skeletons (x, y, z); depth cannot be recovered from 2D. Use a 2D model (data.spatial_dims: 2, "
            "which also takes 3D input by projecting it)",
        )


def to_joint_space(x: np.ndarray, layout: str, spatial_dims: int) -> np.ndarray:
    """(T, M, V, C) in ``layout`` -> (T, M, 25, C') in the joint space.

    3D (``spatial_dims`` 3): C' = 3 (x, y, z). 2D: C' = 3 (x, -y, score), the score being the
    input's third channel (1 where it has none) and 0 for absent and masked joints. Joints the
    layout lacks are zero; a derived joint (a midpoint) is zero where either of its joints is."""
    lay = get_layout(layout)
    x = np.asarray(x, np.float32)
    if x.shape[-2] != lay.num_joints:
        raise ValueError(f"array has {x.shape[-2]} joints but layout {lay.name!r} has {lay.num_joints}")
    if lay.name == JOINT_SPACE:
        return x
    w = joint_space_matrix(lay.name)
    present = np.any(x != 0, axis=-1).astype(np.float32)  # (T, M, V)
    need = (w > 0).astype(np.float32)
    missing = np.einsum("vu,tmu->tmv", need, 1.0 - present) > 0  # a source joint of v is absent
    if spatial_dims == 3:
        out = np.einsum("vu,tmuc->tmvc", w, x[..., :3])
    else:
        xy = x[..., :2] * np.array([1.0, -1.0], np.float32)
        score = x[..., 2:3] if x.shape[-1] >= 3 else present[..., None]
        score = np.clip(score, 0.0, 1.0) * present[..., None]
        out = np.einsum("vu,tmuc->tmvc", w, np.concatenate([xy, score], axis=-1))
    out[missing] = 0.0
    return out.astype(np.float32, copy=False)


@dataclass
class ProjectConfig:
    """Random camera projections of 3D samples for a 2D model (``data.project``; training only)."""

    yaw: float = 90.0  # max |yaw| in degrees about the vertical axis (180: any direction)
    pitch: float = 20.0  # max |pitch| in degrees (camera above / below the person)
    perspective: float = 0.5  # probability of a perspective camera (else orthographic)
    distance: tuple[float, float] = (2.5, 5.0)  # perspective: camera distance to the hips, metres
    noise: float = 0.01  # std of Gaussian keypoint noise, metres (before scale normalisation)
    score: tuple[float, float] = (0.6, 1.0)  # a random confidence per joint, as a pose estimator gives

    def validate(self) -> None:
        from ..errors import ConfigError

        lo, hi = self.distance
        if not (0 < lo <= hi):
            raise ConfigError(
                f"config key 'data.project.distance' must satisfy 0 < low <= high, got {self.distance}"
            )
        slo, shi = self.score
        if not (0 < slo <= shi <= 1):
            raise ConfigError(
                f"config key 'data.project.score' must satisfy 0 < low <= high <= 1, got {self.score}"
            )
        if not (0 <= self.perspective <= 1) or self.noise < 0 or self.yaw < 0 or self.pitch < 0:
            raise ConfigError("config keys 'data.project.*': perspective in [0, 1]; yaw, pitch, noise >= 0")


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], np.float32)
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]], np.float32)
    return rx @ ry


def project_to_2d(x: np.ndarray, rng: np.random.Generator | None = None, cfg: ProjectConfig | None = None,
                  origin: tuple[int, ...] = OMNI25.origin_joints) -> np.ndarray:  # fmt: skip
    """(T, M, V, 3) 3D joints -> (T, M, V, 3) ``(x, y, score)``: a camera looks at the person and depth is
    dropped. With ``rng`` a random camera of ``cfg`` (yaw, pitch, perspective or orthographic, noise,
    random scores); without, the frontal orthographic camera (x, y kept, score 1). Absent joints stay
    zero with score 0. Deterministic for a seeded ``rng``."""
    cfg = cfg or ProjectConfig()
    x = np.asarray(x, np.float32)
    present = np.any(x != 0, axis=-1)  # (T, M, V)
    out = np.zeros(x.shape[:-1] + (3,), np.float32)
    if rng is None:
        out[..., :2] = x[..., :2]
        out[..., 2] = present
        return out
    # rotate about the hips of the first frame that has them, so the person stays in front of the camera
    ok = present[..., list(origin)].all(-1)  # (T, M)
    if ok.any():
        t, m = np.argwhere(ok)[0]
        c = x[t, m, list(origin)].mean(0)
    else:
        c = x[present].mean(0) if present.any() else np.zeros(3, np.float32)
    rot = _rotation(rng.uniform(-cfg.yaw, cfg.yaw), rng.uniform(-cfg.pitch, cfg.pitch))
    p = (x - c) @ rot.T  # centred; Kinect convention: the camera sits on the -z side looking along +z
    if rng.random() < cfg.perspective:
        d = rng.uniform(*cfg.distance)
        depth = np.maximum(d + p[..., 2:3], 0.1 * d)  # distance of each joint to the camera at z = -d
        xy = p[..., :2] * (d / depth)
    else:
        xy = p[..., :2]
    if cfg.noise > 0:
        xy = xy + rng.normal(0.0, cfg.noise, xy.shape).astype(np.float32)
    score = rng.uniform(cfg.score[0], cfg.score[1], present.shape).astype(np.float32)
    out[..., :2] = xy + c[:2]
    out[..., 2] = score
    out[~present] = 0.0
    return out


__all__ = [
    "JOINT_SPACE", "ProjectConfig", "TwoDInputError", "can_map", "check_dims", "joint_space_matrix",
    "joint_space_table", "layout_mask", "project_to_2d", "sample_spatial_dims", "to_joint_space",
]  # fmt: skip
