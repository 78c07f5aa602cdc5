"""Trained models as Hugging Face Hub artifacts.

A trained llmskel model is a folder (or a Hub repository) holding

* ``config.json``: :class:`SkeletonModelConfig`: the encoder architecture, the class names, the
  skeleton layout and the preprocessing the model expects, the method and its extra modules, and
  what it was trained on (dataset, protocol, metrics) for the model card;
* ``model.safetensors``: the weights (never a pickle);
* ``README.md``: the model card (training data, protocol, metrics table, intended use).

:meth:`SkeletonModel.from_pretrained` takes a folder or a Hub id and loads **strictly**: a missing
or unexpected weight is a :class:`~llmskel.errors.CheckpointError` that names the keys, and so is a
corrupt or absent weights file. Offline (``HF_HUB_OFFLINE=1``), a Hub id that is not in the local
cache fails with a message that says so.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from . import __version__
from .errors import CheckpointError, SkeletonFormatError

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def read_folder_config(folder: Path, kind: str) -> tuple[dict[str, Any], Path]:
    """(parsed ``config.json``, its path) of a saved folder; a clear error when absent or corrupt."""
    cfg_path = Path(folder) / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG_NAME}; not {kind}")
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8")), cfg_path
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: corrupt config ({e})") from None


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
        return cls(**d)


class SkeletonModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="llmskel",
    tags=["skeleton-based-action-recognition", "llmskel"],
    repo_url="https://github.com/llmskel/llmskel",
    pipeline_tag="video-classification",
):
    """A skeleton encoder plus its method's extra modules, its classes, layout and preprocessing."""

    def __init__(self, config: SkeletonModelConfig):
        super().__init__()
        from .models import create_model
        from .models.heads import build_heads

        if isinstance(config, dict):
            config = SkeletonModelConfig.from_json_dict(config)
        self.config = config
        self.encoder = create_model(dict(config.model))
        self.heads = build_heads(config.heads, feature_dim=self.encoder.feature_dim)

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
        from .config import from_dict
        from .data.config import DataConfig

        pre = dict(self.config.preprocessing)
        pre.setdefault("dataset", "synthetic")
        return from_dict(DataConfig, pre, prefix="preprocessing")

    def eval_pipeline(self):
        from .data.pipeline import SkeletonPipeline

        return SkeletonPipeline(self.data_config(), self.layout, train=False)

    def prepare_inputs(self, samples: Sequence[Any]) -> torch.Tensor:
        """Samples or (T, M, V, C) / (T, V, C) arrays in this model's layout -> (N, C, T, V, M).

        ``samples`` is a list of samples / arrays, one sample (a :class:`SkeletonSample`), one array
        of a single sample ((T, M, V, C) or (T, V, C): one prediction, never one per frame) or a
        batch array (N, T, M, V, C). Joints and channels are checked against the model's layout
        and input channels, with an error naming the input."""
        from .data.layouts import can_convert, convert_layout, get_layout
        from .data.sample import SkeletonSample, to_model_input, validate_array

        samples = as_sample_list(samples)
        pipe = self.eval_pipeline()
        rng = np.random.default_rng(0)
        want_c = self.config.model.get("in_channels")
        if pipe.joint_space:  # any mappable layout; the pipeline maps it and refuses 2D input to a 3D model
            want_c = None
        xs = []
        for i, s in enumerate(samples):
            if not isinstance(s, SkeletonSample):
                try:
                    arr = np.asarray(s, dtype=np.float32)
                except (ValueError, TypeError) as e:
                    raise SkeletonFormatError(f"input {i}", f"not a numeric array ({e})") from None
                if arr.ndim == 3:
                    arr = arr[:, None]
                s = SkeletonSample(validate_array(arr, self.layout, source=f"input {i}"), self.layout)
            if want_c is not None and s.data.shape[-1] != int(want_c):
                raise SkeletonFormatError(
                    s.source or f"input {i}",
                    f"{s.data.shape[-1]} channels per joint, but this model takes {int(want_c)} "
                    f"(data shape {tuple(s.data.shape)}, expected (T, M, {get_layout(self.layout).num_joints}, "
                    f"{int(want_c)}))",
                )
            src, dst = get_layout(s.layout).name, get_layout(self.layout).name
            if pipe.joint_space:
                from .data.joint_space import can_map

                if not can_map(src):
                    raise SkeletonFormatError(
                        s.source or f"input {i}",
                        f"layout {src!r} has no mapping into this model's joint space",
                    )
                xs.append(pipe(s, rng)["x"])
                continue
            if src != dst:
                if not can_convert(src, dst):
                    raise SkeletonFormatError(
                        s.source or f"input {i}",
                        f"layout {src!r} cannot be used with this model, which expects {dst!r} "
                        f"(no conversion from {src} to {dst})",
                    )
                s = s.replace(data=convert_layout(s.data, src, dst), layout=dst)
            xs.append(pipe(s, rng)["x"])
        return to_model_input(np.stack(xs))

    @torch.no_grad()
    def predict_proba(self, samples: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Class probabilities (N, K) for samples (see :meth:`prepare_inputs`)."""
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

    def predict(self, samples: Sequence[Any], top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k (class name, probability) per sample (one array of one sample gives one prediction;
        see :meth:`prepare_inputs`)."""
        probs = self.predict_proba(samples)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1)[:, :k]
        return [[(self.classes[j], float(p[j])) for j in row] for p, row in zip(probs, order)]

    def classify(self, skeletons: Sequence[Any], labels: Sequence[str] | str, prompts: str | Sequence[str] | None = None,
                 descriptions: Any = None, top_k: int = 5) -> list[list[tuple[str, float]]]:  # fmt: skip
        """Zero-shot: rank free-text ``labels`` for each skeleton by similarity to their text prototypes.

        Needs a model with a text side (``method: zeroshot`` or ``gap``); ``prompts``: templates with
        ``{label}`` (a list or a .txt file; default: the model's own), ``descriptions``: extra text per
        label (a mapping or a description file). Text embeddings are cached per label set. Returns the
        ``top_k`` (label, probability) pairs per input (see :func:`llmskel.methods.zero_shot_text.classify`)."""
        from .methods.zero_shot_text import classify

        return classify(self, skeletons, labels, prompts=prompts, descriptions=descriptions, top_k=top_k)

    # --------------------------------------------------------------------------------------
    # Hub mixin hooks
    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        save_model(self, str(Path(save_directory) / WEIGHTS_NAME))
        # the config.json that the mixin writes comes from __init__'s arguments; write ours so
        # that metrics added after construction (config.training) are kept
        with open(Path(save_directory) / CONFIG_NAME, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(self.config), f, indent=2)
        (Path(save_directory) / "README.md").write_text(render_model_card(self.config), encoding="utf-8")

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        return ModelCard(render_model_card(self.config))

    @classmethod
    def _decode_arg(cls, expected_type, value):
        if expected_type is SkeletonModelConfig or expected_type == "SkeletonModelConfig":
            return SkeletonModelConfig.from_json_dict(value)
        return super()._decode_arg(expected_type, value)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> SkeletonModel:
        """Load from a folder or a Hub id, strictly (see the module docstring)."""
        model_id = str(pretrained_model_name_or_path)
        folder = resolve_model_folder(
            model_id, **{k: kwargs.pop(k) for k in ("revision", "token") if k in kwargs}
        )
        map_location = kwargs.pop("map_location", "cpu")
        raw, cfg_path = read_folder_config(folder, "an llmskel model folder")
        config = SkeletonModelConfig.from_json_dict(raw, source=str(cfg_path))
        model = cls(config)
        load_weights_strict(model, folder / WEIGHTS_NAME, map_location=map_location)
        model.eval()
        model.name_or_path = model_id  # named in error messages (e.g. a model without a text side)
        return model


