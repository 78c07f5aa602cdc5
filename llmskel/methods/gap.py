"""GAP: supervised training with part-wise language alignment (``method: gap``).

Generative Action description Prompts (Xiang et al., ICCV 2023), written for llmskel:

* the skeleton encoder is trained with cross-entropy as in :mod:`llmskel.methods.supervised`;
* each *term* (``global`` and body parts such as ``head`` or groups such as ``hand+arm``) pools the
  encoder's ``joint_feature`` (N, D, V) over its joints (the mean over the layout's part joints;
  ``global`` over all joints, which equals ``feature``), projects it into the text space (one
  linear map per term) and is contrasted with a text embedding per sample: for ``global`` a label
  prompt or synonym of the sample's class, for a part the class's description of that part
  (prefixed with the label, as in the paper), a variant drawn at random each step;
* the contrast is a batch-wise N x N similarity with a learnable temperature per term; the target of
  a row is uniform over the samples of the same class (several positives when a batch holds a class
  twice); the loss per term is the KL divergence of both directions (skeleton -> text, text ->
  skeleton), averaged; the total is ``ce + weight * mean over terms``.

The text embeddings are computed once with a frozen encoder (through the on-disk cache) and moved to
the device in :meth:`GapMethod.setup`; a step only gathers rows of a table. The projections and
temperatures are extra heads of the :class:`~llmskel.hub.SkeletonModel` (saved and strictly
reloaded with it); inference uses only the classifier, so the text encoder is not needed then.

Beyond the paper: confusion-driven refinement (``align.refine.every``): every K epochs the most
confused class pairs of the *validation* split are sent to an LLM with the ``contrast`` template;
accepted answers become the first description variant of those classes' parts (the old ones stay as
further variants), rejected ones are reported and the old descriptions kept. The refined set is
written to ``<run>/descriptions_refined.json`` and the refinement log into the saved model's
``config.text["align"]["refinements"]``.

Limits: the contrast is per process batch (as in the paper's code; no all-gather across processes).
With several processes every rank runs the refinement LLM on the same gathered validation report
(greedy decoding, same answers). A resumed run starts again from the original descriptions until
its next refinement, and a trainable text encoder (``align.text_trainable``, single process only)
is not part of the checkpoints: resuming restarts it from its pretrained weights.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import bounded
from ..data.layouts import GLOBAL_TERM, PART_NAMES, part_pool_matrix
from ..errors import ConfigError
from ..text.encoders import DEFAULT_TEXT_ENCODER, check_text_dim
from ..text.labels import render_prompt
from .base import register_method
from .supervised import SupervisedMethod

logger = logging.getLogger(__name__)

GLOBAL = GLOBAL_TERM
PROJ, SCALE = "align_proj", "align_logit_scale"


@dataclass
class RefineConfig:
    """Confusion-driven description refinement (needs ``data.val_fraction`` > 0)."""

    every: int = bounded(0, ge=0)  # epochs between refinements (after that epoch's validation); 0 = off
    pairs: int = bounded(3, ge=1)  # most confused class pairs per refinement
    llm: str = "SmolLM2-135M-Instruct"  # causal LM: folder, Hub id, .gguf file
    gguf_file: str | None = None
    parts: list[str] = field(default_factory=lambda: list(PART_NAMES))  # parts to rewrite
    max_new_tokens: int = bounded(40, ge=1)
    retries: int = bounded(1, ge=0)
    seed: int = 0
    batch_size: int = bounded(8, ge=1)


@dataclass
class AlignConfig:
    """The ``align:`` section of a ``method: gap`` experiment."""

    weight: float = 0.8  # the alignment term's weight (the paper's alpha)
    temperature: float = 0.07  # initial temperature of every term
    learn_temperature: bool = True
    # terms: "global" and parts of PART_NAMES, or groups of parts joined by "+" ("hand+arm")
    parts: list[str] = field(default_factory=lambda: [GLOBAL, *PART_NAMES])
    text_encoder: str = DEFAULT_TEXT_ENCODER  # llmskel.text.build_text_encoder spec
    text_pretrained: str | None = None  # open_clip: tag, weights file or local-dir:/folder
    text_gguf_file: str | None = None  # causal_lm: GGUF file name
    text_trainable: bool = False  # fine-tune the text encoder (single process; re-encodes every step)
    text_lr_ratio: float = bounded(0.1, ge=0)  # its learning rate relative to optim.lr
    # description file: null = the shipped file that covers the dataset's classes; or a path (our
    # JSON, a published pasta file or a folder of published files) or a shipped name ("ntu120")
    descriptions: str | None = None
    allow_missing_parts: bool = False  # fill missing parts from the class sentence (reported)
    part_variants: int = 2  # description variants per part used (newest first); 0 = all
    global_text: list[str] = field(default_factory=lambda: ["label", "synonyms"])  # label, synonyms, sentence
    label_prompts: str = "label_prompts"  # template of label prompts (name or .txt path)
    prepend_label: bool = True  # part text "<label>: <description>", as the paper pairs them
    cache_dir: str | None = None  # embedding cache root (default $LLMSKEL_CACHE or ~/.cache/llmskel)
    refine: RefineConfig = field(default_factory=RefineConfig)

    def validate(self) -> None:
        if self.weight < 0:
            raise ConfigError("config key 'align.weight' must be >= 0")
        if not 0 < self.temperature < 10:
            raise ConfigError("config key 'align.temperature' must be in (0, 10)")
        if not self.parts:
            raise ConfigError(
                "config key 'align.parts' must name at least one term (global, head, hand+arm, ...)"
            )
        parse_terms(self.parts)
        bad = sorted(set(self.global_text) - {"label", "synonyms", "sentence"})
        if bad or not self.global_text:
            raise ConfigError(
                f"config key 'align.global_text' has invalid values {bad}; valid: label, synonyms, sentence"
            )
        if self.part_variants < 0:
            raise ConfigError("config key 'align.part_variants' must be >= 0 (0 = all)")
        bad = sorted(set(self.refine.parts) - set(PART_NAMES))
        if bad:
            raise ConfigError(
                f"config key 'align.refine.parts' has unknown parts {bad}; valid: {', '.join(PART_NAMES)}"
            )


def parse_terms(terms: list[str]) -> list[tuple[str, ...]]:
    """``["global", "head", "hand+arm"]`` -> ``[("global",), ("head",), ("hand", "arm")]``, checked."""
    out, seen = [], set()
    for t in terms:
        pieces = tuple(p.strip() for p in str(t).split("+"))
        for p in pieces:
            if p not in PART_NAMES and not (p == GLOBAL and len(pieces) == 1):
                raise ConfigError(
                    f"config key 'align.parts': unknown term {t!r}; valid: {GLOBAL}, {', '.join(PART_NAMES)} "
                    "or parts joined by '+' (hand+arm)"
                )
        if pieces in seen:
            raise ConfigError(f"config key 'align.parts': term {t!r} is given twice")
        seen.add(pieces)
        out.append(pieces)
    return out


def multi_positive_kl(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per term, KL(target || softmax(logits)) averaged over rows and over both directions.

    ``logits`` (P, N, N): similarities of sample i's skeleton term to sample j's text; ``labels`` (N,).
    The target of row i is uniform over the samples j of i's class. Returns (P,)."""
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)  # (N, N), symmetric
    target = same / same.sum(-1, keepdim=True)  # (N, N)
    neg_entropy = torch.special.xlogy(target, target).sum(-1)  # (N,)

    def kl(lg: torch.Tensor) -> torch.Tensor:  # (P, N, N) -> (P,)
        return (neg_entropy - (target * lg.log_softmax(-1)).sum(-1)).mean(-1)

    return 0.5 * (kl(logits) + kl(logits.transpose(1, 2)))


