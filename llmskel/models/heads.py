"""Extra modules that methods attach to a skeleton encoder, built from JSON-able specs.

``SkeletonModelConfig.heads`` maps a name to a spec ``{"type": ..., ...}``; :func:`build_heads`
turns it into an ``nn.ModuleDict`` so the modules are saved and loaded with the model.

* ``linear``: ``{"type": "linear", "out_features": E, "in_features": D (default: encoder width)}``
* ``mlp``: two linear layers with a GELU between (``hidden``, ``out_features``)
* ``part_projection``: one linear map per body part, D -> E (``parts``: list of part names)
* ``logit_scale``: a learnable temperature, stored as log(1 / init); ``"size": P`` makes one per
  term (shape (P,)), without it a scalar
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError


class LogitScale(nn.Module):
    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0, size: int | None = None):
        super().__init__()
        shape = () if size is None else (int(size),)
        self.log_scale = nn.Parameter(torch.full(shape, math.log(1.0 / init_temperature)))
        self.max_scale = max_scale

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)


class PartProjection(nn.Module):
    """Per-part linear maps: ``forward(part_feats)`` with part_feats (N, P, D) -> (N, P, E)."""

    def __init__(self, parts: list[str], in_features: int, out_features: int):
        super().__init__()
        self.parts = list(parts)
        self.weight = nn.Parameter(torch.empty(len(parts), out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(len(parts), out_features))
        for w in self.weight:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, P, D) -> (N, P, E)
        return torch.einsum("npd,ped->npe", x, self.weight) + self.bias


def _build_one(name: str, spec: dict[str, Any], feature_dim: int) -> nn.Module:
    kind = spec.get("type")
    d = int(spec.get("in_features", feature_dim))
    if kind == "linear":
        return nn.Linear(d, int(spec["out_features"]), bias=bool(spec.get("bias", True)))
    if kind == "mlp":
        h = int(spec.get("hidden", d))
        return nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Dropout(float(spec.get("dropout", 0.0))),
                             nn.Linear(h, int(spec["out_features"])))  # fmt: skip
    if kind == "part_projection":
        return PartProjection(list(spec["parts"]), d, int(spec["out_features"]))
    if kind == "logit_scale":
        return LogitScale(float(spec.get("init_temperature", 0.07)), float(spec.get("max_scale", 100.0)),
                          spec.get("size"))  # fmt: skip
    raise CheckpointError(
        f"head {name!r} has unknown type {kind!r}; valid types: linear, mlp, part_projection, logit_scale"
    )


def build_heads(specs: dict[str, Any] | None, feature_dim: int) -> nn.ModuleDict:
    return nn.ModuleDict(
        {name: _build_one(name, dict(spec), feature_dim) for name, spec in (specs or {}).items()}
    )
