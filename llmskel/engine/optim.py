"""Optimizers and learning-rate schedules.

Schedules are written in optimizer steps and sized from the *unprepared* training loader
(``steps_per_epoch = ceil(len(loader) / grad_accum)``): Accelerate's prepared scheduler steps once
per process per optimizer step, which matches a schedule counted on the unsharded loader.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from .config import OptimConfig


def build_optimizer(cfg: OptimConfig, param_groups, lr: float) -> torch.optim.Optimizer:
    """``param_groups``: parameters or dicts with ``params`` and an optional ``lr_scale``."""
    groups = []
    for g in param_groups:
        if isinstance(g, dict):
            g = dict(g)
            scale = g.pop("lr_scale", 1.0)
            g["lr"] = lr * scale
            groups.append(g)
        else:
            groups.append({"params": g, "lr": lr})
    # no weight decay on biases, norms and scalars (the usual practice for GCNs and transformers)
    split = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        base = {k: v for k, v in g.items() if k != "params"}
        if decay:
            split.append({**base, "params": decay})
        if no_decay:
            split.append({**base, "params": no_decay, "weight_decay": 0.0})
    if cfg.name == "sgd":
        return torch.optim.SGD(split, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)  # fmt: skip
    return torch.optim.AdamW(split, lr=lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: OptimConfig, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base lr after ``step`` optimizer steps (linear warm-up, then the schedule)."""
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if warm > 0 and step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        epoch = step / max(steps_per_epoch, 1)
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    span = max(total_steps - warm, 1)
    progress = min(max(step - warm, 0) / span, 1.0)
    return cfg.min_lr + (1.0 - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, cfg: OptimConfig, steps_per_epoch: int, total_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda s: lr_factor(s, cfg, steps_per_epoch, total_steps))
