"""What a recognition method tells the training engine.

The engine (:mod:`llmskel.engine.trainer`) owns data loading, the Accelerate loop, checkpoints,
evaluation and outputs; a :class:`Method` owns everything specific to one way of recognising:

* ``build_model(bundle)``: the ``nn.Module`` to train (for the GCN methods a
  :class:`~llmskel.hub.SkeletonModel`);
* ``param_groups(model)``: parameter groups, optionally with ``lr_scale``;
* ``loss(model, batch)``: ``(loss, {name: float})`` for one batch;
* ``scores(model, batch, split)``: ``(N, K)`` scores over ``classes_for(split)``, and
  ``targets(batch, split)`` the labels as indices into those classes;
* ``save_model(model, folder, record)``: write a self-contained, shareable model folder.

Methods register by name (the ``method:`` key of an experiment config).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ..engine.config import ExperimentConfig
    from ..engine.data import DataBundle

METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    def deco(cls: type[Method]) -> type[Method]:
        METHODS[name] = cls
        cls.name = name
        return cls

    return deco


def get_method(name: str) -> type[Method]:
    # import the built-in methods so they register themselves
    from . import supervised  # noqa: F401

    for mod in ("gap", "zero_shot", "llm_recognizer", "vq"):
        try:
            __import__(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


class Method:
    name = "base"
    # False for methods that train something other than a classifier (a skeleton tokenizer): the
    # engine then skips classification evaluation and logs ``validation_metrics`` instead
    classifies = True

    def __init__(self, cfg: ExperimentConfig, bundle: DataBundle):
        self.cfg = cfg
        self.bundle = bundle

    def classes_for(self, split: str) -> list[str]:
        """Class names that ``scores(..., split)`` ranks, in order (all classes by default)."""
        return self.bundle.classes

    def targets(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        """Labels of a batch as indices into ``classes_for(split)`` (the dataset labels by default)."""
        return batch["label"]

    def build_model(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[Any]:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Called once the model is on its device (move cached tensors, text embeddings...)."""

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError  # pragma: no cover - abstract

    def scores(self, model: nn.Module, batch: dict[str, Any], split: str = "test") -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def validation_metrics(self, model: nn.Module, loader, accelerator) -> dict[str, float]:
        """Metrics of a non-classifying method on the validation (or test) loader."""
        return {}

    def on_epoch_end(self, model: nn.Module, epoch: int, val_report: dict | None) -> None:
        """Hook after each evaluation, with the *validation* report (``data.val_fraction`` > 0) or None.
        Methods that adapt during training (confusion-driven refinement) look at this only."""

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract
