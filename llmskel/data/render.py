"""Animated skeleton GIFs (matplotlib drawing, Pillow encoding).

The view is the camera's: for 3D data (metres, Kinect-like camera space, ``x`` the sensor's left,
``y`` up) the front projection draws ``-x`` to the right and ``y`` up, so a person facing the
camera looks as in the camera image; 2D data in image coordinates (``y`` down) is drawn with
``y`` flipped. Bones come from the layout; the person's left side is blue, the right side red,
the trunk and head grey, and each further body gets its own shade. Long sequences are
down-sampled to at most ``max_frames`` frames (playback speed preserved).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from ..errors import ConfigError, SkeletonFormatError
from .layouts import get_layout
from .sample import SkeletonSample
from .transforms import default_spatial_dims, joint_mask

# (left, right, centre) colours per body
_PALETTE = [
    ("#1f5fbf", "#d62728", "#555555"),
    ("#17becf", "#ff7f0e", "#8c564b"),
    ("#2ca02c", "#e377c2", "#7f7f7f"),
]


def project(sample: SkeletonSample, spatial_dims: int | None = None) -> np.ndarray:
    """(T, M, V, 2) screen coordinates (right, up) of the sample's joints."""
    data = np.asarray(sample.data, np.float32)
    s = spatial_dims or int(
        sample.extra.get("spatial_dims", default_spatial_dims(sample.layout, data.shape[-1]))
    )
    if s == 3:
        return np.stack([-data[..., 0], data[..., 1]], axis=-1)
    return np.stack([data[..., 0], -data[..., 1]], axis=-1)


def _bone_colours(layout) -> list[int]:
    """Per bone: 0 left, 1 right, 2 centre (by the child joint's name)."""
    out = []
    for child, _ in layout.bones:
        name = layout.joints[child]
        out.append(0 if name.startswith("left") else 1 if name.startswith("right") else 2)
    return out


def render_frames(
    sample: SkeletonSample,
    title: str | None = None,
    size: int = 320,
    max_frames: int = 64,
    spatial_dims: int | None = None,
) -> tuple[list[Image.Image], np.ndarray]:
    """RGB frames of the animation and the indices of the sample frames they show."""
    lay = get_layout(sample.layout)
    xy = project(sample, spatial_dims)  # (T, M, V, 2)
    present = joint_mask(np.asarray(sample.data))  # (T, M, V)
    t, m = xy.shape[:2]
    if t == 0 or m == 0 or not present.any():
        raise SkeletonFormatError(
            sample.source,
            f"nothing to draw: no body in any frame (data shape {tuple(np.shape(sample.data))})",
        )
    idx = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    bones = np.asarray(lay.bones)  # (B, 2) child, parent
    side = np.asarray(_bone_colours(lay))

    pts = xy[present] if present.any() else np.zeros((1, 2))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.12, 1e-3)

    dpi = 80
    fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    head = title if title is not None else (sample.label_name or sample.source or "")
    fig.text(0.5, 0.95, head, ha="center", va="center", fontsize=11)
    counter = fig.text(0.97, 0.9, "", ha="right", va="center", fontsize=7, color="#777777")
    lines, dots = [], []
    for b in range(m):
        pal = _PALETTE[b % len(_PALETTE)]
        lc = LineCollection([], linewidths=2.5)
        ax.add_collection(lc)
        lines.append((lc, np.array([pal[k] for k in side])))
        dots.append(ax.scatter([], [], s=9, c=pal[2], zorder=3))

    frames = []
    for i in idx:
        for b in range(m):
            ok = present[i, b, bones[:, 0]] & present[i, b, bones[:, 1]]
            seg = np.stack([xy[i, b, bones[ok, 0]], xy[i, b, bones[ok, 1]]], axis=1)
            lines[b][0].set_segments(seg)
            lines[b][0].set_color(lines[b][1][ok])
            dots[b].set_offsets(xy[i, b][present[i, b]].reshape(-1, 2))
        counter.set_text(f"{i + 1}/{t}")
        canvas.draw()
        frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    return frames, idx


def render_gif(
    sample: SkeletonSample,
    out_path: str | os.PathLike,
    fps: int = 15,
    title: str | None = None,
    max_frames: int = 64,
    size: int = 320,
) -> Path:
    """Write an animated GIF of ``sample`` (played at ``fps`` sample frames per second)."""
    out = Path(out_path)
    if out.is_dir():
        raise ConfigError(f"output {out} is a folder; give the path of the .gif file to write")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"output {out}: {out.parent} is a file, not a folder")
    frames, idx = render_frames(sample, title, size=size, max_frames=max_frames)
    step = (idx[-1] + 1) / len(idx) if len(idx) else 1.0
    duration = max(20, int(round(1000.0 / max(fps, 1) * step)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output {out}: cannot create its folder ({e.strerror or e})") from None
    pal = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=64) for f in frames]
    try:
        pal[0].save(
            out, format="GIF", save_all=True, append_images=pal[1:], duration=duration, loop=0, disposal=2
        )
    except OSError as e:
        raise ConfigError(f"output {out}: cannot write it ({e.strerror or e})") from None
    return out
