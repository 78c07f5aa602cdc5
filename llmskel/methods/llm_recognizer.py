"""LLM as recognizer (``method: llm``): the training method.

The model, its saved folder and constrained scoring are :mod:`llmskel.models.llm_recognizer`
(:class:`~llmskel.models.llm_recognizer.SkeletonLlm`); this module trains it: a frozen VQ skeleton
tokenizer (``llm.vq_tokenizer``) or a frozen trained skeleton encoder (``llm.code_input: features``,
``llm.skeleton_encoder``) writes the action sentences, LoRA adapters and the code embeddings (or the
feature projector) learn to answer with the class name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.feature_tokenizer import SkeletonFeatureTokenizer
from ..models.llm_recognizer import (  # noqa: F401  (re-exported: the names this module always had)
    ADAPTER_DIR,
    FOLDER_TYPE,
    CodeEmbedder,
    LlmConfig,
    LoraSettings,
    SkeletonLlm,
    code_token_names,
    hub_id_of,
)
from ..models.vq_tokenizer import SkeletonVQTokenizer
from .base import Method, register_method
from .base import unwrap as _unwrap

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# the training method


def check_tokenizer_fits(vq, data_cfg, bundle, source: str) -> None:
    """The experiment must prepare inputs exactly as the tokenizer (VQ or feature encoder) was trained
    to read them."""
    from .supervised import preprocessing_of

    ours = preprocessing_of(data_cfg)
    diff = [f"data.{k}: tokenizer {vq.preprocessing.get(k)!r} vs experiment {ours[k]!r}"
            for k in ours if k in vq.preprocessing and vq.preprocessing[k] != ours[k]]  # fmt: skip
    if vq.layout != bundle.layout:
        diff.append(f"layout: tokenizer {vq.layout!r} vs data {bundle.layout!r}")
    if vq.channels != bundle.channels:
        diff.append(f"channels: tokenizer {vq.channels} vs data {bundle.channels}")
    if diff:
        what = "skeleton encoder" if isinstance(vq, SkeletonFeatureTokenizer) else "VQ tokenizer"
        raise ConfigError(
            f"the {what} {source} was trained on other inputs: "
            + "; ".join(diff)
            + " (inherit its data section: base: <its config>.yaml)"
        )
    if isinstance(vq, SkeletonFeatureTokenizer):
        return
    m = (vq.training_record or {}).get("metrics", {})
    if m.get("codebook_collapsed"):
        logger.warning("the VQ tokenizer %s has a collapsed codebook (lowest part uses %.1f %% of its codes): "
                       "its sentences carry little information", source, 100 * m.get("codebook_usage_min", 0.0))  # fmt: skip


@register_method("llm", section="llm", config=LlmConfig)
class LlmMethod(Method):
    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.llm.code_input == "features":
            if not cfg.llm.skeleton_encoder:
                raise ConfigError("config key 'llm.skeleton_encoder' is required with llm.code_input: features: the "
                                  "folder of a skeleton model trained with method supervised, gap or zeroshot "
                                  "(for example runs/ucla_ctrgcn_gap/best)")  # fmt: skip
            return
        if not cfg.llm.vq_tokenizer:
            raise ConfigError("config key 'llm.vq_tokenizer' is required: the folder of a skeleton tokenizer "
                              "trained with method: vq (for example runs/synthetic_vq/last)")  # fmt: skip

    def __init__(self, cfg, bundle):
        super().__init__(cfg, bundle)
        self.llm_cfg: LlmConfig = self.settings

    def build_model(self) -> SkeletonLlm:
        c = self.llm_cfg
        if c.code_input == "features":
            src = str(c.skeleton_encoder)
            vq = SkeletonFeatureTokenizer.from_skeleton_model(src, c.features)
        else:
            src = str(c.vq_tokenizer)
            vq = SkeletonVQTokenizer.from_pretrained(src)
        check_tokenizer_fits(vq, self.cfg.data, self.bundle, src)
        model = SkeletonLlm.build(c, self.bundle.classes, vq)
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        logger.info("LLM recognizer: %d trainable parameters; %d %s positions per sentence; prompt %d + %d tokens",
                    n, vq.sentence_length, "feature" if c.code_input == "features" else "code",
                    len(model.prompt.prefix_ids), len(model.prompt.suffix_ids))  # fmt: skip
        return model

    def param_groups(self, model: nn.Module) -> list[Any]:
        m = _unwrap(model)
        code = [p for p in m.code_embedder.parameters() if p.requires_grad]
        ids = {id(p) for p in code}
        rest = [p for p in m.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": rest}, {"params": code, "lr_scale": self.llm_cfg.code_lr_scale}]

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = model(batch["x"], batch["label"])
        return loss, {"lm": loss.detach()}  # read by the trainer at log steps only

    def scores(self, model: nn.Module, batch: dict[str, Any], split: str = "test") -> torch.Tensor:
        return _unwrap(model).label_scores(batch["x"])

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        _unwrap(model).save_pretrained(folder, training=record)
