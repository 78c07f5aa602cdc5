"""Classification metrics from score matrices (numpy, so they work on gathered results)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is among the k highest scores (ties broken by index)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, pred]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(axis=1)
    return np.divide(np.diag(cm), support, out=np.full(len(cm), np.nan), where=support > 0)


def classification_report(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = scores.argmax(axis=1)
    cm = confusion_matrix(pred, labels, len(classes))
    pca = per_class_accuracy(cm)
    return {
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_class_accuracy": float(np.nanmean(pca)) if np.isfinite(pca).any() else float("nan"),
        "num_samples": int(len(labels)),
        "per_class": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, pca)},
        "support": {c: int(s) for c, s in zip(classes, cm.sum(axis=1))},
        "confusion": cm,
    }


def most_confused_pairs(cm: np.ndarray, classes: list[str], k: int = 5) -> list[tuple[str, str, int]]:
    """The k largest off-diagonal counts, symmetrised: (class a, class b, confusions)."""
    sym = cm + cm.T
    iu = np.triu_indices(len(cm), k=1)
    vals = sym[iu]
    order = np.argsort(-vals, kind="stable")[:k]
    return [(classes[iu[0][i]], classes[iu[1][i]], int(vals[i])) for i in order if vals[i] > 0]


def write_per_class_csv(path: str | Path, report: dict) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["class", "accuracy", "support"])
        for c, a in report["per_class"].items():
            w.writerow([c, "" if a is None else f"{a:.4f}", report["support"][c]])
