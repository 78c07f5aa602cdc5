"""The GCN skeleton model folder kind: :class:`SkeletonModel` and its :class:`SkeletonModelConfig`.

A trained model is a folder (or a Hub repository) holding

* ``config.json``: :class:`SkeletonModelConfig`: the encoder architecture, the class names, the
  skeleton layout and the preprocessing the model expects, the method and its extra modules, and
  what it was trained on (dataset, protocol, metrics) for the model card;
* ``model.safetensors``: the weights (never a pickle);
* ``README.md``: the model card (:func:`llmskel.hub.skeleton_model_card`).

:meth:`SkeletonModel.from_pretrained` takes a folder or a Hub id (with the usual ``revision``,
``cache_dir``, ``local_files_only``, ``force_download`` and ``token``) and loads **strictly**: a
missing or unexpected weight is a :class:`~llmskel.errors.CheckpointError` that names the keys, and
so is a corrupt or absent weights file; another kind's folder is refused naming its loader.
``llmskel.load`` picks the class for any folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from .. import __version__
from ..errors import CheckpointError, ConfigError
from ..prediction import Prediction, rank, renamed_argument, target_of
from .folders import CONFIG_NAME, WEIGHTS_NAME, expect_kind, load_weights_strict, read_folder_config


@dataclass
class SkeletonModelConfig:
    model: dict[str, Any]  # encoder architecture (llmskel.models.create_model accepts it)
    classes: list[str]
    layout: str
    # eval-time preprocessing: keys of llmskel.data.config.DataConfig (num_frames, num_bodies,
    # stream, eval_crop, center, align_view, normalize_scale, ...)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    method: str = "supervised"
    # extra modules of the method, by name: {"type": ..., ...}; see llmskel.models.heads
    heads: dict[str, Any] = field(default_factory=dict)
    # text side (zero-shot): encoder reference, prompt templates, ...
    text: dict[str, Any] = field(default_factory=dict)
    # what the model was trained on and how well it did (rendered in the model card)
    training: dict[str, Any] = field(default_factory=dict)
    llmskel_version: str = __version__

    @classmethod
    def from_json_dict(cls, d: dict[str, Any], source: str = CONFIG_NAME) -> SkeletonModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise CheckpointError(f"{source}: unknown keys {unknown}; valid keys: {sorted(names)}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]  # fmt: skip
        if missing:
            raise CheckpointError(f"{source}: missing keys {missing}; is this an llmskel model folder?")
        cfg = cls(**d)
        cfg.check(source)
        return cfg

    def check(self, source: str = CONFIG_NAME) -> None:
        """Refuse a config that would load into a model that answers wrongly or fails later: the
        class list must name each of the classifier's outputs once, and the method must exist."""
        for key, tp in (("model", dict), ("classes", list), ("layout", str), ("method", str),
                        ("preprocessing", dict), ("heads", dict), ("text", dict), ("training", dict)):  # fmt: skip
            if not isinstance(getattr(self, key), tp):
                raise CheckpointError(
                    f"{source}: key {key!r} must be a {tp.__name__}, got {getattr(self, key)!r}"
                )
        if not all(isinstance(c, str) and c for c in self.classes):
            raise CheckpointError(f"{source}: 'classes' must be a list of non-empty names")
        dup = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dup:
            raise CheckpointError(f"{source}: 'classes' names {dup} more than once")
        n = self.model.get("num_classes")
        if n and len(self.classes) != n:
            raise CheckpointError(
                f"{source}: 'classes' lists {len(self.classes)} names but the classifier has "
                f"model.num_classes = {n} outputs; the folder is inconsistent (edit one to match the other)"
            )
        from ..methods.base import list_methods

        known = list_methods()
        if self.method not in known:
            raise CheckpointError(
                f"{source}: unknown method {self.method!r}; known methods: {', '.join(known)}"
            )


class SkeletonModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="llmskel",
    tags=["skeleton-based-action-recognition", "llmskel"],
    repo_url="https://github.com/llmskel/llmskel",
):
    """A skeleton encoder plus its method's extra modules, its classes, layout and preprocessing."""

    def __init__(self, config: SkeletonModelConfig):
        super().__init__()
        from ..trust import check_model_size
        from .heads import build_heads
        from .registry import create_model

        if isinstance(config, dict):
            config = SkeletonModelConfig.from_json_dict(config)
        self.config = config
        self.encoder = create_model(dict(config.model))
        dim = self.encoder.feature_dim
        check_model_size(lambda: build_heads(config.heads, feature_dim=dim), "model config 'heads'",
                         fields="heads.*.out_features / hidden")  # fmt: skip
        self.heads = build_heads(config.heads, feature_dim=dim)

    # --------------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    @property
    def layout(self) -> str:
        return self.config.layout

    def forward(self, x: torch.Tensor):
        """``x`` (N, C, T, V, M) -> the encoder's output (logits, feature, joint_feature)."""
        return self.encoder(x)

    # --------------------------------------------------------------------------------------
    # preprocessing and prediction on raw samples
    def data_config(self):
        from ..data.inputs import preprocessing_config

        return preprocessing_config(self.config.preprocessing)

    def eval_pipeline(self):
        """The evaluation pipeline, built once per preprocessing (building it parses the config: about
        7 ms, more than a small model's forward pass on one window)."""
        from ..data.pipeline import SkeletonPipeline

        key = (json.dumps(self.config.preprocessing, sort_keys=True, default=str), self.layout)
        cached = getattr(self, "_eval_pipeline_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, SkeletonPipeline(self.data_config(), self.layout, train=False))
            self._eval_pipeline_cache = cached
        return cached[1]

    def prepare_inputs(self, samples: Sequence[Any]) -> torch.Tensor:
        """Samples or (T, M, V, C) / (T, V, C) arrays in this model's layout -> (N, C, T, V, M).

        ``samples`` is a list of samples / arrays, one sample (a :class:`SkeletonSample`), one array
        of a single sample ((T, M, V, C) or (T, V, C): one prediction, never one per frame) or a
        batch array (N, T, M, V, C). Joints and channels are checked against the model's layout
        and input channels, with an error naming the input (:func:`llmskel.data.inputs.prepare_inputs`)."""
        from ..data.inputs import prepare_inputs

        return prepare_inputs(
            samples, self.layout, self.config.preprocessing, self.config.model.get("in_channels"),
            pipe=self.eval_pipeline(),
        )  # fmt: skip

    @torch.no_grad()
    def predict_proba(self, samples: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Class probabilities (N, K) for samples (see :meth:`prepare_inputs`)."""
        from ..data.inputs import as_sample_list

        samples = as_sample_list(samples)
        self.eval()
        device = next(self.parameters()).device
        out = []
        for start in range(0, len(samples), batch_size):
            x = self.prepare_inputs(samples[start : start + batch_size]).to(device)
            logits = self(x).logits
            if logits is None:
                raise CheckpointError("this model has no classifier head; use its method's classify()")
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def predict(self, samples: Sequence[Any], top_k: int = 5) -> list[Prediction]:
        """One :class:`~llmskel.prediction.Prediction` per sample (one array of one sample gives one;
        see :meth:`prepare_inputs`): the best class, its probability, the ``top_k`` ranking and the
        sample's ground truth when it carries one."""
        from ..data.inputs import as_sample_list

        samples = as_sample_list(samples)
        return rank(self.predict_proba(samples), self.classes, top_k, [target_of(s) for s in samples])

    @renamed_argument("skeletons", "samples")
    def classify(self, samples: Sequence[Any], labels: Sequence[str] | str, prompts: str | Sequence[str] | None = None,
                 descriptions: Any = None, top_k: int = 5) -> list[Prediction]:  # fmt: skip
        """Zero-shot: rank free-text ``labels`` for each sample by similarity to their text prototypes.

        Needs a model with a text side (``method: zeroshot`` or ``gap``); ``prompts``: templates with
        ``{label}`` (a list or a .txt file; default: the model's own), ``descriptions``: extra text per
        label (a mapping or a description file). Text embeddings are cached per label set. Returns one
        :class:`~llmskel.prediction.Prediction` per input (see :func:`llmskel.methods.zero_shot_text.classify`)."""
        from ..methods.zero_shot_text import classify

        return classify(self, samples, labels, prompts=prompts, descriptions=descriptions, top_k=top_k)

    # --------------------------------------------------------------------------------------
    # Hub mixin hooks
    def public_config(self) -> dict[str, Any]:
        """``config.json`` as shared: local paths (text encoder folders, description files) become names."""
        from ..methods.zero_shot_text import public_text_record
        from ..trust import scrub_local_paths

        d = dataclasses.asdict(self.config)
        d["text"] = public_text_record(d.get("text") or {})
        return scrub_local_paths(d)

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        from ..jsonio import dumps

        save_model(self, str(Path(save_directory) / WEIGHTS_NAME))
        # the config.json that the mixin writes comes from __init__'s arguments; write ours so
        # that metrics added after construction (config.training) are kept. A folder is meant to be
        # shared (push): local paths (text encoder folders, description files) become their names
        d = self.public_config()
        (Path(save_directory) / CONFIG_NAME).write_text(dumps(d, indent=2), encoding="utf-8")
        self.generate_model_card().save(Path(save_directory) / "README.md")

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        from ..hub import skeleton_model_card

        return skeleton_model_card(SkeletonModelConfig.from_json_dict(self.public_config()))

    @classmethod
    def _decode_arg(cls, expected_type, value):
        if expected_type is SkeletonModelConfig or expected_type == "SkeletonModelConfig":
            return SkeletonModelConfig.from_json_dict(value)
        return super()._decode_arg(expected_type, value)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        force_download: bool = False, token: str | bool | None = None,
                        map_location: str = "cpu") -> SkeletonModel:  # fmt: skip
        """Load from a folder or a Hub id, strictly (see the module docstring). The Hub arguments are
        those of :func:`huggingface_hub.snapshot_download`; only the folder's own files are fetched."""
        from ..hub import resolve_model_folder

        model_id = str(pretrained_model_name_or_path)
        folder = resolve_model_folder(model_id, revision=revision, cache_dir=cache_dir, token=token,
                                      local_files_only=local_files_only, force_download=force_download)  # fmt: skip
        raw, cfg_path = read_folder_config(folder, "an llmskel model folder")
        expect_kind(raw, "skeleton-model", str(cfg_path))
        config = SkeletonModelConfig.from_json_dict(raw, source=str(cfg_path))
        try:
            model = cls(config)
        except (ConfigError, TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{cfg_path}: {' '.join(str(e).split())}") from None
        load_weights_strict(model, folder / WEIGHTS_NAME, map_location=map_location)
        model.eval()
        model.name_or_path = model_id  # named in error messages (e.g. a model without a text side)
        return model


__all__ = ["SkeletonModel", "SkeletonModelConfig"]