def as_sample_list(samples: Any) -> list[Any]:
    """What :meth:`SkeletonModel.predict` accepts, as a list of single samples.

    An array (numpy or torch) of rank 3 or 4 is ONE sample ((T, V, C) or (T, M, V, C)); rank 5 is
    a batch (N, T, M, V, C); any other rank is an error. A :class:`SkeletonSample` is one sample;
    anything else is taken as a sequence of samples.
    """
    from .data.sample import SkeletonSample

    if isinstance(samples, SkeletonSample):
        return [samples]
    if isinstance(samples, (np.ndarray, torch.Tensor)):
        arr = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
        if arr.ndim in (3, 4):
            return [arr]
        if arr.ndim == 5:
            return list(arr)
        raise SkeletonFormatError(
            "input",
            f"expected one sample (T, M, V, C) or (T, V, C), a batch (N, T, M, V, C) or a list of "
            f"samples; got an array of shape {tuple(arr.shape)}",
        )
    return list(samples)


def resolve_model_folder(model_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """A local folder as is; a Hub id downloaded (or read from the cache when offline)."""
    p = Path(model_id).expanduser()
    if p.is_dir():
        return p
    if p.exists():
        raise CheckpointError(f"{model_id} is a file; expected a model folder or a Hub id")
    # a Hub id is "namespace/name"; anything else that does not exist is a missing folder
    if model_id.startswith((".", "/", "~")) or model_id.count("/") != 1:
        raise CheckpointError(f"model folder {model_id} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(snapshot_download(model_id, revision=revision, token=token))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        raise CheckpointError(
            f"{model_id!r} is not a local folder and could not be fetched from the Hugging Face Hub "
            f"(offline or not cached: {type(e).__name__}). Pass a model folder, or connect and retry."
        ) from None
    except HfHubHTTPError as e:
        raise CheckpointError(f"could not download {model_id!r} from the Hub: {e}") from None


def load_weights_strict(model: nn.Module, path: Path, map_location: str = "cpu") -> None:
    """Load safetensors weights; any missing / unexpected / mis-shaped key is an error naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: weights file is missing")
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or unreadable weights ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in set(own) & set(state) if state[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
        if shapes:
            parts.append("shape mismatches " + "; ".join(sorted(shapes)[:10]))
        raise CheckpointError(f"{path}: weights do not match the model config: " + ", ".join(parts))
    model.load_state_dict(state, strict=True)


def push_model(
    folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None
) -> str:
    """Upload a saved model folder to the Hub; a clear error when the Hub cannot be reached."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{folder}: not a saved llmskel model (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message="Upload llmskel model"
        )
    except OfflineModeIsEnabled:
        raise CheckpointError(
            "cannot push: HF_HUB_OFFLINE is set (unset it and log in with `hf auth login`)"
        ) from None
    except HfHubHTTPError as e:
        raise CheckpointError(f"cannot push to {repo_id!r}: {e}") from None
    except (OSError, ConnectionError) as e:
        raise CheckpointError(f"cannot reach the Hugging Face Hub to push {repo_id!r}: {e}") from None
    return str(getattr(info, "commit_url", info))


