"""The language side of llmskel: action descriptions, text encoders and their embedding cache.

Descriptions (:mod:`llmskel.text.descriptions`)
    :func:`load_descriptions` reads llmskel's JSON format, the published GAP formats (pasta,
    synonym, sentence files or a folder of them) or a shipped file by dataset name, checked against
    a class list; :class:`DescriptionSet` / :class:`ClassDescription` hold them.

Generation (:mod:`llmskel.text.describe`)
    :class:`Describer` asks any Hugging Face causal LM for per-part descriptions, synonyms and a
    sentence, checks and retries the answers and caches them (``llmskel describe`` on the command
    line); :meth:`Describer.contrast` writes descriptions that tell confused classes apart.

Text encoders (:mod:`llmskel.text.encoders`, :mod:`llmskel.text.cache`)
    :func:`build_text_encoder` (``"sentence:all-MiniLM-L6-v2"``, ``"open_clip:ViT-B-32"``,
    ``"causal_lm:PATH"``) returns a :class:`TextEncoder` whose ``encode(texts)`` gives (N, D)
    L2-normalised embeddings; :func:`encode_cached` goes through the on-disk embedding cache.

Templates and shipped files (:mod:`llmskel.text.resources`)
    :func:`load_template`, :func:`load_label_prompts`, :func:`shipped_descriptions_path`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import EmbeddingCache, cache_root, encode_cached
    from .describe import Describer, DescribeReport, LLMError, load_causal_lm, resolve_llm
    from .descriptions import (
        ClassDescription,
        DescriptionError,
        DescriptionSet,
        load_descriptions,
        read_label_file,
        read_pasta,
        read_published,
        read_sentences,
        read_synonyms,
    )
    from .encoders import (
        DEFAULT_TEXT_ENCODER,
        TextEncoder,
        TextEncoderError,
        build_text_encoder,
        check_text_dim,
    )
    from .resources import (
        PART_NOUNS,
        LabelPrompts,
        Template,
        list_shipped_descriptions,
        load_label_prompts,
        load_template,
        shipped_descriptions_path,
    )

# name -> submodule; the submodules import torch, so they load on first use of a name (PEP 562),
# and ``llmskel --help`` does not pay for them
_LAZY = {
    "EmbeddingCache": "cache",
    "cache_root": "cache",
    "encode_cached": "cache",
    "Describer": "describe",
    "DescribeReport": "describe",
    "LLMError": "describe",
    "load_causal_lm": "describe",
    "resolve_llm": "describe",
    "ClassDescription": "descriptions",
    "DescriptionError": "descriptions",
    "DescriptionSet": "descriptions",
    "load_descriptions": "descriptions",
    "read_label_file": "descriptions",
    "read_pasta": "descriptions",
    "read_published": "descriptions",
    "read_sentences": "descriptions",
    "read_synonyms": "descriptions",
    "DEFAULT_TEXT_ENCODER": "encoders",
    "TextEncoder": "encoders",
    "TextEncoderError": "encoders",
    "build_text_encoder": "encoders",
    "check_text_dim": "encoders",
    "PART_NOUNS": "resources",
    "LabelPrompts": "resources",
    "Template": "resources",
    "list_shipped_descriptions": "resources",
    "load_label_prompts": "resources",
    "load_template": "resources",
    "shipped_descriptions_path": "resources",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "PART_NOUNS",
    "ClassDescription",
    "DescribeReport",
    "Describer",
    "DescriptionError",
    "DescriptionSet",
    "EmbeddingCache",
    "LLMError",
    "LabelPrompts",
    "Template",
    "TextEncoder",
    "TextEncoderError",
    "build_text_encoder",
    "cache_root",
    "check_text_dim",
    "encode_cached",
    "list_shipped_descriptions",
    "load_causal_lm",
    "load_descriptions",
    "load_label_prompts",
    "load_template",
    "read_label_file",
    "read_pasta",
    "read_published",
    "read_sentences",
    "read_synonyms",
    "resolve_llm",
    "shipped_descriptions_path",
]
