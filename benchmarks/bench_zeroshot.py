"""Zero-shot and few-shot on real data, and the zero-shot latency; one mode per command, one line each.

    python benchmarks/bench_zeroshot.py ucla-folds [--folds 0,1,2,3,4] [--epochs 20] [--out runs/bench_zeroshot]
        NW-UCLA, 2 held-out classes per fold (split nw-ucla_8_2, configs/ucla_zeroshot.yaml): trains
        one model per fold, then scores the unseen classes with the full prompt ensemble (label
        prompts, synonyms, sentence, part descriptions) and with label prompts only:
        bench_zeroshot_ucla: folds=5 zsl_top1_mean=... zsl_top1_std=... label_only_top1_mean=...
            chance=0.5 gzsl_h_mean=... gzsl_oracle_h_mean=... gzsl_val_h_mean=...
        (gzsl_val: calibration chosen on held-out seen samples, no test label; oracle: picked on test)
    python benchmarks/bench_zeroshot.py llm-folds [--folds 0,1] [--llm-epochs 3] [--out runs/bench_zeroshot]
        the LLM recognizer on labels it never trained on: per fold, SmolLM2 + LoRA (features mode)
        reads the fold's zero-shot encoder (trained first when missing; it never saw the unseen
        classes), trains on the seen classes only, then answers the unseen test samples constrained
        to the 2 unseen names (ZSL) and all test samples over the 10 names (GZSL), beside the
        zero-shot method's figures for the same fold and encoder; GZSL also with the calibration
        chosen on the run's held-out seen validation samples (``--llm-score constrained`` to score
        with decoding restricted to the labels):
        bench_llm_unseen: folds=... llm_zsl_top1_mean=... zeroshot_zsl_top1_mean=... chance=0.5 ...
    python benchmarks/bench_zeroshot.py utkinect [--model runs/bench_zeroshot/fold0/last]
        the NW-UCLA model classifies UTKinect's 199 segments zero-shot against its 10 class names:
        bench_zeroshot_utkinect: top1=... top5=... label_only_top1=... chance=0.1 ...
    python benchmarks/bench_zeroshot.py latency [--model DIR] [--labels 100] [--threads 1]
        one sequence against 100 labels, text prototypes cached: median ms of classify()
    python benchmarks/bench_zeroshot.py fewshot [--model DIR] [--dataset utkinect] [--episodes 600] [--fusion 0.3]
        [--finetune-steps 0]
        5-way 1-shot and 5-shot episodes over every sample of ``--dataset`` (utkinect, utd-mhad,
        nw-ucla, penn-action; e.g. a multi-dataset model that never saw it:
        --model runs/openvocab_lodo_utdmhad/best --dataset utd-mhad), 95 % CI, with and without
        text fusion of the class names

Without ``--model`` the later modes use fold 0 of ``ucla-folds`` (trained first when missing).
``--threads`` sets torch's threads (default 1, the shared-machine setting).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def train_fold(fold: int, out: Path, epochs: int | None, extra: list[str]) -> Path:
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    run = out / f"fold{fold}"
    if (run / "last" / "model.safetensors").is_file() and (run / "metrics.json").is_file():
        return run
    over = [f"zeroshot.fold={fold}", f"output_dir={run}", "train.progress=false",
            f"data.root={DATA / 'nw_ucla' / 'all_sqe'}", *extra]  # fmt: skip
    if epochs:
        over.append(f"train.epochs={epochs}")
    cfg = load_experiment(str(ROOT / "configs" / "ucla_zeroshot.yaml"), over)
    t0 = time.perf_counter()
    training_function(cfg)
    (run / "train_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return run


def unseen_scores(run: Path, sources: tuple[str, ...]) -> float:
    """ZSL top-1 of a fold's model on its unseen test samples, prototypes from ``sources``."""
    from llmskel.engine.config import load_experiment
    from llmskel.engine.data import build_data
    from llmskel.hub import SkeletonModel
    from llmskel.methods.base import get_method
    from llmskel.methods.zero_shot_text import classify

    cfg = load_experiment(str(run / "config.yaml"))
    method = get_method("zeroshot")(cfg, build_data(cfg.data, seed=cfg.seed))
    ds = method.bundle.test.dataset
    samples = [ds.get(i) for i in range(len(ds))]
    model = SkeletonModel.from_pretrained(run / "last")
    unseen = method.unseen
    if sources == ("label",):
        sim = classify(model, samples, unseen, return_scores=True, prompts=list(model.config.text["zeroshot"]
                                                                                  ["label_prompts"]["prompts"]))  # fmt: skip
    else:
        sim = classify(model, samples, unseen, descriptions=method.descriptions, return_scores=True)
    y = np.array([unseen.index(s.label_name) for s in samples])
    return float((sim.argmax(1) == y).mean())


