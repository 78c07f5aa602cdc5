"""Skeleton GIFs: a valid animation with one frame per sample frame (down-sampled when long),
skeletons drawn in the layout's colours, several bodies in their own colours."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from llmskel.data.layouts import convert_layout
from llmskel.data.render import project, render_gif
from llmskel.data.sample import SkeletonSample
from llmskel.data.synthetic import generate_sample


def _frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        assert im.format == "GIF" and im.is_animated
        out = []
        for k in range(im.n_frames):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB")))
        return out


def _has_colour(frame: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> bool:
    return bool((np.abs(frame.astype(int) - rgb).sum(-1) < tol).sum() > 20)


def test_gif_has_one_frame_per_sample_frame_and_draws_the_skeleton(tmp_path):
    s = generate_sample("wave right hand", subject=1, take=1, seed=0, num_frames=30)
    s = s.replace(data=s.data[:30])
    out = render_gif(s, tmp_path / "wave.gif", fps=10)
    assert out == tmp_path / "wave.gif"
    frames = _frames(out)
    assert len(frames) == 30
    with Image.open(out) as im:
        assert im.info["duration"] == 100 and im.info.get("loop") == 0
    drawn = [f for f in frames if (f < 200).any(-1).mean() > 0.01]
    assert len(drawn) >= 25, "skeleton pixels on (nearly) every frame"
    mid = frames[15]
    assert _has_colour(mid, (0xD6, 0x27, 0x28)) and _has_colour(mid, (0x1F, 0x5F, 0xBF)), (
        "right red, left blue"
    )
    assert not np.array_equal(frames[5], frames[20]), "the skeleton moves"


def test_long_sequences_are_down_sampled(tmp_path):
    s = generate_sample("march in place", subject=2, take=0, seed=0, num_frames=150)
    t0 = time.perf_counter()
    frames = _frames(render_gif(s, tmp_path / "march.gif", fps=30, max_frames=40))
    assert len(frames) == 40
    with Image.open(tmp_path / "march.gif") as im:
        # 150+ frames shown as 40: each GIF frame lasts about 150/40 sample frames at 30 fps
        assert 110 <= im.info["duration"] <= 140
    assert time.perf_counter() - t0 < 20


def test_two_bodies_in_two_colour_sets_and_title(tmp_path):
    a = generate_sample("clap", subject=1, take=1, seed=0, num_frames=20).data[:20]
    b = generate_sample("punch", subject=2, take=1, seed=0, num_frames=20).data[:20]
    b = b + np.array([0.9, 0.0, 0.3], np.float32)
    s = SkeletonSample(np.concatenate([a, b], axis=1), "ntu25", label_name="two people")
    frames = _frames(render_gif(s, tmp_path / "two.gif", title="hand shake"))
    assert len(frames) == 20
    assert _has_colour(frames[10], (0xFF, 0x7F, 0x0E)) and _has_colour(frames[10], (0xD6, 0x27, 0x28))


def test_2d_layout_and_absent_frames(tmp_path):
    s = generate_sample("jump", subject=1, take=1, seed=0, num_frames=24)
    xy = convert_layout(s.data[:24], "ntu25", "coco17")
    img = np.concatenate(
        [xy[..., :1] * 200 + 320, -xy[..., 1:2] * 200 + 400, np.ones_like(xy[..., :1])], axis=-1
    )
    img[3] = 0.0  # a frame where the pose estimator found nobody
    s2 = SkeletonSample(img.astype(np.float32), "coco17", label_name="jump (2D)")
    p = project(s2)
    assert p[0, 0, 0, 1] > p[0, 0, 15, 1], "image y grows downwards: the nose is drawn above the ankle"
    frames = _frames(render_gif(s2, tmp_path / "jump2d.gif"))
    assert len(frames) == 24
    ink = [(f < 200).any(-1).mean() for f in frames]
    assert ink[3] < min(ink[2], ink[4]), "an empty frame draws no skeleton"
