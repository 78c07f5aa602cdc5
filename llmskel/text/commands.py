"""``llmskel describe`` (descriptions from an LLM) and ``llmskel descriptions`` (check / convert files)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# dataset names -> where their class list lives (for --labels / --classes given as a name)
_CLASS_LISTS = {
    "ntu120": ("llmskel.data.readers.ntu", "NTU120_CLASSES"),
    "ntu": ("llmskel.data.readers.ntu", "NTU120_CLASSES"),
    "ntu60": ("llmskel.data.readers.ntu", "NTU120_CLASSES", 60),
    "nw-ucla": ("llmskel.data.readers.nwucla", "NWUCLA_CLASSES"),
    "utkinect": ("llmskel.data.readers.utkinect", "UTKINECT_CLASSES"),
    "synthetic": ("llmskel.data.synthetic", "ACTION_NAMES"),
}


def class_list(spec: str) -> list[str]:
    """Class names from a label file (one per line, or a JSON list) or a dataset name
    (``ntu120``, ``ntu60``, ``nw-ucla``, ``utkinect``, ``synthetic``)."""
    import importlib

    from .descriptions import read_label_file

    if Path(spec).is_file():
        return read_label_file(spec)
    entry = _CLASS_LISTS.get(spec.lower())
    if entry is None:
        from ..data.datasets import find_dataset, known_class_lists

        rec = find_dataset(spec)
        if rec is not None and rec.classes is not None:
            return list(rec.classes)
        names = sorted(set(_CLASS_LISTS) | {n for n, _ in known_class_lists()})
        raise FileNotFoundError(f"{spec!r} is neither a label file nor a dataset name ({', '.join(names)})")
    names = list(getattr(importlib.import_module(entry[0]), entry[1]))
    return names[: entry[2]] if len(entry) > 2 else names


def _check_file_arg(flag: str, path: str) -> None:
    """A file to write: not an existing folder, and no file where one of its folders should be."""
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; name a file (for example {p / 'descriptions.json'})")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {p}: {parent} is a file, not a folder")
            break


def cmd_describe(args: argparse.Namespace) -> int:
    from ..cli import emit
    from .describe import Describer

    labels = class_list(args.labels)
    _check_file_arg("--out", args.out)  # before the model loads and generates, not after
    if args.cache and not args.no_cache:
        _check_file_arg("--cache", args.cache)
    cache: Any = False if args.no_cache else (args.cache or True)
    describer = Describer(
        args.llm, gguf_file=args.gguf_file, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        sample=args.sample, seed=args.seed, retries=args.retries, cache=cache,
        progress=not args.json and sys.stderr.isatty(), trust_remote_code=args.trust_remote_code,
        api_timeout=args.timeout, content_check=not args.no_content_check,
    )  # fmt: skip
    report = describer.describe(labels)
    out = report.descriptions.save(args.out) if len(report.descriptions) else None
    result = {"out": str(out) if out else None, "labels": len(labels), **report.summary(),
              "cache": str(describer.cache.path) if describer.cache.path else None}  # fmt: skip
    lines = [f"described {len(report.descriptions)} of {len(labels)} classes -> {out or '(nothing written)'}",
             f"answers generated: {report.generated}, from cache: {report.from_cache}, rejected: {report.rejected}"]  # fmt: skip
    for label, problems in report.failed.items():
        lines.append(f"FAILED {label!r}: " + "; ".join(f"{p}: {why}" for p, why in problems.items()))
    for label, problems in report.warnings.items():
        lines.append(f"warning {label!r}: " + "; ".join(f"{p}: {why}" for p, why in problems.items()))
    emit(args, result, "\n".join(lines))
    return 1 if report.failed else 0


def _load(args: argparse.Namespace):
    from .descriptions import load_descriptions, read_published

    classes = class_list(args.classes) if args.classes else None
    if args.synonyms or args.sentences:
        return read_published(
            args.source, args.synonyms, args.sentences, classes, allow_missing=args.allow_missing
        )
    return load_descriptions(args.source, classes, allow_missing=args.allow_missing)


def cmd_check(args: argparse.Namespace) -> int:
    from ..cli import emit

    ds = _load(args)
    variants = {
        p: sum(len(d.parts[p]) for d in ds.classes.values()) for p in next(iter(ds.classes.values())).parts
    }
    result = {"source": args.source, "classes": len(ds), "filled_from_sentence": ds.filled, "header": ds.header,
              "part_variants": variants,
              "with_synonyms": sum(bool(d.synonyms) for d in ds.classes.values()),
              "with_sentence": sum(bool(d.sentences) for d in ds.classes.values())}  # fmt: skip
    text = f"{args.source}: {len(ds)} classes, every part described"
    if ds.filled:
        text += f"; parts filled from the sentence: {ds.filled}"
    from .content import check_set

    rejected = check_set(ds)
    result["content_rejected"] = rejected
    if rejected:
        text += f"\ncontent check: {len(rejected)} of {len(ds)} classes have unusable part descriptions"
        for label, problems in rejected.items():
            text += f"\nREJECTED {label!r}: " + "; ".join(f"{p}: {why}" for p, why in problems.items())
    else:
        text += "; content check passed"
    emit(args, result, text)
    return 1 if rejected else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..cli import emit
    from .descriptions import make_header

    ds = _load(args)
    ds.header = make_header("llmskel descriptions convert", converted_from=[str(p) for p in
                            (args.source, args.synonyms, args.sentences) if p], filled_from_sentence=ds.filled or None,
                            original=ds.header)  # fmt: skip
    out = ds.save(args.out)
    emit(args, {"out": str(out), "classes": len(ds), "filled_from_sentence": ds.filled},
         f"wrote {len(ds)} classes to {out}")  # fmt: skip
    return 0


def register(sub) -> None:
    from ..cli import add_json_flag

    p = sub.add_parser("describe", help="write per-part action descriptions with a causal LM (any HF model)")
    p.add_argument("--labels", required=True, help="label file (one per line or a JSON list) or a dataset name "
                                                   "(ntu120, ntu60, nw-ucla, utkinect, synthetic)")  # fmt: skip
    p.add_argument("--llm", required=True, help="causal LM: folder, Hub id, .gguf file or SmolLM2-135M-Instruct; "
                   "or an OpenAI-compatible chat API: openai:URL[#MODEL] with URL the API base (requests go to "
                   "URL/chat/completions; key from LLMSKEL_LLM_API_KEY or OPENAI_API_KEY)")  # fmt: skip
    p.add_argument("--out", required=True, help="description file to write (JSON)")
    p.add_argument("--gguf-file", help="GGUF file name inside the --llm folder / repository")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the --llm model's own Python code to run (only for a source you trust)",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--sample", action="store_true", help="sample (with --seed) instead of greedy decoding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--retries", type=int, default=2, help="new attempts for rejected answers (sampled, reworded)"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per chat API request (openai:)")
    p.add_argument("--no-content-check", action="store_true",
                   help="accept part descriptions that negate or repeat the label (not recommended)")  # fmt: skip
    p.add_argument("--cache", help="answer cache file (default: $LLMSKEL_CACHE/describe/<model>.json)")
    p.add_argument("--no-cache", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser(
        "descriptions", help="check or convert description files (ours or the published formats)"
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, help_ in (("check", cmd_check, "load and check a description file against a class list"),
                              ("convert", cmd_convert, "convert published files to llmskel's JSON format")):  # fmt: skip
        q = actions.add_parser(name, help=help_)
        q.add_argument("source", help="JSON file, pasta file, folder of published files or a shipped name")
        q.add_argument("--classes", help="label file or dataset name to check against")
        q.add_argument("--synonyms", help="published synonym file to add (label,syn1, syn2, ...)")
        q.add_argument("--sentences", help="published sentence file to add (label,paragraph)")
        q.add_argument("--allow-missing", action="store_true", help="fill missing parts from the sentence")
        if name == "convert":
            q.add_argument("--out", required=True)
        add_json_flag(q)
        q.set_defaults(func=func)
