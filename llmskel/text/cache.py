"""On-disk cache of text embeddings, so repeated runs do not re-encode the same texts.

One safetensors file per encoder, ``<root>/text/<key>.safetensors``, where ``key`` hashes the
encoder's spec and :meth:`~llmskel.text.encoders.TextEncoder.fingerprint` (config plus a sample of
every weight): another checkpoint under the same name gets another file. The file holds one
``(M, D)`` float32 matrix ``embeddings`` and, in its metadata, the SHA-256 of each row's text;
texts not yet in it are encoded and appended (written to a temporary file, then renamed, so a
reader never sees a half-written file; two processes appending at once may lose one's additions,
never corrupt the file).

The root is ``$LLMSKEL_CACHE`` when set, else ``~/.cache/llmskel``; ``LLMSKEL_CACHE=off``
disables the cache. Trainable encoders are never cached (their weights change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .encoders import TextEncoder

logger = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$LLMSKEL_CACHE`` or ``~/.cache/llmskel``."""
    env = os.environ.get("LLMSKEL_CACHE")
    if env and env.lower() not in ("off", "0", "false", "none"):
        return Path(env).expanduser()
    return Path.home() / ".cache" / "llmskel"


def cache_disabled() -> bool:
    return os.environ.get("LLMSKEL_CACHE", "").lower() in ("off", "0", "false", "none")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """Embeddings of one root folder; :meth:`encode` is the only call most code needs."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path_for(self, encoder: TextEncoder) -> Path:
        key = hashlib.sha256(f"{encoder.spec}|{encoder.fingerprint()}".encode()).hexdigest()[:24]
        return self.root / "text" / f"{key}.safetensors"

    def _load(self, path: Path, dim: int) -> tuple[torch.Tensor, list[str]]:
        from safetensors import SafetensorError, safe_open

        if not path.is_file():
            return torch.zeros(0, dim), []
        try:
            with safe_open(str(path), framework="pt") as f:
                keys = json.loads((f.metadata() or {}).get("keys", "[]"))
                emb = f.get_tensor("embeddings")
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
            logger.warning("ignoring unreadable embedding cache %s (%s); it will be rebuilt", path, e)
            return torch.zeros(0, dim), []
        if emb.ndim != 2 or emb.shape[1] != dim or len(keys) != emb.shape[0]:
            logger.warning("ignoring embedding cache %s: shape %s does not fit %d-d / %d keys", path,
                           tuple(emb.shape), dim, len(keys))  # fmt: skip
            return torch.zeros(0, dim), []
        return emb, keys

    def _save(self, path: Path, emb: torch.Tensor, keys: list[str], encoder: TextEncoder) -> None:
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        meta = {"keys": json.dumps(keys), "spec": encoder.spec, "fingerprint": encoder.fingerprint(),
                "dim": str(encoder.dim)}  # fmt: skip
        save_file({"embeddings": emb.contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)

    def encode(self, encoder: TextEncoder, texts: Sequence[str], batch_size: int = 64,
               progress: bool = False) -> torch.Tensor:  # fmt: skip
        """(N, D) float32 CPU embeddings of ``texts``; only texts not in the cache run the encoder."""
        texts = list(texts)
        if encoder.trainable:
            return encoder.encode(texts, batch_size, progress).detach().float().cpu()
        path = self.path_for(encoder)
        emb, keys = self._load(path, encoder.dim)
        index = {k: i for i, k in enumerate(keys)}
        want = [text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for t, k in zip(texts, want):
            if k not in index and k not in missing:
                missing[k] = t
        if missing:
            new = encoder.encode(list(missing.values()), batch_size, progress).detach().float().cpu()
            emb = torch.cat([emb, new])
            keys = keys + list(missing)
            index = {k: i for i, k in enumerate(keys)}
            try:
                self._save(path, emb, keys, encoder)
            except OSError as e:  # a read-only cache must not stop training
                logger.warning("could not write the embedding cache %s (%s)", path, e)
        logger.debug("text embeddings: %d texts, %d encoded, %d from %s", len(texts), len(missing),
                     len(texts) - len(missing), path)  # fmt: skip
        if not texts:
            return torch.zeros(0, encoder.dim)
        return emb[torch.tensor([index[k] for k in want])].clone()


def encode_cached(encoder: TextEncoder, texts: Sequence[str], root: str | os.PathLike | None = None,
                  batch_size: int = 64, progress: bool = False) -> torch.Tensor:  # fmt: skip
    """(N, D) CPU embeddings through the cache at ``root`` (default :func:`cache_root`), or
    straight from the encoder when the cache is disabled (``LLMSKEL_CACHE=off``)."""
    if cache_disabled() and root is None:
        return encoder.encode(list(texts), batch_size, progress).detach().float().cpu()
    return EmbeddingCache(root).encode(encoder, texts, batch_size, progress)
