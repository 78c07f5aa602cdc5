"""Supervised recognition: a GCN encoder and a linear classifier trained with cross-entropy."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models.skeleton_model import SkeletonModel, SkeletonModelConfig
from .base import Method, register_method

logger = logging.getLogger(__name__)

# DataConfig keys that define how a trained model's inputs must be prepared
PREPROCESSING_KEYS = ("num_frames", "num_bodies", "stream", "eval_crop", "center", "align_view",
                      "normalize_scale")  # fmt: skip


def preprocessing_of(data_cfg) -> dict[str, Any]:
    d = dataclasses.asdict(data_cfg)
    out = {k: d[k] for k in PREPROCESSING_KEYS if k in d}
    for extra in ("pad_mode", "spatial_dims", "joint_space", "joint_subset"):
        if extra in d:
            out[extra] = d[extra]
    return out


def encoder_config(cfg, bundle, num_classes: int) -> dict[str, Any]:
    """The full architecture dict: registry defaults, this dataset's shape, then user overrides."""
    from ..models import get_model_config

    arch = dict(get_model_config(cfg.model.name))
    arch.update(layout=bundle.layout, in_channels=bundle.channels, num_classes=num_classes,
                num_bodies=cfg.data.num_bodies)  # fmt: skip
    arch.update(cfg.model.overrides)
    return arch


@register_method("supervised")
class SupervisedMethod(Method):
    @classmethod
    def check_config(cls, cfg) -> None:
        check_model_section(cfg)

    def head_specs(self, feature_dim: int) -> dict[str, Any]:
        return {}

    def text_record(self) -> dict[str, Any]:
        return {}

    def build_model(self) -> SkeletonModel:
        cfg, b = self.cfg, self.bundle
        mcfg = SkeletonModelConfig(
            model=encoder_config(cfg, b, num_classes=len(b.classes)),
            classes=list(b.classes),
            layout=b.layout,
            preprocessing=preprocessing_of(cfg.data),
            method=self.name,
            heads={},
            text=self.text_record(),
        )
        # the width of the encoder is only known once built: build, then add heads
        model = SkeletonModel(mcfg)
        heads = self.head_specs(model.encoder.feature_dim)
        if heads:
            mcfg.heads = heads
            model = SkeletonModel(mcfg)
        if cfg.model.init_from:
            init_encoder_from(model, cfg.model.init_from)
        return model

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["x"])
        loss = F.cross_entropy(
            out.logits.float(), batch["label"], label_smoothing=self.cfg.optim.label_smoothing
        )
        return loss, {"ce": loss.detach()}  # a 0-d tensor: the trainer reads it at log steps only

    def scores(self, model: nn.Module, batch: dict[str, Any], split: str = "test") -> torch.Tensor:
        return model(batch["x"]).logits.float()

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        model.config.training = record
        model.save_pretrained(folder)


def check_model_section(cfg) -> None:
    """``model.name`` is a registered architecture and ``model.overrides`` names its keys (when the
    config loads, before any data is read)."""
    from ..config import ConfigError
    from ..models import get_model_config
    from ..models.registry import arch_parameters

    try:
        arch = get_model_config(cfg.model.name)["arch"]
    except ConfigError as e:
        raise ConfigError(f"config key 'model.name': {e}", key="model.name") from None
    params = arch_parameters(arch)
    # the dataset's shape is filled in by encoder_config; anything else must be a constructor key
    bad = sorted(set(cfg.model.overrides) - set(params) - {"arch"})
    if bad:
        raise ConfigError(
            f"config key 'model.overrides' names unknown keys {bad} for arch {arch!r}; "
            f"valid keys: {', '.join(sorted(params))}",
            key="model.overrides",
        )


def init_encoder_from(model: SkeletonModel, source: str) -> None:
    """Copy encoder weights from a trained model. The classifier is copied only when both models
    have the same classes in the same order (else its rows would stand for other classes)."""
    from ..errors import ConfigError

    src = SkeletonModel.from_pretrained(source)
    dims = [(m.config.preprocessing or {}).get("spatial_dims") for m in (src, model)]
    if src.layout != model.layout or (None not in dims and dims[0] != dims[1]):
        hint = (" Set data.joint_space: true (and the same data.spatial_dims) to read this data in its joint space."
                if src.layout == "omni25" else "")  # fmt: skip
        raise ConfigError(
            f"config key 'model.init_from': {source} was trained on layout {src.layout} ({dims[0] or '?'}D), "
            f"this run reads {model.layout} ({dims[1] or '?'}D): the encoder weights do not fit.{hint}"
        )
    own = model.encoder.state_dict()
    same_classes = list(src.classes) == list(model.classes)
    loaded, skipped = 0, []
    for k, v in src.encoder.state_dict().items():
        if k.startswith("head.") and not same_classes:
            skipped.append(k)
        elif k in own and own[k].shape == v.shape:
            own[k] = v
            loaded += 1
        else:
            skipped.append(k)
    model.encoder.load_state_dict(own)
    logger.info("initialised %d encoder tensors from %s; kept fresh: %s", loaded, source, skipped or "none")
    misfits = [k for k in skipped if not k.startswith("head.")]
    if misfits:  # another architecture size, another number of bodies...: most of the encoder is fresh
        logger.warning("model.init_from %s: %d encoder tensors did not fit this model and start fresh: %s",
                       source, len(misfits), ", ".join(misfits[:8]) + (" ..." if len(misfits) > 8 else ""))  # fmt: skip
