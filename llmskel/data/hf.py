"""Export any skeleton dataset to Hugging Face ``datasets`` Parquet, and load it back.

An export folder (ready for ``datasets.load_dataset(folder)`` or a Hub dataset repository)::

    README.md                             dataset card; its YAML ``configs:`` names the split files
    data/train-00000-of-00001.parquet     one file per split
    data/test-00000-of-00001.parquet

Columns: ``skeleton`` (``Array4D(shape=(None, M, V, C), dtype="float32")``, time first: only the
first axis may vary), ``label`` (``ClassLabel`` with the class names), ``name``, ``subject``,
``view``, ``setup`` (int32, null when unknown), ``source``, ``layout`` and ``extra`` (JSON text).
The features travel inside the Parquet files, so :func:`load_hf_skeletons` rebuilds a
:class:`~llmskel.data.sample.SkeletonDataset` with its classes and layout from the files alone.
Loading a Hub id works the same way (``datasets`` downloads it; nothing here contacts the Hub).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SkeletonFormatError
from ..trust import public_name, scrub_local_paths
from .layouts import get_layout
from .sample import BaseSkeletonDataset, SkeletonDataset, SkeletonSample

log = logging.getLogger(__name__)

DATA_DIR = "data"


def hf_features(classes: Sequence[str], num_bodies: int, num_joints: int, channels: int):
    """The ``datasets.Features`` of an export."""
    from ..optional import require

    ds = require("datasets", "Hugging Face dataset export")
    Array4D, ClassLabel, Features, Value = ds.Array4D, ds.ClassLabel, ds.Features, ds.Value

    return Features(
        {
            "skeleton": Array4D(shape=(None, num_bodies, num_joints, channels), dtype="float32"),
            "label": ClassLabel(names=list(classes)),
            "name": Value("string"),
            "subject": Value("int32"),
            "view": Value("int32"),
            "setup": Value("int32"),
            "source": Value("string"),
            "layout": Value("string"),
            "extra": Value("string"),
        }
    )


def _row(s: SkeletonSample, num_bodies: int, index: int) -> dict[str, Any]:
    from .cache import _jsonable

    data = np.asarray(s.data, dtype=np.float32)
    if data.shape[1] < num_bodies:
        pad = np.zeros((data.shape[0], num_bodies - data.shape[1]) + data.shape[2:], dtype=np.float32)
        data = np.concatenate([data, pad], axis=1)
    extra = dict(s.extra)
    name = extra.pop("name", None) or Path(str(s.source or f"sample_{index}")).name
    return {
        "skeleton": data[:, :num_bodies],
        "label": int(s.label) if s.label >= 0 else None,
        "name": str(name),
        "subject": s.subject,
        "view": s.view,
        "setup": s.setup,
        "source": public_name(s.source),  # exports are shared: the file's name, not where it lay here
        "layout": s.layout,
        "extra": json.dumps(scrub_local_paths(_jsonable(extra))),
    }


def export_hf(
    dataset: BaseSkeletonDataset,
    out_dir: str | os.PathLike,
    *,
    splits: Mapping[str, Sequence[int]] | None = None,
    num_bodies: int | None = None,
    description: str = "",
) -> Path:
    """Write ``dataset`` as Parquet split files plus a dataset card in ``out_dir``.

    ``splits`` maps split names to sample indices (default: everything in ``train``). Bodies are
    padded to ``num_bodies`` (default: the largest count found).
    """
    from ..optional import require

    datasets = require("datasets", "Hugging Face datasets")

    from ..errors import ConfigError

    out = Path(out_dir)
    for p in (out, out / DATA_DIR, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"export folder {out}: {p} is a file; name a new or existing folder")
            break
    if len(dataset) == 0:
        raise ConfigError(f"export to {out}: the dataset has no samples")
    splits = dict(splits) if splits else {"train": range(len(dataset))}
    for name, idx in splits.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ConfigError(f"split names must be letters, digits and '_', got {name!r}")
        bad = [i for i in idx if not 0 <= int(i) < len(dataset)]
        if bad:
            raise ConfigError(f"split {name!r}: sample indices {bad[:5]} are outside 0..{len(dataset) - 1}")
    lay = get_layout(dataset.layout)
    first = dataset.get(0)
    channels = int(first.data.shape[-1])
    if num_bodies is None:
        num_bodies = (
            max(s.num_bodies for s in dataset.samples)
            if isinstance(dataset, SkeletonDataset)
            else int(first.data.shape[1])
        )
    features = hf_features(dataset.classes, num_bodies, lay.num_joints, channels)
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    counts = {}
    tmp = tempfile.mkdtemp(prefix="llmskel-hf-")
    try:
        for split, idx in splits.items():
            idx = [int(i) for i in idx]
            if not idx:
                continue

            def gen(idx=idx):
                for i in idx:
                    yield _row(dataset.get(i), num_bodies, i)

            ds = datasets.Dataset.from_generator(
                gen, features=features, cache_dir=tmp, split=datasets.Split.TRAIN
            )
            for old in (out / DATA_DIR).glob(f"{split}-*.parquet"):
                old.unlink()
            ds.to_parquet(str(out / DATA_DIR / f"{split}-00000-of-00001.parquet"))
            counts[split] = len(idx)
            del ds
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (out / "README.md").write_text(_card(dataset, counts, lay.name, num_bodies, channels, description))
    return out


def _size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` samples."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):  # fmt: skip
        if n < limit:
            return name
    return "n>10M" if n < 1_000_000_000 else "n>1T"


def _card(
    dataset: BaseSkeletonDataset, counts: dict[str, int], layout: str, m: int, c: int, description: str
) -> str:
    from huggingface_hub import DatasetCardData

    name = dataset.name or "skeleton dataset"
    # our synthetic data is ours to license; a real dataset keeps its own terms
    own = str(dataset.name or "").lower().startswith("synthetic")
    data = DatasetCardData(
        license="apache-2.0" if own else "other",
        task_categories=["video-classification"],  # the Hub's nearest task for action recognition
        size_categories=[_size_category(sum(counts.values()))],
        tags=["skeleton", "action-recognition", "skeleton-based-action-recognition", "llmskel", layout],
        pretty_name=name,
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in counts],
            }
        ],
    )
    classes = ", ".join(dataset.classes[:20]) + (" ..." if len(dataset.classes) > 20 else "")
    table = "\n".join(f"| {s} | {n} |" for s, n in counts.items())
    terms = "" if own else f"\nThe samples come from {name}: its terms of use apply to this export.\n"
    return f"""---
{data.to_yaml()}
---
# {name}

{description or "Skeleton sequences exported by llmskel (`llmskel data export`)."}
{terms}
- layout: `{layout}`, {m} bodies, {c} channels per joint; {len(dataset.classes)} classes ({classes})
- `skeleton`: float32 array (frames, bodies, joints, channels), time first; `label`: class index
  (names in the features); `name`, `subject`, `view`, `setup`, `source`, `layout`; `extra`: JSON

| split | samples |
|---|---|
{table}

Load with `datasets.load_dataset(path_or_id)`, or as llmskel samples with
`llmskel.data.hf.load_hf_skeletons(path_or_id, split)`.
"""


def load_hf_skeletons(
    path_or_id: str | os.PathLike,
    split: str = "train",
    *,
    streaming: bool = False,
    cache_dir: str | os.PathLike | None = None,
    limit: int | None = None,
) -> SkeletonDataset:
    """Load one split of an export (folder, Parquet file or Hub id) as an in-memory dataset.

    Classes come from the ``label`` ClassLabel, the layout from the ``layout`` column. Each
    sample's ``extra["split"]`` is ``split``. ``limit`` stops after that many samples.
    """
    from ..optional import require

    datasets = require("datasets", "Hugging Face datasets")

    p = Path(path_or_id)
    kwargs: dict[str, Any] = {"split": split, "streaming": streaming}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    try:
        if p.is_file() and p.suffix == ".parquet":
            ds = datasets.load_dataset("parquet", data_files={split: str(p)}, **kwargs)
        else:
            ds = datasets.load_dataset(str(path_or_id), **kwargs)
    except ValueError as e:  # e.g. an unknown split: datasets names the ones there are
        raise SkeletonFormatError(path_or_id, str(e)) from None
    feats = ds.features
    if feats is None or "skeleton" not in feats or "label" not in feats:
        raise SkeletonFormatError(
            path_or_id, "not a llmskel skeleton export (needs 'skeleton' and 'label' columns)"
        )
    classes = list(getattr(feats["label"], "names", None) or [])
    samples = []
    for i, row in enumerate(ds.with_format("numpy")):
        if limit is not None and i >= limit:
            break
        data = np.asarray(row["skeleton"], dtype=np.float32)
        label = _opt(row.get("label"))  # null labels come back as None or NaN
        label = -1 if label is None or label < 0 else label
        extra = json.loads(str(row.get("extra") or "{}"))
        extra["name"] = str(row.get("name"))
        extra["split"] = split
        samples.append(
            SkeletonSample(
                data=data,
                layout=str(row.get("layout") or "ntu25"),
                label=label,
                label_name=classes[label] if 0 <= label < len(classes) else None,
                subject=_opt(row.get("subject")),
                view=_opt(row.get("view")),
                setup=_opt(row.get("setup")),
                source=None if row.get("source") is None else str(row.get("source")),
                extra=extra,
            )
        )
    if not samples:
        raise SkeletonFormatError(path_or_id, f"split {split!r} has no samples")
    name = p.name if p.exists() else str(path_or_id)
    return SkeletonDataset(samples, classes, samples[0].layout, name=name)


def _opt(v: Any) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def hf_splits(path: str | os.PathLike) -> list[str]:
    """Split names of a local export folder (from its ``data/<split>-*.parquet`` files)."""
    files = sorted((Path(path) / DATA_DIR).glob("*-*.parquet"))
    names: list[str] = []
    for f in files:
        s = f.name.split("-", 1)[0]
        if s not in names:
            names.append(s)
    return names
