"""``llmskel zeroshot`` and ``llmskel fewshot``: classify skeleton files against new classes.

    llmskel zeroshot --model DIR_OR_HUB_ID --labels "wave; sit down; kick something" INPUT...
    llmskel fewshot --model DIR --support DIR_OR_CSV --query INPUT... [--text-fusion 0.3]

Inputs are anything :func:`llmskel.data.io.read_any` reads (a file, a folder, ``synthetic:<action>``);
samples in another layout are converted to the model's when a conversion exists, else the error
names both layouts. ``--json`` prints one JSON object: ``{"results": [{"input", "label", "score",
"top_k": [{"label", "score"}, ...], "target"}, ...], "skipped": [...]}``: :class:`llmskel.prediction.Prediction`
(``label`` is the answer, ``target`` the ground truth when the input carries one); ``skipped`` lists
the files of an input folder that could not be read (each also a warning on stderr).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..cli import add_json_flag, emit, int_at_least, number_in
from ..engine.commands import missing_joints_of
from ..prediction import format_predictions


def _read_inputs(
    paths: list[str], layout: str | None = None, skipped: list[dict[str, Any]] | None = None
) -> tuple[list[Any], list[str]]:
    """Samples and their names; a folder's unreadable files are warned about and appended to
    ``skipped`` (the ``--json`` outputs list them)."""
    from ..data.io import read_any

    samples, names = [], []
    for p in paths:
        got = read_any(p, layout, skipped=skipped)
        if len(got) == 1:
            samples.append(got[0])
            names.append(p)
            continue
        # several samples (a folder, a cache, a recording cut into segments): name each by its file
        # and, where one file holds several, its segment or record name
        mine = [_sample_name(s, p, i) for i, s in enumerate(got)]
        seen: dict[str, int] = {}
        for n in mine:
            seen[n] = seen.get(n, 0) + 1
        counter: dict[str, int] = {}
        for s, n in zip(got, mine):
            if seen[n] > 1:
                counter[n] = counter.get(n, 0) + 1
                n = f"{n}[{counter[n] - 1}]"
            samples.append(s)
            names.append(n)
    if not samples:
        raise FileNotFoundError(f"no skeleton samples in {', '.join(paths)}")
    return samples, names


def _sample_name(s: Any, given: str, i: int) -> str:
    """The file a sample came from (``source``, segment suffix included), else its record name."""
    if s.source:
        return str(s.source)
    name = s.extra.get("name") if isinstance(s.extra, dict) else None
    return f"{given}/{name}" if name else f"{given}[{i}]"


def _labels_arg(text: str) -> list[str]:
    """``--labels`` takes "a; b; c" or @FILE (one label per line, or a JSON list)."""
    from .zero_shot_text import check_labels, split_labels

    if text.startswith("@"):
        from ..text.descriptions import read_label_file

        return check_labels(read_label_file(text[1:]), f"label file {text[1:]}")
    return check_labels(split_labels(text), "--labels")


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from ..hub import SkeletonModel

    labels = _labels_arg(args.labels)
    if len(labels) < 2:
        from .zero_shot_text import LabelError

        raise LabelError(
            f"--labels: one label ({labels[0]!r}) ranks first with score 1.0 whatever the input; "
            "give two labels or more"
        )
    model = SkeletonModel.from_pretrained(args.model)
    skipped: list[dict[str, Any]] = []
    samples, names = _read_inputs(args.inputs, skipped=skipped)
    t0 = time.perf_counter()
    preds = model.classify(samples, labels, prompts=args.prompts, descriptions=args.descriptions,
                           top_k=args.top_k)  # fmt: skip
    result = {
        "model": args.model, "num_labels": len(labels), "seconds": time.perf_counter() - t0,
        "results": [{"input": n, **p.to_dict(), **missing_joints_of(s)} for n, p, s in zip(names, preds, samples)],
        "skipped": skipped,
    }  # fmt: skip
    emit(args, result, format_predictions(names, preds))
    return 0


def cmd_fewshot(args: argparse.Namespace) -> int:
    from ..hub import SkeletonModel
    from .few_shot import FewShotClassifier, load_support

    support, support_labels = load_support(args.support)  # before the model: a bad set fails fast
    model = SkeletonModel.from_pretrained(args.model)
    clf = FewShotClassifier(model, support, support_labels, text_fusion=args.text_fusion,
                            finetune_steps=args.finetune_steps)  # fmt: skip
    skipped: list[dict[str, Any]] = []
    samples, names = _read_inputs(args.query, skipped=skipped)
    preds = clf.predict(samples, top_k=args.top_k)
    counts = {c: support_labels.count(c) for c in clf.classes}
    result = {
        "model": args.model, "classes": clf.classes, "support_per_class": counts, "text_fusion": args.text_fusion,
        "results": [{"input": n, **p.to_dict(), **missing_joints_of(s)} for n, p, s in zip(names, preds, samples)],
        "skipped": skipped,
    }  # fmt: skip
    emit(args, result, format_predictions(names, preds))
    return 0


def register(sub) -> None:
    p = sub.add_parser("zeroshot", help="classify skeletons against free-text labels (zero-shot)")
    p.add_argument(
        "--model", required=True, help="model folder or Hub id (trained with method zeroshot or gap)"
    )
    p.add_argument("--labels", required=True, help='labels separated by ";" ("wave; sit down"), or @FILE')
    p.add_argument(
        "--prompts",
        default=None,
        help="prompt templates file (.txt, one per line with a {label}, {label_s} or {label_ing} slot)",
    )
    p.add_argument("--descriptions", default=None, help="description file for the labels (JSON or published)")
    p.add_argument("--top-k", type=int_at_least(1), default=5)
    p.add_argument("inputs", nargs="+", help="skeleton files or folders (any format llmskel reads)")
    add_json_flag(p)
    p.set_defaults(func=cmd_zeroshot)

    p = sub.add_parser("fewshot", help="classify skeletons from a few labelled examples per class")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument(
        "--support", required=True, help="folder with one subfolder per class, or a path,label CSV"
    )
    p.add_argument("--query", required=True, nargs="+", help="skeleton files or folders to classify")
    p.add_argument(
        "--text-fusion",
        type=number_in(0, 1),
        default=0.0,
        help="weight of the class-name text prototypes (0-1)",
    )
    p.add_argument(
        "--finetune-steps", type=int_at_least(0), default=0, help="fit a linear head on the support set"
    )
    p.add_argument("--top-k", type=int_at_least(1), default=5)
    add_json_flag(p)
    p.set_defaults(func=cmd_fewshot)
