"""The skeleton tokenizer of the LLM mode: motion windows of body parts -> discrete codes.

A vector-quantised autoencoder turns a preprocessed sequence (N, C, T, V, M) into an *action
sentence* of codes (N, S, M, P): S time windows of ``window`` frames, M bodies, P body parts.

Design, and why
    * **Per body part** (``grouping: parts``, the default): each window of each part of the layout
      (``head``, ``hand``, ``arm``, ``hip``, ``leg``, ``foot``; see :mod:`llmskel.data.layouts`) is
      encoded by that part's own MLP and quantised against that part's own codebook. The sentence
      is compositional: an action that differs from another in one limb differs in that limb's
      words only, and the K**P combinations of a window are written with P x K code embeddings. The
      cost is length: P words per window instead of one (64 frames in windows of 16 with six parts:
      24 words instead of 4). ``grouping: body`` quantises the whole skeleton (one word a window).
    * **Windows, not frames**: a code names what a part *did* for ``window`` frames (its positions,
      hence its motion), so sentences stay short enough for a causal LM on a CPU.
    * **EMA codebooks** (k-means updates with decay ``ema_decay``) rather than a codebook loss: no
      learning rate for the codebook and fewer dead codes. The encoder gets the straight-through
      gradient of the reconstruction plus the commitment loss ``commitment * |z - sg(e)|^2``.
    * **Data-dependent start and dead-code restarts**: the first training batch initialises every
      codebook from encoder outputs; a code that no window chose for ``restart_after`` training
      steps in a row is moved onto a random encoder output of the current batch (broadcast from
      rank 0, so every process keeps the same codebook). Without restarts, codes stranded where
      the young encoder's outputs used to be stay unused for good.
    * **Usage monitoring**: perplexity and the fraction of codes used, per part, in every training
      step's logs and in the validation metrics; a codebook whose usage falls below
      ``collapse_threshold`` is reported with a warning that gives the figure.

All EMA statistics, the restart counters and the "initialised" flag are buffers, so the tokenizer's
state round-trips through Accelerate checkpoints and training resumes exactly.

A trained tokenizer is a folder: ``config.json`` (architecture, layout, preprocessing, training
record), ``model.safetensors`` and a model card ``README.md``, loaded strictly
(:func:`llmskel.models.folders.load_weights_strict`); ``llmskel.load`` recognises it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..config import bounded
from ..errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FOLDER_TYPE = "llmskel-vq-tokenizer"


@dataclass
class VQConfig:
    """The ``vq:`` section of an experiment (method ``vq``): the tokenizer's architecture and training."""

    window: int = 16  # frames per code; data.num_frames must be a multiple
    codebook_size: int = 256  # codes per part (K)
    code_dim: int = 64  # dimension of a code vector
    hidden_dim: int = 256  # width of the per-part MLPs
    grouping: Literal["parts", "body"] = "parts"  # one code per layout part, or one for the whole body
    commitment: float = bounded(0.25, ge=0)  # weight of |z - sg(e)|^2
    ema_decay: float = 0.99
    # a code unused for this many training steps in a row is restarted (0: never)
    restart_after: int = bounded(30, ge=0)
    # warn when a part uses less than this fraction of its codes
    collapse_threshold: float = bounded(0.1, ge=0, le=1)

    def validate(self) -> None:
        for key in ("window", "codebook_size", "code_dim", "hidden_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key 'vq.{key}' must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"config key 'vq.ema_decay' must be in [0, 1), got {self.ema_decay}")


def part_groups(layout: str, grouping: str) -> tuple[list[str], list[list[int]]]:
    """(part names, joint indices per part) of a layout; every joint must belong to one part."""
    from ..data.layouts import PART_NAMES, get_layout

    lay = get_layout(layout)
    if grouping == "body":
        return ["body"], [list(range(lay.num_joints))]
    names = [p for p in PART_NAMES if lay.parts.get(p)]
    joints = [list(lay.parts[p]) for p in names]
    covered = {j for js in joints for j in js}
    lost = [lay.joints[v] for v in range(lay.num_joints) if v not in covered]
    if lost:
        raise ConfigError(f"layout {lay.name!r}: joints {lost} belong to no body part; use vq.grouping: body")
    return names, joints


class GroupedLinear(nn.Module):
    """P independent linear maps applied at once: (B, P, I) -> (B, P, O)."""

    def __init__(self, groups: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(groups, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(groups, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bpi,pio->bpo", x, self.weight) + self.bias


def _mlp(groups: int, dims: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(GroupedLinear(groups, a, b))
        if i < len(dims) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class SkeletonVQTokenizer(nn.Module):
    """Encoder, per-part EMA codebooks and decoder (see the module docstring)."""

    def __init__(self, vq: VQConfig, layout: str, channels: int, num_frames: int, num_bodies: int,
                 preprocessing: dict[str, Any] | None = None):  # fmt: skip
        super().__init__()
        if num_frames % vq.window:
            raise ConfigError(
                f"config key 'data.num_frames' ({num_frames}) must be a multiple of 'vq.window' ({vq.window})"
            )
        self.vq = vq
        self.layout = layout
        self.channels, self.num_frames, self.num_bodies = int(channels), int(num_frames), int(num_bodies)
        self.preprocessing = dict(preprocessing or {})
        self.training_record: dict[str, Any] = {}
        self.part_names, joints = part_groups(layout, vq.grouping)
        from ..data.layouts import get_layout

        P, J, V = len(joints), max(len(j) for j in joints), get_layout(layout).num_joints
        # (P, J) joint index per part slot; V points at an appended all-zero joint (padding)
        index = torch.full((P, J), V, dtype=torch.long)
        valid = torch.zeros(P, J, dtype=torch.bool)
        for p, js in enumerate(joints):
            index[p, : len(js)] = torch.tensor(js)
            valid[p, : len(js)] = True
        # where joint v sits in the flattened (P * J) slots (its first part)
        slot = torch.zeros(V, dtype=torch.long)
        for p in reversed(range(P)):
            for j, v in enumerate(joints[p]):
                slot[v] = p * J + j
        self.register_buffer("part_index", index, persistent=False)
        self.register_buffer("joint_slot", slot, persistent=False)
        C, w = self.channels, vq.window
        self.in_dim = C * w * J
        # (P, C * w * J) which input dimensions are real joints
        self.register_buffer("dim_mask", valid[:, None, None, :].expand(P, C, w, J).reshape(P, -1).float(),
                             persistent=False)  # fmt: skip
        H, D, K = vq.hidden_dim, vq.code_dim, vq.codebook_size
        self.encoder = _mlp(P, [self.in_dim, H, H, D])
        self.decoder = _mlp(P, [D, H, H, self.in_dim])
        self.register_buffer("codebook", torch.randn(P, K, D) * 0.1)  # (P, K, D)
        self.register_buffer("ema_count", torch.ones(P, K))  # (P, K)
        self.register_buffer("ema_sum", self.codebook.clone())  # (P, K, D)
        self.register_buffer("initialized", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer(
            "idle", torch.zeros(P, K, dtype=torch.long)
        )  # steps since each code was last used
        self.register_buffer("restarts", torch.zeros(P, dtype=torch.long))  # dead codes restarted, per part

    # ------------------------------------------------------------------------------------------
    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    @property
    def codebook_size(self) -> int:
        return self.vq.codebook_size

    @property
    def num_windows(self) -> int:
        return self.num_frames // self.vq.window

    @property
    def sentence_length(self) -> int:
        """Codes per sequence: windows x bodies x parts."""
        return self.num_windows * self.num_bodies * self.num_parts

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, S, M, P, C * w * J) part windows (padding joints are zero)."""
        N, C, T, V, M = x.shape
        if (C, T, M) != (self.channels, self.num_frames, self.num_bodies):
            raise ValueError(
                f"the tokenizer expects (N, {self.channels}, {self.num_frames}, V, {self.num_bodies}) inputs, "
                f"got {tuple(x.shape)}; prepare them with its preprocessing"
            )
        P, J = self.part_index.shape
        w = self.vq.window
        xp = F.pad(x, (0, 0, 0, 1))  # (N, C, T, V + 1, M)
        g = xp[:, :, :, self.part_index]  # (N, C, T, P, J, M)
        g = g.view(N, C, T // w, w, P, J, M).permute(0, 2, 6, 4, 1, 3, 5)  # (N, S, M, P, C, w, J)
        return g.reshape(N, T // w, M, P, C * w * J)

    def unwindows(self, g: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`windows`: (N, S, M, P, C * w * J) -> (N, C, T, V, M)."""
        N, S, M, P, _ = g.shape
        J, C, w = self.part_index.shape[1], self.channels, self.vq.window
        g = g.view(N, S, M, P, C, w, J).permute(0, 1, 2, 3, 6, 4, 5).reshape(N, S, M, P * J, C, w)
        g = g[:, :, :, self.joint_slot]  # (N, S, M, V, C, w)
        return g.permute(0, 4, 1, 5, 3, 2).reshape(N, C, S * w, -1, M)

    def encode_windows(self, g: torch.Tensor) -> torch.Tensor:
        """(B, P, I) -> (B, P, D) continuous codes."""
        return self.encoder(g)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, P, D) -> (B, P) index of the nearest code of each part's codebook."""
        cb = self.codebook
        d2 = (
            z.pow(2).sum(-1, keepdim=True) - 2 * torch.einsum("bpd,pkd->bpk", z, cb) + cb.pow(2).sum(-1)[None]
        )
        return d2.argmin(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., P) code indices -> (..., P, D) code vectors."""
        parts = torch.arange(self.num_parts, device=codes.device).expand_as(codes)
        return self.codebook[parts, codes]

    # ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruct (N, C, T, V, M); in training mode also update the codebooks (EMA, restarts).

        Returns ``loss`` (reconstruction + commitment), ``recon_loss``, ``commit_loss``, ``codes``
        (N, S, M, P), ``recon`` (N, C, T, V, M), ``counts`` (P, K) code use in this batch."""
        g = self.windows(x)
        N, S, M, P, D_in = g.shape
        flat = g.reshape(-1, P, D_in)  # (B, P, D_in)
        z = self.encode_windows(flat).float()  # (B, P, D)
        if self.training and not bool(self.initialized):
            self._init_codebook(z.detach())
        codes = self.nearest(z.detach())  # (B, P)
        q = self.lookup(codes)  # (B, P, D)
        counts = F.one_hot(codes, self.codebook_size).sum(0).float()  # (P, K)
        if self.training:
            self._ema_update(z.detach(), codes, counts)
        z_st = z + (q - z).detach()  # straight-through
        out = self.decoder(z_st)  # (B, P, I)
        mask = self.dim_mask[None]
        recon_loss = ((out - flat).pow(2) * mask).sum() / (mask.sum() * flat.shape[0])
        commit_loss = F.mse_loss(z, q.detach())
        recon = self.unwindows(out.reshape(N, S, M, P, D_in))
        return {
            "loss": recon_loss + self.vq.commitment * commit_loss,
            "recon_loss": recon_loss.detach(),
            "commit_loss": commit_loss.detach(),
            "codes": codes.view(N, S, M, P),
            "recon": recon,
            "counts": counts,
        }

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> codes (N, S, M, P) (long)."""
        g = self.windows(x)
        N, S, M, P, D_in = g.shape
        z = self.encode_windows(g.reshape(-1, P, D_in)).float()
        return self.nearest(z).view(N, S, M, P)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, S, M, P) -> reconstructed sequence (N, C, T, V, M)."""
        N, S, M, P = codes.shape
        out = self.decoder(self.lookup(codes.reshape(-1, P)))
        return self.unwindows(out.view(N, S, M, P, -1))

    # ------------------------------------------------------------------------------------------
    # codebook maintenance (training mode only, no gradients)
    @staticmethod
    def _dist() -> bool:
        return torch.distributed.is_available() and torch.distributed.is_initialized()

    @torch.no_grad()
    def _init_codebook(self, z: torch.Tensor) -> None:
        B, P, D = z.shape
        K = self.codebook_size
        pick = (
            torch.randperm(B, device=z.device)[:K] if B >= K else torch.randint(0, B, (K,), device=z.device)
        )
        init = z[pick].transpose(0, 1).contiguous()  # (P, K, D)
        if B < K:  # repeated picks: spread them a little
            init = init + 0.01 * init.std() * torch.randn_like(init)
        if self._dist():
            torch.distributed.broadcast(init, src=0)
        mean_count = B / K
        self.codebook.copy_(init)
        self.ema_sum.copy_(init * mean_count)
        self.ema_count.fill_(mean_count)
        self.initialized.fill_(1)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        K, decay = self.codebook_size, self.vq.ema_decay
        onehot = F.one_hot(codes, K).to(z.dtype)  # (B, P, K)
        sums = torch.einsum("bpk,bpd->pkd", onehot, z)  # (P, K, D)
        counts = counts.clone()
        if self._dist():
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        n = self.ema_count.sum(-1, keepdim=True)  # (P, 1)
        eps = 1e-5
        smoothed = (self.ema_count + eps) / (n + K * eps) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / smoothed[..., None])
        self.steps.add_(1)
        self.idle.copy_(torch.where(counts > 0, torch.zeros_like(self.idle), self.idle + 1))
        if self.vq.restart_after:
            self._restart_dead(z, counts.sum(-1, keepdim=True))

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor, batch_total: torch.Tensor) -> None:
        """Move codes unused for ``restart_after`` steps onto random encoder outputs of this batch."""
        K = self.codebook_size
        mean_count = batch_total / K  # (P, 1) expected count of a code per batch
        dead = self.idle >= self.vq.restart_after  # (P, K); the same on every process (all-reduced counts)
        if not bool(dead.any()):
            return
        B, P, D = z.shape
        pick = torch.randint(0, B, (P, K), device=z.device)
        cand = z[pick, torch.arange(P, device=z.device)[:, None]]  # (P, K, D)
        cand = cand + 0.01 * z.std() * torch.randn_like(cand)
        if self._dist():
            torch.distributed.broadcast(cand, src=0)
        self.codebook.copy_(torch.where(dead[..., None], cand, self.codebook))
        self.ema_sum.copy_(torch.where(dead[..., None], cand * mean_count[..., None], self.ema_sum))
        self.ema_count.copy_(torch.where(dead, mean_count.expand_as(dead), self.ema_count))
        self.idle.masked_fill_(dead, 0)
        self.restarts.add_(dead.sum(-1))
        logger.debug("restarted %d dead codes (per part: %s)", int(dead.sum()), dead.sum(-1).tolist())

    # ------------------------------------------------------------------------------------------
    # raw skeletons -> codes, and sentences for people
    def data_config(self):
        from ..data.inputs import preprocessing_config

        return preprocessing_config(self.preprocessing)

    def prepare_inputs(self, samples: Sequence[Any]) -> torch.Tensor:
        """``SkeletonSample``s or (T, M, V, C) / (T, V, C) arrays -> (N, C, T, V, M) through the saved
        preprocessing (:func:`llmskel.data.inputs.prepare_inputs`: evaluation pipeline, layouts
        converted when possible, joints and channels checked)."""
        from ..data.inputs import prepare_inputs

        return prepare_inputs(samples, self.layout, self.preprocessing, self.channels)

    def tokenize(self, skeleton: Any) -> np.ndarray:
        """One ``SkeletonSample`` or (T, M, V, C) array -> its codes (S, M, P) as int64."""
        device = self.codebook.device
        x = self.prepare_inputs([skeleton]).to(device)
        return self.encode(x)[0].cpu().numpy().astype(np.int64)

    def render(self, codes: np.ndarray | torch.Tensor) -> str:
        """A readable action sentence: ``<s> [t0] head:17 hand:203 ... [t1] ... </s>`` (``b1`` marks the
        second body when there are several)."""
        c = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes)
        if c.ndim != 3:
            raise ValueError(f"expected codes of shape (S, M, P), got {c.shape}")
        words = ["<s>"]
        for t in range(c.shape[0]):
            words.append(f"[t{t}]")
            for m in range(c.shape[1]):
                if c.shape[1] > 1:
                    words.append(f"b{m}")
                words += [f"{name}:{int(k)}" for name, k in zip(self.part_names, c[t, m])]
        words.append("</s>")
        return " ".join(words)

    # ------------------------------------------------------------------------------------------
    # usage statistics
    @staticmethod
    def usage_stats(counts: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per part perplexity and fraction of codes used, from (P, K) counts."""
        p = counts / counts.sum(-1, keepdim=True).clamp_min(1)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
        return {"perplexity": entropy.exp(), "usage": (counts > 0).float().mean(-1)}

    def check_collapse(self, usage: Sequence[float], where: str = "") -> list[str]:
        """Warnings (also logged) for parts whose fraction of used codes is below the threshold."""
        msgs = []
        K = self.codebook_size
        for name, u in zip(self.part_names, usage):
            if u < self.vq.collapse_threshold:
                msgs.append(
                    f"codebook collapsed{where}: part {name!r} uses {round(u * K)} of {K} codes "
                    f"({100 * u:.1f} %), below vq.collapse_threshold {100 * self.vq.collapse_threshold:.0f} %; "
                    "lower vq.codebook_size or vq.restart_after, or train longer"
                )
        for m in msgs:
            logger.warning(m)
        return msgs

    # ------------------------------------------------------------------------------------------
    # folders
    def folder_config(self) -> dict[str, Any]:
        return {
            "type": FOLDER_TYPE,
            "vq": dataclasses.asdict(self.vq),
            "layout": self.layout,
            "channels": self.channels,
            "num_frames": self.num_frames,
            "num_bodies": self.num_bodies,
            "part_names": list(self.part_names),
            "preprocessing": dict(self.preprocessing),
            "training": dict(self.training_record),
            "llmskel_version": __version__,
        }

    @classmethod
    def from_folder_config(cls, d: dict[str, Any], source: str = CONFIG_NAME) -> SkeletonVQTokenizer:
        from ..config import from_dict

        if d.get("type") != FOLDER_TYPE:
            raise CheckpointError(f"{source}: not a skeleton VQ tokenizer (type {d.get('type')!r}, "
                                  f"expected {FOLDER_TYPE!r})")  # fmt: skip
        known = {"type", "vq", "layout", "channels", "num_frames", "num_bodies", "part_names", "preprocessing",
                 "training", "llmskel_version"}  # fmt: skip
        unknown = sorted(set(d) - known)
        missing = sorted({"vq", "layout", "channels", "num_frames", "num_bodies"} - set(d))
        if unknown or missing:
            raise CheckpointError(f"{source}: unknown keys {unknown}, missing keys {missing}")
        try:
            vq = from_dict(VQConfig, d["vq"], prefix="vq")
        except ConfigError as e:
            raise CheckpointError(f"{source}: {e}") from None
        from ..trust import check_model_size, check_positive_ints

        check_positive_ints(d, ["channels", "num_frames", "num_bodies"], source)
        args = (vq, d["layout"], d["channels"], d["num_frames"], d["num_bodies"], d.get("preprocessing"))
        try:
            check_model_size(
                lambda: cls(*args), source, fields="vq.codebook_size, vq.hidden_dim, vq.code_dim"
            )
        except ConfigError as e:
            raise CheckpointError(str(e)) from None
        model = cls(*args)
        model.training_record = dict(d.get("training") or {})
        return model

    def save_pretrained(self, folder: str | os.PathLike, training: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if training is not None:
            self.training_record = dict(training)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME))
        from ..jsonio import dumps

        (folder / CONFIG_NAME).write_text(dumps(self.folder_config(), indent=2), encoding="utf-8")
        from ..hub import vq_tokenizer_card

        vq_tokenizer_card(self).save(folder / "README.md")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, map_location: str = "cpu",
                        **hub_kwargs: Any) -> SkeletonVQTokenizer:  # fmt: skip
        """Load a tokenizer folder or Hub id strictly (a missing or extra weight is an error naming it).
        ``hub_kwargs``: ``revision``, ``cache_dir``, ``local_files_only``, ``force_download``, ``token``."""
        from ..hub import resolve_model_folder
        from .folders import expect_kind, load_weights_strict, read_folder_config, split_hub_kwargs

        hub, rest = split_hub_kwargs(hub_kwargs)
        if rest:
            raise TypeError(f"SkeletonVQTokenizer.from_pretrained() got unexpected arguments {sorted(rest)}")
        path = resolve_model_folder(str(folder), **hub)
        raw, cfg_path = read_folder_config(path, "a skeleton VQ tokenizer folder")
        expect_kind(raw, "vq-tokenizer", str(cfg_path))
        model = cls.from_folder_config(raw, source=str(cfg_path))
        load_weights_strict(model, path / WEIGHTS_NAME, map_location=map_location)
        model.eval()
        return model