def mode_ucla_folds(args) -> str:
    folds = [int(f) for f in args.folds.split(",")]
    rows = []
    for k in folds:
        run = train_fold(k, Path(args.out), args.epochs, args.override)
        m = json.loads((run / "metrics.json").read_text())
        label_only = unseen_scores(run, ("label",))
        secs = (
            float((run / "train_seconds.txt").read_text())
            if (run / "train_seconds.txt").is_file()
            else float("nan")
        )
        rows.append(
            (m["zsl_top1"], label_only, m["gzsl_h"], m["gzsl_oracle_h"], m["gzsl_oracle_calibration"], secs,
             m.get("gzsl_val_h", float("nan")))
        )  # fmt: skip
        print(f"  fold {k}: unseen {m['unseen_classes']} zsl_top1={m['zsl_top1']:.4f} label_only={label_only:.4f} "
              f"gzsl seen={m['gzsl_seen']:.4f} unseen={m['gzsl_unseen']:.4f} h={m['gzsl_h']:.4f} "
              f"oracle_h={m['gzsl_oracle_h']:.4f}@{m['gzsl_oracle_calibration']:.3f} "
              f"val_h={m.get('gzsl_val_h', float('nan')):.4f}@{m.get('gzsl_val_calibration', float('nan')):.3f} "
              f"train_s={secs:.0f}",
              file=sys.stderr)  # fmt: skip
    a = np.array(rows)
    return (f"bench_zeroshot_ucla: folds={len(folds)} zsl_top1_mean={a[:, 0].mean():.4f} "
            f"zsl_top1_std={a[:, 0].std(ddof=1) if len(a) > 1 else 0.0:.4f} zsl_top1_min={a[:, 0].min():.4f} "
            f"zsl_top1_max={a[:, 0].max():.4f} label_only_top1_mean={a[:, 1].mean():.4f} chance=0.5 "
            f"gzsl_h_mean={a[:, 2].mean():.4f} gzsl_oracle_h_mean={a[:, 3].mean():.4f} "
            f"gzsl_val_h_mean={a[:, 6].mean():.4f} "
            f"train_s_per_fold={np.nanmean(a[:, 5]):.0f}")  # fmt: skip


