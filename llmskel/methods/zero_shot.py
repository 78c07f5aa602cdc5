"""Zero-shot recognition (``method: zeroshot``): skeletons scored against text prototypes of classes.

Training (seen classes only):

* the encoder's global feature goes through a projection head (``zs_proj``, an MLP or a linear map)
  into the text space of a frozen text encoder, L2-normalised;
* each class has several texts (label prompts from templates, synonyms, the sentence and the part
  descriptions, see :func:`~llmskel.methods.zero_shot_text.class_texts`), embedded once through the
  on-disk cache. A step draws one text per seen class at random (text augmentation) and takes the
  cross-entropy of ``scale * cos(z, text)`` over the seen classes, with a learnable temperature;
* ``ce_weight`` adds the cross-entropy of the encoder's own classifier over the seen classes, and
  ``part_weight`` adds GAP's part-wise alignment (pooled joint features of each body part against
  that part's description, :func:`~llmskel.methods.gap.multi_positive_kl`); with several sources,
  ``domain_weight`` adds a domain-adversarial term (a source classifier behind gradient reversal).

Evaluation: a class prototype is the normalised mean of its text embeddings (prompt ensembling).
The engine's ``test`` split holds the unseen classes only (ZSL top-1 / top-5 over the unseen
prototypes); the ``val`` split (``data.val_fraction``) holds held-out seen samples, scored over the
seen classes, and picks the best model without looking at unseen data. At the end, generalized
zero-shot (GZSL) scores seen-class test samples and unseen ones against all prototypes, with a
calibration ``gamma`` subtracted from the seen-class cosine scores (calibrated stacking, Chao et al.
2016): metrics.json gets seen / unseen accuracy and their harmonic mean at gamma = 0, at the fixed
``zeroshot.calibration`` when set, and at the gamma that maximises H over a sweep (picked on the test
split, the practice of the skeleton zero-shot literature; reported as ``gzsl_oracle_*``), plus the
whole sweep. A calibration that reads no test label is reported beside it as ``gzsl_val_*``: gamma is
chosen on the ``val`` split (held-out SEEN training samples, ``data.val_fraction``) scored over all
classes, as the largest gamma at which their accuracy stays within ``zeroshot.calibration_tolerance``
(default 0.1, absolute) of its value at gamma 0 (:func:`calibration_from_seen`); the test split is
only scored at that gamma. No unseen sample takes part in the choice, so it is a deployable figure;
the oracle is the upper bound.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import bounded
from ..data.layouts import PART_NAMES, part_pool_matrix
from ..errors import ConfigError
from ..jsonio import dumps
from ..models.skeleton_model import SkeletonModel, SkeletonModelConfig
from ..text.encoders import DEFAULT_TEXT_ENCODER
from .base import Method, register_method
from .supervised import check_model_section, encoder_config, init_encoder_from, preprocessing_of
from .zero_shot_text import (
    TEXT_SOURCES,
    ZS_PROJ,
    ZS_SCALE,
    class_texts,
    encode_texts,
    normalize_feature,
    pooled_prototypes,
    usable_descriptions,
)

logger = logging.getLogger(__name__)
PART_PROJ, PART_SCALE = "align_proj", "align_logit_scale"
DOMAIN_HEAD = "domain_head"


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """Identity forward, negated gradient backward: what the head after it learns, the encoder unlearns."""
    return _ReverseGradient.apply(x)


@dataclass
class ZeroShotConfig:
    """The ``zeroshot:`` section of a ``method: zeroshot`` experiment."""

    split: str | None = None  # a named split (llmskel.data.zsl_splits.ZSL_SPLITS), or set `unseen`
    unseen: list[str] | None = None  # unseen class names (or 1-based numbers)
    fold: int = bounded(0, ge=0)  # rotating splits (nw-ucla_8_2, utkinect_8_2): which fold
    unseen_from: Literal["test", "all"] = "test"  # unseen samples of the protocol's test split, or all
    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_pretrained: str | None = None
    text_gguf_file: str | None = None
    text_max_length: int | None = None  # tokens per text (default: the text encoder's own limit)
    label_prompts: str = "label_prompts"  # template name or .txt path; saved into the model
    descriptions: str | None = None  # null: the shipped file of the dataset; or a path / shipped name
    # texts averaged into a class prototype: name (bare label), label (templates), synonyms, sentence, parts
    text: list[str] = field(default_factory=lambda: ["label", "synonyms", "sentence", "parts"])
    train_text: Literal["random", "mean"] = "random"  # per step: one random text per class, or the prototype
    projection: Literal["linear", "mlp"] = "mlp"
    feature_norm: Literal["none", "layer"] = "layer"  # parameter-free layer norm before the projection
    temperature: float = 0.07
    learn_temperature: bool = True
    ce_weight: float = 0.5  # seen-class cross-entropy of the encoder's classifier
    part_weight: float = 0.0  # GAP part alignment (needs part descriptions)
    # several data.sources: weight of a domain-adversarial term (a head guesses each training sample's
    # source from the encoder feature through gradient reversal, so the encoder learns features that do
    # not tell the datasets apart; Ganin & Lempitsky 2015). 0: off
    domain_weight: float = bounded(0.0, ge=0)
    gzsl: bool = True
    calibration: float | None = None  # a fixed GZSL calibration to report (cosine units)
    # GZSL calibration from held-out seen samples (the val split): the largest gamma that costs them at
    # most this much accuracy (absolute); reported as gzsl_val_* beside the test-picked oracle
    calibration_tolerance: float = bounded(0.1, ge=0.0, le=1.0)
    cache_dir: str | None = None

    def validate(self) -> None:
        bad = sorted(set(self.text) - set(TEXT_SOURCES))
        if bad or not self.text:
            raise ConfigError(
                f"config key 'zeroshot.text' has invalid values {bad}; valid: {', '.join(TEXT_SOURCES)}"
            )
        if not 0 < self.temperature < 10:
            raise ConfigError("config key 'zeroshot.temperature' must be in (0, 10)")
        if self.ce_weight < 0 or self.part_weight < 0:
            raise ConfigError("config keys 'zeroshot.ce_weight' and 'zeroshot.part_weight' must be >= 0")


@register_method("zeroshot", section="zeroshot", config=ZeroShotConfig)
class ZeroShotMethod(Method):
    @classmethod
    def check_config(cls, cfg) -> None:
        check_model_section(cfg)

    def __init__(self, cfg, bundle):
        super().__init__(cfg, bundle)
        from ..data.zsl_splits import resolve_zsl_split
        from ..text.encoders import build_text_encoder
        from ..text.resources import load_label_prompts

        self.zs: ZeroShotConfig = self.settings
        z = self.zs
        self.all_classes = list(bundle.classes)
        if z.split is None and z.unseen is None:  # a general-purpose model: train on every class
            self.seen, self.unseen = list(self.all_classes), []
        else:
            self.seen, self.unseen = resolve_zsl_split(self.all_classes, z.split, z.unseen, z.fold)
        self._restrict_splits()
        self.label_prompts = load_label_prompts(z.label_prompts)
        need_desc = bool({"synonyms", "sentence", "parts"} & set(z.text)) or z.part_weight > 0
        self.descriptions = self._load_descriptions() if need_desc else None
        self.encoder = build_text_encoder(z.text_encoder, pretrained=z.text_pretrained, gguf_file=z.text_gguf_file,
                                          max_length=z.text_max_length)  # fmt: skip
        # texts of every class (seen and unseen), embedded once
        self.texts = [
            class_texts(c, self.label_prompts.prompts, self._desc(c), z.text) for c in self.all_classes
        ]
        flat = [t for ts in self.texts for t in ts]
        emb = encode_texts(self.encoder, flat, z.cache_dir)  # (sum, E)
        counts = [len(t) for t in self.texts]
        self.text_emb = emb
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), dtype=torch.long)
        self.counts = torch.tensor(counts, dtype=torch.long)
        self.protos = pooled_prototypes(emb, counts)  # (K_all, E)
        index = {c: i for i, c in enumerate(self.all_classes)}
        self.seen_ids = torch.tensor([index[c] for c in self.seen])
        self.unseen_ids = torch.tensor([index[c] for c in self.unseen])
        lookup = {"test": -torch.ones(len(self.all_classes), dtype=torch.long)}
        lookup["val"] = lookup["test"].clone()
        if self.unseen:
            lookup["test"][self.unseen_ids] = torch.arange(len(self.unseen))
        else:  # no held-out classes: the test split is scored over every class
            lookup["test"] = torch.arange(len(self.all_classes))
        lookup["val"][self.seen_ids] = torch.arange(len(self.seen))
        lookup["train"] = lookup["val"]
        self.lookup = lookup
        self.part_table = self._part_table() if z.part_weight > 0 else None
        self.train_source = self._train_sources() if z.domain_weight > 0 else None
        self._device = torch.device("cpu")
        logger.info("zero-shot: %d seen / %d unseen classes (unseen: %s), %d texts, text encoder %s (%d-d)",
                    len(self.seen), len(self.unseen), ", ".join(self.unseen) or "none", len(flat),
                    self.encoder.spec, self.dim)  # fmt: skip
        if bundle.source_names and len(bundle.source_names) > 1:
            self._report_paraphrases()

    @property
    def dim(self) -> int:
        return int(self.text_emb.shape[1])

    # ------------------------------------------------------------------ data
    def _restrict_splits(self) -> None:
        """Train / val on seen classes only; the engine's test split = unseen samples; the seen-class
        test samples are kept for the GZSL evaluation."""
        from ..data.pipeline import PipelineDataset

        b = self.bundle
        labels = b.full.labels
        all_ids = {c: i for i, c in enumerate(self.all_classes)}
        seen = np.array([all_ids[c] for c in self.seen])
        unseen = np.array([all_ids[c] for c in self.unseen])

        def sub(idx, like):
            return PipelineDataset(b.full.subset(idx), like.pipeline, seed=like.seed)

        b.train_idx = b.train_idx[np.isin(labels[b.train_idx], seen)]
        b.train = sub(b.train_idx, b.train)
        if b.val is not None:
            b.val_idx = b.val_idx[np.isin(labels[b.val_idx], seen)]
            b.val = sub(b.val_idx, b.val)
        pool = np.arange(len(b.full)) if self.zs.unseen_from == "all" else b.test_idx
        self.seen_test_idx = b.test_idx[np.isin(labels[b.test_idx], seen)]
        if not self.unseen:  # no held-out classes: test on every class's test samples
            self.seen_test_idx = self.seen_test_idx[:0]
            pool = b.test_idx
            unseen = seen
        b.test_idx = pool[np.isin(labels[pool], unseen)]
        if len(b.train_idx) == 0 or (len(b.test_idx) == 0 and self.unseen):
            raise ConfigError(f"zero-shot split leaves {len(b.train_idx)} training (seen) and {len(b.test_idx)} "
                              f"test (unseen) samples; check the split and data.protocol")  # fmt: skip
        self.seen_test = sub(self.seen_test_idx, b.test)
        b.test = sub(b.test_idx, b.test)
        if not self.unseen:
            logger.info("zero-shot data: no held-out classes; %d train, %d test samples over all %d classes",
                        len(b.train_idx), len(b.test_idx), len(self.seen))  # fmt: skip
            return
        logger.info("zero-shot data: %d seen train, %d unseen test, %d seen test (GZSL)", len(b.train_idx),
                    len(b.test_idx), len(self.seen_test_idx))  # fmt: skip

    def _train_sources(self) -> torch.Tensor:
        """(N_train,) the source index of each training sample, for the domain-adversarial term."""
        b = self.bundle
        names = list(b.source_names or [])
        if b.source_of is None or len({int(s) for s in b.source_of[b.train_idx]}) < 2:
            raise ConfigError("config key 'zeroshot.domain_weight' needs at least two data.sources used for "
                              f"training; this run trains on {names or [self.cfg.data.dataset]}")  # fmt: skip
        self.num_sources = len(names)
        return torch.as_tensor(b.source_of[b.train_idx], dtype=torch.long)

    def _load_descriptions(self):
        """The description of every class that has a usable one (see
        :func:`~llmskel.methods.zero_shot_text.usable_descriptions`); the others fall back to label
        prompts (and synonyms) with a warning naming them."""
        from ..text.descriptions import DescriptionSet, load_descriptions
        from ..text.resources import DATASET_DESCRIPTIONS

        if self.cfg.data.sources:
            return self._merged_descriptions()
        src = self.zs.descriptions or DATASET_DESCRIPTIONS.get(self.cfg.data.dataset)
        if not src:
            logger.warning("zero-shot: config key 'zeroshot.descriptions' is not set and dataset %r has no shipped "
                           "description file: every class uses label prompts only", self.cfg.data.dataset)  # fmt: skip
            return DescriptionSet({}, {}, "")
        ds = load_descriptions(src)
        usable = usable_descriptions(ds, self.all_classes, f"zero-shot descriptions {src}")
        return DescriptionSet(usable, dict(ds.header), ds.source)

    def _merged_descriptions(self) -> dict:
        """Multi-source: each class's description from the first file that has it (``zeroshot.descriptions``,
        then each source dataset's shipped file); classes without one get label prompts only (logged)."""
        from ..text.descriptions import find_label, load_descriptions, normalize_label
        from ..text.resources import shipped_descriptions_path

        files = [self.zs.descriptions] if self.zs.descriptions else []
        for src in self.cfg.data.sources or []:
            try:
                files.append(shipped_descriptions_path(src.dataset))
            except FileNotFoundError:
                logger.info("source %s: no shipped description file (label prompts only)", src.dataset)
        found: dict = {}
        for f in files:
            ds = load_descriptions(f)
            by_key = {normalize_label(lb): ds[lb] for lb in ds.labels}
            for c in self.all_classes:
                d = find_label(by_key, c)
                if c not in found and d is not None:
                    found[c] = d
        missing = [c for c in self.all_classes if c not in found]
        if missing:
            logger.info("zero-shot: %d of %d classes have no description (label prompts only): %s", len(missing),
                        len(self.all_classes), ", ".join(missing))  # fmt: skip
        return found

    def _desc_record(self):
        if self.descriptions is None:
            return None
        if isinstance(self.descriptions, dict):  # multi-source: which classes had a description
            return {"source": "per source dataset", "classes": sorted(self.descriptions)}
        return {"source": self.descriptions.source}

    def _report_paraphrases(self, threshold: float = 0.75) -> None:
        """Classes merged by name are one; near paraphrases stay separate: log the close pairs."""
        from ..data.multi import similar_class_pairs

        self.paraphrases = similar_class_pairs(self.all_classes, self.protos, threshold)
        for a, b, c in self.paraphrases[:20]:
            logger.info("zero-shot: separate classes with close text (cosine %.2f): %r ~ %r", c, a, b)

    def _desc(self, label: str):
        if self.descriptions is None:
            return None
        if isinstance(self.descriptions, dict):  # multi-source
            return self.descriptions.get(label)
        if label not in self.descriptions:
            return None
        return self.descriptions[label]

    def _part_table(self):
        from .gap import TextTable

        def part_texts(c: str, p: str) -> list[str]:  # a class without usable parts: its first label prompt
            d = self._desc(c)
            if d is not None and d.parts.get(p):
                return [f"{c}: {t}" for t in d.parts[p]]
            return [class_texts(c, self.label_prompts.prompts[:1], None, ("label",))[0]]

        texts = [[part_texts(c, p) for c in self.seen] for p in PART_NAMES]
        table = TextTable(texts, self.encoder, self.zs.cache_dir)
        self.part_pool = part_pool_matrix(self.bundle.layout, [(p,) for p in PART_NAMES])
        return table

    # ------------------------------------------------------------------ model
    def classes_for(self, split: str) -> list[str]:
        if split == "test" and self.unseen:
            return list(self.unseen)
        return list(self.seen)

    def targets(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        return self.lookup[split].to(batch["label"].device)[batch["label"]]

    def text_record(self) -> dict[str, Any]:
        z, lp = self.zs, self.label_prompts
        rec = {
            "text_encoder": self.encoder.record(),
            "label_prompts": {"prompts": list(lp.prompts), "source": lp.source, "version": lp.version},
            "text_sources": list(z.text),
            "descriptions": self._desc_record(),
            "split": z.split, "fold": z.fold, "seen_classes": list(self.seen), "unseen_classes": list(self.unseen),
            "heads": {"projection": ZS_PROJ, "logit_scale": ZS_SCALE}, "feature_norm": z.feature_norm,
        }  # fmt: skip
        return {"zeroshot": rec}

    def build_model(self) -> SkeletonModel:
        cfg, b, z = self.cfg, self.bundle, self.zs
        mcfg = SkeletonModelConfig(
            model=encoder_config(cfg, b, num_classes=len(self.seen)), classes=list(self.seen), layout=b.layout,
            preprocessing=preprocessing_of(cfg.data), method=self.name, heads={}, text=self.text_record(),
        )  # fmt: skip
        width = SkeletonModel(mcfg).encoder.feature_dim
        proj: dict[str, Any] = {"type": "linear", "out_features": self.dim}
        if z.projection == "mlp":
            proj = {"type": "mlp", "hidden": width, "out_features": self.dim, "dropout": 0.1}
        heads = {ZS_PROJ: proj, ZS_SCALE: {"type": "logit_scale", "init_temperature": z.temperature}}
        if self.part_table is not None:
            heads[PART_PROJ] = {
                "type": "part_projection",
                "parts": list(PART_NAMES),
                "out_features": self.dim,
            }
            heads[PART_SCALE] = {
                "type": "logit_scale",
                "init_temperature": z.temperature,
                "size": len(PART_NAMES),
            }
        if self.train_source is not None:
            heads[DOMAIN_HEAD] = {
                "type": "mlp",
                "hidden": width,
                "out_features": self.num_sources,
                "dropout": 0.1,
            }
        mcfg.heads = heads
        model = SkeletonModel(mcfg)
        model.heads[ZS_SCALE].log_scale.requires_grad_(z.learn_temperature)
        if cfg.model.init_from:
            init_encoder_from(model, cfg.model.init_from)
        return model

    def setup(self, model: nn.Module, device: torch.device) -> None:
        from ..text.encoders import check_text_dim

        proj = model.heads[ZS_PROJ]
        out = proj.out_features if hasattr(proj, "out_features") else proj[-1].out_features
        check_text_dim(self.dim, self.encoder.spec, out, f"the model's projection {ZS_PROJ!r}")
        self._device = torch.device(device)
        if self.train_source is not None:
            self.train_source = self.train_source.to(self._device)
        for name in ("text_emb", "offsets", "counts", "protos", "seen_ids", "unseen_ids"):
            setattr(self, name, getattr(self, name).to(self._device))
        if self.part_table is not None:
            self.part_table.to(self._device)
            self.part_pool = self.part_pool.to(self._device)

    def embed(self, model: nn.Module, out) -> torch.Tensor:
        """(N, E) normalised text-space embeddings of an encoder output."""
        with torch.autocast(device_type=out.feature.device.type, enabled=False):
            feat = normalize_feature(out.feature.float(), self.zs.feature_norm)
            return F.normalize(model.heads[ZS_PROJ](feat), dim=-1)

    def _train_text(self) -> torch.Tensor:
        """(K_seen, E): one random text per seen class, or the prototypes."""
        if self.zs.train_text == "mean":
            return self.protos[self.seen_ids]
        counts = self.counts[self.seen_ids]
        pick = (torch.rand(len(counts), device=counts.device) * counts).long().clamp_(max=counts - 1)
        return self.text_emb[self.offsets[self.seen_ids] + pick]

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["x"])
        y = self.lookup["train"].to(batch["label"].device)[batch["label"]]  # (N,) into the seen classes
        z = self.embed(model, out)  # (N, E)
        scale = model.heads[ZS_SCALE]()
        with torch.autocast(device_type=z.device.type, enabled=False):
            logits = scale * z @ self._train_text().T  # (N, K_seen)
            text_ce = F.cross_entropy(logits, y)
        loss = text_ce
        logs = {"text_ce": text_ce.detach()}
        if self.zs.ce_weight > 0:
            ce = F.cross_entropy(out.logits.float(), y, label_smoothing=self.cfg.optim.label_smoothing)
            loss = loss + self.zs.ce_weight * ce
            logs["ce"] = ce.detach()
        else:  # keep the classifier in the graph (DDP needs every parameter used)
            loss = loss + 0.0 * out.logits.sum()
        if self.train_source is not None:
            src = self.train_source[batch["index"].to(self.train_source.device)]
            feat = normalize_feature(out.feature.float(), self.zs.feature_norm)
            dom = F.cross_entropy(model.heads[DOMAIN_HEAD](reverse_gradient(feat)), src)
            loss = loss + self.zs.domain_weight * dom
            logs["domain_ce"] = dom.detach()
        if self.part_table is not None:
            part = self._part_loss(model, out, y)
            loss = loss + self.zs.part_weight * part
            logs["align_parts"] = part.detach()
        logs["temperature"] = (1.0 / scale.detach()).reshape(())
        keys = list(logs)
        values = torch.stack([logs[k].float().reshape(()) for k in keys]).tolist()  # one device sync
        return loss, dict(zip(keys, values))

    def _part_loss(self, model, out, y: torch.Tensor) -> torch.Tensor:
        from .gap import multi_positive_kl

        t = self.part_table
        with torch.autocast(device_type=y.device.type, enabled=False):
            pooled = torch.einsum("ndv,pv->npd", out.joint_feature.float(), self.part_pool)  # (N, P, D)
            zp = F.normalize(model.heads[PART_PROJ](pooled), dim=-1).transpose(0, 1)  # (P, N, E)
            p, n = zp.shape[0], zp.shape[1]
            count = t.count[:, y]  # (P, N)
            var = (torch.rand(p, n, device=y.device) * count).long().clamp_(max=t.emb.shape[2] - 1)
            term = torch.arange(p, device=y.device)[:, None].expand(p, n)
            text = t.emb[term, y[None].expand(p, n), var]  # (P, N, E)
            logits = model.heads[PART_SCALE]()[:, None, None] * torch.bmm(zp, text.transpose(1, 2))
            return multi_positive_kl(logits, y).mean()

    def scores(self, model: nn.Module, batch: dict[str, Any], split: str = "test") -> torch.Tensor:
        z = self.embed(model, model(batch["x"]))
        ids = self.unseen_ids if split == "test" and len(self.unseen) else self.seen_ids
        return z @ self.protos[ids].T  # cosine similarities (N, K_split)

    # ------------------------------------------------------------------ GZSL and outputs
    @torch.no_grad()
    def _embed_dataset(self, model: nn.Module, ds) -> tuple[torch.Tensor, torch.Tensor]:
        from torch.utils.data import DataLoader

        from ..data.sample import skeleton_collate

        was = model.training
        model.eval()
        device = next(model.parameters()).device
        zs, ys = [], []
        loader = DataLoader(
            ds, batch_size=self.cfg.train.eval_batch_size, shuffle=False, collate_fn=skeleton_collate
        )
        for batch in loader:
            zs.append(self.embed(model, model(batch["x"].to(device))).cpu())
            ys.append(batch["label"])
        model.train(was)
        if not zs:
            return torch.zeros(0, self.dim), torch.zeros(0, dtype=torch.long)
        return torch.cat(zs), torch.cat(ys)

    def gzsl_metrics(self, model: nn.Module) -> dict[str, Any]:
        """ZSL and GZSL figures of ``model`` on the unseen test samples and the seen test samples."""
        zu, yu = self._embed_dataset(model, self.bundle.test)
        zs_, ys = self._embed_dataset(model, self.seen_test)
        protos = self.protos.cpu()
        seen_mask = torch.zeros(len(self.all_classes), dtype=torch.bool)
        seen_mask[self.seen_ids.cpu()] = True
        out: dict[str, Any] = {"num_unseen_test": len(yu), "num_seen_test": len(ys)}
        ids = self.unseen_ids if len(self.unseen) else self.seen_ids  # no held-out classes: every class
        zsl = zu @ protos[ids.cpu()].T
        yz = self.lookup["test"][yu]
        out["zsl_top1"] = float((zsl.argmax(1) == yz).float().mean()) if len(yu) else float("nan")
        k = min(5, zsl.shape[1])
        out["zsl_top5"] = (
            float((zsl.topk(k, 1).indices == yz[:, None]).any(1).float().mean()) if len(yu) else float("nan")
        )
        out["chance_top1"] = 1.0 / len(ids)
        if not self.zs.gzsl or not len(ys) or not len(self.unseen):
            return out
        val_gamma = None
        if self.bundle.val is not None and len(self.bundle.val):  # held-out seen samples: no test label read
            zv, yv = self._embed_dataset(model, self.bundle.val)
            val_gamma = calibration_from_seen((zv @ protos.T).numpy(), yv.numpy(), seen_mask.numpy(),
                                              self.zs.calibration_tolerance)  # fmt: skip
            out.update(num_val_calibration=len(yv), gzsl_val_tolerance=self.zs.calibration_tolerance)
        z = torch.cat([zs_, zu])
        y = torch.cat([ys, yu])
        report = gzsl_sweep((z @ protos.T).numpy(), y.numpy(), seen_mask.numpy(), fixed=self.zs.calibration,
                            val_calibration=val_gamma)  # fmt: skip
        out.update(report)
        return out

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        folder = Path(folder)
        if folder.name == "last":
            metrics = self.gzsl_metrics(model)
            sweep = metrics.pop("gzsl_sweep", None)
            record.setdefault("metrics", {}).update(
                {k: v for k, v in metrics.items() if not isinstance(v, list)}
            )
            path = Path(self.cfg.run_dir) / "metrics.json"
            if path.is_file():
                data = json.loads(path.read_text())
                data.update(metrics)
                data.update(seen_classes=self.seen, unseen_classes=self.unseen, gzsl_sweep=sweep)
                path.write_text(dumps(data, indent=2))
            if not metrics["num_unseen_test"]:
                logger.info("zero-shot: no test samples to score (the run has no test split)")
            elif "gzsl_h" not in metrics:  # every class is a training class, or GZSL is off
                why = ("no held-out classes, so no GZSL figures" if not len(self.unseen)
                       else "no GZSL figures (zeroshot.gzsl off, or no seen-class test samples)")  # fmt: skip
                logger.info("zero-shot: test top-1 %.4f over %d classes (chance %.4f); %s", metrics["zsl_top1"],
                            round(1 / metrics["chance_top1"]), metrics["chance_top1"], why)  # fmt: skip
            else:
                logger.info("zero-shot: ZSL top-1 %.4f (chance %.4f); GZSL seen %.4f unseen %.4f H %.4f (gamma 0), "
                            "oracle H %.4f at gamma %.3f", metrics["zsl_top1"], metrics["chance_top1"],
                            metrics["gzsl_seen"], metrics["gzsl_unseen"], metrics["gzsl_h"],
                            metrics.get("gzsl_oracle_h", float("nan")), metrics.get("gzsl_oracle_calibration", float("nan")))  # fmt: skip
            if "gzsl_val_h" in metrics:
                logger.info("zero-shot: GZSL with gamma %.3f chosen on %d held-out seen samples: seen %.4f unseen "
                            "%.4f H %.4f", metrics["gzsl_val_calibration"], metrics["num_val_calibration"],
                            metrics["gzsl_val_seen"], metrics["gzsl_val_unseen"], metrics["gzsl_val_h"])  # fmt: skip
        model.config.training = record
        model.save_pretrained(folder)


