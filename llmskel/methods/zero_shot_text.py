"""The text side of zero-shot recognition: class prompts, prototypes, and a model's projection.

Shared by training (:mod:`llmskel.methods.zero_shot`), inference (:meth:`SkeletonModel.classify`,
``llmskel zeroshot``) and few-shot text fusion (:mod:`llmskel.methods.few_shot`).

* :func:`class_texts` turns a label (and optionally its description) into the texts of one class:
  label prompts from templates, synonyms, sentences, part descriptions;
* a class **prototype** is the L2-normalised mean of the normalised embeddings of its texts (prompt
  ensembling); :func:`prototypes` computes them through the on-disk embedding cache and keeps the
  result in memory per (encoder, label set, prompts, descriptions), so classifying again against the
  same labels costs one dictionary lookup;
* :func:`text_side` reads what a saved model carries (``config.text``): the text encoder reference,
  the prompt templates and which head projects skeleton features into the text space. Models of
  ``method: zeroshot`` carry a ``zeroshot`` entry; GAP models (``align``) are usable too, through the
  projection of their ``global`` term.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, LlmskelError
from ..prediction import renamed_argument

logger = logging.getLogger(__name__)

TEXT_SOURCES = ("name", "label", "synonyms", "sentence", "parts")
ZS_PROJ, ZS_SCALE = "zs_proj", "zs_logit_scale"


class LabelError(LlmskelError, ValueError):
    """A label list that cannot be classified against (empty, blank or duplicate labels)."""


def check_labels(labels: Sequence[str], where: str = "labels") -> list[str]:
    """Stripped labels; empty lists, blank labels and duplicates (case-insensitive) are errors."""
    if isinstance(labels, str):
        labels = split_labels(labels)
    out = [str(x).strip() for x in labels]
    if not out:
        raise LabelError(f"{where}: no labels given; pass at least one class name")
    blank = [i + 1 for i, x in enumerate(out) if not x]
    if blank:
        raise LabelError(f"{where}: label(s) at position {blank} are empty")
    seen: dict[str, int] = {}
    for i, x in enumerate(out):
        key = " ".join(x.lower().split())
        if key in seen:
            raise LabelError(f"{where}: label {x!r} is given twice (positions {seen[key] + 1} and {i + 1})")
        seen[key] = i
    return out


def split_labels(text: str) -> list[str]:
    """``"wave; sit down; kick something"`` -> three labels (``;`` or newlines separate)."""
    return [p for p in (s.strip() for s in text.replace("\n", ";").split(";"))] if text.strip() else []


def class_texts(label: str, prompts: Sequence[str], description: Any = None,
                sources: Sequence[str] = ("label", "synonyms", "sentence", "parts")) -> list[str]:  # fmt: skip
    """The texts whose embeddings are averaged into the prototype of one class.

    ``description``: a :class:`~llmskel.text.descriptions.ClassDescription`, a string or a list of
    strings (free text for this label), or None. Duplicates are dropped, order kept."""
    from ..text.labels import clean_label, render_prompt

    texts: list[str] = []
    if "name" in sources:
        texts.append(clean_label(label))
    if "label" in sources:
        texts += [render_prompt(p, label) for p in prompts]
    if isinstance(description, str):
        texts.append(description)
    elif isinstance(description, (list, tuple)):
        texts += [str(t) for t in description]
    elif description is not None:
        if "synonyms" in sources and prompts:
            texts += [render_prompt(prompts[0], s) for s in description.synonyms]
        if "sentence" in sources:
            texts += list(description.sentences)
        if "parts" in sources and description.parts:
            n = max(len(v) for v in description.parts.values())
            for v in range(n):
                body = " ".join(o[v % len(o)] for o in description.parts.values() if o)
                texts.append(f"{label}: {body}")
    return list(dict.fromkeys(t for t in texts if t.strip())) or [label]


def encode_texts(encoder, texts: Sequence[str], cache_dir: str | None = None) -> torch.Tensor:
    """(N, E) normalised embeddings through the on-disk cache."""
    from ..text.cache import encode_cached

    return encode_cached(encoder, list(texts), root=cache_dir)


def pooled_prototypes(emb: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Mean of consecutive rows in groups of sizes ``groups``, normalised: (sum(groups), E) -> (K, E)."""
    k = len(groups)
    owner = torch.repeat_interleave(torch.arange(k), torch.as_tensor(list(groups)))
    sums = torch.zeros(k, emb.shape[1], dtype=emb.dtype).index_add_(0, owner, emb)
    return F.normalize(sums, dim=-1)


