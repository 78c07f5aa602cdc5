"""``llmskel demo``: the embedded default end to end, with no download and no GPU.

It trains the default experiment (CTR-GCN-small on the procedural synthetic action set, see
:mod:`llmskel.data.synthetic`), loads the saved model folder back the way a user would
(``SkeletonModel.from_pretrained``), and classifies recordings of *new* subjects that neither the
training nor the test split contained (other bodies, speeds and camera views).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..cli import add_json_flag, emit

# subjects 1..num_subjects are in the dataset; the demo's new people come after them
NEW_SUBJECTS = (101, 102)
DEMO_DEFAULTS = ("data.num_bodies=1",)


def classify_new_subjects(model_dir: str | Path, subjects=NEW_SUBJECTS, seed: int = 7) -> dict[str, Any]:
    """Generate one recording per class for each new subject and classify them with the saved model."""
    from ..data.synthetic import generate_sample
    from ..hub import SkeletonModel

    model = SkeletonModel.from_pretrained(str(model_dir))
    samples = [
        generate_sample(name, subject=s, take=t, seed=seed, layout=model.layout)
        for s in subjects
        for t, name in enumerate(model.classes)
    ]
    preds = model.predict(samples, top_k=3)
    # the Prediction shape: label / score = the answer, target = the true class
    rows = [{"subject": s.subject, **p.to_dict()} for s, p in zip(samples, preds)]
    correct = sum(r["label"] == r["target"] for r in rows)
    return {"num_new": len(rows), "new_subject_top1": correct / max(len(rows), 1), "predictions": rows}


def cmd_demo(args: argparse.Namespace) -> int:
    from .config import load_experiment
    from .trainer import training_function

    # the synthetic recordings have one actor: keep one body slot instead of the default two,
    # which halves the compute (user overrides come after and win)
    overrides = [f"output_dir={args.output_dir}", *DEMO_DEFAULTS, *(args.overrides or [])]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    cfg = load_experiment(None, overrides)
    t0 = time.perf_counter()
    result = training_function(cfg)
    train_s = time.perf_counter() - t0
    model_dir = Path(result["run_dir"]) / "best"
    new = classify_new_subjects(model_dir)
    out = {
        "run_dir": str(result["run_dir"]),
        "model": str(model_dir),
        "train_seconds": round(train_s, 1),
        "test_top1": result.get("test_top1"),
        "test_top5": result.get("test_top5"),
        **new,
    }
    shown = new["predictions"][:: max(len(new["predictions"]) // 6, 1)][:6]
    lines = [
        f"trained {cfg.model.name} on the synthetic set ({cfg.data.synthetic.num_classes} classes)"
        f" in {train_s:.0f} s: test top-1 {100 * out['test_top1']:.1f} %, top-5 {100 * out['test_top5']:.1f} %",
        f"model folder: {model_dir}  (SkeletonModel.from_pretrained, llmskel predict/eval --model)",
        f"new subjects {', '.join(map(str, NEW_SUBJECTS))} (never seen in training or test): "
        f"{100 * new['new_subject_top1']:.1f} % of {new['num_new']} recordings correct, e.g.",
        *[f"  subject {r['subject']:>3}  true: {r['target']:<24} predicted: {r['label']:<24} {r['score']:.2f}"
          for r in shown],
        f"plots and per-class accuracy: {result['run_dir']}/curves.png, confusion_matrix.png, per_class_accuracy.csv",
    ]  # fmt: skip
    emit(args, out, "\n".join(lines))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train the embedded default (synthetic actions, CPU, a few minutes) and classify new subjects",
    )
    p.add_argument("--output-dir", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=0, help="epochs (default: the default config's)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. model.name=stgcn_tiny"
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_demo)
