"""One result type for every way llmskel names an action: :class:`Prediction`.

``SkeletonModel.predict``, zero-shot ``classify``, ``FewShotClassifier.predict``, the LLM recognizer's
``predict`` and every command's ``--json`` give, per input sample::

    Prediction(label="clap", score=0.91, top_k=(LabelScore("clap", 0.91), LabelScore("wave", 0.05)),
               target="clap")

``label`` / ``score`` are always the model's answer (the first of ``top_k``); ``target`` is the ground
truth when the input carried one (a labelled file), else ``None``. ``to_dict()`` is the JSON shape:
``{"label", "score", "top_k": [{"label", "score"}, ...], "target"}``.

Until 0.2 a :class:`Prediction` also behaves like the old ``[(label, score), ...]`` list (indexing,
iteration, ``len``), with a :class:`DeprecationWarning`: use ``.top_k`` (a tuple of
:class:`LabelScore`, which unpack as ``(label, score)``) instead.

Light module: no torch import.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

_OLD_SHAPE = (
    "a Prediction used as a list of (label, score) pairs is deprecated and stops working in llmskel 0.2; "
    "use prediction.top_k (or .label / .score)"
)


class LabelScore(NamedTuple):
    """One ranked answer; unpacks as ``(label, score)``."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True)
class Prediction:
    """The answer for one input: best label and score, the ranked ``top_k``, and the ground truth."""

    label: str
    score: float
    top_k: tuple[LabelScore, ...]
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"label", "score", "top_k": [{"label", "score"}, ...], "target"}`` (the ``--json`` shape)."""
        return {"label": self.label, "score": self.score, "top_k": [t.to_dict() for t in self.top_k],
                "target": self.target}  # fmt: skip

    # ---- the pre-0.1 shape, a list of (label, score) pairs: kept for one release ------------------
    def __getitem__(self, i):
        warnings.warn(_OLD_SHAPE, DeprecationWarning, stacklevel=2)
        return self.top_k[i]

    def __iter__(self):
        warnings.warn(_OLD_SHAPE, DeprecationWarning, stacklevel=2)
        return iter(self.top_k)

    def __len__(self) -> int:
        warnings.warn(_OLD_SHAPE, DeprecationWarning, stacklevel=2)
        return len(self.top_k)

    def __bool__(self) -> bool:  # never "empty" (len() above is the deprecated shape)
        return True


def rank(probs: Any, labels: Sequence[str], top_k: int = 5,
         targets: Sequence[str | None] | None = None) -> list[Prediction]:  # fmt: skip
    """(N, K) scores over ``labels`` -> one :class:`Prediction` per row, its ``top_k`` best first."""
    import numpy as np

    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"scores of shape {p.shape} do not match {len(labels)} labels")
    k = max(1, min(int(top_k), len(labels)))
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    tg = list(targets) if targets is not None else [None] * len(p)
    out = []
    for row, idx, t in zip(p, order, tg):
        ranked = tuple(LabelScore(str(labels[j]), float(row[j])) for j in idx)
        out.append(Prediction(ranked[0].label, ranked[0].score, ranked, t or None))
    return out


def format_predictions(names: Sequence[str], predictions: Sequence[Prediction]) -> str:
    """The commands' text output: each input, its ground truth when known, its ranked labels."""
    lines = []
    for name, p in zip(names, predictions):
        lines.append(f"{name}" + (f"  (true: {p.target})" if p.target else ""))
        lines += [f"  {i + 1}. {t.label:<28} {t.score:.4f}" for i, t in enumerate(p.top_k)]
    return "\n".join(lines)


def target_of(sample: Any) -> str | None:
    """The ground-truth class name a sample carries (``SkeletonSample.label_name``), else None."""
    name = getattr(sample, "label_name", None)
    return str(name) if name else None


def renamed_argument(old: str, new: str) -> Callable:
    """Decorator: accept keyword ``old`` for one release as ``new``, with a DeprecationWarning."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{fn.__qualname__}() got both {old!r} (deprecated) and {new!r}")
                warnings.warn(f"{fn.__qualname__}({old}=...) is deprecated and stops working in llmskel 0.2; "
                              f"use {new}=...", DeprecationWarning, stacklevel=2)  # fmt: skip
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap


__all__ = ["LabelScore", "Prediction", "format_predictions", "rank", "renamed_argument", "target_of"]
