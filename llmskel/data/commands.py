"""``llmskel data prepare | export | info | show``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..cli import add_json_flag, emit

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="prepare, export, inspect and render skeleton data")
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    pp = sub.add_parser(
        "prepare",
        help="convert a folder of raw files into a fast cache (parallel, resumable)",
        description="Read every file of SRC in worker processes into a cache folder OUT "
        "(info.json, arrays.npy, samples.jsonl, report.json). Interrupted runs resume where they stopped; "
        "unreadable files are skipped and listed in OUT/report.json.",
    )
    pp.add_argument("--format", required=True, metavar="FORMAT",
                    help="the dataset the raw files belong to (ntu, nw-ucla, utkinect, utd-mhad, penn-action, "
                    "folder, pyskl, ...: any registered dataset; an unknown name lists them)")  # fmt: skip
    pp.add_argument(
        "--src",
        required=True,
        help="folder of raw files (pyskl: the .pkl file; utkinect: folder or label file)",
    )
    pp.add_argument("--out", required=True, help="cache folder to write")
    pp.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: up to 4; 0 = this process)"
    )
    pp.add_argument("--ignore-list", help="file of sample names to skip, one per line")
    pp.add_argument(
        "--shard-size", type=int, default=256, help="files per flushed shard (what an interruption can lose)"
    )
    pp.add_argument(
        "--max-files",
        type=int,
        default=None,
        help="read at most N new files, then stop (the next run goes on)",
    )
    pp.add_argument(
        "--no-denoise", action="store_true", help="NTU: keep bodies as recorded (no length/spread filtering)"
    )
    pp.add_argument("--keep-listed-missing", action="store_true",
                    help="NTU: do not skip the samples the dataset authors list as having missing skeletons")  # fmt: skip
    pp.add_argument("--num-bodies", type=int, default=None, help="bodies kept per sample (NTU default 2)")
    pp.add_argument(
        "--layout", help="layout of folder / pyskl arrays (default: inferred from the joint count)"
    )
    pp.add_argument("--classes", help="comma-separated class names for numeric labels (folder / pyskl)")
    pp.add_argument("--label-file", help="UTKinect: label file inside SRC (default actionLabel.txt)")
    pp.add_argument("--allow-pickle", action="store_true",
                    help="pyskl: allow unpickling the annotation file (runs code stored in it: trusted files only)")  # fmt: skip
    pp.add_argument("--overwrite", action="store_true", help="rebuild OUT from scratch")
    add_json_flag(pp)
    pp.set_defaults(func=cmd_prepare)

    pe = sub.add_parser(
        "export",
        help="export a dataset to Hugging Face Parquet (+ dataset card)",
        description="Write SRC as data/<split>-*.parquet files and a README.md dataset card in OUT; "
        "`datasets.load_dataset(OUT)` then finds the splits.",
    )
    pe.add_argument(
        "--src", required=True, help="any input `llmskel data info` reads (cache, folder, file...)"
    )
    pe.add_argument("--out", required=True, help="export folder")
    pe.add_argument(
        "--dataset",
        help="dataset kind for --protocol (ntu, nw-ucla, utkinect, utd-mhad, penn-action...; default: from the data)",
    )
    pe.add_argument("--protocol", help="split train / test by this protocol (default: one 'train' split)")
    pe.add_argument("--layout", help="layout of arrays that do not name one")
    pe.add_argument("--allow-pickle", action="store_true", help="allow reading a pyskl pickle")
    add_json_flag(pe)
    pe.set_defaults(func=cmd_export)

    pi = sub.add_parser("info", help="summarise a dataset or file: samples, classes, frames, layout")
    pi.add_argument("input", help="file, folder, cache, export folder, or synthetic:<action>")
    pi.add_argument("--layout", help="layout of arrays that do not name one")
    pi.add_argument("--allow-pickle", action="store_true", help="allow reading a pyskl pickle")
    add_json_flag(pi)
    pi.set_defaults(func=cmd_info)

    ps = sub.add_parser("show", help="render one sample as an animated GIF")
    ps.add_argument("input", help="file, folder, cache, or synthetic:<action name>")
    ps.add_argument("--index", type=int, default=0, help="which sample of a multi-sample input")
    ps.add_argument("--out", required=True, help="GIF to write")
    ps.add_argument("--fps", type=int, default=15)
    ps.add_argument("--title", help="title drawn over the animation (default: label and name)")
    ps.add_argument("--layout", help="layout of arrays that do not name one")
    ps.add_argument("--allow-pickle", action="store_true", help="allow reading a pyskl pickle")
    add_json_flag(ps)
    ps.set_defaults(func=cmd_show)


# ------------------------------------------------------------------------------------------


def cmd_prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare_directory

    report = prepare_directory(
        args.src,
        args.out,
        fmt=args.format,
        workers=args.workers,
        shard_size=args.shard_size,
        ignore_list=args.ignore_list,
        max_files=args.max_files,
        denoise=not args.no_denoise,
        num_bodies=args.num_bodies,
        layout=args.layout,
        classes=[c.strip() for c in args.classes.split(",")] if args.classes else None,
        label_file=args.label_file,
        allow_pickle=args.allow_pickle,
        skip_listed_missing=not args.keep_listed_missing,
        overwrite=args.overwrite,
    )
    lines = [
        f"cache: {report['out']} ({'complete' if report.get('complete') else 'incomplete: run again to continue'})",
        f"samples: {report.get('samples')}  files: {report.get('units')}  read now: {report.get('processed_this_run')}"
        f"  already done: {report.get('already_done')}",
        f"errors: {report.get('error_count', 0)}  missing skeletons: {len(report.get('missing_skeletons', []))}"
        f"  ignored: {len(report.get('ignored', []))}",
    ]
    for e in report.get("errors", [])[:10]:
        lines.append(f"  {e['error']}")
    if report.get("error_count", 0) > 10:
        lines.append(f"  ... see {Path(report['out']) / 'report.json'}")
    for s in report.get("skipped_segments", []):
        lines.append(f"  skipped segment {s['segment']}: {s['reason']}")
    emit(args, report, "\n".join(lines))
    return 0


def _load_input(path: str, layout: str | None, allow_pickle: bool):
    """A dataset for ``path``: a cache lazily, anything else through :func:`read_any`."""
    from .cache import CachedSkeletonDataset, is_cache
    from .io import read_any
    from .sample import SkeletonDataset

    if is_cache(path):
        return CachedSkeletonDataset(path)
    if Path(path).is_dir():
        from .hf import hf_splits

        if hf_splits(path):
            from .config import DataConfig
            from .sources import _load_hf

            return _load_hf(DataConfig(dataset="hf", root=path))
    samples = read_any(path, layout=layout, allow_pickle=allow_pickle)
    if not samples:
        raise FileNotFoundError(f"no sample in {path}")
    classes = _classes_of(path, samples)
    name = _name_of(path, samples)
    return SkeletonDataset(samples, classes, samples[0].layout, name=name)


def _classes_of(path: str, samples) -> list[str]:
    from .datasets import known_class_lists

    names = {s.label_name for s in samples if s.label_name}
    for _, known in known_class_lists():
        if (
            names
            and names <= set(known)
            and all(s.label < 0 or known[s.label] == s.label_name for s in samples)
        ):
            return list(known)
    k = max((s.label for s in samples), default=-1) + 1
    by_label = {s.label: s.label_name for s in samples if s.label >= 0}
    return [by_label.get(i) or str(i) for i in range(k)]


def _name_of(path: str, samples) -> str:
    from .datasets import sniff

    if path.startswith("synthetic:"):
        return "synthetic"
    rec = sniff(Path(path).expanduser())
    if rec is not None and not rec.generic:
        return rec.name
    return Path(path).stem


def dataset_summary(ds) -> dict[str, Any]:
    """Counts and statistics shown by ``llmskel data info``."""
    import numpy as np

    if hasattr(ds, "lengths"):
        lengths = np.asarray(ds.lengths)
        first = ds.get(0)
    else:
        lengths = np.array([ds.get(i).num_frames for i in range(len(ds))])
        first = ds.get(0)
    counts = ds.class_counts() if ds.num_classes else np.zeros(0, dtype=np.int64)
    unlabeled = int((ds.labels < 0).sum())
    return {
        "name": ds.name,
        "samples": len(ds),
        "layout": ds.layout,
        "num_bodies": int(first.data.shape[1]),
        "channels": int(first.data.shape[-1]),
        "num_classes": ds.num_classes,
        "classes": list(ds.classes),
        "frames": {
            "min": int(lengths.min()),
            "mean": round(float(lengths.mean()), 2),
            "max": int(lengths.max()),
            "total": int(lengths.sum()),
        },
        "per_class": {c: int(n) for c, n in zip(ds.classes, counts)},
        "unlabeled": unlabeled,
    }


def _default_split(ds) -> dict[str, Any] | None:
    """Train / test counts of a known dataset's default protocol (None for other data, or when the
    samples lack what that protocol needs)."""
    from ..errors import ConfigError
    from .protocols import dataset_kind, default_protocol, split_indices

    kind = dataset_kind(ds)
    if kind == "other":
        return None
    try:
        name = default_protocol(ds, kind)
        tr, te = split_indices(ds, name, kind)
    except ConfigError as e:
        log.info("no default split for %s: %s", ds.name, e)
        return None
    return {"name": name, "train": int(tr.size), "test": int(te.size)}


def cmd_info(args: argparse.Namespace) -> int:
    ds = _load_input(args.input, args.layout, args.allow_pickle)
    info = dataset_summary(ds)
    fr = info["frames"]
    lines = [
        f"{args.input}: {info['samples']} samples, layout {info['layout']}, {info['num_bodies']} bodies, "
        f"{info['channels']} channels",
        f"frames per sample: min {fr['min']}, mean {fr['mean']}, max {fr['max']} (total {fr['total']})",
        f"classes: {info['num_classes']}"
        + (f", unlabeled samples: {info['unlabeled']}" if info["unlabeled"] else ""),
    ]
    missing = _missing_joints(ds)
    if missing:  # pose-estimator output: the share of joints the estimator did not give, per sample
        info["missing_joints"] = missing
        per = ", ".join(f"{n} {100 * f:.1f} %" for n, f in list(missing["per_sample"].items())[:10])
        lines.append(f"missing joints: {100 * missing['mean']:.1f} % on average, filled as absent ({per})")
    split = _default_split(ds)
    if split:
        info["protocol"] = split
        lines.append(f"default protocol {split['name']}: train {split['train']}, test {split['test']}")
    shown = info["per_class"]
    if len(shown) > 20:  # many classes: list those with samples
        shown = {c: n for c, n in shown.items() if n}
        if len(shown) < len(info["per_class"]):
            lines.append(f"  ({len(info['per_class']) - len(shown)} classes without samples not listed)")
    width = max((len(c) for c in shown), default=0)
    lines += [f"  {c:<{width}}  {n}" for c, n in shown.items()]
    emit(args, info, "\n".join(lines))
    return 0


def _missing_joints(ds) -> dict[str, Any] | None:
    """Mean and per-sample share of missing joints of samples read from pose-estimator output."""
    samples = getattr(ds, "samples", None) or []
    per = {
        str(s.extra.get("name") or s.source or i): float(s.extra["missing_fraction"])
        for i, s in enumerate(samples)
        if isinstance(s.extra, dict) and "missing_fraction" in s.extra
    }
    if not per:
        return None
    return {"mean": round(sum(per.values()) / len(per), 4), "per_sample": per}


def cmd_show(args: argparse.Namespace) -> int:
    from .render import render_gif

    ds = _load_input(args.input, args.layout, args.allow_pickle)
    if not -len(ds) <= args.index < len(ds):
        raise KeyError(f"--index {args.index} is out of range: {args.input} has {len(ds)} samples")
    s = ds.get(args.index % len(ds))
    name = s.extra.get("name") or Path(str(s.source or args.input)).name
    title = args.title or (f"{s.label_name} ({name})" if s.label_name else str(name))
    out = render_gif(s, args.out, fps=args.fps, title=title)
    result = {
        "out": str(out),
        "input": args.input,
        "index": args.index,
        "frames": s.num_frames,
        "title": title,
    }
    emit(args, result, f"wrote {out} ({s.num_frames} frames, {title})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .hf import export_hf

    out_p = Path(args.out)
    if out_p.exists() and not out_p.is_dir():
        from ..errors import ConfigError

        raise ConfigError(f"--out {out_p} is a file; the export is a folder: name a new or existing folder")
    ds = _load_input(args.src, args.layout, args.allow_pickle)
    splits = None
    if args.protocol:
        from .protocols import split_indices

        tr, te = split_indices(ds, args.protocol, args.dataset)
        splits = {"train": tr.tolist(), "test": te.tolist()}
    out = export_hf(ds, args.out, splits=splits)
    counts = {k: len(v) for k, v in (splits or {"train": range(len(ds))}).items()}
    result = {
        "out": str(out),
        "samples": len(ds),
        "splits": counts,
        "layout": ds.layout,
        "classes": len(ds.classes),
    }
    emit(args, result, f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
