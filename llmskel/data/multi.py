"""Several datasets in one experiment (``data.sources``): :func:`load_sources`.

Each source is loaded with its own dataset, root and protocol (:func:`~llmskel.data.sources.load_source`);
its samples are mapped into the joint space (:mod:`llmskel.data.joint_space`) and relabelled into one
class list, the **union by text**:

* two classes whose normalised names are equal (:func:`class_key`: lower case, ``_`` and ``-`` as
  spaces, punctuation and repeated spaces dropped) are one class, whichever dataset they come from:
  ``"sit down"`` of NW-UCLA and ``"Sit down"`` of UTKinect are one label;
* near paraphrases (UTD-MHAD's ``"stand to sit"``) stay separate classes: merging them would be a
  guess. Their text embeddings lie close, so a zero-shot model treats them as neighbours;
  :func:`similar_class_pairs` lists the pairs above a cosine threshold for a report.

The result is one in-memory :class:`~llmskel.data.sample.SkeletonDataset` in the joint space whose
samples carry ``extra["source"]`` (the source name), ``extra["source_layout"]`` and
``extra["spatial_dims"]``, with train / test indices and a sampling weight per training sample.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import DataConfig, SourceConfig
from .joint_space import JOINT_SPACE, sample_spatial_dims, to_joint_space
from .sample import SkeletonDataset

log = logging.getLogger(__name__)


def class_key(name: str) -> str:
    """The text two class names are merged by: lower case, ``_``/``-`` as spaces, no punctuation."""
    s = re.sub(r"[_\-/]+", " ", str(name).lower())
    s = re.sub(r"[^\w\s()]", "", s)
    return re.sub(r"\s+", " ", s).strip()


def merge_classes(class_lists: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """(union of class names, per list the index of each of its classes in the union); identical
    normalised names (:func:`class_key`) are one class, named as first seen."""
    union: list[str] = []
    index: dict[str, int] = {}
    maps = []
    for names in class_lists:
        m = []
        for n in names:
            k = class_key(n)
            if k not in index:
                index[k] = len(union)
                union.append(str(n))
            m.append(index[k])
        maps.append(m)
    return union, maps


def similar_class_pairs(classes: Sequence[str], emb, threshold: float = 0.75) -> list[tuple[str, str, float]]:
    """Pairs of distinct classes whose (normalised) text embeddings ``emb`` (K, E) have cosine >= threshold,
    most similar first: the near paraphrases that stay separate classes."""
    import torch

    e = torch.nn.functional.normalize(torch.as_tensor(emb).float(), dim=-1)
    sim = (e @ e.T).numpy()
    out = [(classes[i], classes[j], float(sim[i, j])) for i in range(len(classes)) for j in range(i + 1, len(classes))
           if sim[i, j] >= threshold]  # fmt: skip
    return sorted(out, key=lambda r: -r[2])


@dataclass
class MultiSource:
    dataset: SkeletonDataset  # every sample, in the joint space, labels into the union
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_weights: np.ndarray  # per training sample (aligned with train_idx)
    source_of: np.ndarray  # per sample, the index of its source
    source_names: list[str]
    source_classes: list[list[str]]  # per source, its classes (names in the union)


def source_data_config(cfg: DataConfig, src: SourceConfig) -> DataConfig:
    """The single-dataset config of one source (the experiment's other data keys kept)."""
    sub = copy.copy(cfg)
    sub.sources = None
    sub.joint_space = False
    sub.dataset, sub.root, sub.protocol = src.dataset, src.root, src.protocol
    sub.layout, sub.classes = src.layout, src.classes
    sub.train_classes = sub.test_classes = None
    return sub


def load_sources(cfg: DataConfig) -> MultiSource:
    """Load every source of ``cfg.sources`` (see the module docstring)."""
    from .sources import load_source

    loaded = []
    for src in cfg.sources or []:
        ds, tr, te = load_source(source_data_config(cfg, src))
        if src.use == "train":
            te = te[:0]
        elif src.use == "test":
            tr = tr[:0]
        loaded.append((src, ds, tr, te))
    union, maps = merge_classes([list(ds.classes) for _, ds, _, _ in loaded])
    samples, train, test, weights, owner = [], [], [], [], []
    names = []
    for k, (src, ds, tr, te) in enumerate(loaded):
        name = src.name or src.dataset
        names.append(name)
        for idx, into in ((tr, train), (te, test)):
            for i in idx:
                s = ds.get(int(i))
                dims = sample_spatial_dims(s.layout, s.data.shape[-1], s.extra, default=cfg.spatial_dims)
                data = to_joint_space(s.data, s.layout, dims)
                label = maps[k][s.label] if s.label >= 0 else -1
                extra = dict(s.extra, source=name, source_layout=s.layout, spatial_dims=dims)
                into.append(len(samples))
                samples.append(s.replace(data=data, layout=JOINT_SPACE, label=label,
                                         label_name=union[label] if label >= 0 else None, extra=extra))  # fmt: skip
                owner.append(k)
                if into is train:
                    weights.append(float(src.weight))
        log.info("source %s (%s, %s): %d train / %d test samples, %d classes", name, src.dataset, src.protocol,
                 len(tr), len(te), len(ds.classes))  # fmt: skip
    merged = sum(len(ds.classes) for _, ds, _, _ in loaded) - len(union)
    log.info("sources: %d classes in the union (%d merged by name)", len(union), merged)
    full = SkeletonDataset(samples, union, JOINT_SPACE, name="+".join(names))
    return MultiSource(full, np.asarray(train, np.int64), np.asarray(test, np.int64), np.asarray(weights, np.float64),
                       np.asarray(owner, np.int64), names, [[union[j] for j in m] for m in maps])  # fmt: skip


__all__ = [
    "MultiSource",
    "class_key",
    "load_sources",
    "merge_classes",
    "similar_class_pairs",
    "source_data_config",
]
