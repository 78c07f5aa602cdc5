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
