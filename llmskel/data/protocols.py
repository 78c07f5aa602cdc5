"""Train / test protocols: :func:`split_indices` turns a protocol name into two index arrays.

=========================  ==============================================================
dataset                    protocols
=========================  ==============================================================
synthetic                  ``xsub`` (odd subjects train, even test)
nw-ucla                    ``xview`` (views 1, 2 train; view 3 test: 1020 / 464)
utkinect                   ``xsub`` (odd subjects train, even test), ``loso-<k>`` (subject k
                           tests, the others train)
ntu                        ``ntu60-xsub``, ``ntu60-xview`` (cameras 2, 3 train; 1 test),
                           ``ntu120-xsub``, ``ntu120-xset`` (even setups train, odd test);
                           the NTU-60 protocols use setups 1-17 only. ``xsub`` / ``xview`` /
                           ``xset`` are short for the NTU-120 (or NTU-60) ones.
utd-mhad                   ``xsub`` (odd subjects 1, 3, 5, 7 train, even test: 431 / 430)
penn-action                ``official`` (the dataset's train flag: 1,258 / 1,068)
any                        ``none`` (everything in train and in test), ``split`` (each sample's
                           ``extra["split"]``: train, or test / val), ``split:<name>`` (pyskl
                           style: ``<name>_train`` vs ``<name>_val`` / ``<name>_test``),
                           ``split:<train>,<test>`` (two named splits), ``xsub``, ``loso-<k>``
=========================  ==============================================================

``default`` picks the dataset's standard protocol. Which protocols a dataset has, and its default,
come from its record in :mod:`llmskel.data.datasets`; the rules here are the generic ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .sample import BaseSkeletonDataset

# fmt: off
NTU60_XSUB_TRAIN: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_XSUB_TRAIN: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52,
     53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97,
     98, 100, 103))
# fmt: on
NTU_XVIEW_TRAIN_CAMERAS: frozenset[int] = frozenset((2, 3))
NWUCLA_XVIEW_TRAIN_VIEWS: frozenset[int] = frozenset((1, 2))

_GENERIC = ("none", "split", "split:<name>", "split:<train>,<test>", "xsub", "loso-<subject>")
_TEST_SPLIT_NAMES = ("test", "val", "validation", "eval")


def _record(kind: str | None) -> Any:
    """The dataset record of ``kind`` (see :mod:`llmskel.data.datasets`); None for ``other``."""
    from .datasets import find_dataset

    return None if not kind or kind == "other" else find_dataset(kind)


def dataset_kind(dataset: BaseSkeletonDataset) -> str:
    """The registered dataset a dataset's name says it is (``ntu``, ``nw-ucla``, ``utd-mhad``, ...),
    or ``other`` (see :func:`llmskel.data.datasets.kind_of_name`)."""
    from .datasets import kind_of_name

    return kind_of_name(getattr(dataset, "name", "") or "")


def default_protocol(dataset: BaseSkeletonDataset, kind: str | None = None) -> str:
    rec = _record(kind or dataset_kind(dataset))
    return rec.default_for(dataset) if rec is not None else "split"


def valid_protocols(kind: str) -> tuple[str, ...]:
    rec = _record(kind)
    return rec.valid_protocols() if rec is not None and not rec.generic else _GENERIC


def split_indices(
    dataset: BaseSkeletonDataset, protocol: str, kind: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) of ``protocol`` on ``dataset`` (sorted int64 arrays).

    ``kind`` defaults to :func:`dataset_kind`. An unknown protocol, or a dataset whose samples
    lack what the protocol needs (subjects, views, split names), raises :class:`ConfigError`
    listing the valid protocols.
    """
    kind = kind or dataset_kind(dataset)
    p = (protocol or "default").strip().lower()
    if p == "default":
        p = default_protocol(dataset, kind)
    rec = _record(kind)
    if rec is not None:
        p = rec.resolve_protocol(p, dataset)
    metas = [dataset.meta(i) for i in range(len(dataset))]
    n = len(metas)
    if p == "none":
        idx = np.arange(n, dtype=np.int64)
        return idx, idx.copy()
    rule = _rule(p, kind)
    train, test = [], []
    for i, m in enumerate(metas):
        side = rule(m)
        if side == "train":
            train.append(i)
        elif side == "test":
            test.append(i)
    tr, te = np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
    if tr.size == 0 and te.size == 0:
        names = sorted({str(x) for m in metas for x in _split_names(m)})
        hint = f"; split names in the data: {', '.join(names)}" if names else ""
        raise ConfigError(
            f"protocol {protocol!r} selects no sample of dataset {dataset.name!r} ({n} samples){hint}"
        )
    return tr, te


