"""Figures written next to every run: confusion matrix and training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(
    cm: np.ndarray, classes: list[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """Row-normalised confusion matrix (true class per row) as a PNG."""
    plt = _plt()
    k = len(classes)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * k, 28)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    fs = 8 if k <= 30 else 5
    ax.set_xticklabels(classes, rotation=90, fontsize=fs)
    ax.set_yticklabels(classes, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title} (top-1 {100 * acc:.1f} %, n={int(cm.sum())})")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Training loss and evaluation accuracy against epoch."""
    plt = _plt()
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ep = [h["epoch"] for h in history if "train_loss" in h]
    ax1.plot(
        ep, [h["train_loss"] for h in history if "train_loss" in h], "o-", color="tab:red", label="train loss"
    )
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:red")
    ev = [h for h in history if "top1" in h]
    if ev:
        ax2 = ax1.twinx()
        ax2.plot(
            [h["epoch"] for h in ev],
            [100 * h["top1"] for h in ev],
            "s-",
            color="tab:blue",
            label="test top-1",
        )
        ax2.set_ylabel("test top-1 (%)", color="tab:blue")
        ax2.set_ylim(0, 100)
    ax1.set_title("training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
