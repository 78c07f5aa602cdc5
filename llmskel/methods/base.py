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

Methods register by import alone: a module of this package (or of another package, through the
``llmskel.methods`` entry-point group) decorates its class with ``@register_method(name,
section=..., config=...)``, naming the ``method:`` value and, when the method has settings, the
key of its config section and the dataclass of that section (``@register_method("gap",
section="align", config=AlignConfig)``). Nothing else lists methods: a new method is one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ..engine.config import ExperimentConfig
    from ..engine.data import DataBundle

METHODS: dict[str, type[Method]] = {}
_ENTRY_POINT_GROUP = "llmskel.methods"
_loaded = False


def register_method(name: str, section: str | None = None, config: type | None = None
                    ) -> Callable[[type[Method]], type[Method]]:  # fmt: skip
    """Class decorator: ``method: name`` in an experiment builds ``cls``.

    ``config`` is the dataclass of the method's settings, read from the experiment's ``section:``
    key (default: ``name``) and checked strictly when the config loads."""

    def deco(cls: type[Method]) -> type[Method]:
        if name in METHODS and METHODS[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"method {name!r} is already registered by {METHODS[name].__qualname__}")
        METHODS[name] = cls
        cls.name = name
        if config is not None:
            cls.config_section, cls.config_class = section or name, config
        return cls

    return deco


def _load_methods() -> None:
    """Import every module of this package (each registers what it defines), then plug-ins."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        ep.load()


def list_methods() -> list[str]:
    _load_methods()
    return sorted(METHODS)


def method_sections() -> dict[str, type]:
    """{section key: its dataclass} of every registered method (``align`` -> AlignConfig, ...)."""
    _load_methods()
    return {m.config_section: m.config_class for m in METHODS.values() if m.config_class is not None}


def get_method(name: str) -> type[Method]:
    _load_methods()
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside whatever Accelerate / DDP / torch.compile wrapped it in."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model)


class Method:
    name = "base"
    # the experiment key and dataclass of this method's settings (set by register_method)
    config_section: str | None = None
    config_class: type | None = None
    # False for methods that train something other than a classifier (a skeleton tokenizer): the
    # engine then skips classification evaluation and logs ``validation_metrics`` instead
    classifies = True

    def __init__(self, cfg: ExperimentConfig, bundle: DataBundle):
        self.cfg = cfg
        self.bundle = bundle

    @classmethod
    def check_config(cls, cfg: ExperimentConfig) -> None:
        """Checks of the whole experiment that this method needs, run when the config loads (before
        any data is read or run folder made): raise :class:`~llmskel.errors.ConfigError`."""

    @property
    def settings(self) -> Any:
        """This method's typed config section (``cfg.align`` for gap, ...)."""
        return getattr(self.cfg, self.config_section) if self.config_section else None

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
        """The loss of a batch and values to log (floats or 0-d tensors; the trainer reads tensors
        on the host only at log steps, so returning them avoids a device sync every batch)."""
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
