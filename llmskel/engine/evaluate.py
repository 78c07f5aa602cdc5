"""Evaluate a trained model on a dataset, clean and under corruption.

Corruptions are applied to the raw sample before the model's own preprocessing, so they model
what happens at the sensor: frames lost (a fraction dropped at random), Gaussian noise on every
joint coordinate (standard deviation in the data's units, metres for Kinect data), and one body
part occluded (its joints zeroed, as a tracker reports a lost joint). Each corruption is seeded by
the sample index, so results reproduce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.layouts import PART_NAMES, get_layout
from ..data.sample import BaseSkeletonDataset, SkeletonSample, skeleton_collate
from .metrics import classification_report

logger = logging.getLogger(__name__)

Corruption = Callable[[SkeletonSample, np.random.Generator], SkeletonSample]


def drop_frames(fraction: float) -> Corruption:
    def f(s: SkeletonSample, rng: np.random.Generator) -> SkeletonSample:
        t = s.num_frames
        keep = max(1, int(round(t * (1.0 - fraction))))
        idx = np.sort(rng.choice(t, size=keep, replace=False))
        return s.replace(data=s.data[idx])

    return f


def joint_noise(std: float) -> Corruption:
    def f(s: SkeletonSample, rng: np.random.Generator) -> SkeletonSample:
        x = s.data.copy()
        present = np.any(x != 0, axis=-1, keepdims=True)
        dims = min(x.shape[-1], 3)
        if x.shape[-1] == 3 and s.extra.get("channels") == "xy+score":
            dims = 2
        noise = rng.normal(0.0, std, size=x[..., :dims].shape).astype(np.float32)
        x[..., :dims] += noise * present
        return s.replace(data=x)

    return f


def occlude_part(part: str) -> Corruption:
    def f(s: SkeletonSample, rng: np.random.Generator) -> SkeletonSample:
        x = s.data.copy()
        x[:, :, list(get_layout(s.layout).parts[part])] = 0.0
        return s.replace(data=x)

    return f


def default_corruptions() -> dict[str, Corruption]:
    out: dict[str, Corruption] = {}
    for frac in (0.1, 0.3, 0.5):
        out[f"drop_frames_{int(frac * 100)}%"] = drop_frames(frac)
    for std in (0.01, 0.03):
        out[f"noise_std_{std}"] = joint_noise(std)
    for part in PART_NAMES:
        out[f"occlude_{part}"] = occlude_part(part)
    return out


class _EvalView(torch.utils.data.Dataset):
    """Samples through an optional corruption and the model's eval pipeline."""

    def __init__(
        self, ds: BaseSkeletonDataset, pipeline, corruption: Corruption | None, seed: int, label_map
    ):
        self.ds, self.pipeline, self.corruption, self.seed, self.label_map = (
            ds,
            pipeline,
            corruption,
            seed,
            label_map,
        )

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.ds.get(i)
        if self.corruption is not None:
            s = self.corruption(s, np.random.default_rng([self.seed, i]))
        out = self.pipeline(s, np.random.default_rng(0))
        out["label"] = int(self.label_map[s.label]) if s.label >= 0 else -1
        out["index"] = i
        return out


def label_map_for(model_classes: list[str], data_classes: list[str], source: str) -> np.ndarray:
    """Data label -> model label; every data class must be one the model knows."""
    pos = {c: i for i, c in enumerate(model_classes)}
    missing = [c for c in data_classes if c not in pos]
    if missing:
        from ..errors import CheckpointError

        raise CheckpointError(
            f"{source}: the data has classes the model was not trained on: {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}; model classes: {', '.join(model_classes[:20])}"
            f"{' ...' if len(model_classes) > 20 else ''}"
        )
    return np.array([pos[c] for c in data_classes], dtype=np.int64)