_PROTO_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_PROTO_CACHE_SIZE = 64
_ENCODERS: dict[tuple, Any] = {}


def prototypes(encoder, labels: Sequence[str], prompts: Sequence[str], descriptions: Mapping[str, Any] | None = None,
               sources: Sequence[str] = ("label", "synonyms", "sentence", "parts"),
               cache_dir: str | None = None) -> torch.Tensor:  # fmt: skip
    """(K, E) class prototypes (prompt ensembles), cached in memory per label set and on disk per text."""
    desc_key = None
    if descriptions:
        desc_key = tuple(sorted((k, repr(v)) for k, v in descriptions.items()))
    key = (encoder.spec, encoder.fingerprint(), tuple(labels), tuple(prompts), desc_key, tuple(sources))
    hit = _PROTO_CACHE.get(key)
    if hit is not None:
        _PROTO_CACHE.move_to_end(key)
        return hit
    per_class = [class_texts(lb, prompts, _lookup(descriptions, lb), sources) for lb in labels]
    flat = [t for texts in per_class for t in texts]
    emb = encode_texts(encoder, flat, cache_dir)
    protos = pooled_prototypes(emb, [len(t) for t in per_class])
    _PROTO_CACHE[key] = protos
    if len(_PROTO_CACHE) > _PROTO_CACHE_SIZE:
        _PROTO_CACHE.popitem(last=False)
    return protos


def _lookup(descriptions: Mapping[str, Any] | None, label: str) -> Any:
    if not descriptions:
        return None
    if label in descriptions:
        return descriptions[label]
    from ..text.descriptions import find_label, normalize_label

    norm = {normalize_label(k): v for k, v in descriptions.items()}
    return find_label(norm, label)


def get_text_encoder(record: Mapping[str, Any]):
    """The frozen text encoder a model records (``{"spec", "dim", "fingerprint", options}``), built once
    per process; a different fingerprint (same name, other weights) is logged as a warning."""
    from ..text.encoders import build_text_encoder
    from ..trust import recall_local

    # saved folders name a local encoder by its folder name only: where it lives on this machine
    local = recall_local(text_encoder_key(record))
    if isinstance(local, dict) and local.get("spec"):
        record = {**record, **{k: local.get(k) for k in ("spec", "pretrained", "gguf_file")}}
    key = (record["spec"], record.get("pretrained"), record.get("gguf_file"), record.get("max_length"))
    enc = _ENCODERS.get(key)
    if enc is None:
        enc = build_text_encoder(record["spec"], pretrained=record.get("pretrained"),
                                 gguf_file=record.get("gguf_file"), max_length=record.get("max_length"))  # fmt: skip
        _ENCODERS[key] = enc
        want = record.get("fingerprint")
        if want and enc.fingerprint() != want:
            logger.warning("text encoder %s: weights differ from the ones the model was trained with "
                           "(fingerprint %s, recorded %s)", enc.spec, enc.fingerprint(), want)  # fmt: skip
    return enc


def text_encoder_key(record: Mapping[str, Any]) -> str:
    """Key of a text encoder in the machine-local index (:func:`llmskel.trust.remember_local`)."""
    return f"text-encoder:{record.get('fingerprint')}" if record.get("fingerprint") else ""


def public_text_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A text-side record for a saved folder: local paths reduced to names; the local encoder's place
    is noted on this machine so that the folder still loads here."""
    from ..trust import remember_local, scrub_local_paths

    public = scrub_local_paths(dict(record))
    for enc in _encoder_records(record):
        if scrub_local_paths(enc) != enc:
            remember_local(
                text_encoder_key(enc), {k: enc.get(k) for k in ("spec", "pretrained", "gguf_file")}
            )
    return public


def _encoder_records(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, Mapping):
        found = [dict(obj)] if "spec" in obj and "fingerprint" in obj else []
        return found + [r for v in obj.values() for r in _encoder_records(v)]
    return []


@dataclass
class TextSide:
    """What a saved model needs to score skeletons against text."""

    kind: str  # "zeroshot" or "align" (GAP)
    encoder: dict[str, Any]  # the text encoder record
    prompts: tuple[str, ...]
    sources: tuple[str, ...]
    projection: str  # head name
    logit_scale: str | None  # head name
    part_index: int | None = None  # GAP: the index of the "global" term in the part projection
    feature_norm: str = "none"  # "layer": a parameter-free layer norm of the feature before the projection

    def embed(self, model, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, E) L2-normalised skeleton embeddings in the text space."""
        return project_feature(model, model(x).feature, self)

    def scale(self, model) -> float:
        if self.logit_scale is None or self.logit_scale not in model.heads:
            return 1.0 / 0.07
        s = model.heads[self.logit_scale]()
        return float(s.reshape(-1)[self.part_index or 0]) if s.ndim else float(s)