def harmonic(s: float, u: float) -> float:
    return 0.0 if s + u == 0 else 2 * s * u / (s + u)


def calibration_from_seen(sim: np.ndarray, labels: np.ndarray, seen_mask: np.ndarray, tolerance: float = 0.1,
                          points: int = 201) -> float:  # fmt: skip
    """The GZSL calibration gamma chosen from held-out SEEN samples only (no unseen sample, no test label).

    ``sim`` (N, K): cosine scores of the held-out seen samples over all classes (seen and unseen
    prototypes), ``labels`` (N,) their classes (seen ones; an unseen label is a ValueError, since it
    would mean test data leaked in). Subtracting gamma from the seen-class scores moves predictions to
    unseen classes and can only lower these samples' accuracy; the choice is the largest gamma of a
    sweep over the range of their best-seen minus best-unseen score gaps at which that accuracy stays
    within ``tolerance`` (absolute) of its value at gamma 0."""
    sim = np.asarray(sim, dtype=np.float64)
    labels = np.asarray(labels)
    seen_mask = np.asarray(seen_mask, dtype=bool)
    if sim.ndim != 2 or sim.shape[0] != labels.shape[0] or sim.shape[1] != seen_mask.shape[0]:
        raise ValueError(
            f"calibration_from_seen: scores {sim.shape}, labels {labels.shape}, mask {seen_mask.shape}"
        )
    if not len(labels) or seen_mask.all() or not seen_mask.any():
        return 0.0
    if not seen_mask[labels].all():
        raise ValueError("calibration_from_seen: the calibration samples must all be of seen classes")
    gap = sim[:, seen_mask].max(1) - sim[:, ~seen_mask].max(1)
    hi = max(float(gap.max()), 0.0) + 1e-6
    gammas = np.linspace(0.0, hi, points)

    def acc(gamma: float) -> float:
        return float(((sim - gamma * seen_mask[None, :]).argmax(1) == labels).mean())

    floor = acc(0.0) - tolerance - 1e-9
    return float(max(g for g in gammas if acc(float(g)) >= floor))