class TextTable:
    """Text embeddings of every (term, class, variant), padded: ``emb`` (P, K, Vmax, E), ``count`` (P, K)."""

    def __init__(self, texts: list[list[list[str]]], encoder, cache_dir: str | None):
        from ..text.cache import encode_cached

        self.texts = texts
        unique = sorted({t for per_term in texts for per_class in per_term for t in per_class})
        self.num_texts = len(unique)
        self.row = {t: i for i, t in enumerate(unique)}
        # frozen: through the on-disk cache; trainable: these are only the starting values (steps re-encode)
        emb = encode_cached(encoder, unique, root=cache_dir, progress=True)
        vmax = max(len(c) for per_term in texts for c in per_term)
        p, k = len(texts), len(texts[0])
        index = torch.zeros(p, k, vmax, dtype=torch.long)  # rows into the unique-text matrix
        count = torch.zeros(p, k, dtype=torch.long)
        for i, per_term in enumerate(texts):
            for j, options in enumerate(per_term):
                count[i, j] = len(options)
                rows = [self.row[t] for t in options]
                index[i, j] = torch.tensor((rows * vmax)[:vmax])  # pad by repeating
        self.index, self.count = index, count
        self.unique_emb = emb  # (U, E)
        self.emb = emb[index]  # (P, K, Vmax, E)
        self.unique = unique

    @property
    def dim(self) -> int:
        return int(self.unique_emb.shape[-1])

    def to(self, device: torch.device) -> TextTable:
        self.emb, self.count, self.index = self.emb.to(device), self.count.to(device), self.index.to(device)
        return self


