"""Open vocabulary across datasets: a trained model classifies a held-out dataset zero-shot, one line.

    python benchmarks/bench_openvocab.py --model runs/openvocab_lodo_utkinect/best --dataset utkinect
        [--root ../shared/data/utkinect] [--protocol xsub] [--split test] [--descriptions FILE|none]
        [--json out.json] [--threads 1]

The dataset's ``--split`` (default: the test split of its default protocol) is scored over the
dataset's **full class list**, by its label names only (the model's own label-prompt templates), and
separately with its description file (the shipped one when the dataset has one, or ``--descriptions``):

    bench_openvocab: dataset=utkinect model=... n=... classes=10 top1=... top5=... chance_top1=0.1
        desc_top1=... desc_top5=... also_in_training=4 seconds=...

``also_in_training`` counts the held-out classes whose normalised name is one of the model's training
classes (merged by text: "sit down" in NW-UCLA and UTKinect): the dataset is unseen, those names are not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ROOTS = {
    "nw-ucla": DATA / "nw_ucla" / "all_sqe",
    "utkinect": DATA / "utkinect",
    "utd-mhad": DATA / "utd_mhad",
    "penn-action": DATA / "penn_action",
    "ntu": DATA / "ntu_sample",
}


def topk(sim: np.ndarray, y: np.ndarray, k: int) -> float:
    k = min(k, sim.shape[1])
    return float((np.argsort(-sim, axis=1)[:, :k] == y[:, None]).any(1).mean())


def evaluate(model_dir: str, dataset: str, root: str | None = None, protocol: str = "default", split: str = "test",
             descriptions: str | None = "auto") -> dict:  # fmt: skip
    from llmskel.config import from_dict
    from llmskel.data.config import DataConfig
    from llmskel.data.datasets import get_dataset
    from llmskel.data.multi import class_key
    from llmskel.data.sources import load_source
    from llmskel.hub import SkeletonModel

    rec = get_dataset(dataset)
    root = root or str(ROOTS.get(rec.name, ""))
    cfg = from_dict(DataConfig, {"dataset": rec.name, "root": root, "protocol": protocol})
    ds, train, test = load_source(cfg)
    idx = test if split == "test" else (train if split == "train" else np.arange(len(ds)))
    samples = [ds.get(int(i)) for i in idx]
    y = ds.labels[idx]
    classes = list(ds.classes)
    model = SkeletonModel.from_pretrained(model_dir)
    t0 = time.perf_counter()
    from llmskel.methods.zero_shot_text import classify

    sim = classify(model, samples, classes, return_scores=True)
    out = {
        "dataset": rec.name, "model": model_dir, "split": split, "protocol": protocol, "n": int(len(y)),
        "classes": len(classes), "top1": topk(sim, y, 1), "top5": topk(sim, y, 5), "chance_top1": 1.0 / len(classes),
        "chance_top5": min(5, len(classes)) / len(classes),
    }  # fmt: skip
    pred = sim.argmax(1)
    out["per_class_top1"] = {
        c: float((pred[y == k] == k).mean()) for k, c in enumerate(classes) if (y == k).any()
    }
    trained = {class_key(c) for c in model.classes}
    out["also_in_training"] = sorted(c for c in classes if class_key(c) in trained)
    if descriptions == "auto":
        from llmskel.text.resources import shipped_descriptions_path

        try:
            descriptions = str(shipped_descriptions_path(rec.name))
        except FileNotFoundError:
            descriptions = None
    if descriptions and descriptions != "none":
        from llmskel.text.descriptions import load_descriptions

        desc = load_descriptions(descriptions)
        sim_d = classify(model, samples, classes, descriptions=desc, return_scores=True)
        out.update(desc_top1=topk(sim_d, y, 1), desc_top5=topk(sim_d, y, 5), descriptions=str(descriptions))
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--root", default=None)
    ap.add_argument("--protocol", default="default")
    ap.add_argument("--split", default="test", choices=["test", "train", "all"])
    ap.add_argument("--descriptions", default="auto", help="a description file, 'auto' (shipped) or 'none'")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = evaluate(a.model, a.dataset, a.root, a.protocol, a.split, a.descriptions)
    keys = ["dataset", "model", "n", "classes", "top1", "top5", "chance_top1", "desc_top1", "desc_top5"]
    line = " ".join(f"{k}={r[k]:.4f}" if isinstance(r[k], float) else f"{k}={r[k]}" for k in keys if k in r)
    print(f"bench_openvocab: {line} also_in_training={len(r['also_in_training'])} seconds={r['seconds']:.1f}")
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
