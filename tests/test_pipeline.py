"""SkeletonPipeline and PipelineDataset: shapes, order of steps, determinism by (seed, epoch, index)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from llmskel.data import transforms as T
from llmskel.data.config import AugmentConfig, DataConfig, SyntheticConfig
from llmskel.data.layouts import convert_layout, get_layout
from llmskel.data.pipeline import PipelineDataset, SkeletonPipeline
from llmskel.data.sample import SkeletonDataset, SkeletonSample, skeleton_collate
from llmskel.data.synthetic import make_synthetic_dataset
from llmskel.errors import ConfigError

AUG = AugmentConfig(
    rotate=20, scale=0.1, shear=0.1, noise=0.01, joint_dropout=0.05, frame_dropout=0.1, flip=0.5
)


@pytest.fixture(scope="module")
def dataset() -> SkeletonDataset:
    return make_synthetic_dataset(SyntheticConfig(num_classes=4, samples_per_class=3, num_subjects=3, seed=5))


def _cfg(**kw) -> DataConfig:
    base = dict(num_frames=24, num_bodies=2, augment=AUG)
    base.update(kw)
    return DataConfig(**base)


@pytest.mark.parametrize("stream", ["joint", "bone", "joint_motion", "bone_motion"])
@pytest.mark.parametrize("train", [True, False])
def test_output_shape_dtype_and_label(dataset, stream, train):
    pipe = SkeletonPipeline(_cfg(stream=stream), "ntu25", train=train)
    s = dataset.get(4)
    out = pipe(s, np.random.default_rng(0))
    assert out["x"].shape == (24, 2, 25, 3) and out["x"].dtype == np.float32
    assert out["label"] == s.label and isinstance(out["label"], int)
    assert np.isfinite(out["x"]).all()
    assert not out["x"][:, 1].any(), "the absent second body stays zero through every step"
    assert out["x"][:, 0].any()


def test_eval_pipeline_ignores_the_generator(dataset):
    pipe = SkeletonPipeline(_cfg(stream="bone", align_view=True, normalize_scale=True), "ntu25", train=False)
    s = dataset.get(0)
    a = pipe(s, np.random.default_rng(0))["x"]
    b = pipe(s, np.random.default_rng(123))["x"]
    c = pipe(s, None)["x"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_train_pipeline_is_random_but_reproducible(dataset):
    pipe = SkeletonPipeline(_cfg(), "ntu25", train=True)
    s = dataset.get(0)
    a = pipe(s, np.random.default_rng(7))["x"]
    b = pipe(s, np.random.default_rng(7))["x"]
    c = pipe(s, np.random.default_rng(8))["x"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_eval_pipeline_equals_the_transforms_in_order(dataset):
    """Eval = bodies -> valid frames -> centred crop -> centre -> align -> scale -> stream."""
    cfg = _cfg(stream="joint_motion", eval_crop=0.8, align_view=True, normalize_scale=True)
    s = dataset.get(2)
    out = SkeletonPipeline(cfg, "ntu25", train=False)(s)["x"]
    lay = get_layout("ntu25")
    x = T.select_bodies(s.data, 2)
    x = T.crop_resize(x, 24, 0.8)
    mask = T.joint_mask(x)
    x = T.normalize_scale(T.align_view(T.center(x, lay, mask=mask), lay, mask=mask), lay, mask=mask)
    np.testing.assert_allclose(out, T.motion(x, mask=mask), atol=1e-6)


def test_centring_puts_the_origin_of_the_first_frame_at_zero(dataset):
    pipe = SkeletonPipeline(_cfg(augment=AugmentConfig()), "ntu25", train=False)
    x = pipe(dataset.get(1))["x"]
    origin = list(get_layout("ntu25").origin_joints)
    np.testing.assert_allclose(x[0, 0, origin].mean(axis=0), 0.0, atol=1e-6)


def test_short_sequence_padding_policy():
    data = np.random.default_rng(0).normal(size=(10, 1, 25, 3)).astype(np.float32) + 5
    s = SkeletonSample(data, "ntu25", label=0)
    zero = SkeletonPipeline(_cfg(pad_mode="zero", center=False), "ntu25")(s)["x"]
    assert T.frame_mask(zero).sum() == 10 and not zero[10:].any()
    loop = SkeletonPipeline(_cfg(pad_mode="loop", center=False), "ntu25")(s)["x"]
    np.testing.assert_array_equal(loop[10:20, :1], data)
    stretched = SkeletonPipeline(_cfg(pad_mode="resize", center=False), "ntu25")(s)["x"]
    assert T.frame_mask(stretched).all()


def test_layout_conversion_and_2d_scores(dataset):
    s = dataset.get(0)
    kin = SkeletonPipeline(_cfg(), "kinect20", train=True)(s, np.random.default_rng(0))["x"]
    assert kin.shape == (24, 2, 20, 3)
    # 2D pose-estimator data: channel 2 is a score the geometry must not touch
    xy = convert_layout(s.data, "ntu25", "coco17")[..., :2] * 100 + 300
    score = np.random.default_rng(1).uniform(0.3, 1.0, (*xy.shape[:-1], 1))
    s2 = SkeletonSample(np.concatenate([xy, score], axis=-1).astype(np.float32), "coco17", label=1)
    pipe = SkeletonPipeline(_cfg(num_bodies=1, align_view=True, augment=dataclasses.replace(AUG, joint_dropout=0, frame_dropout=0)),
                            "coco17", train=True)  # fmt: skip
    assert pipe.spatial_dims(s2) == 2
    out = pipe(s2, np.random.default_rng(0))["x"]
    assert out[..., 2].min() >= 0.3 and out[..., 2].max() <= 1.0
    # the synthetic generator marks its data as 3D, whatever the layout
    s3 = dataset.get(0).replace(data=convert_layout(s.data, "ntu25", "coco17"), layout="coco17")
    assert SkeletonPipeline(_cfg(), "coco17").spatial_dims(s3) == 3


def test_spatial_dims_config_is_validated():
    with pytest.raises(ConfigError, match="data.spatial_dims"):
        DataConfig(spatial_dims=4).validate()


def test_pipeline_dataset_depends_on_seed_epoch_index_only(dataset):
    ds = PipelineDataset(dataset, SkeletonPipeline(_cfg(), "ntu25", train=True), seed=3)
    a = ds[5]
    assert a["index"] == 5 and a["label"] == dataset.get(5).label
    np.testing.assert_array_equal(ds[5]["x"], a["x"])
    other = PipelineDataset(dataset, SkeletonPipeline(_cfg(), "ntu25", train=True), seed=3)
    np.testing.assert_array_equal(other[5]["x"], a["x"])
    ds.set_epoch(1)
    assert not np.allclose(ds[5]["x"], a["x"])
    ds.set_epoch(0)
    np.testing.assert_array_equal(ds[5]["x"], a["x"])
    assert len(ds) == len(dataset) and ds.classes == dataset.classes and ds.layout == "ntu25"
    np.testing.assert_array_equal(ds.labels, dataset.labels)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_batches_identical_across_worker_counts(dataset):
    ds = PipelineDataset(dataset, SkeletonPipeline(_cfg(), "ntu25", train=True), seed=11)
    ds.set_epoch(2)

    def batches(workers: int) -> list[dict]:
        loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=workers, collate_fn=skeleton_collate)
        return list(loader)

    single, multi = batches(0), batches(2)
    assert len(single) == len(multi) == 3
    for a, b in zip(single, multi):
        assert a["x"].shape == (4, 3, 24, 25, 2)  # (N, C, T, V, M)
        torch.testing.assert_close(a["x"], b["x"])
        torch.testing.assert_close(a["index"], b["index"])
        torch.testing.assert_close(a["label"], b["label"])