def gzsl_sweep(sim: np.ndarray, labels: np.ndarray, seen_mask: np.ndarray, fixed: float | None = None,
               points: int = 101, val_calibration: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Seen / unseen accuracy and harmonic mean over all classes, with ``gamma`` subtracted from the
    seen-class scores. ``sim`` (N, K) over all classes, ``labels`` (N,) into them. Accuracies are per
    sample. Returns the figures at gamma 0, at ``fixed``, at ``val_calibration`` (a gamma chosen without
    these labels, :func:`calibration_from_seen`; ``gzsl_val_*``), at the best H of the sweep (the
    oracle), and the sweep."""
    is_seen = seen_mask[labels]

    def at(gamma: float) -> tuple[float, float, float]:
        pred = (sim - gamma * seen_mask[None, :]).argmax(1)
        ok = pred == labels
        s = float(ok[is_seen].mean()) if is_seen.any() else float("nan")
        u = float(ok[~is_seen].mean()) if (~is_seen).any() else float("nan")
        return s, u, harmonic(s, u)

    # the gap between the best seen and the best unseen score decides each sample: sweep its range
    gap = sim[:, seen_mask].max(1) - sim[:, ~seen_mask].max(1)
    hi = max(float(np.quantile(gap, 0.99)), 0.0) + 1e-3
    gammas = np.unique(np.concatenate([[0.0], np.linspace(0.0, hi, points)]))
    rows = [(float(g), *at(float(g))) for g in gammas]
    best = max(rows, key=lambda r: (r[3], -r[0]))
    s0, u0, h0 = at(0.0)
    out: dict[str, Any] = {"gzsl_seen": s0, "gzsl_unseen": u0, "gzsl_h": h0, "gzsl_oracle_calibration": best[0],
                           "gzsl_oracle_seen": best[1], "gzsl_oracle_unseen": best[2], "gzsl_oracle_h": best[3],
                           "gzsl_sweep": [list(r) for r in rows]}  # fmt: skip
    if fixed is not None:
        s, u, h = at(float(fixed))
        out.update(gzsl_calibration=float(fixed), gzsl_calibrated_seen=s, gzsl_calibrated_unseen=u,
                   gzsl_calibrated_h=h)  # fmt: skip
    if val_calibration is not None:
        s, u, h = at(float(val_calibration))
        out.update(
            gzsl_val_calibration=float(val_calibration), gzsl_val_seen=s, gzsl_val_unseen=u, gzsl_val_h=h
        )
    return out


__all__ = ["ZeroShotConfig", "ZeroShotMethod", "calibration_from_seen", "gzsl_sweep", "harmonic"]
