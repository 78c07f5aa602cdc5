"""Few-shot and one-shot recognition with a trained skeleton encoder (no retraining of the encoder).

* **Embeddings**: a sample's L2-normalised embedding is the text-space projection of the encoder's
  global feature when the model has a text side (zero-shot or GAP models), else the feature itself.
* **Prototypes**: a class prototype is the normalised mean of its support embeddings; a query is
  scored by cosine similarity to each prototype.
* **Text fusion** (``text_fusion=w``): the score becomes ``(1 - w) * cos(q, support prototype) +
  w * cos(q, text prototype of the class name)`` (prompt-ensembled label prompts, see
  :mod:`llmskel.methods.zero_shot_text`); needs a model with a text side.
* **Fine-tuning** (``finetune_steps > 0``): a linear head initialised from the prototypes (weights =
  prototypes, cosine logits with a fixed scale) trained briefly with cross-entropy on the support
  embeddings, with an L2 pull back to its initialisation; the encoder stays frozen.
* **Episodes**: :func:`run_episodes` samples N-way K-shot tasks from labelled embeddings and reports
  the mean accuracy with a 95 % confidence interval (``1.96 * std / sqrt(episodes)``).
* **NTU-120 one-shot**: :func:`one_shot_accuracy` with the index lists of
  :func:`llmskel.data.zsl_splits.ntu120_one_shot_split`.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, LlmskelError
from ..prediction import Prediction, rank, renamed_argument, target_of

logger = logging.getLogger(__name__)


class SupportError(LlmskelError, ValueError):
    """A support set that cannot define classes (a class without examples, unlabelled files...)."""


# ------------------------------------------------------------------------------ embeddings
@torch.no_grad()
def embed_samples(model, samples: Sequence[Any], batch_size: int = 64, space: str = "auto") -> torch.Tensor:
    """(N, E) normalised embeddings of samples (SkeletonSample or arrays in the model's layout; other
    layouts are converted when possible, else a SkeletonFormatError names the layouts).

    ``space``: "text" (the text-space projection; needs a text side), "feature" (the encoder's global
    feature) or "auto" (text when the model has a text side)."""
    from .zero_shot_text import project_feature, text_side

    side = None
    if space in ("auto", "text"):
        try:
            side = text_side(model)
        except LlmskelError:
            if space == "text":
                raise
    from ..data.inputs import as_sample_list

    samples = as_sample_list(samples)  # one (T, M, V, C) array is one sample, not T frames
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(samples), batch_size):
        x = model.prepare_inputs(samples[start : start + batch_size]).to(device)
        feat = model(x).feature
        out.append((project_feature(model, feat, side) if side else F.normalize(feat.float(), dim=-1)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 1)


def class_prototypes(emb: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     class_names: Sequence[str] | None = None) -> torch.Tensor:  # fmt: skip
    """(K, E) normalised mean embedding per class; a class without examples is a :class:`SupportError`."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    counts = torch.bincount(labels, minlength=num_classes)
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty:
        names = [class_names[i] if class_names else str(i) for i in empty]
        raise SupportError(f"support class(es) {', '.join(map(repr, names))} have no examples")
    sums = torch.zeros(num_classes, emb.shape[1], dtype=emb.dtype).index_add_(0, labels, emb)
    return F.normalize(sums, dim=-1)


