"""From a :class:`~llmskel.data.sample.SkeletonSample` to a fixed-size model input.

:class:`SkeletonPipeline` chains the transforms of :mod:`llmskel.data.transforms` in one fixed
order, configured by the ``data:`` section (:class:`~llmskel.data.config.DataConfig`):

1. bodies: keep ``num_bodies`` (most active first, zero-padded);
2. valid frames: trim leading/trailing frames with no body;
3. frame dropout (training only);
4. temporal crop to ``num_frames``: a random fraction in ``train_crop`` at a random offset when
   training, a centred ``eval_crop`` otherwise; short crops are stretched or padded (``pad_mode``);
5. spatial normalisation: centre on the layout origin, align the view, normalise the scale;
6. augmentation (training only): flip, rotation/scale/shear, joint noise, joint dropout;
7. the input stream: joint, bone, joint motion or bone motion.

The evaluation pipeline never draws from the generator, so its output depends on the sample only.

:class:`PipelineDataset` applies a pipeline to a dataset with a generator seeded by
``(seed, epoch, index)``: a sample's augmentation is the same whatever the number of DataLoader
workers and in a resumed run. Call :meth:`PipelineDataset.set_epoch` before each epoch; with
``persistent_workers=True`` the workers keep the epoch they were started with, so leave it off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import SkeletonFormatError
from . import transforms as T
from .config import DataConfig
from .joint_space import (
    JOINT_SPACE,
    can_map,
    check_dims,
    layout_mask,
    project_to_2d,
    sample_spatial_dims,
    to_joint_space,
)
from .layouts import Layout, can_convert, convert_layout, get_layout
from .sample import BaseSkeletonDataset, SkeletonSample


class SkeletonPipeline:
    """``pipeline(sample, rng) -> {"x": (num_frames, num_bodies, V, C) float32, "label": int}``."""

    def __init__(self, cfg: DataConfig, layout: str | Layout, train: bool = False):
        self.cfg = cfg
        # joint space (llmskel.data.joint_space): every layout is mapped into omni25, with a mask channel
        self.joint_space = bool(getattr(cfg, "joint_space", False))
        self.layout = get_layout(JOINT_SPACE if self.joint_space else layout)
        self.train = bool(train)
        self.augment = cfg.augment
        aug = self.augment  # whether a random linear map is drawn: decided once, not per sample
        self._affine = bool(np.any(np.asarray(aug.rotate) > 0) or aug.scale > 0 or aug.shear > 0)
        # joint-space masks a sample may be cut down to (augment.layout_dropout)
        use = self.joint_space and aug.layout_dropout > 0
        self._sparse = [layout_mask(n) for n in aug.layout_dropout_to] if use else []
        subset = getattr(cfg, "joint_subset", None)
        self._subset = layout_mask(subset) if self.joint_space and subset else None

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"SkeletonPipeline(layout={self.layout.name!r}, train={self.train}, frames={c.num_frames}, "
            f"bodies={c.num_bodies}, stream={c.stream!r})"
        )

    def spatial_dims(self, sample: SkeletonSample) -> int:
        """Config value, else the sample's ``extra["spatial_dims"]``, else the layout's default."""
        if self.cfg.spatial_dims is not None:
            return int(self.cfg.spatial_dims)
        if self.joint_space:
            return 3
        if "spatial_dims" in sample.extra:
            return int(sample.extra["spatial_dims"])
        return T.default_spatial_dims(self.layout, sample.data.shape[-1])

    def _joint_space_array(self, sample: SkeletonSample, x: np.ndarray, s: int, rng) -> np.ndarray:
        """The sample in the joint space with the model's spatial dims: a 2D sample for a 3D model is an
        error; a 3D sample for a 2D model is projected (a random camera when training, else frontal)."""
        src = get_layout(sample.layout)
        if not can_map(src.name):
            raise SkeletonFormatError(
                sample.source, f"layout {src.name!r} has no mapping into the joint space"
            )
        dims = sample_spatial_dims(src.name, x.shape[-1], sample.extra, default=s)
        check_dims(sample.source or "input", src.name, dims, s)
        x = to_joint_space(x, src.name, dims)
        if s == 2 and dims == 3:
            x = project_to_2d(x, rng if self.train else None, self.cfg.project)
        return x

    def _array(self, sample: SkeletonSample, rng=None) -> np.ndarray:
        x = np.asarray(sample.data, dtype=np.float32)
        if x.ndim != 4:
            raise SkeletonFormatError(sample.source, f"expected a (T, M, V, C) array, got shape {x.shape}")
        if self.joint_space:
            return self._joint_space_array(sample, x, self.spatial_dims(sample), rng)
        src = get_layout(sample.layout)
        if src.name != self.layout.name:
            if not can_convert(src, self.layout):
                raise SkeletonFormatError(
                    sample.source,
                    f"layout {src.name!r} cannot be converted to the pipeline's layout {self.layout.name!r}",
                )
            x = convert_layout(x, src, self.layout)
        return x

    def __call__(self, sample: SkeletonSample, rng: np.random.Generator | None = None) -> dict[str, Any]:
        cfg, aug, lay = self.cfg, self.augment, self.layout
        train = self.train and rng is not None
        s = self.spatial_dims(sample)
        x = self._array(sample, rng if train else None)  # (T, M, V, C)
        if self._subset is not None:
            x = x * self._subset[None, None, :, None].astype(x.dtype)
        if train and self._sparse and rng.random() < aug.layout_dropout:
            keep = self._sparse[int(rng.integers(len(self._sparse)))]
            x = x * keep[None, None, :, None].astype(x.dtype)
        if train and s == 2 and aug.score_jitter > 0 and x.shape[-1] >= 3:
            x = x.copy()
            x[..., 2] *= rng.uniform(1.0 - aug.score_jitter, 1.0, x.shape[:3]).astype(x.dtype)
        x = T.select_bodies(x, cfg.num_bodies)
        present = T.joint_mask(x)  # (T, M, V), read once before centring zeroes the origin joint
        # bodies that never appear stay zero through every step: leave them out until the end
        active = present.any(axis=(0, 2))  # (M,)
        if not active.all() and active.any():
            x, present = x[:, active], present[:, active]
        start, stop = T.valid_range(x, present)
        if stop == 0:  # no body in any frame
            start, stop = 0, 1
        x, present = x[start:stop], present[start:stop]
        if train and aug.frame_dropout > 0:
            keep = T.frame_keep(rng, x.shape[0], aug.frame_dropout)
            x, present = x[keep], present[keep]
        crop = tuple(cfg.train_crop) if train else float(cfg.eval_crop)
        start, stop = T.crop_window(x.shape[0], crop, rng if train else None)
        x, present = x[start:stop], present[start:stop]
        length = x.shape[0]
        x = T.pad_time(x, cfg.num_frames, cfg.pad_mode, mask=present)
        if present.all():  # the common case: no mask to recompute
            mask = np.ones(x.shape[:3], bool)  # (T, M, V)
            if cfg.pad_mode == "zero":
                mask[length:] = False
        else:
            mask = T.joint_mask(x)
        if cfg.center:
            x = T.center(x, lay, s, mask=mask)
        if cfg.align_view:
            x = T.align_view(x, lay, s, mask=mask)
        if cfg.normalize_scale:
            x = T.normalize_scale(x, lay, s, mask=mask)
        if train:
            if aug.flip > 0 and rng.random() < aug.flip:
                x = T.flip(x, lay)
                mask = np.take(mask, lay.permutation_for_flip(), axis=2)
            if self._affine:
                x = T.random_affine(x, rng, aug.rotate, aug.scale, aug.shear, s)
            if aug.noise > 0:
                x = T.add_noise(x, rng, aug.noise, s, mask=mask)
            if aug.joint_dropout > 0:
                keep = T.joint_keep(rng, x.shape[2], aug.joint_dropout)  # (V,)
                x = x * keep[:, None].astype(x.dtype)
                mask = mask & keep
        x = T.to_stream(x, cfg.stream, lay, s, mask=mask)
        if self.joint_space and s == 3:  # the mask channel: which joints exist (2D: the score channel says)
            x = np.concatenate([x, mask[..., None].astype(np.float32)], axis=-1)
        if x.shape[1] != cfg.num_bodies:
            full = np.zeros((x.shape[0], cfg.num_bodies, *x.shape[2:]), np.float32)
            full[:, active] = x
            x = full
        return {"x": np.ascontiguousarray(x, dtype=np.float32), "label": int(sample.label)}


class PipelineDataset(torch.utils.data.Dataset):
    """A dataset seen through a pipeline, with augmentation seeded by ``(seed, epoch, index)``.

    Items are the pipeline's dict plus ``"index"``; batch them with
    :func:`~llmskel.data.sample.skeleton_collate`.
    """

    def __init__(self, dataset: BaseSkeletonDataset, pipeline: SkeletonPipeline, seed: int = 0):
        self.dataset = dataset
        self.pipeline = pipeline
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def rng_for(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        i %= len(self)
        out = self.pipeline(self.dataset.get(i), self.rng_for(i))
        out["index"] = i
        return out

    @property
    def classes(self) -> list[str]:
        return list(self.dataset.classes)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes)

    @property
    def layout(self) -> str:
        return self.dataset.layout

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels

    def __repr__(self) -> str:
        return f"PipelineDataset({self.dataset!r}, {self.pipeline!r}, seed={self.seed}, epoch={self.epoch})"
