"""``llmskel train | eval | predict | ensemble | push``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..cli import add_json_flag, emit, int_at_least, number_in, parse_with_overrides

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        help="experiment YAML, or a built-in config name such as ucla_ctrgcn_cpu (default: the synthetic default)",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="override config keys, e.g. optim.lr=0.05"
    )
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="PATH",
                   help="resume the run's latest checkpoint, or the checkpoint folder PATH")  # fmt: skip
    p.add_argument("--output-dir", help="run folder (default runs/<name>)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run folder that holds a previous run (removes its checkpoints "
                        "and results); without it such a folder is refused")  # fmt: skip
    p.add_argument("--mixed_precision", "--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                   help="overrides train.mixed_precision (default: the launcher's / the config's choice)")  # fmt: skip
    add_json_flag(p)


def train_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="train.py", description="Train an llmskel model (Accelerate).")
    add_train_args(p)
    args = parse_with_overrides(p, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..errors import LlmskelError

    try:
        return cmd_train(args)
    except LlmskelError as e:  # bad input, a busy or occupied run folder: one line, no traceback
        import sys

        print(f"train.py: error: {e}", file=sys.stderr)
        return 1


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_experiment
    from .trainer import training_function

    overrides = list(args.overrides or [])
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.mixed_precision:
        overrides.append(f"train.mixed_precision={args.mixed_precision}")
    cfg = load_experiment(args.config, overrides)
    resume: bool | str | None = None
    if args.resume:
        resume = True if args.resume == "latest" else args.resume
    result = training_function(cfg, resume=resume, overwrite=bool(getattr(args, "overwrite", False)))
    import gc

    gc.collect()  # the run's model and its process group go now, not during interpreter shutdown
    from accelerate import PartialState

    if PartialState().is_main_process:
        text = (
            f"run: {result['run_dir']}\n"
            f"epochs: {result['epochs']}  steps: {result['steps']}\n"
            + (f"test top-1: {100 * result['test_top1']:.2f} %  top-5: {100 * result['test_top5']:.2f} %  "
               f"(best {100 * result['best_top1']:.2f} % at epoch {result['best_epoch']}, chosen on the "
               f"{result.get('best_selected_on', 'test')} split)\n"
               f"model: {result['run_dir']}/best" if "test_top1" in result else "")
            + (f"no test split; last validation top-1: {100 * result['val_top1']:.2f} %\n"
               f"model: {result['run_dir']}/best (chosen on validation), {result['run_dir']}/last"
               if "test_top1" not in result and "val_top1" in result else "")
        )  # fmt: skip
        emit(args, result, text)
    return 0


# ------------------------------------------------------------------------------------------------
def data_config_from_spec(spec: str, protocol: str | None):
    """``synthetic``, ``DATASET:ROOT`` (``nw-ucla:path``, ``cache:path``...) or a YAML config."""
    from ..config import from_dict
    from ..data.config import DataConfig
    from ..errors import ConfigError

    if spec.endswith((".yaml", ".yml")):
        from .config import load_experiment

        cfg = load_experiment(spec).data
    else:
        name, _, root = spec.partition(":")
        d: dict[str, Any] = {"dataset": name}
        if root:
            d["root"] = root
        try:
            cfg = from_dict(DataConfig, d)
        except ConfigError as e:
            raise ConfigError(
                f"--data {spec!r}: {e}. Use DATASET[:ROOT], e.g. nw-ucla:/data/all_sqe"
            ) from None
    if protocol:
        from dataclasses import replace

        cfg = replace(cfg, protocol=protocol)
    return cfg


def load_split(data_cfg, split: str):
    """The protocol's ``train`` or ``test`` split, or ``all`` samples (no validation split here: that
    is carved at training time, see :func:`llmskel.engine.data.build_data`)."""
    from ..data.sources import load_source

    if split not in ("train", "test", "all"):
        raise ValueError(f"load_split: split must be 'train', 'test' or 'all', got {split!r}")
    full, train_idx, test_idx = load_source(data_cfg)
    if split == "all":
        return full
    return full.subset(train_idx if split == "train" else test_idx)


def cmd_eval(args: argparse.Namespace) -> int:
    from ..hub import SkeletonModel
    from .evaluate import default_corruptions, evaluate_dataset, format_eval_table
    from .plots import plot_confusion

    model = SkeletonModel.from_pretrained(args.model)
    data_cfg = data_config_from_spec(args.data, args.protocol)
    ds = load_split(data_cfg, args.split)
    corruptions = {} if args.no_robustness else default_corruptions()
    res = evaluate_dataset(model, ds, corruptions, batch_size=args.batch_size, progress=not args.json)
    rep = res["clean"]
    if args.confusion:
        plot_confusion(
            rep["confusion"], model.classes, args.confusion, title=f"{Path(args.model).name} on {args.data}"
        )
    out = {
        "model": args.model, "data": args.data, "split": args.split, "num_samples": rep["num_samples"],
        "top1": rep["top1"], "top5": rep["top5"], "mean_class_accuracy": rep["mean_class_accuracy"],
        "per_class_accuracy": rep["per_class"], "confusion_matrix": rep["confusion"].tolist(),
        "classes": model.classes, "robustness": res["robustness"],
    }  # fmt: skip
    emit(args, out, format_eval_table(res, model.classes))
    return 0


def missing_joints_of(sample: Any) -> dict[str, Any]:
    """``{"missing_joints": share}`` for a sample read from pose-estimator output (else ``{}``)."""
    extra = sample.extra if isinstance(sample.extra, dict) else {}
    return {"missing_joints": extra["missing_fraction"]} if "missing_fraction" in extra else {}


def cmd_predict(args: argparse.Namespace) -> int:
    from ..data.io import read_any
    from ..hub import SkeletonModel
    from ..prediction import format_predictions

    model = SkeletonModel.from_pretrained(args.model)
    names, preds, extras = [], [], []
    skipped: list[dict[str, Any]] = []  # a folder's unreadable files: warned about, and listed in --json
    for inp in args.inputs:
        samples = read_any(inp, layout=args.layout, skipped=skipped)
        names += [s.source or inp for s in samples]
        extras += [missing_joints_of(s) for s in samples]
        preds += model.predict(samples, top_k=args.top_k)
    # one shape for every command: label/score = the prediction, target = the ground truth (or null)
    results = [{"input": n, **p.to_dict(), **x} for n, p, x in zip(names, preds, extras)]
    emit(
        args, {"model": args.model, "results": results, "skipped": skipped}, format_predictions(names, preds)
    )
    return 0


# ------------------------------------------------------------------------------------------------
def ensemble_scores(files: list[str], weights: list[float] | None, softmax: bool = False) -> dict[str, Any]:
    """Fuse saved score files (``scores/test_scores.npz`` of several streams) by weighted sum."""
    import numpy as np

    from ..errors import CheckpointError
    from .metrics import topk_accuracy

    if weights and len(weights) != len(files):
        raise CheckpointError(f"--weights has {len(weights)} values for {len(files)} score files")
    weights = weights or [1.0] * len(files)
    fused, ref_labels, ref_idx, ref_classes = None, None, None, None
    per = []
    for f, w in zip(files, weights):
        from ..errors import SkeletonFormatError
        from ..trust import check_npz_members

        try:
            check_npz_members(f)  # claimed sizes against the file and the limit, before reading
        except SkeletonFormatError as e:
            raise CheckpointError(str(e)) from None
        try:
            z = np.load(f, allow_pickle=False)
            s, y, idx, classes = z["scores"], z["labels"], z["indices"], list(z["classes"])
        except (OSError, KeyError, ValueError, IndexError, TypeError) as e:  # (a .npy is an array)
            raise CheckpointError(f"{f}: not a score file written by llmskel ({e})") from None
        _check_score_arrays(f, s, y, idx, classes)
        order = np.argsort(idx)  # align by dataset index
        s, y, idx = s[order], y[order], idx[order]
        if ref_labels is None:
            ref_labels, ref_idx, ref_classes = y, idx, classes
        elif not (np.array_equal(idx, ref_idx) and np.array_equal(y, ref_labels) and classes == ref_classes):
            raise CheckpointError(f"{f}: scores are for other samples or classes than {files[0]}")
        if softmax:
            e = np.exp(s - s.max(axis=1, keepdims=True))
            s = e / e.sum(axis=1, keepdims=True)
        per.append({"file": f, "weight": w, "stream": str(z["stream"]) if "stream" in z else "",
                    "top1": topk_accuracy(s, y, 1)})  # fmt: skip
        fused = w * s if fused is None else fused + w * s
    return {"streams": per, "top1": topk_accuracy(fused, ref_labels, 1), "top5": topk_accuracy(fused, ref_labels, 5),
            "num_samples": int(len(ref_labels))}  # fmt: skip


def _check_score_arrays(f: str, s: Any, y: Any, idx: Any, classes: list) -> None:
    """A score file's arrays agree with each other: (N, C) finite scores with C the class count, N
    integer labels in range and N distinct integer sample indices; anything else is named."""
    import numpy as np

    from ..errors import CheckpointError

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{f}: {problem}; not a usable score file")

    if s.ndim != 2 or not np.issubdtype(s.dtype, np.number):
        raise bad(f"'scores' has shape {s.shape} ({s.dtype}), expected numbers of shape (samples, classes)")
    n, c = s.shape
    if n == 0:
        raise bad("'scores' holds no samples")
    if c != len(classes):
        raise bad(f"'scores' has {c} columns but the file names {len(classes)} classes")
    for name, a in (("labels", y), ("indices", idx)):
        if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
            raise bad(
                f"'{name}' has shape {a.shape} ({a.dtype}), expected {n} integers (one per row of 'scores')"
            )
    if not np.isfinite(s).all():
        raise bad(f"'scores' holds {int((~np.isfinite(s)).sum())} NaN or infinite values")
    if y.min() < 0 or y.max() >= c:
        raise bad(f"'labels' range {int(y.min())}..{int(y.max())} is outside the {c} classes")
    if len(np.unique(idx)) != n:
        raise bad(f"'indices' repeats samples ({n - len(np.unique(idx))} duplicates)")


def cmd_ensemble(args: argparse.Namespace) -> int:
    res = ensemble_scores(args.scores, args.weights, softmax=args.softmax)
    lines = [f"{'stream':<12} {'weight':>6} {'top-1':>8}  file"]
    for s in res["streams"]:
        lines.append(f"{s['stream'] or '-':<12} {s['weight']:>6.2f} {100 * s['top1']:>7.2f}%  {s['file']}")
    lines.append(f"{'fused':<12} {'':>6} {100 * res['top1']:>7.2f}%  (top-5 {100 * res['top5']:.2f} %)")
    emit(args, res, "\n".join(lines))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from ..hub import push_model

    url = push_model(args.model, args.repo_id, private=args.private)
    emit(args, {"repo_id": args.repo_id, "url": url}, f"pushed {args.model} to {url}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from an experiment config (single process; use "
                                     "`accelerate launch scripts/train.py` for several)")  # fmt: skip
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model: top-1/top-5, per-class, confusion, robustness")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--data", required=True, help="DATASET[:ROOT] (synthetic, nw-ucla:DIR, utkinect:DIR, cache:DIR, "
                                                 "ntu:DIR, folder:DIR, hf:DIR) or an experiment YAML")  # fmt: skip
    p.add_argument("--protocol", help="split protocol (default: the dataset's standard one)")
    p.add_argument("--split", choices=["test", "train", "all"], default="test")
    p.add_argument("--batch-size", type=int_at_least(1), default=64)
    p.add_argument("--no-robustness", action="store_true", help="skip the corruption tests")
    p.add_argument("--confusion", metavar="PNG", help="write the confusion matrix as a PNG")
    add_json_flag(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify skeleton files with a trained supervised model")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument(
        "inputs", nargs="+", help="skeleton files or folders (any supported format), or synthetic:<action>"
    )
    p.add_argument("--layout", help="layout of inputs that do not say it (npy arrays)")
    p.add_argument("--top-k", type=int_at_least(1), default=3)
    add_json_flag(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "ensemble", help="fuse the score files of several streams and report the fused accuracy"
    )
    p.add_argument("scores", nargs="+", help="scores/test_scores.npz of each run")
    p.add_argument(
        "--weights", nargs="+", type=number_in(-1e6, 1e6), help="one weight per file (default all 1)"
    )
    p.add_argument("--softmax", action="store_true", help="fuse probabilities instead of raw scores")
    add_json_flag(p)
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("push", help="publish a model folder on the Hugging Face Hub")
    p.add_argument("--model", required=True)
    p.add_argument("--repo-id", required=True, help="USER/NAME")
    p.add_argument("--private", action="store_true")
    add_json_flag(p)
    p.set_defaults(func=cmd_push)
