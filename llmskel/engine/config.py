"""The experiment config: one YAML file per experiment, resolved into :class:`ExperimentConfig`.

Sections: ``data`` (:class:`~llmskel.data.config.DataConfig`), ``model``, ``optim``, ``train`` and
the method sections (``align:``, ``zeroshot:``, ``llm:``, ``vq:``, ...). A method declares its own
section and its dataclass where it registers (``@register_method("gap", section="align",
config=AlignConfig)``), so a new method touches one file; every section in a file is checked
against its dataclass (an unknown key is an error whatever the method), and the chosen method's
:meth:`~llmskel.methods.base.Method.check_config` checks what it needs (the model name, keys it
requires) when the config loads, before any data is read or any run folder is made. With no file
at all, the defaults train the synthetic set (the embedded default) in a few minutes on two CPU
cores.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import bounded, from_dict, load_config, to_dict
from ..data.config import DataConfig
from ..errors import ConfigError


def _method_sections() -> dict[str, type]:
    from ..methods.base import method_sections

    return method_sections()


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
    lr: float = bounded(0.1, gt=0)  # for batch_size 16 per process; scaled linearly when scale_lr is true
    momentum: float = bounded(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = bounded(4e-4, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = bounded(5.0, ge=0)
    milestones: list[float] = bounded(default_factory=lambda: [35.0, 55.0], ge=0)  # epochs, for "step"
    gamma: float = bounded(0.1, gt=0)
    min_lr: float = bounded(0.0, ge=0, le=1)  # floor of the cosine schedule, as a fraction of lr
    label_smoothing: float = bounded(0.0, ge=0, lt=1)
    clip_grad_norm: float | None = bounded(None, gt=0)
    scale_lr: bool = False  # multiply lr by (global batch / 16)


@dataclass
class TrainConfig:
    epochs: int = bounded(30, ge=0)  # 0 only together with max_steps
    batch_size: int = bounded(16, ge=1)  # per process
    eval_batch_size: int = bounded(64, ge=1)
    grad_accum: int = bounded(1, ge=1)
    # None lets the launcher decide (accelerate config / --mixed_precision); else no, fp16, bf16
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None
    max_steps: int | None = bounded(None, ge=1)  # stop after this many optimizer steps (tests, smoke runs)
    checkpoint_every: int = bounded(0, ge=0)  # optimizer steps between checkpoints; 0 = only at epoch ends
    keep_checkpoints: int = bounded(2, ge=1)  # how many save_state folders to keep
    eval_every: int = bounded(1, ge=1)  # epochs between evaluations (the last epoch always evaluates)
    log_every: int = bounded(10, ge=1)  # optimizer steps between tracker logs
    trackers: list[str] = field(default_factory=lambda: ["tensorboard", "jsonl"])
    progress: bool = True
    compile: bool = False  # torch.compile the model (inductor); pays off on long GPU runs
    deterministic: bool = False


@dataclass
class ExperimentConfig:
    name: str = "synthetic_ctrgcn"
    seed: int = bounded(1, ge=0)
    output_dir: str | None = None  # default: runs/<name>
    method: str = "supervised"  # a registered method (llmskel.methods.list_methods())
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # method sections by key (align, zeroshot, llm, vq, ...), each the dataclass its method declares;
    # written at the top level of the YAML. Holds the sections given plus the chosen method's own.
    sections: dict[str, Any] = field(default_factory=dict, metadata={"sections": _method_sections})
    # free text for the model card
    description: str = ""

    def __getattr__(self, name: str) -> Any:
        # cfg.align, cfg.zeroshot ...: a section given in the config, else its defaults
        if name.startswith("_") or name == "sections":
            raise AttributeError(name)
        sections = self.__dict__.get("sections") or {}
        if name in sections:
            return sections[name]
        known = _method_sections()
        if name in known:
            return known[name]()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def validate(self) -> None:
        """Check the whole experiment before any work: ranges, the method and its section, the model."""
        from ..methods.base import get_method

        if self.train.epochs < 1 and not self.train.max_steps:
            raise ConfigError("config key 'train.epochs' must be >= 1 (or set train.max_steps)")
        try:
            method = get_method(self.method)
        except KeyError as e:
            raise ConfigError(f"config key 'method': {e.args[0]}", key="method") from None
        if method.config_section and method.config_section not in self.sections:
            self.sections[method.config_section] = method.config_class()
        method.check_config(self)

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


def check_experiment(cfg: ExperimentConfig) -> None:
    """Check a config built in Python (not through :func:`load_experiment`) as strictly as a loaded
    one: ranges, types, the method, its section and the model; raises :class:`ConfigError`."""
    from_dict(type(cfg), to_dict(cfg))
