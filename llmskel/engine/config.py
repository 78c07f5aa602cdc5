"""The experiment config: one YAML file per experiment, resolved into :class:`ExperimentConfig`.

Sections: ``data`` (:class:`~llmskel.data.config.DataConfig`), ``model``, ``optim``, ``train`` and
the method-specific sections. With no file at all, the defaults train the synthetic set (the
embedded default) in a few minutes on two CPU cores.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import load_config
from ..data.config import DataConfig
from ..errors import ConfigError


@dataclass
class ModelSection:
    name: str = "ctrgcn_small"  # a registered architecture (llmskel.models.list_models())
    # architecture keys to override (for example {"base_channels": 32, "dropout": 0.1})
    overrides: dict[str, Any] = field(default_factory=dict)
    # start from a trained llmskel model folder or Hub id (encoder weights; the head is rebuilt
    # when the classes differ)
    init_from: str | None = None


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1  # for batch_size 16 per process; scaled linearly when scale_lr is true
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-4
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = 5.0
    milestones: list[float] = field(default_factory=lambda: [35.0, 55.0])  # epochs, for "step"
    gamma: float = 0.1
    min_lr: float = 0.0  # floor of the cosine schedule, as a fraction of lr
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None
    scale_lr: bool = False  # multiply lr by (global batch / 16)


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16  # per process
    eval_batch_size: int = 64
    grad_accum: int = 1
    # None lets the launcher decide (accelerate config / --mixed_precision); else no, fp16, bf16
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = only at epoch ends
    keep_checkpoints: int = 2  # how many save_state folders to keep
    eval_every: int = 1  # epochs between evaluations (the last epoch always evaluates)
    log_every: int = 10  # optimizer steps between tracker logs
    trackers: list[str] = field(default_factory=lambda: ["tensorboard", "jsonl"])
    progress: bool = True
    compile: bool = False  # torch.compile the model (inductor); pays off on long GPU runs
    deterministic: bool = False


@dataclass
class ExperimentConfig:
    name: str = "synthetic_ctrgcn"
    seed: int = 1
    output_dir: str | None = None  # default: runs/<name>
    method: Literal["supervised", "gap", "zeroshot", "llm", "vq"] = "supervised"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # method sections, read by their methods (validated there, kept as mappings here so that a
    # supervised config does not need to know about the language side)
    align: dict[str, Any] = field(default_factory=dict)
    zeroshot: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    vq: dict[str, Any] = field(default_factory=dict)  # the skeleton tokenizer (method vq)
    # free text for the model card
    description: str = ""

    def validate(self) -> None:
        if self.train.epochs < 1 and not self.train.max_steps:
            raise ConfigError("config key 'train.epochs' must be >= 1")
        if self.train.grad_accum < 1:
            raise ConfigError("config key 'train.grad_accum' must be >= 1")

    @property
    def run_dir(self) -> str:
        return self.output_dir or f"runs/{self.name}"


def builtin_config_dir() -> Path | None:
    """The folder of the experiment configs shipped with llmskel (package data ``llmskel.configs``),
    or the repository's ``configs/`` when running from a checkout that is not installed."""
    try:
        spec = importlib.util.find_spec("llmskel.configs")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if Path(loc).is_dir():
                return Path(loc)
    checkout = Path(__file__).resolve().parents[2] / "configs"
    return checkout if checkout.is_dir() else None


def list_builtin_configs() -> list[str]:
    """Names of the shipped experiment configs (``ucla_ctrgcn_cpu``, ...)."""
    d = builtin_config_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d else []


def resolve_config_path(spec: str | os.PathLike) -> Path:
    """A config given on the command line -> the YAML file to read.

    An existing file wins; otherwise a built-in name (``ucla_ctrgcn_cpu``, with or without
    ``.yaml``), or ``configs/<built-in>.yaml`` as the README writes it, resolves to the shipped
    copy, so the same command works from a checkout and from an installed wheel. Anything else is
    a :class:`ConfigError` that lists the built-in names.
    """
    p = Path(spec)
    if p.is_file():
        return p
    name = p.name[: -len(".yaml")] if p.name.endswith(".yaml") else p.name
    d = builtin_config_dir()
    if d is not None and (p.parent in (Path("."), Path("configs"))) and (d / f"{name}.yaml").is_file():
        return d / f"{name}.yaml"
    names = ", ".join(list_builtin_configs()) or "(none found)"
    raise ConfigError(
        f"config {str(spec)!r}: no such file and not a built-in config; built-in configs: {names}"
    )


def load_experiment(
    path: str | os.PathLike | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    """Read an experiment config: a YAML path or a built-in name (see :func:`resolve_config_path`)."""
    return load_config(ExperimentConfig, resolve_config_path(path) if path else None, overrides)
