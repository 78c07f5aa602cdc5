"""Pure, vectorised transforms on skeleton arrays of shape (T, M, V, C).

Every function takes a float32 array in the data contract's order (frames, bodies, joints,
channels; see :mod:`llmskel.data.sample`) and returns a new array (or its input, untouched, when
there is nothing to do); none modifies its input, none loops over frames or joints in Python. Random functions take a :class:`numpy.random.Generator`, so a result depends on
the generator's seed only.

**Absent joints.** A joint whose channels are all zero is *absent* (a body not tracked in a frame,
a pose estimator's missing keypoint, padding). Transforms keep absent joints at zero: centring does
not turn an absent second body into the negated centre, noise is not added to it, bones and motion
that touch an absent joint are zero. Centring makes the origin joint exactly zero, so functions
used after centring take an optional ``mask`` (T, M, V) of present joints: compute it with
:func:`joint_mask` before centring and pass it on (:class:`~llmskel.data.pipeline.SkeletonPipeline`
does). Without it, presence is read from the array itself.

**2D data.** ``spatial_dims`` says how many leading channels are coordinates: 3 for ``x, y, z``;
2 for ``x, y`` or ``x, y, score`` (pose estimators). With ``spatial_dims=2`` a third channel is a
confidence score: geometric transforms leave it alone, bones and motion carry the smaller score of
the two joints they join. :func:`default_spatial_dims` guesses from the layout (3 for the Kinect
layouts, 2 for the pose-estimator layouts); pass it explicitly when that guess is wrong (e.g.
synthetic 3D data converted to COCO-17).

**View alignment** (:func:`align_view`), our convention: for 3D data the spine (origin joint ->
spine top, see :func:`spine_top_joints`) of the first valid frame is rotated to ``+y`` (up, as in
Kinect camera space) and the shoulder line (left -> right shoulder) to ``+x``, so the aligned person
faces ``-z`` like a person facing a Kinect; ``up="z"`` gives the other common convention (spine to
``+z``, shoulders to ``+x``, as in the NTU preprocessing of 2s-AGCN/CTR-GCN). For 2D data in image
coordinates (``y`` grows downwards) it is an in-plane rotation that makes the spine point to ``-y``
(upright on screen); set ``y_down=False`` for 2D data with ``y`` up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Literal

import numpy as np

from .layouts import Layout, get_layout

PadMode = Literal["resize", "zero", "loop", "edge"]
Stream = Literal["joint", "bone", "joint_motion", "bone_motion"]


# ----------------------------------------------------------------------------------------------
# presence and layout helpers


def default_spatial_dims(layout: str | Layout, num_channels: int = 3) -> int:
    """3 for the Kinect layouts with 3 channels; 2 for pose-estimator layouts or 2-channel data."""
    if num_channels < 3:
        return 2
    return 3 if get_layout(layout).three_d else 2


def joint_mask(x: np.ndarray) -> np.ndarray:
    """(T, M, V) bool: joint present (any channel non-zero)."""
    # OR over the few channels: much faster than a reduction over a length-3 last axis
    mask = x[..., 0] != 0
    for c in range(1, x.shape[-1]):
        mask |= x[..., c] != 0
    return mask


@cache
def _parents(name: str) -> np.ndarray:
    p = get_layout(name).parents
    p.flags.writeable = False  # shared by every call
    return p


@cache
def _flip_perm(name: str) -> np.ndarray:
    p = get_layout(name).permutation_for_flip()
    p.flags.writeable = False
    return p


def frame_mask(x: np.ndarray) -> np.ndarray:
    """(T,) bool: frames where at least one body has a non-zero joint."""
    return np.any(x.reshape(x.shape[0], -1) != 0, axis=1)


def valid_range(x: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, int]:
    """``(start, stop)`` of the frames between the first and the last valid frame (``(0, 0)`` if none)."""
    valid = frame_mask(x) if mask is None else mask.reshape(mask.shape[0], -1).any(axis=1)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return 0, 0
    return int(idx[0]), int(idx[-1]) + 1


def trim_empty_frames(x: np.ndarray) -> np.ndarray:
    """Drop leading and trailing frames with no body; an all-empty sequence keeps one zero frame."""
    start, stop = valid_range(x)
    if stop == 0:
        return x[:1]
    return x[start:stop]


def _joint_ids(layout: Layout, names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(layout.joints.index(n) for n in names if n in layout.joints)


def spine_top_joints(layout: str | Layout) -> tuple[int, ...]:
    """Joints whose mean is the top of the spine: the layout's shoulder-centre / neck joint, or the
    midpoint of the shoulders where the layout has none (COCO-17, MediaPipe)."""
    lay = get_layout(layout)
    for name in ("spine shoulder", "shoulder center", "neck"):
        if name in lay.joints:
            return (lay.joints.index(name),)
    return _joint_ids(lay, ("left shoulder", "right shoulder"))


def shoulder_joints(layout: str | Layout) -> tuple[int, int]:
    """(left shoulder, right shoulder) joint indices."""
    lay = get_layout(layout)
    return lay.index("left shoulder"), lay.index("right shoulder")


def _reference(x: np.ndarray, mask: np.ndarray) -> tuple[int, int] | None:
    """(frame, body) of the first valid frame's first present body, or None for an empty array."""
    present = mask.any(axis=2)  # (T, M)
    frames = np.flatnonzero(present.any(axis=1))
    if frames.size == 0:
        return None
    t = int(frames[0])
    return t, int(np.argmax(present[t]))