def project_feature(model, feature: torch.Tensor, side: TextSide) -> torch.Tensor:
    proj = model.heads[side.projection]
    feature = normalize_feature(feature.float(), side.feature_norm)
    if side.part_index is None:
        z = proj(feature)
    else:  # a GAP part projection: the global term's map
        z = feature @ proj.weight[side.part_index].T + proj.bias[side.part_index]
    return F.normalize(z, dim=-1)


def normalize_feature(feature: torch.Tensor, mode: str) -> torch.Tensor:
    """Encoder features after ReLU share a large positive mean direction, so projections of all samples
    start out nearly parallel; a parameter-free layer norm removes it."""
    return F.layer_norm(feature, feature.shape[-1:]) if mode == "layer" else feature


def text_side(model, where: str | None = None) -> TextSide:
    """The text side of a saved model, or a :class:`CheckpointError` saying it has none."""
    from ..text.resources import load_label_prompts

    text = getattr(model.config, "text", {}) or {}
    where = where or getattr(model, "name_or_path", None) or "this model"
    zs = text.get("zeroshot")
    if zs:
        heads = zs.get("heads", {})
        proj = heads.get("projection", ZS_PROJ)
        if proj not in model.heads or "text_encoder" not in zs:
            raise CheckpointError(f"{where}: config.text['zeroshot'] names projection {proj!r} or a text encoder "
                                  "that the model folder does not carry")  # fmt: skip
        prompts = tuple(zs.get("label_prompts", {}).get("prompts") or load_label_prompts().prompts)
        return TextSide("zeroshot", dict(zs["text_encoder"]), prompts, tuple(zs.get("text_sources", ("label",))),
                        proj, heads.get("logit_scale", ZS_SCALE), feature_norm=zs.get("feature_norm", "none"))  # fmt: skip
    align = text.get("align")
    if align and "global" in align.get("terms", []) and "text_encoder" in align:
        heads = align.get("heads", {})
        return TextSide("align", dict(align["text_encoder"]), load_label_prompts().prompts, ("label",),
                        heads.get("projection", "align_proj"), heads.get("logit_scale", "align_logit_scale"),
                        part_index=list(align["terms"]).index("global"))  # fmt: skip
    method = getattr(model.config, "method", "?")
    raise CheckpointError(
        f"{where}: the model has no text side (config.json 'text' holds no 'zeroshot' entry and no GAP 'global' "
        f"projection; it was trained with method {method!r}). Zero-shot classification needs a model trained "
        "with method: zeroshot (or gap)."
    )