def finetune_head(emb: torch.Tensor, labels: torch.Tensor, protos: torch.Tensor, steps: int = 50, lr: float = 0.01,
                  scale: float = 10.0, pull: float = 0.1) -> torch.Tensor:  # fmt: skip
    """Class weights (K, E) fitted on support embeddings, starting from (and pulled towards) ``protos``."""
    w0 = protos.detach().clone()
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    labels = torch.as_tensor(labels, dtype=torch.long)
    with torch.enable_grad():
        for _ in range(int(steps)):
            logits = scale * emb @ F.normalize(w, dim=-1).T
            loss = F.cross_entropy(logits, labels) + pull * (w - w0).pow(2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return F.normalize(w.detach(), dim=-1)


def fused_scores(query: torch.Tensor, protos: torch.Tensor, text_protos: torch.Tensor | None = None,
                 text_fusion: float = 0.0) -> torch.Tensor:  # fmt: skip
    """(Q, K) = (1 - w) cos(query, protos) + w cos(query, text_protos)."""
    s = query @ protos.T
    if text_protos is not None and text_fusion > 0:
        s = (1.0 - text_fusion) * s + text_fusion * (query @ text_protos.T)
    return s


def text_prototypes(model, class_names: Sequence[str]) -> torch.Tensor:
    """(K, E) prompt-ensembled text prototypes of class names, in the model's text space."""
    from .zero_shot_text import check_labels, get_text_encoder, prototypes, text_side

    names = check_labels(class_names, "support classes")
    side = text_side(model)
    return prototypes(get_text_encoder(side.encoder), names, side.prompts, None, ("label",))


# ------------------------------------------------------------------------------ classifier
class FewShotClassifier:
    """Classes from a few labelled examples each: ``FewShotClassifier(model, support, labels).predict(samples)``."""

    def __init__(self, model, support: Sequence[Any], support_labels: Sequence[str], classes: Sequence[str] | None = None,
                 text_fusion: float = 0.0, finetune_steps: int = 0, batch_size: int = 64):  # fmt: skip
        if len(support) != len(support_labels):
            raise SupportError(f"{len(support)} support samples but {len(support_labels)} labels")
        if not 0.0 <= text_fusion <= 1.0:
            raise ConfigError(f"text_fusion must be in [0, 1], got {text_fusion}")
        self.model = model
        self.classes = list(classes) if classes is not None else list(dict.fromkeys(support_labels))
        if not self.classes:
            raise SupportError("the support set is empty: give at least one example of one class")
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({lb for lb in support_labels if lb not in index})
        if unknown:
            raise SupportError(f"support labels {unknown} are not among the classes {self.classes}")
        self.text_fusion = float(text_fusion)
        self.batch_size = batch_size
        emb = embed_samples(model, support, batch_size)
        y = torch.tensor([index[lb] for lb in support_labels], dtype=torch.long)
        self.protos = class_prototypes(emb, y, len(self.classes), self.classes)
        if finetune_steps > 0:
            self.protos = finetune_head(emb, y, self.protos, finetune_steps)
        self.text_protos = text_prototypes(model, self.classes) if self.text_fusion > 0 else None

    @renamed_argument("query", "samples")
    def scores(self, samples: Sequence[Any]) -> torch.Tensor:
        """(N, K) fused cosine scores of the samples against the classes."""
        q = embed_samples(self.model, samples, self.batch_size)
        return fused_scores(q, self.protos, self.text_protos, self.text_fusion)

    @renamed_argument("query", "samples")
    def predict(self, samples: Sequence[Any], top_k: int = 5) -> list[Prediction]:
        """One :class:`~llmskel.prediction.Prediction` per sample; its scores are the fused cosine
        similarities (not probabilities)."""
        from ..data.inputs import as_sample_list

        samples = as_sample_list(samples)
        s = self.scores(samples).cpu().numpy()
        return rank(s, self.classes, top_k, [target_of(x) for x in samples])


# ------------------------------------------------------------------------------ support sets
def load_support(path: str | Path, layout: str | None = None) -> tuple[list[Any], list[str]]:
    """Samples and labels of a support set: a folder with one subfolder per class (any input format
    inside), or a CSV file with ``path,label`` columns (paths relative to the CSV, inside its folder).

    Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) are skipped. A set needs two classes or
    more; blank labels, labels with control characters, labels that differ only in case or spacing
    and a file listed twice are errors (:class:`SupportError`)."""
    from ..data.io import read_any

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"support set not found: {p}")
    samples: list[Any] = []
    labels: list[str] = []
    if p.is_dir():
        subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not subdirs:
            raise SupportError(f"{p}: a support folder needs one subfolder per class (named by the class)")
        for d in subdirs:
            _check_support_label(d.name, str(d))
            files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
            got = [s for f in files for s in read_any(f, layout)]
            if not got:
                raise SupportError(f"{d}: support class {d.name!r} has no examples")
            samples += got
            labels += [d.name] * len(got)
        _check_support_classes(labels, str(p))
        return samples, labels
    if p.suffix.lower() != ".csv":
        raise SupportError(
            f"{p}: a support set is a folder (one subfolder per class) or a path,label .csv file"
        )
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise SupportError(f"{p}: not a readable UTF-8 CSV file ({e})") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["path", "label"]:
        raise SupportError(f"{p} (line 1): a support CSV needs a header 'path,label'")
    root = p.parent.resolve()
    first_line: dict[Path, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise SupportError(f"{p} (line {line}): needs a path and a label, got {row}")
        label = row[1].strip()
        _check_support_label(label, f"{p} (line {line})")
        name = row[0].strip()
        file = p.parent / name
        try:
            real = file.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise SupportError(f"{p} (line {line}): file {name!r} cannot be resolved ({e})") from None
        if Path(name).is_absolute() or not real.is_relative_to(root):
            raise SupportError(
                f"{p} (line {line}): file {name!r} is outside the CSV's folder {p.parent} "
                "(an absolute path, '..' or a symlink); refused"
            )
        if real in first_line:
            raise SupportError(
                f"{p} (line {line}): file {name!r} is listed twice (first at line {first_line[real]})"
            )
        first_line[real] = line
        got = read_any(file, layout)
        samples += got
        labels += [label] * len(got)
    if not samples:
        raise SupportError(f"{p}: the support CSV lists no examples")
    _check_support_classes(labels, str(p))
    return samples, labels


def _check_support_label(label: str, where: str) -> None:
    if not label.strip():
        raise SupportError(f"{where}: the class name {label!r} is blank")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        raise SupportError(f"{where}: the class name {label!r} holds a control character (a newline or tab)")


def _check_support_classes(labels: Sequence[str], where: str) -> None:
    """Two classes or more, none differing from another only in case or spacing."""
    seen: dict[str, str] = {}
    for label in dict.fromkeys(labels):
        key = " ".join(label.lower().split())
        if key in seen:
            raise SupportError(f"{where}: classes {seen[key]!r} and {label!r} differ only in case or spacing")
        seen[key] = label
    if len(seen) < 2:
        raise SupportError(
            f"{where}: the support set has {len(seen)} class ({', '.join(map(repr, seen.values()))}); "
            "few-shot classification needs two classes or more"
        )


# ------------------------------------------------------------------------------ evaluation
def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % normal confidence interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("inf")
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(v.size))


