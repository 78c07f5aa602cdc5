"""Continuous action sentences: per-part feature tokens from a trained, frozen skeleton encoder.

The LLM recognizer's second way to turn a skeleton sequence into a sentence (``llm.code_input:
features``), beside the VQ codes of :mod:`llmskel.models.vq_tokenizer`. A skeleton model trained with
``method: supervised``, ``gap`` or ``zeroshot`` (a :class:`~llmskel.models.skeleton_model.SkeletonModel`
folder) is loaded without its heads; its last feature map (N, M, D, T', V) is averaged over bodies,
cut into ``windows`` equal stretches of time, and pooled over the joints of each body part of the
layout (``global`` = every joint). Each (window, part) cell is one token: a D-dimensional vector,
``windows x len(parts)`` tokens a sentence, in (window, part) order. The recognizer projects them into
the LM's embedding space (:class:`FeatureProjector`); the encoder stays frozen.

Quantised codes throw most of the encoder's information away (NW-UCLA cross-view: 65.3 % with 24
VQ codes); these tokens keep it, at the price of a sentence that is no longer discrete text.

A recognizer folder stores the encoder inside itself (its architecture, classes, layout and
preprocessing under ``config.json``'s ``features`` key, its weights under ``features.encoder.*`` in
``model.safetensors``): it does not depend on the training folder of the encoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..config import bounded
from ..data.layouts import GLOBAL_TERM
from ..errors import CheckpointError, ConfigError

FOLDER_TYPE = "llmskel-feature-tokenizer"
GLOBAL = GLOBAL_TERM


@dataclass
class FeatureTokenSettings:
    """``llm.features``: how the frozen encoder's feature map becomes tokens."""

    windows: int = bounded(1, ge=1, le=64)  # stretches of time, each a row of part tokens
    parts: list[str] = field(default_factory=lambda: [GLOBAL, "head", "hand", "arm", "hip", "leg", "foot"])
    projector: str = "mlp"  # "mlp" (LayerNorm, Linear, GELU, Linear) or "linear" (LayerNorm, Linear)

    def validate(self) -> None:
        from ..data.layouts import PART_NAMES

        if not self.parts:
            raise ConfigError(
                "config key 'llm.features.parts' must name at least one part (global, head, ...)"
            )
        bad = sorted(set(self.parts) - {GLOBAL, *PART_NAMES})
        if bad:
            raise ConfigError(f"config key 'llm.features.parts' has unknown parts {bad}; valid: "
                              f"{GLOBAL}, {', '.join(PART_NAMES)}")  # fmt: skip
        if len(set(self.parts)) != len(self.parts):
            raise ConfigError(f"config key 'llm.features.parts' names a part twice: {self.parts}")
        if self.projector not in ("mlp", "linear"):
            raise ConfigError(
                f"config key 'llm.features.projector' must be mlp or linear, got {self.projector!r}"
            )


def part_pool(layout: str, parts: Sequence[str]) -> torch.Tensor:
    """(P, V) averaging weights: row p is the mean over part p's joints (every joint for ``global``)."""
    from ..data.layouts import part_pool_matrix

    return part_pool_matrix(layout, [(p,) for p in parts], hint="; drop it from llm.features.parts")


class SkeletonFeatureTokenizer(nn.Module):
    """A frozen skeleton encoder that writes (windows x parts) feature tokens per sequence."""

    def __init__(self, encoder_config: dict[str, Any], settings: FeatureTokenSettings):
        super().__init__()
        from .registry import create_model
        from .skeleton_model import SkeletonModelConfig

        settings.validate()
        cfg = SkeletonModelConfig.from_json_dict(dict(encoder_config), source="features.encoder")
        self.encoder_config = cfg
        self.settings = settings
        self.encoder = create_model(dict(cfg.model))
        self.encoder.requires_grad_(False)
        self.register_buffer("pool", part_pool(cfg.layout, settings.parts), persistent=False)

    # the interface the recognizer shares with the VQ tokenizer
    @property
    def layout(self) -> str:
        return self.encoder_config.layout

    @property
    def channels(self) -> int:
        return int(self.encoder_config.model.get("in_channels", 3))

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.encoder_config.preprocessing)

    @property
    def feature_dim(self) -> int:
        return int(self.encoder.feature_dim)

    @property
    def part_names(self) -> list[str]:
        return list(self.settings.parts)

    @property
    def sentence_length(self) -> int:
        return self.settings.windows * len(self.settings.parts)

    def train(self, mode: bool = True) -> SkeletonFeatureTokenizer:
        return super().train(False)  # frozen: batch norm statistics never move

    @classmethod
    def from_skeleton_model(cls, folder: str, settings: FeatureTokenSettings) -> SkeletonFeatureTokenizer:
        """The encoder of a trained skeleton model folder (or Hub id), loaded strictly; heads are dropped."""
        from .skeleton_model import SkeletonModel

        model = SkeletonModel.from_pretrained(folder)
        cfg = dataclasses.asdict(model.config)
        out = cls(_encoder_record(cfg), settings)
        out.encoder.load_state_dict(model.encoder.state_dict(), strict=True)
        return out.eval()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, windows * parts, D) float32 tokens, in (window, part) order."""
        self.encoder.eval()
        with torch.autocast(device_type=x.device.type, enabled=False):
            fm = self.encoder.forward_features(x.float()).feature_map  # (N, M, D, T', V)
        fm = fm.float().mean(1)  # (N, D, T', V)
        n, d, t, v = fm.shape
        s = self.settings.windows
        if t < s:  # fewer time steps than windows: repeat them (a short clip still fills every window)
            fm = F.interpolate(fm, size=(s, v), mode="nearest")
            t = s
        fm = F.adaptive_avg_pool2d(fm, (s, v))  # (N, D, S, V)
        tokens = torch.einsum("ndsv,pv->nspd", fm, self.pool.to(fm.dtype))  # (N, S, P, D)
        return tokens.reshape(n, s * len(self.settings.parts), d)

    def prepare_inputs(self, samples: Sequence[Any]) -> torch.Tensor:
        """Samples or arrays -> (N, C, T, V, M) through the encoder's saved preprocessing."""
        from ..data.inputs import prepare_inputs

        return prepare_inputs(samples, self.layout, self.preprocessing, self.channels)

    def render(self, tokens: torch.Tensor | np.ndarray) -> str:
        """A readable summary of one sentence (S * P, D): the norm of each token, by window and part."""
        t = torch.as_tensor(np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens))
        if t.ndim != 2 or t.shape[0] != self.sentence_length:
            raise ValueError(f"expected tokens of shape ({self.sentence_length}, D), got {tuple(t.shape)}")
        norms = t.float().norm(dim=-1).reshape(self.settings.windows, -1)
        words = ["<features>"]
        for w in range(norms.shape[0]):
            words.append(f"[t{w}]")
            words += [f"{p}:{float(n):.2f}" for p, n in zip(self.settings.parts, norms[w])]
        return " ".join(words + ["</features>"])

    def tokenize(self, sample: Any) -> torch.Tensor:
        x = self.prepare_inputs([sample]).to(self.pool.device)
        return self.encode(x)[0].cpu()

    # ------------------------------------------------------------------------------------------
    def folder_config(self) -> dict[str, Any]:
        return {
            "type": FOLDER_TYPE,
            "settings": dataclasses.asdict(self.settings),
            "encoder": _encoder_record(dataclasses.asdict(self.encoder_config)),
            "llmskel_version": __version__,
        }

    @classmethod
    def from_folder_config(cls, d: dict[str, Any], source: str) -> SkeletonFeatureTokenizer:
        from ..config import from_dict
        from ..trust import check_model_size

        if not isinstance(d, dict) or d.get("type") != FOLDER_TYPE:
            got = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise CheckpointError(
                f"{source}: not a feature tokenizer (type {got!r}, expected {FOLDER_TYPE!r})"
            )
        unknown = sorted(set(d) - {"type", "settings", "encoder", "llmskel_version"})
        missing = sorted({"settings", "encoder"} - set(d))
        if unknown or missing:
            raise CheckpointError(f"{source}: unknown keys {unknown}, missing keys {missing}")
        try:
            settings = from_dict(FeatureTokenSettings, d["settings"], prefix="llm.features")
            settings.validate()
        except ConfigError as e:
            raise CheckpointError(f"{source}: {e}") from None
        if not isinstance(d["encoder"], dict):
            raise CheckpointError(f"{source}: 'encoder' must be a skeleton model config (a mapping)")
        try:
            check_model_size(lambda: cls(d["encoder"], settings), f"{source} (encoder)",
                             fields="encoder.model.*")  # fmt: skip
            return cls(d["encoder"], settings)
        except CheckpointError:
            raise
        except (ConfigError, TypeError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"{source}: the encoder config does not build: {' '.join(str(e).split())}"
            ) from None


def _encoder_record(cfg: dict[str, Any]) -> dict[str, Any]:
    """The skeleton model config kept with the tokenizer: what builds and feeds the encoder, plus a
    short record of its training (no heads, no text side, no history)."""
    training = cfg.get("training") or {}
    keep = {
        k: training[k] for k in ("name", "dataset", "protocol", "method", "metrics", "seed") if k in training
    }
    return {
        "model": dict(cfg["model"]),
        "classes": list(cfg["classes"]),
        "layout": cfg["layout"],
        "preprocessing": dict(cfg.get("preprocessing") or {}),
        "method": cfg.get("method", "supervised"),
        "training": keep,
    }


class FeatureProjector(nn.Module):
    """Feature tokens (N, L, D) -> LM input embeddings (N, L, H): a LayerNorm, a linear map (or a
    two-layer MLP, as LLaVA connects its vision encoder), and a learned embedding per sentence slot.
    The output starts with the LM's per-dimension embedding mean and spread, so the first steps see
    inputs of the scale the LM was trained on."""

    def __init__(
        self, feature_dim: int, sentence_length: int, lm_embeddings: torch.Tensor, kind: str = "mlp"
    ):
        super().__init__()
        emb = lm_embeddings.detach().float()
        mean, std = emb.mean(0), emb.std(0)  # (H,)
        h = emb.shape[1]
        self.norm = nn.LayerNorm(feature_dim)
        layers: list[nn.Module] = [nn.Linear(feature_dim, h)]
        if kind == "mlp":
            layers += [nn.GELU(), nn.Linear(h, h)]
        self.net = nn.Sequential(*layers)
        last = layers[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.normal_(0.0, 1.0 / last.in_features**0.5).mul_(std[:, None])
            last.bias.copy_(mean)
        self.slot = nn.Parameter(torch.zeros(sentence_length, h))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(tokens.float())) + self.slot