def load_prompts(prompts: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    """Templates from a file (``.txt``, one per line with a ``{label}`` / ``{label_s}`` / ``{label_ing}``
    slot, see :mod:`llmskel.text.labels`), a list, or the model's own."""
    if prompts is None:
        return tuple(default)
    if isinstance(prompts, str):
        from ..text.resources import load_label_prompts

        return load_label_prompts(prompts).prompts
    out = tuple(str(p) for p in prompts)
    from ..text.labels import has_slot

    bad = [p for p in out if not has_slot(p)]
    if not out or bad:
        raise LabelError(
            f"prompt templates need a {{label}}, {{label_s}} or {{label_ing}} slot: {bad or 'none given'}"
        )
    return out


def usable_descriptions(descriptions: Any, labels: Sequence[str], where: str = "zero-shot") -> dict[str, Any]:
    """label -> description for the ``labels`` whose part descriptions pass the content check
    (:mod:`llmskel.text.content`). A class whose parts are rejected keeps only its synonyms (no parts,
    no sentence); a class without a description is left out; both then rest on label prompts (and
    synonyms), and one warning names them."""
    from ..text.content import usable
    from ..text.descriptions import ClassDescription

    good, bad = usable(descriptions or {}, labels)
    out = dict(good)
    classes = getattr(descriptions, "classes", descriptions) or {}
    from ..text.descriptions import find_label, normalize_label

    index = {normalize_label(k): v for k, v in classes.items()}
    for label in bad:
        d = find_label(index, label)
        if d is not None and d.synonyms:
            out[label] = ClassDescription(label, {}, list(d.synonyms), [])
    if bad:
        logger.warning("%s: %d of %d classes have no usable part descriptions and fall back to label prompts%s: %s",
                       where, len(bad), len(labels), " and synonyms" if len(out) > len(good) else "",
                       "; ".join(f"{k} ({v})" for k, v in bad.items()))  # fmt: skip
    return out


def load_user_descriptions(descriptions: Any, labels: Sequence[str]) -> Mapping[str, Any] | None:
    """None, a mapping label -> text(s) / ClassDescription, or a description file (any format
    :func:`llmskel.text.descriptions.load_descriptions` reads). Unknown labels in a mapping are ignored.
    Description files go through the content check (:func:`usable_descriptions`)."""
    if descriptions is None:
        return descriptions
    if isinstance(descriptions, Mapping):
        from ..text.descriptions import ClassDescription

        if not any(isinstance(v, ClassDescription) for v in descriptions.values()):
            return descriptions  # free text given by the caller: used as given
    from ..text.descriptions import DescriptionSet, load_descriptions

    ds = (
        descriptions
        if isinstance(descriptions, (DescriptionSet, Mapping))
        else load_descriptions(descriptions)
    )
    return usable_descriptions(ds, labels, "descriptions")


@renamed_argument("skeletons", "samples")
@torch.no_grad()
def classify(model, samples: Sequence[Any], labels: Sequence[str] | str, prompts: str | Sequence[str] | None = None,
             descriptions: Any = None, top_k: int = 5, batch_size: int = 64,
             return_scores: bool = False):  # fmt: skip
    """Rank ``labels`` for each sample: one :class:`~llmskel.prediction.Prediction` per input (the
    ``top_k`` labels with their probabilities).

    With ``return_scores=True`` returns the (N, K) cosine similarities instead."""
    from ..data.inputs import as_sample_list
    from ..prediction import rank, target_of

    skeletons = as_sample_list(samples)  # one (T, M, V, C) array is one skeleton, not T frames
    labels = check_labels(labels)
    side = text_side(model)
    encoder = get_text_encoder(side.encoder)
    from ..text.encoders import check_text_dim

    protos = prototypes(encoder, labels, load_prompts(prompts, side.prompts),
                        load_user_descriptions(descriptions, labels),
                        side.sources if descriptions is None else (*side.sources, "synonyms", "sentence", "parts"))  # fmt: skip
    head = model.heads[side.projection]
    out_dim = head.weight.shape[-2] if side.part_index is not None else _out_features(head)
    check_text_dim(protos.shape[1], encoder.spec, out_dim, f"the model's projection {side.projection!r}")
    model.eval()
    device = next(model.parameters()).device
    protos = protos.to(device)
    sims = []
    for start in range(0, len(skeletons), batch_size):
        x = model.prepare_inputs(skeletons[start : start + batch_size]).to(device)
        sims.append(side.embed(model, x) @ protos.T)  # (B, K)
    sim = torch.cat(sims) if sims else torch.zeros(0, len(labels), device=device)
    if return_scores:
        return sim.cpu().numpy()
    probs = torch.softmax(side.scale(model) * sim, dim=-1).cpu().numpy()
    return rank(probs, labels, top_k, [target_of(s) for s in skeletons])


def _out_features(head) -> int:
    if hasattr(head, "out_features"):
        return int(head.out_features)
    last = [m for m in head.modules() if hasattr(m, "out_features")][-1]
    return int(last.out_features)


__all__ = [
    "LabelError", "TEXT_SOURCES", "TextSide", "check_labels", "class_texts", "classify", "get_text_encoder",
    "load_prompts", "load_user_descriptions", "usable_descriptions", "pooled_prototypes", "project_feature", "prototypes",
    "split_labels", "text_side",
]  # fmt: skip
