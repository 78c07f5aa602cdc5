"""Training throughput with and without GAP alignment: the cost of the language side per step.

The same encoder, the same batches and the same optimizer, trained by ``method: supervised``
(cross-entropy) and by ``method: gap`` (cross-entropy plus part-wise alignment with a frozen text
encoder whose embeddings were computed, through the cache, before timing). Batches are collated
once and reused, so the number measures the model and the method, not the data pipeline. Rounds of
the two methods alternate step by step and the median step time of each is reported, which keeps a
busy machine's drift out of the comparison.

    python benchmarks/bench_alignment.py [--root ../shared/data/nw_ucla/all_sqe] [--model ctrgcn_small]
        [--batch 16] [--frames 52] [--steps 10] [--rounds 5] [--text-encoder sentence:all-MiniLM-L6-v2]

prints one line::

    bench_alignment: supervised_samples_per_s=... gap_samples_per_s=... slowdown_pct=... model=... ...

Without the NW-UCLA files the synthetic set stands in (``data=`` says which).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def experiment(args, method: str):
    from llmskel.engine.config import load_experiment

    over = [f"method={method}", f"model.name={args.model}", f"data.num_frames={args.frames}", "data.num_bodies=1",
            f"train.batch_size={args.batch}", f"align.text_encoder={args.text_encoder}"]  # fmt: skip
    root = Path(args.root)
    if root.exists():
        over += ["data.dataset=nw-ucla", f"data.root={root}", "data.protocol=xview"]
    else:
        over += [
            "data.dataset=synthetic",
            "data.synthetic.num_classes=10",
            "data.synthetic.samples_per_class=8",
        ]
    if method == "supervised":
        over = [o for o in over if not o.startswith("align.")]
    return load_experiment(None, over), ("nw-ucla" if root.exists() else "synthetic")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "nw_ucla" / "all_sqe"))
    p.add_argument("--model", default="ctrgcn_small")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=52)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5, help="rounds (steps x rounds timed steps per method)")
    p.add_argument("--text-encoder", default="sentence:all-MiniLM-L6-v2")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from llmskel.engine.data import build_data, make_loaders
    from llmskel.engine.optim import build_optimizer
    from llmskel.methods.base import get_method

    device = torch.device(args.device)
    cfg_gap, source = experiment(args, "gap")
    bundle = build_data(cfg_gap.data, seed=cfg_gap.seed)
    loader, _ = make_loaders(bundle, args.batch, args.batch, 0, cfg_gap.seed)
    it = iter(loader)
    batches = []
    for _ in range(min(4, len(loader))):
        b = next(it)
        batches.append({"x": b["x"].to(device), "label": b["label"].to(device)})

    runs = {}
    for name in ("supervised", "gap"):
        cfg = cfg_gap if name == "gap" else experiment(args, name)[0]
        t0 = time.perf_counter()
        torch.manual_seed(0)
        method = get_method(name)(cfg, bundle)
        model = method.build_model().to(device)
        method.setup(model, device)
        setup_s = time.perf_counter() - t0
        opt = build_optimizer(cfg.optim, method.param_groups(model), cfg.optim.lr)
        model.train()
        runs[name] = {"method": method, "model": model, "opt": opt, "setup_s": setup_s, "times": []}

    def step(run, batch):
        loss, _ = run["method"].loss(run["model"], batch)
        loss.backward()
        run["opt"].step()
        run["opt"].zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for run in runs.values():  # warm-up (allocator, kernels)
        for b in batches[:2]:
            step(run, b)
    # steps of the two methods alternate one by one, so a busy machine slows both alike; the median
    # step time of each method is what the line reports
    for r in range(args.rounds * args.steps):
        order = ("supervised", "gap") if r % 2 == 0 else ("gap", "supervised")
        for name in order:
            run = runs[name]
            sync()
            t0 = time.perf_counter()
            step(run, batches[r % len(batches)])
            sync()
            run["times"].append(time.perf_counter() - t0)
    sup = args.batch / statistics.median(runs["supervised"]["times"])
    gap = args.batch / statistics.median(runs["gap"]["times"])
    gm = runs["gap"]["method"]
    print(
        f"bench_alignment: supervised_samples_per_s={sup:.1f} gap_samples_per_s={gap:.1f} "
        f"slowdown_pct={100 * (1 - gap / sup):.1f} model={args.model} batch={args.batch} frames={args.frames} "
        f"data={source} terms={len(gm.terms)} text_encoder={gm.encoder.spec} text_dim={gm.table.dim} "
        f"texts={gm.table.num_texts} text_setup_s={runs['gap']['setup_s']:.1f} device={device.type} "
        f"threads={torch.get_num_threads()} rounds={args.rounds}x{args.steps}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
