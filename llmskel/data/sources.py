"""From a ``data:`` config to a dataset and its train / test indices: :func:`load_source`.

``cfg.dataset`` picks the reader; ``cfg.root`` is its folder / file (a prepared cache works for
every dataset, and is what NTU should use at full size); ``cfg.protocol`` the split (see
:mod:`llmskel.data.protocols`); ``cfg.train_classes`` / ``cfg.test_classes`` restrict each side to
those class names (zero-shot seen / unseen splits).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .cache import CachedSkeletonDataset, is_cache
from .config import DataConfig
from .protocols import dataset_kind, split_indices
from .sample import BaseSkeletonDataset, SkeletonDataset

log = logging.getLogger(__name__)


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise ConfigError(f"config key 'data.root' is required for dataset {cfg.dataset!r}")
    p = Path(cfg.root).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"data.root for dataset {cfg.dataset!r} not found: {p}")
    return p


def load_dataset(cfg: DataConfig) -> tuple[BaseSkeletonDataset, str]:
    """The full dataset named by ``cfg`` and its protocol kind (see :func:`dataset_kind`).

    ``cfg.dataset`` names a record of :mod:`llmskel.data.datasets`, whose ``load`` reads the root;
    a prepared cache is read as a cache whatever the dataset.
    """
    from .datasets import get_dataset

    rec = get_dataset(cfg.dataset)
    kind = "other" if rec.generic else rec.name
    if not rec.needs_root or rec.name == "hf":  # hf: an export folder or a Hub id
        return rec.func("load")(None, cfg), kind
    root = _root(cfg)
    if is_cache(root):
        ds = CachedSkeletonDataset(root)
        return ds, (dataset_kind(ds) if rec.generic else kind)
    return rec.func("load")(root, cfg), kind


def _load_hf(cfg: DataConfig) -> SkeletonDataset:
    from .hf import hf_splits, load_hf_skeletons

    if not cfg.root:
        raise ConfigError(
            "config key 'data.root' (an export folder or a Hub dataset id) is required for dataset 'hf'"
        )
    p = Path(cfg.root).expanduser()
    if p.exists():
        splits = hf_splits(p) or ["train"]
        src = str(p)
    elif "/" in cfg.root and not cfg.root.startswith((".", "/", "~")) and cfg.root.count("/") == 1:
        splits, src = ["train", "test"], cfg.root  # a Hub id
    else:
        raise FileNotFoundError(f"data.root for dataset 'hf' not found: {p}")
    parts = []
    for s in splits:
        try:
            parts.append(load_hf_skeletons(src, s))
        except Exception as e:  # a Hub dataset without this split
            if s == "train":
                raise
            log.info("no split %r in %s (%s)", s, src, e)
    samples = [x for part in parts for x in part.samples]
    return SkeletonDataset(samples, parts[0].classes, parts[0].layout, name=parts[0].name)


def class_indices(dataset: BaseSkeletonDataset, names: list[str], key: str) -> np.ndarray:
    """Label indices of class ``names``; an unknown name lists the dataset's classes."""
    lookup = {c: i for i, c in enumerate(dataset.classes)}
    unknown = [n for n in names if n not in lookup]
    if unknown:
        raise ConfigError(
            f"config key 'data.{key}' names unknown class(es) {', '.join(map(repr, unknown))}; "
            f"classes of {dataset.name!r}: {', '.join(dataset.classes)}"
        )
    return np.array([lookup[n] for n in names], dtype=np.int64)


def load_source(cfg: DataConfig) -> tuple[BaseSkeletonDataset, np.ndarray, np.ndarray]:
    """(full dataset, train indices, test indices) for ``cfg`` (see the module docstring)."""
    ds, kind = load_dataset(cfg)
    train, test = split_indices(ds, cfg.protocol, kind)
    labels = ds.labels
    if cfg.train_classes is not None:
        train = train[np.isin(labels[train], class_indices(ds, list(cfg.train_classes), "train_classes"))]
    if cfg.test_classes is not None:
        test = test[np.isin(labels[test], class_indices(ds, list(cfg.test_classes), "test_classes"))]
    log.info(
        "%s: %d samples, %d train / %d test (protocol %s)",
        ds.name,
        len(ds),
        train.size,
        test.size,
        cfg.protocol,
    )
    return ds, train, test
