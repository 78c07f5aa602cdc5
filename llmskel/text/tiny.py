"""Tiny random text models built locally (no download), for tests, demos and offline checks.

Like timm's ``test_*`` variants: real transformers / open_clip classes at toy sizes, so code paths
that load a sentence encoder, a causal LM or an open_clip text tower run in milliseconds.

* :func:`tiny_tokenizer`: a word-level fast tokenizer trained on a few strings, with a chat template;
* :func:`save_tiny_sentence_encoder`: a 1-layer BERT plus that tokenizer in a folder, loadable as
  ``"sentence:<folder>"``;
* :func:`save_tiny_llm`: a 2-layer Llama causal LM plus the tokenizer, loadable as
  ``"causal_lm:<folder>"`` or by :class:`~llmskel.text.describe.Describer`; random weights answer
  with noise, which is what the "garbage is rejected and reported" paths need;
* :func:`register_tiny_open_clip`: an open_clip architecture with a tiny text tower.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "<s>", "</s>", "[CLS]", "[SEP]", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def default_corpus() -> list[str]:
    """Words of the shipped templates and synthetic descriptions (enough for a useful vocabulary)."""
    from .descriptions import load_descriptions
    from .resources import prompts_root

    texts = []
    for p in (prompts_root() / "templates").iterdir():
        if p.name.endswith(".txt"):
            texts.append(p.read_text(encoding="utf-8"))
    for d in load_descriptions("synthetic").classes.values():
        texts += [d.label, *d.synonyms, *d.sentences, *(t for v in d.parts.values() for t in v)]
    return texts


def tiny_tokenizer(corpus: Iterable[str] | None = None, chat_template: bool = True):
    """A lower-casing word-level ``PreTrainedTokenizerFast`` over the words of ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(
        list(corpus or default_corpus()), trainers.WordLevelTrainer(special_tokens=SPECIAL)
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>", cls_token="[CLS]", sep_token="[SEP]")  # fmt: skip
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tiny_sentence_encoder(folder: str | Path, corpus: Iterable[str] | None = None, hidden_size: int = 16,
                               seed: int = 0) -> Path:  # fmt: skip
    """A random 1-layer BERT (``hidden_size``-d embeddings) and its tokenizer in ``folder``."""
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    tok = tiny_tokenizer(corpus, chat_template=False)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=2 * hidden_size, max_position_embeddings=128, pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(seed)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_tiny_llm(folder: str | Path, corpus: Iterable[str] | None = None, hidden_size: int = 32, seed: int = 0,
                  chat_template: bool = True) -> Path:  # fmt: skip
    """A random 2-layer Llama causal LM and its tokenizer (with a chat template) in ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tok = tiny_tokenizer(corpus, chat_template=chat_template)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def register_tiny_open_clip(folder: str | Path, name: str = "llmskel-tiny-clip", embed_dim: int = 16,
                            width: int = 32) -> str:  # fmt: skip
    """Register an open_clip architecture ``name`` with a tiny text tower (config written to
    ``folder``); ``open_clip.create_model(name)`` then builds it with random weights."""
    from ..optional import require

    open_clip = require("open_clip", "open_clip text towers")

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": width, "heads": 2, "layers": 1},
    }
    (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder / f"{name}.json")
    return name
