"""Datasets and loaders of one experiment, built from its ``data:`` section."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.config import DataConfig
from ..data.sample import BaseSkeletonDataset, skeleton_collate

logger = logging.getLogger(__name__)


@dataclass
class DataBundle:
    full: BaseSkeletonDataset  # every sample of the source
    train: torch.utils.data.Dataset  # PipelineDataset over the train indices (augmenting)
    test: torch.utils.data.Dataset  # PipelineDataset over the test indices (deterministic)
    train_idx: np.ndarray
    test_idx: np.ndarray
    classes: list[str]
    layout: str
    channels: int
    dataset: str = ""
    protocol: str = ""
    val: torch.utils.data.Dataset | None = None  # held out from train when data.val_fraction > 0
    val_idx: np.ndarray | None = None
    # multi-source (data.sources): a sampling weight per sample of ``full`` (None: uniform), the source
    # index of each sample and the source names
    sample_weights: np.ndarray | None = None
    source_of: np.ndarray | None = None
    source_names: list[str] | None = None

    @property
    def train_labels(self) -> np.ndarray:
        return self.full.labels[self.train_idx]

    @property
    def test_labels(self) -> np.ndarray:
        return self.full.labels[self.test_idx]


def build_data(cfg: DataConfig, seed: int) -> DataBundle:
    from ..data.pipeline import PipelineDataset, SkeletonPipeline
    from ..data.sources import load_source

    weights = source_of = source_names = None
    if cfg.sources:
        from ..data.multi import load_sources

        multi = load_sources(cfg)
        full, train_idx, test_idx = multi.dataset, multi.train_idx, multi.test_idx
        source_of, source_names = multi.source_of, multi.source_names
        if len(np.unique(multi.train_weights)) > 1:
            weights = np.ones(len(full))
            weights[train_idx] = multi.train_weights
    else:
        full, train_idx, test_idx = load_source(cfg)
    train_idx, test_idx = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
    if len(train_idx) == 0:
        raise ValueError(f"dataset {cfg.dataset!r} with protocol {cfg.protocol!r} has no training samples")
    if cfg.joint_space:  # (x, y, z, mask) or (x, y, score): see llmskel.data.joint_space
        channels = 4 if cfg.spatial_dims == 3 else 3
    else:
        channels = int(full.get(int(train_idx[0])).data.shape[-1])
    val_idx = None
    if cfg.val_fraction > 0:
        train_idx, val_idx = stratified_holdout(full.labels[train_idx], train_idx, cfg.val_fraction, seed)
    eval_pipe = SkeletonPipeline(cfg, full.layout, train=False)
    layout = eval_pipe.layout.name  # the joint space when data.joint_space is on
    train = PipelineDataset(full.subset(train_idx), SkeletonPipeline(cfg, full.layout, train=True), seed=seed)
    test = PipelineDataset(full.subset(test_idx), eval_pipe, seed=seed)
    val = PipelineDataset(full.subset(val_idx), eval_pipe, seed=seed) if val_idx is not None else None
    logger.info("data %s (%s): %d train / %s val / %d test samples, %d classes, layout %s", cfg.dataset,
                cfg.protocol, len(train_idx), 0 if val_idx is None else len(val_idx), len(test_idx),
                len(full.classes), layout)  # fmt: skip
    dataset, protocol = cfg.dataset, cfg.protocol
    if cfg.sources:
        dataset = "+".join(source_names or [])
        protocol = ", ".join(f"{s.name or s.dataset}: {s.protocol}" for s in cfg.sources)
    return DataBundle(full, train, test, train_idx, test_idx, list(full.classes), layout, channels,
                      dataset, protocol, val, val_idx, weights, source_of, source_names)  # fmt: skip


def stratified_holdout(labels: np.ndarray, idx: np.ndarray, fraction: float, seed: int):
    """Split ``idx`` into (keep, held_out), holding out ``fraction`` of each class (at least one
    sample of every class with two or more), reproducibly for a seed."""
    rng = np.random.default_rng([seed, 7919])
    keep, held = [], []
    for c in np.unique(labels):
        members = idx[labels == c]
        members = members[rng.permutation(len(members))]
        k = int(round(fraction * len(members)))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        else:
            k = 0
        held.append(members[:k])
        keep.append(members[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def make_loaders(bundle: DataBundle, batch_size: int, eval_batch_size: int, num_workers: int, seed: int):
    """Train loader (shuffled; its own generator so that iterator creation never draws from the
    global torch RNG, which keeps a resumed run's dropout masks identical) and test loader."""
    n = len(bundle.train)
    drop_last = n >= 4 * batch_size  # drop a ragged last batch once there are several full ones
    g = torch.Generator()
    g.manual_seed(seed)
    sampler = None
    if bundle.sample_weights is not None:  # data.sources weights: draw with replacement, n per epoch
        w = torch.as_tensor(bundle.sample_weights[bundle.train_idx], dtype=torch.double)
        sampler = torch.utils.data.WeightedRandomSampler(w, num_samples=n, replacement=True, generator=g)
    train = DataLoader(bundle.train, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                       num_workers=num_workers, collate_fn=skeleton_collate, drop_last=drop_last,
                       generator=g if sampler is None else None, persistent_workers=False)  # fmt: skip
    test = DataLoader(bundle.test, batch_size=eval_batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=skeleton_collate)  # fmt: skip
    return train, test


def make_eval_loader(ds, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=skeleton_collate
    )