@register_method("gap", section="align", config=AlignConfig)
class GapMethod(SupervisedMethod):
    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.align.refine.every > 0 and cfg.data.val_fraction <= 0:
            raise ConfigError(
                "config key 'align.refine.every' > 0 needs data.val_fraction > 0: refinement looks at the "
                "validation split's confusions, never at the test set"
            )

    def __init__(self, cfg, bundle):
        super().__init__(cfg, bundle)
        self.align: AlignConfig = self.settings
        a = self.align
        self.terms = parse_terms(a.parts)
        self.term_names = ["+".join(t) for t in self.terms]
        self.descriptions = self._load_descriptions()
        from ..text.encoders import build_text_encoder
        from ..text.resources import load_label_prompts

        self.label_prompts = load_label_prompts(a.label_prompts)
        self.encoder = build_text_encoder(a.text_encoder, pretrained=a.text_pretrained, gguf_file=a.text_gguf_file,
                                          trainable=a.text_trainable)  # fmt: skip
        self.table = TextTable(self._term_texts(), self.encoder, a.cache_dir)
        self.pool = self._pool_matrix()  # (P, V)
        self.refinements: list[dict[str, Any]] = []
        self._describer = None
        self._device = torch.device("cpu")
        logger.info("GAP alignment: terms %s, text encoder %s (%d-d), %d distinct texts", self.term_names,
                    self.encoder.spec, self.table.dim, self.table.num_texts)  # fmt: skip

    # ------------------------------------------------------------------ text side
    def _load_descriptions(self):
        from ..text.descriptions import load_descriptions
        from ..text.resources import DATASET_DESCRIPTIONS, list_shipped_descriptions

        a, classes = self.align, list(self.bundle.classes)
        if a.descriptions:
            return load_descriptions(a.descriptions, classes, allow_missing=a.allow_missing_parts)
        first = DATASET_DESCRIPTIONS.get(self.cfg.data.dataset)
        candidates = ([first] if first else []) + [n for n in list_shipped_descriptions() if n != first]
        problems = []
        for name in candidates:
            try:
                ds = load_descriptions(name, allow_missing=a.allow_missing_parts)
                return ds.for_classes(classes)
            except (ValueError, KeyError) as e:
                problems.append(f"{name}: {e}")
        raise ConfigError(
            f"config key 'align.descriptions' is not set and no shipped description file covers the "
            f"{len(classes)} classes of dataset {self.cfg.data.dataset!r} ({problems[0] if problems else ''}); "
            "write one with `llmskel describe` and set align.descriptions"
        )

    def _term_texts(self) -> list[list[list[str]]]:
        """texts[term][class] = the variants of that term's text for that class."""
        a = self.align
        out = []
        for term in self.terms:
            per_class = []
            for label in self.bundle.classes:
                d = self.descriptions[label]
                if term == (GLOBAL,):
                    texts = []
                    if "label" in a.global_text:
                        texts += self.label_prompts.format(label)
                    if "synonyms" in a.global_text:
                        texts += [render_prompt(self.label_prompts.prompts[0], s) for s in d.synonyms]
                    if "sentence" in a.global_text:
                        texts += d.sentences
                    per_class.append(list(dict.fromkeys(texts or [label])))
                    continue
                options = [d.parts[p][: a.part_variants or None] for p in term]
                n = max(len(o) for o in options)
                texts = []
                for v in range(n):
                    body = " ".join(o[v % len(o)] for o in options)
                    texts.append(f"{label}: {body}" if a.prepend_label else body)
                per_class.append(texts)
            out.append(per_class)
        return out

    def _pool_matrix(self) -> torch.Tensor:
        return part_pool_matrix(self.bundle.layout, self.terms)

    def text_record(self) -> dict[str, Any]:
        d = self.descriptions
        return {"align": {
            "text_encoder": self.encoder.record(), "terms": self.term_names, "weight": self.align.weight,
            "descriptions": {"source": d.source, "header": {k: v for k, v in d.header.items() if k != "classes"},
                             "filled_from_sentence": d.filled},
            "label_prompts": {"source": self.label_prompts.source, "version": self.label_prompts.version},
            "heads": {"projection": PROJ, "logit_scale": SCALE},
        }}  # fmt: skip

    # ------------------------------------------------------------------ model side
    def head_specs(self, feature_dim: int) -> dict[str, Any]:
        return {
            PROJ: {"type": "part_projection", "parts": self.term_names, "out_features": self.table.dim},
            SCALE: {
                "type": "logit_scale",
                "init_temperature": self.align.temperature,
                "size": len(self.terms),
            },
        }

    def build_model(self):
        model = super().build_model()
        model.heads[SCALE].log_scale.requires_grad_(self.align.learn_temperature)
        if self.cfg.model.init_from:
            self._init_heads_from(model, self.cfg.model.init_from)
        return model

    def _init_heads_from(self, model, source: str) -> None:
        """Copy the alignment heads of a GAP model when they fit; a projection into another text
        width is an error naming both encoders."""
        from ..hub import SkeletonModel

        src = SkeletonModel.from_pretrained(source)
        if PROJ not in src.heads:
            return
        src_dim = int(src.heads[PROJ].weight.shape[1])
        trained = src.config.text.get("align", {}).get("text_encoder", {}).get("spec", "?")
        check_text_dim(self.table.dim, self.encoder.spec, src_dim,
                       f"the projection {PROJ!r} of {source} (trained with {trained!r})")  # fmt: skip
        if list(src.heads[PROJ].parts) == self.term_names:
            model.heads.load_state_dict(src.heads.state_dict(), strict=False)

    def param_groups(self, model: nn.Module) -> list[Any]:
        groups: list[Any] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        if self.encoder.trainable:
            groups.append({"params": list(self.encoder.parameters()), "lr_scale": self.align.text_lr_ratio})
        return groups

    def setup(self, model: nn.Module, device: torch.device) -> None:
        check_projection(model, self.table.dim, self.encoder.spec)
        if self.encoder.trainable:
            from accelerate.state import PartialState

            if PartialState().num_processes > 1:
                raise ConfigError("align.text_trainable works in single-process runs only (its gradients are not "
                                  "synchronised across processes); keep the text encoder frozen")  # fmt: skip
            self.encoder.to(device)
        self._device = torch.device(device)
        self.table.to(self._device)
        self.pool = self.pool.to(self._device)
        self._proj = model.heads[PROJ]
        self._scale = model.heads[SCALE]

    # ------------------------------------------------------------------ training step
    def _texts_for(self, labels: torch.Tensor) -> torch.Tensor:
        """(P, N, E) text embeddings: per term and sample, a random variant of its class's text."""
        p, n = len(self.terms), labels.shape[0]
        count = self.table.count[:, labels]  # (P, N)
        variant = (
            (torch.rand(p, n, device=labels.device) * count).long().clamp_(max=self.table.emb.shape[2] - 1)
        )
        term = torch.arange(p, device=labels.device)[:, None].expand(p, n)
        if not self.encoder.trainable:
            return self.table.emb[term, labels[None, :].expand(p, n), variant]  # (P, N, E)
        rows = self.table.index[term, labels[None, :].expand(p, n), variant]  # (P, N) rows of unique texts
        used, inverse = torch.unique(rows, return_inverse=True)
        emb = self.encoder.encode([self.table.unique[i] for i in used.tolist()])  # (U', E), with grad
        return emb[inverse]

    def alignment(self, out, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-term loss (P,), logit scales (P,)) for an encoder output and its labels."""
        with torch.autocast(device_type=labels.device.type, enabled=False):
            joint = out.joint_feature.float()  # (N, D, V)
            pooled = torch.einsum("ndv,pv->npd", joint, self.pool)  # (N, P, D)
            z = F.normalize(self._proj(pooled), dim=-1).transpose(0, 1)  # (P, N, E)
            t = self._texts_for(labels)  # (P, N, E), L2-normalised
            scale = self._scale()  # (P,)
            logits = scale[:, None, None] * torch.bmm(z, t.transpose(1, 2))  # (P, N, N)
            return multi_positive_kl(logits, labels), scale

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["x"])
        labels = batch["label"]
        ce = F.cross_entropy(out.logits.float(), labels, label_smoothing=self.cfg.optim.label_smoothing)
        per_term, scale = self.alignment(out, labels)
        align = per_term.mean()
        loss = ce + self.align.weight * align
        values = torch.cat([torch.stack([ce.detach(), align.detach(), (1.0 / scale.detach()).mean()]),
                            per_term.detach()]).tolist()  # one device sync  # fmt: skip
        logs = {"ce": values[0], "align": values[1], "temperature": values[2]}
        terms = dict(zip(self.term_names, values[3:]))
        if GLOBAL in terms:
            logs["align_global"] = terms[GLOBAL]
        parts = [v for k, v in terms.items() if k != GLOBAL]
        if parts:
            logs["align_parts"] = sum(parts) / len(parts)
        logs.update({f"align_{k}": v for k, v in terms.items() if k != GLOBAL})
        return loss, logs

    # ------------------------------------------------------------------ refinement
    def on_epoch_end(self, model: nn.Module, epoch: int, val_report: dict | None) -> None:
        r = self.align.refine
        # the engine calls this after evaluations only (train.eval_every): refine at the first
        # evaluation at least `every` epochs after the last refinement
        last = self.refinements[-1]["epoch"] if self.refinements else 0
        if r.every <= 0 or epoch - last < r.every:
            return
        if epoch >= self.cfg.train.epochs:  # nothing trains on descriptions written after the last epoch
            return
        if val_report is None:
            raise ConfigError("align.refine needs a validation report: set data.val_fraction > 0")
        self.refine(val_report, epoch)

    def _get_describer(self):
        if self._describer is None:
            from ..text.describe import Describer

            r = self.align.refine
            self._describer = Describer(r.llm, gguf_file=r.gguf_file, batch_size=r.batch_size,
                                        max_new_tokens=r.max_new_tokens, retries=r.retries, seed=r.seed,
                                        progress=False)  # fmt: skip
        return self._describer

    def refine(self, val_report: dict, epoch: int = 0) -> dict[str, Any]:
        """Rewrite the part descriptions of the most confused validation class pairs (both directions)."""
        from ..engine.metrics import most_confused_pairs

        r = self.align.refine
        classes = list(self.bundle.classes)
        pairs = most_confused_pairs(val_report["confusion"], classes, r.pairs)
        entry: dict[str, Any] = {"epoch": epoch, "pairs": [[a, b, n] for a, b, n in pairs], "accepted": {},
                                 "rejected": {}}  # fmt: skip
        if not pairs:
            logger.info("refinement at epoch %d: no confused pairs on the validation split", epoch)
            self.refinements.append(entry)
            return entry
        asks = [(a, b) for a, b, _ in pairs] + [(b, a) for a, b, _ in pairs]
        accepted, rejected = self._get_describer().contrast(asks, r.parts)
        for (label, other), parts in accepted.items():
            for part, text in parts.items():
                self.descriptions.add_variant(label, part, text)
            entry["accepted"][f"{label} vs {other}"] = parts
        for (label, other), problems in rejected.items():
            entry["rejected"][f"{label} vs {other}"] = problems
        n_ok = sum(len(v) for v in accepted.values())
        n_bad = sum(len(v) for v in rejected.values())
        if n_ok:
            self.table = TextTable(self._term_texts(), self.encoder, self.align.cache_dir).to(self._device)
        logger.info("refinement at epoch %d: pairs %s; %d part descriptions accepted, %d rejected (old ones kept)",
                    epoch, [(a, b) for a, b, _ in pairs], n_ok, n_bad)  # fmt: skip
        self.refinements.append(entry)
        self._save_refined()
        return entry

    def _save_refined(self) -> None:
        from ..text.descriptions import make_header

        try:
            from accelerate.state import PartialState

            if not PartialState().is_main_process:
                return
        except Exception:  # pragma: no cover - no accelerate state (direct use)
            pass
        run = Path(self.cfg.run_dir)
        run.mkdir(parents=True, exist_ok=True)
        ds = dataclasses.replace(self.descriptions)
        ds.header = make_header("llmskel GAP refinement", base=self.descriptions.header,
                                refinements=self.refinements, model=self.align.refine.llm)  # fmt: skip
        ds.save(run / "descriptions_refined.json")

    def save_model(self, model: nn.Module, folder: Path, record: dict[str, Any]) -> None:
        if self.refinements:
            model.config.text.setdefault("align", {})["refinements"] = self.refinements
        super().save_model(model, folder, record)


def check_projection(model: nn.Module, text_dim: int, text_spec: str) -> None:
    """The model's alignment projection must map into ``text_dim``: else an error naming both."""
    heads = getattr(model, "heads", {})
    if PROJ not in heads:
        raise ConfigError(f"the model has no {PROJ!r} head; was it built by the gap method?")
    proj_dim = int(heads[PROJ].weight.shape[1])
    trained = getattr(model, "config", None)
    spec = "?"
    if trained is not None:
        spec = trained.text.get("align", {}).get("text_encoder", {}).get("spec", "?")
    check_text_dim(text_dim, text_spec, proj_dim, f"the model's projection {PROJ!r} (built for {spec!r})")


__all__ = ["AlignConfig", "GapMethod", "RefineConfig", "check_projection", "multi_positive_kl", "parse_terms"]