def run_episodes(emb: torch.Tensor, labels: Sequence[int], n_way: int = 5, k_shot: int = 1, n_query: int = 15,
                 episodes: int = 600, seed: int = 0, text_protos: torch.Tensor | None = None,
                 text_fusion: float = 0.0, finetune_steps: int = 0) -> dict[str, Any]:  # fmt: skip
    """Mean N-way K-shot accuracy over random episodes, with its 95 % CI.

    ``emb`` (N, E) normalised embeddings, ``labels`` (N,) class ids; ``text_protos`` (C, E) one per
    class id for text fusion. A class needs ``k_shot + 1`` samples to take part; queries per class
    are ``min(n_query, available - k_shot)``."""
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    usable = classes[counts >= k_shot + 1]
    if len(usable) < n_way:
        raise ConfigError(f"{n_way}-way {k_shot}-shot episodes need {n_way} classes with at least {k_shot + 1} "
                          f"samples; only {len(usable)} have enough")  # fmt: skip
    members = {c: np.flatnonzero(y == c) for c in usable}
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(int(episodes)):
        way = rng.choice(usable, n_way, replace=False)
        sup, qry, qy = [], [], []
        for j, c in enumerate(way):
            idx = rng.permutation(members[c])
            sup.append(idx[:k_shot])
            q = idx[k_shot : k_shot + n_query]
            qry.append(q)
            qy.append(np.full(len(q), j))
        sup_idx = np.concatenate(sup)
        sy = torch.from_numpy(np.repeat(np.arange(n_way), k_shot))
        protos = class_prototypes(emb[sup_idx], sy, n_way)
        if finetune_steps > 0:
            protos = finetune_head(emb[sup_idx], sy, protos, finetune_steps)
        tp = text_protos[torch.as_tensor(way)] if text_protos is not None else None
        s = fused_scores(emb[np.concatenate(qry)], protos, tp, text_fusion)
        accs.append(float((s.argmax(1).numpy() == np.concatenate(qy)).mean()))
    mean, ci = mean_ci95(accs)
    return {"accuracy": mean, "ci95": ci, "episodes": int(episodes), "n_way": n_way, "k_shot": k_shot,
            "accuracies": accs}  # fmt: skip


def one_shot_accuracy(emb: torch.Tensor, labels: Sequence[int], exemplars: Sequence[int], queries: Sequence[int],
                      text_protos: torch.Tensor | None = None, text_fusion: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Accuracy of the one-shot protocol: each query against the exemplars (one per novel class)."""
    y = torch.as_tensor(np.asarray(labels))
    ex = torch.as_tensor(list(exemplars))
    q = torch.as_tensor(list(queries))
    protos = F.normalize(emb[ex], dim=-1)  # (C, E), one exemplar per class
    s = fused_scores(emb[q], protos, text_protos, text_fusion)
    pred_class = y[ex][s.argmax(1)]
    acc = float((pred_class == y[q]).float().mean())
    return {"accuracy": acc, "num_queries": len(q), "num_classes": len(ex)}


__all__ = [
    "FewShotClassifier", "SupportError", "class_prototypes", "embed_samples", "finetune_head", "fused_scores",
    "load_support", "mean_ci95", "one_shot_accuracy", "run_episodes", "text_prototypes",
]  # fmt: skip