@torch.no_grad()
def evaluate_dataset(
    model,
    ds: BaseSkeletonDataset,
    corruptions: dict[str, Corruption] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Clean metrics plus top-1 under each corruption. ``ds`` must be in the model's layout
    (or convertible to it) and its classes a subset of the model's."""
    from ..data.layouts import can_convert

    src, dst = get_layout(ds.layout).name, get_layout(model.layout).name
    if src != dst:
        from ..errors import SkeletonFormatError

        if not can_convert(src, dst):
            raise SkeletonFormatError(
                ds.name or "dataset", f"layout {src!r} does not match the model's {dst!r}"
            )
        ds = ds.with_transform(None)
        ds = _Converted(ds, src, dst)
    labels = np.asarray(ds.labels)
    if not (labels >= 0).any():
        from ..errors import SkeletonFormatError

        raise SkeletonFormatError(
            ds.name or "dataset",
            f"nothing to evaluate: none of its {len(labels)} samples has a label"
            + (" (a labels CSV with a 'label' column names each file's class)" if len(labels) else ""),
        )
    label_map = label_map_for(model.classes, list(ds.classes), ds.name or "dataset")
    pipeline = model.eval_pipeline()
    model.eval()
    device = next(model.parameters()).device

    def run(corr: Corruption | None, name: str) -> dict[str, Any]:
        view = _EvalView(ds, pipeline, corr, seed, label_map)
        loader = DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=skeleton_collate)
        scores, labels = [], []
        it = loader
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(loader, desc=name, leave=False)
        for batch in it:
            scores.append(model(batch["x"].to(device)).logits.float().cpu())
            labels.append(batch["label"])
        return {"scores": torch.cat(scores).numpy(), "labels": torch.cat(labels).numpy()}

    clean = run(None, "clean")
    keep = clean["labels"] >= 0
    if (~keep).any():
        logger.warning(
            "%s: %d of %d samples have no label and are left out of the metrics",
            ds.name or "dataset",
            int((~keep).sum()),
            len(keep),
        )
    rep = classification_report(clean["scores"][keep], clean["labels"][keep], model.classes)
    out: dict[str, Any] = {"clean": rep, "robustness": {}}
    for name, corr in (corruptions or {}).items():
        r = run(corr, name)
        k = r["labels"] >= 0
        out["robustness"][name] = (
            float((r["scores"][k].argmax(1) == r["labels"][k]).mean()) if k.any() else None
        )
    return out


class _Converted(BaseSkeletonDataset):
    def __init__(self, ds: BaseSkeletonDataset, src: str, dst: str):
        self.ds, self.src, self.dst = ds, src, dst
        self.layout, self.classes, self.name, self.transform = dst, ds.classes, ds.name, None

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, i: int) -> SkeletonSample:
        from ..data.layouts import convert_layout

        s = self.ds.get(i)
        return s.replace(data=convert_layout(s.data, self.src, self.dst), layout=self.dst)

    @property
    def labels(self) -> np.ndarray:
        return self.ds.labels

    def subset(self, indices):
        return _Converted(self.ds.subset(indices), self.src, self.dst)


def format_eval_table(result: dict[str, Any], classes: list[str]) -> str:
    rep = result["clean"]
    lines = [
        f"samples: {rep['num_samples']}",
        f"top-1: {100 * rep['top1']:.2f} %   top-5: {100 * rep['top5']:.2f} %   "
        f"mean class accuracy: {100 * rep['mean_class_accuracy']:.2f} %",
        "",
        f"{'class':<32} {'accuracy':>9} {'support':>8}",
    ]
    for c in classes:
        a = rep["per_class"].get(c)
        n = rep["support"].get(c, 0)
        if n:
            lines.append(f"{c[:32]:<32} {('-' if a is None else f'{100 * a:.1f} %'):>9} {n:>8}")
    if result.get("robustness"):
        lines += ["", f"{'corruption':<24} {'top-1':>8} {'drop':>8}"]
        for name, acc in result["robustness"].items():
            if acc is None:
                continue
            lines.append(f"{name:<24} {100 * acc:>7.2f}% {100 * (acc - rep['top1']):>+7.2f}")
    return "\n".join(lines)
