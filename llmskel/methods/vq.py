"""Training the skeleton tokenizer of the LLM mode (``method: vq``), through the same Accelerate engine.

The ``vq:`` section of the experiment is :class:`~llmskel.models.vq_tokenizer.VQConfig`; the ``data:``
section decides the preprocessing, which is saved with the tokenizer (the LLM stage checks that it
prepares its inputs the same way). The ``model:`` section is not used.

The method does not classify (``classifies = False``): at every evaluation the engine asks for
:meth:`VQMethod.validation_metrics`: reconstruction error, perplexity and fraction of codes used
(mean over parts, and the lowest part), the dead codes restarted so far, and ``codebook_collapsed``
(1.0 with a warning giving the figure when a part uses less than ``vq.collapse_threshold`` of its
codes). The trained tokenizer is written to ``<run>/last`` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.vq_tokenizer import SkeletonVQTokenizer, VQConfig
from .base import Method, register_method, unwrap
from .supervised import preprocessing_of

logger = logging.getLogger(__name__)


@register_method("vq", section="vq", config=VQConfig)
class VQMethod(Method):
    classifies = False

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.data.num_frames % cfg.vq.window:
            raise ConfigError(f"config key 'data.num_frames' ({cfg.data.num_frames}) must be a multiple of "
                              f"'vq.window' ({cfg.vq.window})")  # fmt: skip

    def __init__(self, cfg, bundle):
        super().__init__(cfg, bundle)
        self.vq_cfg: VQConfig = self.settings

    def build_model(self) -> SkeletonVQTokenizer:
        c, b = self.cfg, self.bundle
        return SkeletonVQTokenizer(self.vq_cfg, layout=b.layout, channels=b.channels, num_frames=c.data.num_frames,
                                   num_bodies=c.data.num_bodies, preprocessing=preprocessing_of(c.data))  # fmt: skip

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["x"])
        stats = SkeletonVQTokenizer.usage_stats(out["counts"])
        logs = {
            "recon": float(out["recon_loss"]),
            "commit": float(out["commit_loss"]),
            "perplexity": float(stats["perplexity"].mean()),
            "usage": float(stats["usage"].mean()),
        }
        return out["loss"], logs

    def scores(self, model: nn.Module, batch: dict[str, Any], split: str = "test") -> torch.Tensor:
        raise NotImplementedError("a skeleton tokenizer does not classify; see validation_metrics")

    @torch.no_grad()
    def validation_metrics(self, model: nn.Module, loader, accelerator) -> dict[str, float]:
        vq: SkeletonVQTokenizer = unwrap(model)
        was_training = vq.training
        vq.eval()
        device = vq.codebook.device
        counts = torch.zeros(vq.num_parts, vq.codebook_size, device=device)
        sse = torch.zeros((), device=device)  # sum of squared errors over valid coordinates
        n = torch.zeros((), device=device)
        for batch in loader:
            out = vq(batch["x"])
            counts += out["counts"]
            w = vq.dim_mask.sum() * out["codes"].numel() / vq.num_parts  # valid entries in this batch
            sse += out["recon_loss"].float() * w
            n += w
        if accelerator.num_processes > 1:
            counts, sse, n = (
                accelerator.reduce(counts, "sum"),
                accelerator.reduce(sse, "sum"),
                accelerator.reduce(n, "sum"),
            )
        vq.train(was_training)
        stats = vq.usage_stats(counts)
        usage = stats["usage"].tolist()
        if accelerator.is_main_process:
            vq.check_collapse(usage, where=" on the validation data")  # a warning that gives the figure
        metrics = {
            "recon_mse": float(sse / n.clamp_min(1)),
            "perplexity": float(stats["perplexity"].mean()),
            "perplexity_min": float(stats["perplexity"].min()),
            "codebook_usage": float(stats["usage"].mean()),
            "codebook_usage_min": float(stats["usage"].min()),
            "dead_code_restarts": float(vq.restarts.sum()),
            "codebook_collapsed": float(min(usage) < vq.vq.collapse_threshold),
        }
        return metrics

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        unwrap(model).save_pretrained(folder, training=record)