def _split_names(m: dict[str, Any]) -> list[Any]:
    extra = m.get("extra") or {}
    return list(extra.get("splits", [])) + ([extra["split"]] if extra.get("split") is not None else [])


def _need(m: dict[str, Any], key: str, protocol: str) -> int:
    v = m.get(key)
    if v is None:
        raise ConfigError(
            f"protocol {protocol!r} needs the {key} of every sample, and {m.get('source') or 'a sample'} has none"
        )
    return int(v)


def _rule(p: str, kind: str) -> Callable[[dict[str, Any]], str | None]:
    valid = valid_protocols(kind)
    rec = _record(kind)
    if rec is not None and p in rec.protocols:
        return rec.protocols[p]
    subjects = rec is None or rec.subject_protocols
    if p == "xsub" and subjects:
        return lambda m: _side(_need(m, "subject", p) % 2 == 1)
    if p.startswith("loso-") and subjects:
        try:
            k = int(p[5:])
        except ValueError:
            raise ConfigError(f"protocol {p!r}: the subject after 'loso-' must be an integer") from None
        return lambda m: "test" if _need(m, "subject", p) == k else "train"
    if p == "split":
        return _split_column_for(valid)
    if p.startswith("split:"):
        return _named_splits(p)
    raise ConfigError(
        f"unknown protocol {p!r} for dataset kind {kind!r}; valid protocols: {', '.join(valid)}"
    )


def _side(is_train: bool) -> str:
    return "train" if is_train else "test"


def _split_column_for(valid: tuple[str, ...]) -> Callable[[dict[str, Any]], str | None]:
    def rule(m: dict[str, Any]) -> str | None:
        return _split_column(m, valid)

    return rule


def _split_column(m: dict[str, Any], valid: tuple[str, ...] = _GENERIC) -> str | None:
    s = (m.get("extra") or {}).get("split")
    if s is None:
        others = ", ".join(v for v in valid if v != "split")
        raise ConfigError(
            f"protocol 'split' needs a split (train / test) for every sample, and {m.get('source') or 'a sample'} "
            "has none (a 'split' column in the labels CSV, or split data files); set data.protocol to one of "
            f"the other protocols: {others} (xsub and loso-<subject> need a 'subject' column; none puts every "
            "sample in train and test)"
        )
    s = str(s).lower()
    if s == "train":
        return "train"
    if s in _TEST_SPLIT_NAMES:
        return "test"
    return None


def _named_splits(p: str) -> Callable[[dict[str, Any]], str | None]:
    spec = p.split(":", 1)[1]
    names = [x.strip() for x in spec.split(",") if x.strip()]
    if len(names) == 2:
        tr_names, te_names = (names[0],), (names[1],)
    elif len(names) == 1:
        tr_names = (f"{names[0]}_train",)
        te_names = tuple(f"{names[0]}_{t}" for t in ("val", "test"))
    else:
        raise ConfigError(f"protocol {p!r}: write 'split:<name>' or 'split:<train>,<test>'")

    def rule(m: dict[str, Any]) -> str | None:
        extra = m.get("extra") or {}
        member = {str(x).lower() for x in extra.get("splits", [])}
        if extra.get("split") is not None:
            member.add(str(extra["split"]).lower())
        if member & set(tr_names):
            return "train"
        if member & set(te_names):
            return "test"
        return None

    return rule