def render_model_card(cfg: SkeletonModelConfig) -> str:
    """Markdown model card from the config's training record."""
    tr = cfg.training or {}
    metrics = tr.get("metrics", {})
    arch = cfg.model.get("arch", "?")
    lines = [
        "---",
        "library_name: llmskel",
        "tags:",
        "- skeleton-based-action-recognition",
        f"- {arch}",
        f"- {cfg.layout}",
        "pipeline_tag: video-classification",
        "---",
        "",
        f"# {tr.get('name', arch)}: {cfg.method} skeleton action recognition",
        "",
        f"A {arch.upper()} skeleton encoder trained with llmskel ({cfg.method}) on "
        f"{tr.get('dataset', 'unknown data')} ({tr.get('protocol', 'protocol not recorded')}).",
        "",
        "## Training data",
        "",
        f"- dataset: {tr.get('dataset', '?')}; protocol: {tr.get('protocol', '?')}",
        f"- train / test samples: {tr.get('num_train', '?')} / {tr.get('num_test', '?')}",
        f"- classes ({len(cfg.classes)}): {', '.join(cfg.classes[:60])}{' ...' if len(cfg.classes) > 60 else ''}",
        f"- skeleton layout: {cfg.layout}; preprocessing: "
        + ", ".join(f"{k}={v}" for k, v in sorted(cfg.preprocessing.items())),
        f"- epochs: {tr.get('epochs', '?')}; seed: {tr.get('seed', '?')}",
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        for k, v in metrics.items():
            lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    else:
        lines.append("No evaluation was recorded.")
    lines += [
        "",
        "## Intended use",
        "",
        "Recognising the listed actions from 3D or 2D skeleton sequences in the layout above "
        "(research and prototyping). Accuracy holds for data like the training data: other sensors, "
        "views, frame rates or pose estimators need evaluation first. Not for decisions about people.",
        "",
        "## Use",
        "",
        "```python",
        "from llmskel.hub import SkeletonModel",
        "model = SkeletonModel.from_pretrained('<this folder or repo id>')",
        "print(model.predict([skeleton]))  # skeleton: (T, M, V, C) array in the layout above",
        "```",
        "",
    ]
    return "\n".join(lines)