def llm_fold(run: Path, epochs: int, extra: list[str], score: str | None = None) -> dict[str, float]:
    """Train the LLM recognizer on a fold's seen classes over its zero-shot encoder; score the unseen."""
    from llmskel.engine.config import load_experiment
    from llmskel.engine.data import build_data
    from llmskel.engine.trainer import training_function
    from llmskel.methods.base import get_method
    from llmskel.models.llm_recognizer import SkeletonLlm

    zcfg = load_experiment(str(run / "config.yaml"))
    zs = get_method("zeroshot")(zcfg, build_data(zcfg.data, seed=zcfg.seed))
    unseen = list(zs.unseen)
    seen = [c for c in zs.bundle.classes if c not in unseen]
    out = run / "llm"
    if not (out / "last" / "adapter" / "adapter_model.safetensors").is_file():
        over = ["method=llm", "llm.code_input=features", f"llm.skeleton_encoder={run / 'last'}",
                "llm.system_prompt=You recognise human actions from skeleton motion features.",
                f"data.train_classes=[{', '.join(seen)}]", f"output_dir={out}", f"train.epochs={epochs}",
                "train.batch_size=8", "train.eval_batch_size=16", f"train.eval_every={epochs}", "train.progress=false",
                "optim.name=adamw", "optim.lr=0.001", "optim.weight_decay=0.0", "optim.warmup_epochs=0.5",
                "optim.min_lr=0.0", "optim.clip_grad_norm=1.0", *extra]  # fmt: skip
        t0 = time.perf_counter()
        training_function(load_experiment(str(run / "config.yaml"), over))
        (out / "train_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    from llmskel.engine.commands import load_split
    from llmskel.methods.zero_shot import calibration_from_seen, gzsl_sweep

    model = SkeletonLlm.from_pretrained(out / "last")
    if score:
        model.cfg.score = score
    ds = load_split(zcfg.data, "test")  # the whole test split: the zero-shot bundle keeps only the unseen
    samples = [ds.get(i) for i in range(len(ds))]
    names = [s.label_name for s in samples]
    is_unseen = np.array([n in unseen for n in names])
    unseen_samples = [s for s, u in zip(samples, is_unseen) if u]
    p = model.predict_proba(unseen_samples, labels=unseen)
    zsl = float((p.argmax(1) == np.array([unseen.index(s.label_name) for s in unseen_samples])).mean())
    every = list(zs.bundle.classes)
    seen_mask = np.array([c not in unseen for c in every])
    logp = np.log(np.maximum(model.predict_proba(samples, labels=every), 1e-30))
    # calibration from held-out SEEN samples only: the validation split that the LLM run carved from
    # its training data (data.val_fraction) and never trained on; the zero-shot method's rule, on the
    # LLM's label log-probabilities
    lcfg = load_experiment(str(out / "config.yaml"))
    held = build_data(lcfg.data, seed=lcfg.seed)
    if held.val_idx is None or not len(held.val_idx):
        raise SystemExit(f"{out}: the LLM run has no validation split (data.val_fraction) to calibrate on")
    val = [s for s in (held.full.get(int(i)) for i in held.val_idx) if s.label_name not in unseen]
    vp = np.log(np.maximum(model.predict_proba(val, labels=every), 1e-30))
    gamma = calibration_from_seen(vp, np.array([every.index(s.label_name) for s in val]), seen_mask)
    g = gzsl_sweep(logp, np.array([every.index(n) for n in names]), seen_mask, val_calibration=gamma)
    acc_s, acc_u, h = g["gzsl_seen"], g["gzsl_unseen"], g["gzsl_h"]  # at gamma 0 (uncalibrated)
    m = json.loads((run / "metrics.json").read_text())
    return {"unseen": unseen, "llm_zsl": zsl, "llm_gzsl_seen": acc_s, "llm_gzsl_unseen": acc_u, "llm_gzsl_h": h,
            "llm_gzsl_val_seen": g["gzsl_val_seen"], "llm_gzsl_val_unseen": g["gzsl_val_unseen"],
            "llm_gzsl_val_h": g["gzsl_val_h"], "llm_gzsl_oracle_h": g["gzsl_oracle_h"], "n_val": len(val),
            "zs_zsl": m["zsl_top1"], "zs_gzsl_h": m["gzsl_h"], "zs_gzsl_val_h": m.get("gzsl_val_h", float("nan")),
            "n_unseen": int(is_unseen.sum()),
            "train_s": float((out / "train_seconds.txt").read_text()) if (out / "train_seconds.txt").is_file()
            else float("nan")}  # fmt: skip


def mode_llm_folds(args) -> str:
    folds = [int(f) for f in args.folds.split(",")]
    rows = []
    for k in folds:
        run = train_fold(k, Path(args.out), args.epochs, args.override)
        r = llm_fold(run, args.llm_epochs, args.llm_override, args.llm_score)
        rows.append(r)
        print(f"  fold {k}: unseen {r['unseen']} ({r['n_unseen']} test samples): LLM zsl_top1={r['llm_zsl']:.4f} "
              f"gzsl seen={r['llm_gzsl_seen']:.4f} unseen={r['llm_gzsl_unseen']:.4f} h={r['llm_gzsl_h']:.4f} "
              f"val-calibrated ({r['n_val']} seen val samples) seen={r['llm_gzsl_val_seen']:.4f} "
              f"unseen={r['llm_gzsl_val_unseen']:.4f} h={r['llm_gzsl_val_h']:.4f} oracle_h={r['llm_gzsl_oracle_h']:.4f} | "
              f"zero-shot method zsl_top1={r['zs_zsl']:.4f} gzsl_h={r['zs_gzsl_h']:.4f} "
              f"val_h={r['zs_gzsl_val_h']:.4f} | llm train_s={r['train_s']:.0f}", file=sys.stderr)  # fmt: skip

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    return (f"bench_llm_unseen: folds={len(folds)} llm_zsl_top1_mean={mean('llm_zsl'):.4f} "
            f"zeroshot_zsl_top1_mean={mean('zs_zsl'):.4f} chance=0.5 llm_gzsl_h_mean={mean('llm_gzsl_h'):.4f} "
            f"llm_gzsl_unseen_mean={mean('llm_gzsl_unseen'):.4f} llm_gzsl_val_h_mean={mean('llm_gzsl_val_h'):.4f} "
            f"llm_gzsl_oracle_h_mean={mean('llm_gzsl_oracle_h'):.4f} zeroshot_gzsl_h_mean={mean('zs_gzsl_h'):.4f} "
            f"zeroshot_gzsl_val_h_mean={mean('zs_gzsl_val_h'):.4f} llm_score={args.llm_score or 'model'} "
            f"llm_epochs={args.llm_epochs} llm_train_s_per_fold={mean('train_s'):.0f}")  # fmt: skip


def _model(args):
    from llmskel.hub import SkeletonModel

    path = (
        Path(args.model) if args.model else train_fold(0, Path(args.out), args.epochs, args.override) / "last"
    )
    return SkeletonModel.from_pretrained(path), path


DATASET_ROOTS = {"utkinect": "utkinect", "utd-mhad": "utd_mhad", "nw-ucla": "nw_ucla/all_sqe",
                 "penn-action": "penn_action"}  # fmt: skip


def _dataset(name: str = "utkinect"):
    """Every sample of a real dataset (protocol none), its labels and class names."""
    from llmskel.data.config import DataConfig
    from llmskel.data.sources import load_source

    if name not in DATASET_ROOTS:
        raise SystemExit(f"bench_zeroshot: --dataset must be one of {', '.join(DATASET_ROOTS)}, got {name!r}")
    ds, _, _ = load_source(DataConfig(dataset=name, root=str(DATA / DATASET_ROOTS[name]), protocol="none"))
    samples = [ds.get(i) for i in range(len(ds))]
    return samples, np.array([s.label for s in samples]), list(ds.classes)


def _utkinect():
    return _dataset("utkinect")


def mode_utkinect(args) -> str:
    from llmskel.methods.zero_shot_text import classify
    from llmskel.text.descriptions import load_descriptions

    model, path = _model(args)
    samples, y, classes = _utkinect()
    full = classify(model, samples, classes, descriptions=load_descriptions("utkinect"), return_scores=True)
    label = classify(model, samples, classes, return_scores=True)
    top5 = (np.argsort(-full, 1)[:, :5] == y[:, None]).any(1).mean()
    return (f"bench_zeroshot_utkinect: top1={(full.argmax(1) == y).mean():.4f} top5={top5:.4f} "
            f"label_only_top1={(label.argmax(1) == y).mean():.4f} chance=0.1 samples={len(y)} "
            f"trained_on=nw-ucla seen={len(model.classes)} model={path}")  # fmt: skip


def mode_latency(args) -> str:
    from llmskel.data.synthetic import ACTION_NAMES

    model, path = _model(args)
    if args.arch:  # same text side and heads on another encoder (random weights: speed only)
        import copy

        from llmskel.hub import SkeletonModel
        from llmskel.models import get_model_config

        cfg = copy.deepcopy(model.config)
        keep = {
            k: cfg.model[k] for k in ("layout", "in_channels", "num_classes", "num_bodies") if k in cfg.model
        }
        cfg.model = {**get_model_config(args.arch), **keep}
        model = SkeletonModel(cfg).eval()
    from llmskel.data.sample import SkeletonSample

    rng = np.random.default_rng(0)
    x = [SkeletonSample(rng.normal(size=(64, 1, 20, 3)).astype(np.float32) * 0.3, model.layout)] \
        if model.layout == "kinect20" else None  # fmt: skip
    if x is None:
        from llmskel.data.synthetic import generate_sample

        x = [generate_sample(ACTION_NAMES[0], layout=model.layout)]
    labels = [f"{ACTION_NAMES[i % len(ACTION_NAMES)]} variant {i}" for i in range(args.labels)]
    t0 = time.perf_counter()
    model.classify(x, labels)  # encodes and caches the label set
    cold = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.classify(x, labels)
        times.append(time.perf_counter() - t0)
    med = 1000 * statistics.median(times)
    return (f"bench_zeroshot_latency: ms_per_call_median={med:.2f} ms_p90={1000 * np.quantile(times, 0.9):.2f} "
            f"labels={args.labels} sequences=1 frames={x[0].data.shape[0]} first_call_s={cold:.2f} "
            f"threads={torch.get_num_threads()} model={args.arch or model.config.model.get('arch', '?')} "
            f"params={sum(p.numel() for p in model.parameters())} target_ms=20")  # fmt: skip


def mode_fewshot(args) -> str:
    from llmskel.methods.few_shot import embed_samples, run_episodes, text_prototypes

    model, path = _model(args)
    samples, y, classes = _dataset(args.dataset)
    emb = embed_samples(model, samples, space=args.space)
    tp = text_prototypes(model, classes)
    parts = []
    for k in (1, 5):
        for w in (0.0, args.fusion) if args.space != "feature" else (0.0,):  # fusion needs the text space
            r = run_episodes(emb, y, n_way=5, k_shot=k, n_query=args.queries, episodes=args.episodes, seed=0,
                             text_protos=tp, text_fusion=w, finetune_steps=args.finetune_steps)  # fmt: skip
            tag = f"{k}shot" + (f"_fusion{w:g}" if w else "")
            parts.append(f"{tag}={r['accuracy']:.4f}+-{r['ci95']:.4f}")
    trained_on = (model.config.training or {}).get("dataset", "?")
    return (f"bench_zeroshot_fewshot: dataset={args.dataset} way=5 {' '.join(parts)} episodes={args.episodes} "
            f"queries_per_class<={args.queries} chance=0.2 samples={len(y)} classes={len(classes)} space={args.space} "
            f"finetune_steps={args.finetune_steps} "
            f"encoder_from={trained_on} model={path}")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["ucla-folds", "llm-folds", "utkinect", "latency", "fewshot"])
    p.add_argument("--llm-epochs", type=int, default=3, help="llm-folds: epochs of the LLM recognizer")
    p.add_argument("--llm-score", choices=["sum", "mean", "constrained"], default=None,
                   help="llm-folds: the LLM's scoring rule (default: the trained model's)")  # fmt: skip
    p.add_argument("--llm-override", action="append", default=[], help="llm-folds: extra LLM config override")
    p.add_argument("--folds", default="0,1,2,3,4")
    p.add_argument(
        "--epochs", type=int, default=None, help="override train.epochs of configs/ucla_zeroshot.yaml"
    )
    p.add_argument("--override", action="append", default=[], help="extra config override (key=value)")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_zeroshot"))
    p.add_argument("--model", default=None)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument(
        "--arch", default=None, help="latency: time this registered encoder instead (ctrgcn_small...)"
    )
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--fusion", type=float, default=0.3)
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        help="fewshot: fit a linear head on each episode's support set (llmskel fewshot --finetune-steps)",
    )
    p.add_argument("--dataset", default="utkinect", help="fewshot: the dataset the episodes are drawn from")
    p.add_argument("--space", default="auto", choices=["auto", "text", "feature"],
                   help="fewshot: embeddings in the text space (auto: when the model has one) or the encoder feature")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.mode != "latency" and not DATA.is_dir():
        print(f"bench_zeroshot: skipped, no real data at {DATA}", file=sys.stderr)
        return 0
    fn = {"ucla-folds": mode_ucla_folds, "llm-folds": mode_llm_folds, "utkinect": mode_utkinect, "latency": mode_latency,
          "fewshot": mode_fewshot}[args.mode]  # fmt: skip
    print(fn(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
