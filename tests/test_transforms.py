"""Skeleton transforms: trimming, bodies, centring, view alignment, scale, time, augmentation,
streams; absent joints stay absent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmskel.data import transforms as T
from llmskel.data.layouts import get_layout
from llmskel.data.synthetic import generate_sample

NTU = get_layout("ntu25")


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    """A real-looking 3D sequence (T, 1, 25, 3) without empty frames."""
    x = generate_sample("wave right hand", subject=2, take=1, seed=3, num_frames=40).data
    return T.trim_empty_frames(x).copy()


def _two_bodies(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.zeros_like(x)], axis=1)


def _random_rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return (q * np.sign(np.linalg.det(q))).astype(np.float32)


# ---------------------------------------------------------------------------------------------- frames


def test_trim_empty_frames_and_valid_range():
    x = np.zeros((10, 2, 25, 3), np.float32)
    x[2:7, 1, 3] = 1.0
    assert T.valid_range(x) == (2, 7)
    assert T.trim_empty_frames(x).shape[0] == 5
    assert T.frame_mask(x).tolist() == [False] * 2 + [True] * 5 + [False] * 3
    empty = np.zeros((4, 1, 25, 3), np.float32)
    assert T.valid_range(empty) == (0, 0)
    assert T.trim_empty_frames(empty).shape == (1, 1, 25, 3)


def test_select_bodies_keeps_most_active_first_and_pads():
    rng = np.random.default_rng(0)
    x = np.zeros((20, 3, 25, 3), np.float32)
    x[:2, 0] = 1.0  # a ghost body present for two frames
    x[:, 1] = rng.normal(size=(20, 25, 3)) * 0.01 + 1.0  # present throughout, nearly still
    x[:, 2] = rng.normal(size=(20, 25, 3)) * 0.5  # present throughout, moving
    out = T.select_bodies(x, 2)
    np.testing.assert_array_equal(out[:, 0], x[:, 2])
    np.testing.assert_array_equal(out[:, 1], x[:, 1])
    padded = T.select_bodies(x[:, 1:2], 3)
    assert padded.shape == (20, 3, 25, 3)
    assert not padded[:, 1:].any()


# ---------------------------------------------------------------------------------------------- space


def test_center_uses_first_valid_frame_and_keeps_absent_body_zero(wave):
    x = np.concatenate([np.zeros_like(wave[:2]), wave], axis=0)  # two empty leading frames
    x = _two_bodies(x)
    x[5, 0, 7] = 0.0  # one missing joint
    out = T.center(x, NTU)
    origin = wave[0, 0, list(NTU.origin_joints)].mean(axis=0)
    np.testing.assert_allclose(out[2, 0, list(NTU.origin_joints)].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[9, 0], wave[7, 0] - origin, atol=1e-6)
    assert not out[:, 1].any(), "absent second body must stay zero"
    assert not out[:2].any(), "empty frames must stay empty"
    assert not out[5, 0, 7].any(), "a missing joint must stay zero"


def test_center_2d_leaves_the_score_channel_alone():
    lay = get_layout("coco17")
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(100, 400, (6, 1, 17, 2)), rng.uniform(0.2, 1, (6, 1, 17, 1))], axis=-1)
    x = x.astype(np.float32)
    out = T.center(x, lay, spatial_dims=2)
    np.testing.assert_array_equal(out[..., 2], x[..., 2])
    hips = list(lay.origin_joints)
    np.testing.assert_allclose(out[0, 0, hips, :2].mean(axis=0), 0.0, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_align_view_is_invariant_to_the_camera_rotation(wave, seed):
    rot = _random_rotation(seed)
    mask = T.joint_mask(wave)
    x = T.center(wave, NTU, mask=mask)
    a = T.align_view(x, NTU, mask=mask)
    b = T.align_view(x @ rot.T, NTU, mask=mask)
    np.testing.assert_allclose(a, b, atol=1e-4)
    ls, rs = T.shoulder_joints(NTU)
    top = T.spine_top_joints(NTU)[0]
    spine = a[0, 0, top] - a[0, 0, list(NTU.origin_joints)].mean(axis=0)
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0, 1, 0], atol=1e-5)
    across = a[0, 0, rs] - a[0, 0, ls]
    assert across[0] > 0.2 and abs(across[2]) < 1e-5, "shoulder line must lie along +x"
    assert np.linalg.det(T.view_rotation(x @ rot.T, NTU, mask=mask)) == pytest.approx(1.0, abs=1e-5)


def test_centred_origin_joint_is_still_present_when_the_mask_is_passed(wave):
    """Centring puts the origin joint at exactly zero; with the mask from before centring it is
    still a present joint (its bones and motion exist), without it it would look absent."""
    mask = T.joint_mask(wave)
    x = T.center(wave, NTU, mask=mask)
    o = NTU.origin_joints[0]
    assert not x[:, 0, o].any() or not x[0, 0, o].any()
    child = next(c for c, p in NTU.bones if p == o)
    b = T.bone(x, NTU, mask=mask)
    np.testing.assert_allclose(b[:, 0, child], x[:, 0, child] - x[:, 0, o], atol=1e-6)
    assert np.abs(b[:, 0, child]).min(axis=-1).max() > 0
    assert T.view_rotation(x, NTU, mask=mask).round(3).tolist() != np.eye(3).tolist()


def test_align_view_z_up_convention(wave):
    mask = T.joint_mask(wave)
    a = T.align_view(T.center(wave, NTU, mask=mask), NTU, up="z", mask=mask)
    top = T.spine_top_joints(NTU)[0]
    spine = a[0, 0, top] - a[0, 0, list(NTU.origin_joints)].mean(axis=0)
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0, 0, 1], atol=1e-5)


def test_align_view_2d_makes_the_spine_point_up_on_screen():
    lay = get_layout("coco17")
    x = np.zeros((3, 1, 17, 3), np.float32)
    x[..., 2] = 0.9
    ls, rs = lay.index("left shoulder"), lay.index("right shoulder")
    lh, rh = lay.index("left hip"), lay.index("right hip")
    # a person lying sideways in image coordinates: hips at x=100, shoulders at x=150
    x[:, 0, [lh, rh], :2] = [[100, 210], [100, 190]]
    x[:, 0, [ls, rs], :2] = [[150, 215], [150, 185]]
    out = T.align_view(T.center(x, lay, 2), lay, spatial_dims=2)
    spine = out[0, 0, [ls, rs], :2].mean(axis=0) - out[0, 0, [lh, rh], :2].mean(axis=0)
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0, -1], atol=1e-5)
    np.testing.assert_array_equal(out[..., 2], x[..., 2])


def test_normalize_scale_makes_the_spine_unit_length(wave):
    mask = T.joint_mask(wave)
    out = T.normalize_scale(T.center(wave, NTU, mask=mask), NTU, mask=mask)
    assert T.spine_length(out, NTU, mask=mask) == pytest.approx(1.0, rel=1e-4)
    # NTU-25's origin is the mid-spine joint: the measured spine is mid-spine -> spine-shoulder
    assert T.spine_length(wave, NTU) == pytest.approx(0.22, abs=0.06)


# ---------------------------------------------------------------------------------------------- time


def test_resize_time_interpolates_linearly_and_keeps_ends():
    x = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 3), np.float32) + 1
    out = T.resize_time(x, 9)
    np.testing.assert_allclose(out[:, 0, 0, 0], np.linspace(1, 5, 9), atol=1e-6)
    assert T.resize_time(x[:1], 4).shape == (4, 1, 2, 3)


def test_resize_time_never_blends_with_an_absent_joint():
    x = np.ones((3, 1, 2, 3), np.float32) * 2.0
    x[1, 0, 1] = 0.0  # joint 1 absent in the middle frame
    out = T.resize_time(x, 11)
    vals = set(np.unique(out[:, 0, 1]).tolist())
    assert vals <= {0.0, 2.0}, f"half-scaled ghost joint: {vals}"
    assert (out[:, 0, 0] == 2.0).all()


@pytest.mark.parametrize("mode", ["zero", "loop", "edge", "resize"])
def test_pad_time_modes(mode):
    x = (np.arange(3, dtype=np.float32) + 1)[:, None, None, None] * np.ones((3, 1, 1, 3), np.float32)
    out = T.pad_time(x, 7, mode)[:, 0, 0, 0]
    expected = {
        "zero": [1, 2, 3, 0, 0, 0, 0],
        "loop": [1, 2, 3, 1, 2, 3, 1],
        "edge": [1, 2, 3, 3, 3, 3, 3],
        "resize": np.linspace(1, 3, 7),
    }[mode]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert T.pad_time(np.ones((20, 1, 1, 3), np.float32), 7, mode).shape[0] == 7  # longer: resized


def test_pad_time_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown pad mode 'wrap'"):
        T.pad_time(np.ones((3, 1, 1, 3), np.float32), 7, "wrap")  # type: ignore[arg-type]


def test_crop_window_eval_is_centred_and_train_is_random_within_bounds():
    assert T.crop_window(100, 0.8) == (10, 90)
    assert T.crop_window(100, 1.0) == (0, 100)
    rng = np.random.default_rng(0)
    windows = [T.crop_window(100, (0.5, 0.9), rng) for _ in range(200)]
    lengths = np.array([b - a for a, b in windows])
    starts = np.array([a for a, _ in windows])
    assert lengths.min() >= 50 and lengths.max() <= 90 and lengths.std() > 5
    assert all(a >= 0 and b <= 100 for a, b in windows) and starts.std() > 3
    assert T.crop_window(100, (0.5, 0.9), np.random.default_rng(0)) == windows[0], "same seed, same crop"
    assert T.crop_window(10, 0.1, min_frames=4) == (3, 7)


def test_crop_resize_trims_empty_frames_first(wave):
    x = np.concatenate([np.zeros_like(wave[:5]), wave, np.zeros_like(wave[:5])], axis=0)
    out = T.crop_resize(x, 16, 1.0)
    np.testing.assert_allclose(out, T.resize_time(wave, 16), atol=1e-6)
    a = T.crop_resize(x, 16, (0.5, 1.0), np.random.default_rng(4))
    b = T.crop_resize(x, 16, (0.5, 1.0), np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert T.frame_mask(a).all()


def test_drop_frames_keeps_at_least_one():
    x = np.ones((50, 1, 2, 3), np.float32)
    assert T.drop_frames(x, np.random.default_rng(0), 1.0).shape[0] == 1
    kept = T.drop_frames(x, np.random.default_rng(0), 0.3).shape[0]
    assert 20 <= kept <= 48


# ---------------------------------------------------------------------------------------------- augmentation


def test_random_rotation_preserves_bone_lengths_and_scale_scales_them(wave):
    raw = _two_bodies(wave)
    mask = T.joint_mask(raw)
    x = T.center(raw, NTU, mask=mask)

    def _bone_lengths(y: np.ndarray) -> np.ndarray:
        return np.linalg.norm(T.bone(y, NTU, mask=mask), axis=-1)

    rot = T.random_affine(x, np.random.default_rng(0), rotate=30.0)
    np.testing.assert_allclose(_bone_lengths(rot), _bone_lengths(x), atol=1e-5)
    assert not np.allclose(rot, x)
    assert not rot[:, 1].any()
    scaled = T.random_affine(x, np.random.default_rng(0), scale=0.2)
    real = [v for v in range(NTU.num_joints) if v != NTU.center]  # the root has no bone
    ratio = _bone_lengths(scaled)[:, 0, real] / _bone_lengths(x)[:, 0, real]
    assert 0.8 <= ratio.mean() <= 1.2 and ratio.std() < 1e-4
    sheared = T.random_affine(x, np.random.default_rng(0), shear=0.3)
    assert not np.allclose(_bone_lengths(sheared), _bone_lengths(x), atol=1e-3)


def test_per_axis_rotation_bounds_only_turn_the_named_axes():
    pts = np.random.default_rng(1).normal(size=(10, 1, 25, 3)).astype(np.float32)
    for seed in range(20):
        m = T.random_affine_matrix(np.random.default_rng(seed), rotate=[0.0, 60.0, 0.0])
        # a rotation about y only: y coordinates unchanged, lengths kept, angle within the bound
        np.testing.assert_allclose(m[1], [0.0, 1.0, 0.0], atol=1e-6)
        assert abs(math.degrees(math.atan2(m[0, 2], m[0, 0]))) <= 60.0 + 1e-4
        out = T.apply_linear(pts, m)
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(pts, axis=-1), rtol=1e-5)
    # one number is the same bound on every axis: the same draw as [a, a, a]
    a = T.random_affine_matrix(np.random.default_rng(3), rotate=25.0)
    b = T.random_affine_matrix(np.random.default_rng(3), rotate=[25.0, 25.0, 25.0])
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="1 or 3 angles"):
        T.random_affine_matrix(np.random.default_rng(0), rotate=[10.0, 20.0])


def test_rotation_matrix_axes():
    r = T.rotation_matrix([0, 0, 90])
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(T.rotation_matrix(90, spatial_dims=2) @ [1, 0], [0, 1], atol=1e-6)


def test_noise_is_added_to_present_joints_only(wave):
    x = _two_bodies(wave)
    out = T.add_noise(x, np.random.default_rng(0), 0.05)
    d = out[:, 0] - x[:, 0]
    assert d.std() == pytest.approx(0.05, rel=0.1)
    assert not out[:, 1].any()


def test_noise_leaves_2d_scores_alone():
    x = np.full((4, 1, 17, 3), 0.5, np.float32)
    out = T.add_noise(x, np.random.default_rng(0), 0.1, spatial_dims=2)
    np.testing.assert_array_equal(out[..., 2], x[..., 2])
    assert not np.allclose(out[..., :2], x[..., :2])


def test_drop_joints_zeroes_whole_joints(wave):
    out = T.drop_joints(wave, np.random.default_rng(3), 0.3)
    gone = ~out.any(axis=(0, 1, 3))
    assert 1 <= gone.sum() <= 16
    np.testing.assert_array_equal(out[:, :, ~gone], wave[:, :, ~gone])


def test_flip_mirrors_and_swaps_sides(wave):
    x = _two_bodies(T.center(wave, NTU))
    f = T.flip(x, NTU)
    np.testing.assert_allclose(T.flip(f, NTU), x)
    lh, rh = NTU.index("left hand"), NTU.index("right hand")
    np.testing.assert_allclose(f[:, 0, lh], x[:, 0, rh] * [-1, 1, 1])
    assert not f[:, 1].any()


# ---------------------------------------------------------------------------------------------- streams


def test_bone_stream(wave):
    x = _two_bodies(wave.copy())
    x[3, 0, NTU.index("right elbow")] = 0.0
    b = T.bone(x, NTU)
    re, rw = NTU.index("right elbow"), NTU.index("right wrist")
    np.testing.assert_allclose(b[0, 0, rw], x[0, 0, rw] - x[0, 0, re])
    assert not b[:, 0, NTU.center].any(), "the root has no bone"
    assert not b[3, 0, rw].any() and not b[3, 0, re].any(), "bones touching an absent joint are zero"
    assert not b[:, 1].any()


def test_bone_stream_2d_keeps_the_smaller_score():
    lay = get_layout("coco17")
    x = np.ones((2, 1, 17, 3), np.float32)
    x[..., 2] = np.linspace(0.1, 0.9, 17)
    b = T.bone(x, lay, spatial_dims=2)
    child, parent = lay.bones[0]
    assert b[0, 0, child, 2] == pytest.approx(min(x[0, 0, child, 2], x[0, 0, parent, 2]))
    assert b[0, 0, child, 0] == 0.0


def test_motion_stream(wave):
    x = _two_bodies(wave.copy())
    x[5, 0, 4] = 0.0
    m = T.motion(x)
    np.testing.assert_allclose(m[0, 0, 2], x[1, 0, 2] - x[0, 0, 2])
    assert not m[-1].any(), "the last frame has no next frame"
    assert not m[4, 0, 4].any() and not m[5, 0, 4].any()
    assert not m[:, 1].any()


def test_to_stream_dispatch(wave):
    np.testing.assert_array_equal(T.to_stream(wave, "joint", NTU), wave)
    np.testing.assert_allclose(T.to_stream(wave, "bone_motion", NTU), T.motion(T.bone(wave, NTU)))
    np.testing.assert_allclose(T.to_stream(wave, "joint_motion", NTU), T.motion(wave))
    with pytest.raises(ValueError, match="unknown stream 'velocity'"):
        T.to_stream(wave, "velocity", NTU)  # type: ignore[arg-type]


def test_default_spatial_dims():
    assert T.default_spatial_dims("ntu25") == 3
    assert T.default_spatial_dims("kinect20") == 3
    assert T.default_spatial_dims("coco17") == 2
    assert T.default_spatial_dims("ntu25", num_channels=2) == 2