def _mean_present(points: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """Mean of the present rows of ``points`` (K, S), or None when none is present."""
    if not present.any():
        return None
    return points[present].mean(axis=0)


# ----------------------------------------------------------------------------------------------
# bodies


def select_bodies(x: np.ndarray, num_bodies: int) -> np.ndarray:
    """Keep ``num_bodies`` bodies, padding with absent (zero) bodies.

    When there are more bodies than wanted, the most active ones are kept, most active first:
    ranked by the number of frames they are present in, then by their coordinate variance (a
    tracked bystander or a ghost body present for a few frames comes last).
    """
    t, m, v, c = x.shape
    if m > num_bodies:
        mask = joint_mask(x)  # (T, M, V)
        frames_present = mask.any(axis=2).sum(axis=0)  # (M,)
        spread = x.reshape(t, m, -1).var(axis=0).sum(axis=1)  # (M,)
        order = np.lexsort((-spread, -frames_present))[:num_bodies]
        return x[:, order]
    if m < num_bodies:
        return np.concatenate([x, np.zeros((t, num_bodies - m, v, c), x.dtype)], axis=1)
    return x


# ----------------------------------------------------------------------------------------------
# spatial normalisation


def _mask(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return joint_mask(x) if mask is None else mask


def origin_point(
    x: np.ndarray, layout: str | Layout, spatial_dims: int = 3, mask: np.ndarray | None = None
) -> np.ndarray:
    """(S,) mean of the layout's origin joints in the first valid frame (its first present body).

    Falls back to the mean of that body's present joints when the origin joints are missing there.
    """
    lay = get_layout(layout)
    mask = _mask(x, mask)
    origin = list(lay.origin_joints)
    if len(origin) == 1 and mask[0, 0, origin[0]]:  # the common cases: body 0 has its origin in frame 0
        return x[0, 0, origin[0], :spatial_dims].astype(np.float32)
    if mask[0, 0, origin].all():
        return (x[0, 0, origin, :spatial_dims].sum(axis=0) / np.float32(len(origin))).astype(np.float32)
    ref = _reference(x, mask)
    if ref is None:
        return np.zeros(spatial_dims, np.float32)
    t, b = ref
    o = _mean_present(x[t, b, origin, :spatial_dims], mask[t, b, origin])
    if o is None:
        o = _mean_present(x[t, b, :, :spatial_dims], mask[t, b])
    return o.astype(np.float32)


def center(
    x: np.ndarray,
    layout: str | Layout,
    spatial_dims: int = 3,
    origin: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Subtract the origin (:func:`origin_point`) from every present joint of every frame and body."""
    mask = _mask(x, mask)
    if origin is None:
        origin = origin_point(x, layout, spatial_dims, mask)
    if mask.all() and x.shape[-1] == spatial_dims:
        return x - origin
    out = x.copy()
    out[..., :spatial_dims] = np.where(mask[..., None], x[..., :spatial_dims] - origin, 0.0)
    return out


def view_rotation(
    x: np.ndarray,
    layout: str | Layout,
    spatial_dims: int = 3,
    up: Literal["y", "z"] = "y",
    y_down: bool = True,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """(S, S) rotation used by :func:`align_view` (identity when the reference joints are missing)."""
    lay = get_layout(layout)
    s = spatial_dims
    eye = np.eye(s, dtype=np.float32)
    mask = _mask(x, mask)
    ref = _reference(x, mask)
    if ref is None:
        return eye
    t, b = ref
    frame, present = x[t, b, :, :s].astype(np.float64), mask[t, b]
    origin = list(lay.origin_joints)
    top = list(spine_top_joints(lay))
    o = _mean_present(frame[origin], present[origin])
    p = _mean_present(frame[top], present[top])
    if o is None or p is None or np.linalg.norm(p - o) < 1e-6:
        return eye
    spine = (p - o) / np.linalg.norm(p - o)
    if s == 2:
        target = np.array([0.0, -1.0 if y_down else 1.0])
        ang = np.arctan2(target[1], target[0]) - np.arctan2(spine[1], spine[0])
        c, sn = np.cos(ang), np.sin(ang)
        return np.array([[c, -sn], [sn, c]], dtype=np.float32)
    ls, rs = shoulder_joints(lay)
    if present[ls] and present[rs]:
        across = frame[rs] - frame[ls]
        across = across - across.dot(spine) * spine
    else:
        across = np.zeros(3)
    if np.linalg.norm(across) < 1e-6:
        # no usable shoulder line: the smallest rotation taking the spine to "up"
        return _rotation_between(spine, np.array([0.0, 1.0, 0.0] if up == "y" else [0.0, 0.0, 1.0]))
    ex = across / np.linalg.norm(across)
    ey = spine
    ez = np.cross(ex, ey)
    rows = [ex, ey, ez] if up == "y" else [ex, -ez, ey]
    return np.stack(rows).astype(np.float32)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3, 3) taking unit vector a to unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(a.dot(b))
    if np.linalg.norm(v) < 1e-9:
        if c > 0:
            return np.eye(3, dtype=np.float32)
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 0.0, 1.0])
        axis /= np.linalg.norm(axis)
        return (2 * np.outer(axis, axis) - np.eye(3)).astype(np.float32)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return (np.eye(3) + k + k @ k / (1 + c)).astype(np.float32)


def apply_linear(x: np.ndarray, matrix: np.ndarray, spatial_dims: int = 3) -> np.ndarray:
    """Apply an (S, S) matrix to the coordinate channels (score channel untouched; zeros stay zero)."""
    s = spatial_dims
    m = np.asarray(matrix, np.float32).T
    if x.shape[-1] == s:
        return (x.reshape(-1, s) @ m).reshape(x.shape)
    out = x.copy()
    out[..., :s] = (x[..., :s].reshape(-1, s) @ m).reshape(*x.shape[:-1], s)
    return out


def align_view(
    x: np.ndarray,
    layout: str | Layout,
    spatial_dims: int = 3,
    up: Literal["y", "z"] = "y",
    y_down: bool = True,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Rotate all frames by :func:`view_rotation` (see the module docstring for the convention).

    Call after :func:`center`: the rotation is about the coordinate origin.
    """
    return apply_linear(x, view_rotation(x, layout, spatial_dims, up, y_down, mask), spatial_dims)


def spine_length(
    x: np.ndarray, layout: str | Layout, spatial_dims: int = 3, mask: np.ndarray | None = None
) -> float:
    """Mean length of the spine (origin joints -> spine top) over frames and bodies where it exists."""
    lay = get_layout(layout)
    s = spatial_dims
    mask = _mask(x, mask)
    origin, top = list(lay.origin_joints), list(spine_top_joints(lay))
    ok = mask[:, :, origin].all(axis=2) & mask[:, :, top].all(axis=2)  # (T, M)
    if not ok.any():
        return 0.0
    o = x[:, :, origin, :s].mean(axis=2)
    p = x[:, :, top, :s].mean(axis=2)
    return float(np.linalg.norm((p - o)[ok], axis=-1).mean())


def normalize_scale(
    x: np.ndarray, layout: str | Layout, spatial_dims: int = 3, mask: np.ndarray | None = None
) -> np.ndarray:
    """Divide coordinates by the mean spine length (unchanged when it cannot be measured)."""
    length = spine_length(x, layout, spatial_dims, mask)
    if length < 1e-6:
        return x.copy()
    out = x.copy()
    out[..., :spatial_dims] = x[..., :spatial_dims] / np.float32(length)
    return out


# ----------------------------------------------------------------------------------------------
# time


def resize_time(x: np.ndarray, num_frames: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Linearly interpolate ``x`` to ``num_frames`` frames (first and last frames kept).

    Where one of the two neighbouring frames has the joint absent, the nearer frame's value is
    taken instead of a blend, so an absent joint never becomes a half-scaled ghost.
    """
    t = x.shape[0]
    if t == num_frames:
        return x.copy()
    if t == 1:
        return np.repeat(x, num_frames, axis=0)
    i0, i1, w = _lerp_plan(t, num_frames)
    a, b = np.take(x, i0, axis=0), np.take(x, i1, axis=0)
    out = a + (b - a) * w
    mask = _mask(x, mask)
    if not mask.all():
        both = (mask[i0] & mask[i1])[..., None]
        nearest = np.where(w < 0.5, a, b)
        out = np.where(both, out, nearest)
    return out.astype(np.float32, copy=False)


@lru_cache(maxsize=4096)
def _lerp_plan(t: int, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source frames and weights of a linear resize from ``t`` to ``num_frames`` frames."""
    pos = np.arange(num_frames) * ((t - 1) / max(num_frames - 1, 1))
    i0 = np.minimum(pos.astype(np.int64), t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (pos - i0).astype(np.float32)[:, None, None, None]
    for a in (i0, i1, w):
        a.flags.writeable = False
    return i0, i1, w


def pad_time(
    x: np.ndarray, num_frames: int, mode: PadMode = "zero", mask: np.ndarray | None = None
) -> np.ndarray:
    """Bring a sequence of at most ``num_frames`` frames to exactly ``num_frames``.

    ``zero`` appends absent frames, ``loop`` repeats the sequence from its start, ``edge`` repeats
    the last frame, ``resize`` stretches it with :func:`resize_time`. Longer inputs are resized.
    """
    t = x.shape[0]
    if t == num_frames:
        return x.copy()
    if t > num_frames or mode == "resize":
        return resize_time(x, num_frames, mask)
    if mode == "zero":
        return np.concatenate([x, np.zeros((num_frames - t, *x.shape[1:]), x.dtype)], axis=0)
    if mode == "loop":
        return x[np.arange(num_frames) % t]
    if mode == "edge":
        return x[np.minimum(np.arange(num_frames), t - 1)]
    raise ValueError(f"unknown pad mode {mode!r}; valid: resize, zero, loop, edge")


def crop_window(
    num_valid: int,
    crop: float | tuple[float, float],
    rng: np.random.Generator | None = None,
    min_frames: int = 1,
) -> tuple[int, int]:
    """``(start, stop)`` of a temporal crop of ``num_valid`` frames.

    ``crop`` a float: a centred crop of that fraction (evaluation). ``crop`` a ``(lo, hi)`` pair
    and a generator: a fraction drawn from ``[lo, hi]`` at a random offset (training). The crop
    keeps at least ``min(min_frames, num_valid)`` frames.
    """
    if num_valid <= 0:
        return 0, 0
    if isinstance(crop, (tuple, list)):
        lo, hi = crop
        if rng is None:
            frac = float(hi)  # no generator: the largest crop, centred
            random = False
        else:
            u_frac, u_start = rng.random(2).tolist()
            frac = lo + (hi - lo) * u_frac
            random = True
    else:
        frac, random = float(crop), False
    length = int(np.floor(num_valid * frac))
    length = int(min(num_valid, max(length, min_frames, 1)))
    if random:
        start = min(int(u_start * (num_valid - length + 1)), num_valid - length)
    else:
        start = (num_valid - length) // 2
    return start, start + length


def crop_resize(
    x: np.ndarray,
    num_frames: int,
    crop: float | tuple[float, float] = 1.0,
    rng: np.random.Generator | None = None,
    pad_mode: PadMode = "resize",
    min_frames: int = 1,
    trim: bool = True,
) -> np.ndarray:
    """Crop the valid frames (see :func:`crop_window`) and bring the crop to ``num_frames``.

    Leading/trailing empty frames are trimmed first (``trim=False`` when the caller already did).
    A crop longer than ``num_frames`` is resized
    (linear interpolation); a shorter one is stretched (``pad_mode="resize"``, the GCN recipe) or
    padded (``zero`` / ``loop`` / ``edge``, see :func:`pad_time`).
    """
    if trim:
        x = trim_empty_frames(x)
    start, stop = crop_window(x.shape[0], crop, rng, min_frames)
    return pad_time(x[start:stop], num_frames, pad_mode)


def frame_keep(rng: np.random.Generator, num_frames: int, p: float) -> np.ndarray:
    """(T,) bool: frames kept by a frame dropout of probability ``p`` (at least one)."""
    keep = rng.random(num_frames) >= p
    if not keep.any():
        keep[int(rng.random() * num_frames)] = True
    return keep


def drop_frames(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Remove each frame with probability ``p`` (at least one frame is kept)."""
    if p <= 0:
        return x
    return x[frame_keep(rng, x.shape[0], p)]


# ----------------------------------------------------------------------------------------------
# augmentation


def rotation_matrix(angles_deg: np.ndarray | float, spatial_dims: int = 3) -> np.ndarray:
    """Rotation about x, then y, then z (3D: three angles in degrees) or in-plane (2D: one angle)."""
    a = [math.radians(v) for v in np.atleast_1d(np.asarray(angles_deg, np.float64)).tolist()]
    if spatial_dims == 2:
        c, s = math.cos(a[0]), math.sin(a[0])
        return np.array([[c, -s], [s, c]], np.float32)
    cx, cy, cz = (math.cos(v) for v in a)
    sx, sy, sz = (math.sin(v) for v in a)
    # Rz @ Ry @ Rx written out
    # fmt: off
    return np.array([
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ], np.float32)
    # fmt: on


def _rotation_bounds(rotate: float | Sequence[float], spatial_dims: int) -> np.ndarray:
    """Per-axis angle bounds in degrees: (3,) for 3D (x, y, z), (1,) for 2D (in-plane)."""
    n = 3 if spatial_dims == 3 else 1
    b = np.atleast_1d(np.asarray(rotate, np.float64))
    if b.size == 1:
        return np.full(n, float(b[0]))
    if spatial_dims == 2 and b.size == 3:  # [x, y, z] given for 2D data: the in-plane angle is z's
        return b[2:]
    if b.size != n:
        raise ValueError(f"rotate needs 1 or {n} angles for {spatial_dims}D data, got {b.tolist()}")
    return b


def random_affine_matrix(
    rng: np.random.Generator,
    rotate: float | Sequence[float] = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
    spatial_dims: int = 3,
) -> np.ndarray:
    """(S, S) = shear @ scale @ rotation with angles in ``[-rotate, rotate]`` degrees per axis
    (``rotate`` one bound for all axes or one per axis, x/y/z), an isotropic factor in
    ``[1 - scale, 1 + scale]`` and shear coefficients in ``[-shear, shear]``."""
    s = spatial_dims
    bounds = _rotation_bounds(rotate, s)
    n_rot = bounds.size
    u = rng.random(n_rot + 1 + s * s) * 2.0 - 1.0  # one draw: angles, scale, shear, each in [-1, 1]
    m = rotation_matrix(u[:n_rot] * bounds, s) if (bounds > 0).any() else np.eye(s, dtype=np.float32)
    if scale > 0:
        m = m * np.float32(1.0 + scale * u[n_rot])
    if shear > 0:
        off = (u[n_rot + 1 :].reshape(s, s) * shear).astype(np.float32)
        np.fill_diagonal(off, 0.0)
        m = (np.eye(s, dtype=np.float32) + off) @ m
    return m.astype(np.float32, copy=False)


def random_affine(
    x: np.ndarray,
    rng: np.random.Generator,
    rotate: float | Sequence[float] = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
    spatial_dims: int = 3,
) -> np.ndarray:
    """Random rotation, scale and shear applied as one linear map about the origin (centre first)."""
    return apply_linear(x, random_affine_matrix(rng, rotate, scale, shear, spatial_dims), spatial_dims)


def add_noise(
    x: np.ndarray,
    rng: np.random.Generator,
    std: float,
    spatial_dims: int = 3,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian noise of standard deviation ``std`` on the coordinates of present joints."""
    if std <= 0:
        return x.copy()
    s = spatial_dims
    out = x.copy()
    noise = rng.standard_normal((*x.shape[:-1], s), dtype=np.float32) * np.float32(std)
    out[..., :s] += noise * _mask(x, mask)[..., None]
    return out


def joint_keep(rng: np.random.Generator, num_joints: int, p: float) -> np.ndarray:
    """(V,) bool: joints kept by a joint dropout of probability ``p``."""
    return rng.random(num_joints) >= p


def drop_joints(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Zero each joint with probability ``p`` for the whole sample (all frames and bodies)."""
    if p <= 0:
        return x.copy()
    return x * joint_keep(rng, x.shape[2], p).astype(x.dtype)[:, None]


def flip(x: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Left-right mirror: negate ``x`` and swap left and right joints (centre first)."""
    out = np.take(x, _flip_perm(get_layout(layout).name), axis=2)
    out[..., 0] = -out[..., 0]
    return out


# ----------------------------------------------------------------------------------------------
# feature streams


def _pairwise(x: np.ndarray, other: np.ndarray, spatial_dims: int, pair_ok: np.ndarray) -> np.ndarray:
    """``x - other`` on coordinates, min score on a score channel, zero where ``pair_ok`` is false."""
    s = spatial_dims
    if x.shape[-1] == s:
        out = x - other
    else:
        out = np.empty_like(x)
        out[..., :s] = x[..., :s] - other[..., :s]
        out[..., s:] = np.minimum(x[..., s:], other[..., s:])
    if not pair_ok.all():
        out *= pair_ok[..., None]
    return out


def bone_mask(mask: np.ndarray, layout: str | Layout) -> np.ndarray:
    """(T, M, V) bones that exist: both ends present (the root, its own parent, counts as present)."""
    return mask & np.take(mask, _parents(get_layout(layout).name), axis=2)


def bone(
    x: np.ndarray, layout: str | Layout, spatial_dims: int = 3, mask: np.ndarray | None = None
) -> np.ndarray:
    """Bone stream ``x[:, :, v] - x[:, :, parent(v)]`` (zero at the root and where a joint is absent)."""
    parents = _parents(get_layout(layout).name)
    return _pairwise(x, np.take(x, parents, axis=2), spatial_dims, bone_mask(_mask(x, mask), layout))


def motion(x: np.ndarray, spatial_dims: int = 3, mask: np.ndarray | None = None) -> np.ndarray:
    """Frame difference ``x[t + 1] - x[t]``; the last frame and absent joints are zero."""
    mask = _mask(x, mask)
    nxt = np.concatenate([x[1:], x[-1:]], axis=0)
    ok = np.concatenate([mask[1:] & mask[:-1], np.zeros_like(mask[:1])], axis=0)
    return _pairwise(nxt, x, spatial_dims, ok)


def to_stream(
    x: np.ndarray,
    stream: Stream,
    layout: str | Layout,
    spatial_dims: int = 3,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """One of the four standard input streams: joint, bone, joint_motion, bone_motion."""
    if stream == "joint":
        return x
    if stream == "bone":
        return bone(x, layout, spatial_dims, mask)
    if stream == "joint_motion":
        return motion(x, spatial_dims, mask)
    if stream == "bone_motion":
        mask = _mask(x, mask)
        if mask.all() and x.shape[-1] == spatial_dims:  # fast path: nothing absent, no score channel
            b = x - np.take(x, _parents(get_layout(layout).name), axis=2)
            out = np.empty_like(b)
            np.subtract(b[1:], b[:-1], out=out[:-1])
            out[-1] = 0.0
            return out
        return motion(bone(x, layout, spatial_dims, mask), spatial_dims, bone_mask(mask, layout))
    raise ValueError(f"unknown stream {stream!r}; valid: joint, bone, joint_motion, bone_motion")
