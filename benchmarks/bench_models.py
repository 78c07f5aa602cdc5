"""Speed and memory of the skeleton encoders on the CPU: training and inference samples/s, peak RSS.

One command::

    python benchmarks/bench_models.py                       # our ST-GCN and CTR-GCN, both shapes
    python benchmarks/bench_models.py --reference /tmp/CTR-GCN          # + the published CTR-GCN
    python benchmarks/bench_models.py --reference-stgcn /tmp/st-gcn     # + the published ST-GCN (NTU)

Shapes (batch 16): ``ucla`` = NW-UCLA (52 frames, 20 joints, 1 body, 10 classes, Kinect v1 layout),
``ntu`` = NTU RGB+D 60 (64 frames, 25 joints, 2 bodies, 60 classes). Training is forward, backward
and an SGD step (momentum 0.9, Nesterov, weight decay 1e-4, as the papers' configs); inference is
``model.eval()`` under ``torch.inference_mode()``. fp32, torch's default thread count unless
``--threads``.

Speed: for each (shape, mode) ONE subprocess builds every model and times them interleaved, one
step of each model per round, so that ours and the references see the same machine load (the
machine may be shared); samples/s is batch / median step time (``best``: the fastest step).
Memory: every (model, shape, mode) also runs alone in a fresh subprocess for a few steps, and
``peak_rss`` is that process's high-water mark (``ru_maxrss``, Python and torch included).

``--tune-malloc`` runs every worker (ours and the references alike) with glibc's malloc trim and
mmap thresholds raised, so freed activations stay in the heap instead of being page-faulted back
each step; it mostly speeds up inference.

``--reference DIR`` imports ``model.ctrgcn.Model`` from a local checkout of the published CTR-GCN
code (github.com/Uason-Chen/CTR-GCN; not shipped with llmskel) and measures it at the same
shapes, with its own graphs (``graph.ucla`` / ``graph.ntu_rgb_d``); ``--verify`` additionally
copies its weights into ours and checks that both compute the same function (float64, train and
eval mode). ``--reference-stgcn DIR`` does the same for ``net.st_gcn.Model`` of
github.com/yysijie/st-gcn (NTU shape only: that code has no 20-joint graph).

Output: one line per configuration, e.g.
``bench_models: model=ctrgcn shape=ucla train=24.1 samples/s infer=80.2 samples/s peak_rss=612 MB ...``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = {
    # name: (batch, frames, joints, bodies, classes, our layout, reference graph module)
    "ucla": (16, 52, 20, 1, 10, "kinect20", "graph.ucla.Graph"),
    "ntu": (16, 64, 25, 2, 60, "ntu25", "graph.ntu_rgb_d.Graph"),
}
OURS = ("ctrgcn", "stgcn")


# ------------------------------------------------------------------------------ worker side
def _build(spec: dict):
    """(model, forward returning logits) for one spec."""
    batch, frames, joints, bodies, classes, layout, ref_graph = SHAPES[spec["shape"]]
    name = spec["model"]
    if name in OURS:
        from llmskel.models import create_model

        model = create_model(name, layout=layout, num_classes=classes, num_bodies=bodies)
        return model, (lambda x: model(x).logits)
    if name == "ctrgcn_ref":
        sys.path.insert(0, spec["ref_dir"])
        from model.ctrgcn import Model  # the published code, from the user's checkout

        model = Model(
            num_class=classes,
            num_point=joints,
            num_person=bodies,
            graph=ref_graph,
            graph_args={"labeling_mode": "spatial"},
        )
        return model, model
    if name == "stgcn_ref":
        sys.path.insert(0, spec["ref_dir"])
        from net.st_gcn import Model

        if spec["shape"] != "ntu":
            raise ValueError("the published ST-GCN has no 20-joint graph: NTU shape only")
        model = Model(3, classes, {"layout": "ntu-rgb+d", "strategy": "spatial"}, True, dropout=0.5)
        return model, model
    raise ValueError(f"unknown model {name!r}")


def _make_step(spec: dict, mode: str):
    """(step function, parameter count) for one model spec; a step is one batch."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    batch, frames, joints, bodies, classes, *_ = SHAPES[spec["shape"]]
    model, forward = _build(spec)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, 3, frames, joints, bodies)
    y = torch.randint(0, classes, (batch,))
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

        def step():
            loss = F.cross_entropy(forward(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    else:
        model.eval()

        def step():
            with torch.inference_mode():
                forward(x)

    return step, params


def run_timing_worker(spec: dict) -> dict:
    """All models of ``spec["models"]`` at one shape and mode, timed step by step in turn."""
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    steps, params, times = {}, {}, {}
    for m in spec["models"]:
        mspec = dict(m, shape=spec["shape"])
        steps[m["model"]], params[m["model"]] = _make_step(mspec, spec["mode"])
        times[m["model"]] = []
    for _ in range(spec["warmup"]):
        for step in steps.values():
            step()
    for _ in range(spec["steps"]):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {"times": times, "params": params, "threads": torch.get_num_threads()}


def run_memory_worker(spec: dict) -> dict:
    """One model alone: peak RSS after a few steps."""
    import resource

    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    step, _ = _make_step(spec, spec["mode"])
    for _ in range(3):
        step()
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KB on Linux


def run_verify(ref_dir: str, shape: str) -> float:
    """Copy the published CTR-GCN's (perturbed) weights into ours; largest |difference| of logits
    over train and eval mode, float64."""
    import torch

    sys.path.insert(0, ref_dir)
    from model.ctrgcn import Model

    from llmskel.models import create_model

    batch, frames, joints, bodies, classes, layout, ref_graph = SHAPES[shape]
    torch.manual_seed(0)
    ref = Model(
        num_class=classes,
        num_point=joints,
        num_person=bodies,
        graph=ref_graph,
        graph_args={"labeling_mode": "spatial"},
    ).double()
    ours = create_model("ctrgcn", layout=layout, num_classes=classes, num_bodies=bodies).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))  # alpha, biases and BN off their initial values
    load_reference_ctrgcn(ours, ref)
    x = torch.randn(4, 3, frames, joints, bodies, dtype=torch.float64)
    worst = 0.0
    for train in (True, False):
        ref.train(train)
        ours.train(train)
        with torch.no_grad():
            a, b = ref(x), ours(x).logits
        worst = max(worst, float((a - b).abs().max() / a.abs().max()))
    return worst


def load_reference_ctrgcn(ours, ref) -> None:
    """Copy a published-code CTR-GCN's parameters and BN statistics into our CTRGCN (same config),
    through the mapping ``llmskel convert --from ctrgcn`` uses (so ``--verify`` checks it)."""
    from llmskel.models.published import ctrgcn_from_published

    ours.load_state_dict(ctrgcn_from_published(ref.state_dict(), ours.state_dict(), "reference"), strict=True)


# ------------------------------------------------------------------------------ driver side
# glibc returns the memory of large freed tensors to the OS and page-faults it back on the next
# step; these keep it in the heap (for every model alike, ours and the references)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**34)}


def _spawn(spec: dict, tune_malloc: bool = False) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    env = dict(os.environ, **MALLOC_ENV) if tune_malloc else None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker failed for {json.dumps(spec)}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="ctrgcn,stgcn", help="ours, comma-separated (ctrgcn, stgcn)")
    p.add_argument("--shapes", default="ucla,ntu", help="comma-separated: " + ", ".join(SHAPES))
    p.add_argument("--modes", default="train,infer", help="train, infer or both")
    p.add_argument("--reference", metavar="DIR", help="checkout of github.com/Uason-Chen/CTR-GCN")
    p.add_argument("--reference-stgcn", metavar="DIR", help="checkout of github.com/yysijie/st-gcn")
    p.add_argument("--verify", action="store_true", help="with --reference: check ours == reference")
    p.add_argument("--steps", type=int, default=6, help="timed rounds (one step of every model each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--tune-malloc",
        action="store_true",
        help="run every worker with glibc's trim/mmap thresholds raised (fewer page faults)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        run = run_timing_worker if "models" in spec else run_memory_worker
        print(json.dumps(run(spec)))
        return 0

    shapes = [s for s in args.shapes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    for s in shapes:
        if s not in SHAPES:
            p.error(f"unknown shape {s!r}; valid: {', '.join(SHAPES)}")
    for m in modes:
        if m not in ("train", "infer"):
            p.error(f"unknown mode {m!r}; valid: train, infer")
    models: list[tuple[str, str | None]] = []
    for name in (m for m in args.models.split(",") if m):
        if name not in OURS:
            p.error(f"unknown model {name!r}; valid: {', '.join(OURS)}")
        models.append((name, None))
    for flag, name, module in (
        (args.reference, "ctrgcn_ref", "model/ctrgcn.py"),
        (args.reference_stgcn, "stgcn_ref", "net/st_gcn.py"),
    ):
        if flag:
            if not os.path.isfile(os.path.join(flag, module)):
                p.error(f"{flag}: no {module} there (expected a checkout of the published code)")
            models.append((name, os.path.abspath(flag)))

    if args.verify:
        if not args.reference:
            p.error("--verify needs --reference")
        for s in shapes:
            err = run_verify(os.path.abspath(args.reference), s)
            print(
                f"bench_models: verify shape={s} max_rel_diff={err:.1e} (ours vs published CTR-GCN, float64)"
            )

    results: dict[tuple, dict] = {}
    for s in shapes:
        here = [{"model": m, "ref_dir": d} for m, d in models if not (m == "stgcn_ref" and s != "ntu")]
        for mode in modes:
            spec = {"models": here, "shape": s, "mode": mode, "steps": args.steps, "warmup": args.warmup}
            spec["threads"] = args.threads
            print(f"timing {s} {mode}: {', '.join(m['model'] for m in here)}", file=sys.stderr, flush=True)
            out = _spawn(spec, args.tune_malloc)
            for m in here:
                acc = results.setdefault((m["model"], s, mode), {})
                acc["times"] = out["times"][m["model"]]
                acc["params"], acc["threads"] = out["params"][m["model"]], out["threads"]
                if not args.no_memory:
                    mspec = dict(m, shape=s, mode=mode, threads=args.threads)
                    print(f"memory {m['model']} {s} {mode}", file=sys.stderr, flush=True)
                    acc["peak"] = _spawn(mspec, args.tune_malloc)["peak_rss_mb"]

    for s in shapes:
        for m, _ in models:
            if (m, s, modes[0]) not in results:
                continue
            batch = SHAPES[s][0]
            row: dict = {"model": m, "shape": s}
            for mode in modes:
                acc = results[(m, s, mode)]
                row[mode] = round(batch / statistics.median(acc["times"]), 2)
                row[f"{mode}_best"] = round(batch / min(acc["times"]), 2)
                row[f"peak_rss_{mode}_mb"] = round(acc["peak"]) if "peak" in acc else None
                row["params"], row["threads"] = acc["params"], acc["threads"]
            if args.json:
                print(json.dumps(row))
                continue
            text = f"bench_models: model={m} shape={s}"
            for mode in modes:
                text += f" {mode}={row[mode]:.1f} samples/s ({mode}_best={row[f'{mode}_best']:.1f})"
            text += "".join(
                f" peak_rss_{mode}={row[f'peak_rss_{mode}_mb']} MB"
                for mode in modes
                if "peak" in results[(m, s, mode)]
            )
            text += f" params={row['params'] / 1e6:.3f}M threads={row['threads']}"
            print(text, flush=True)
    for ours, ref in (("ctrgcn", "ctrgcn_ref"), ("stgcn", "stgcn_ref")):
        for s in shapes:
            if (ours, s, modes[0]) in results and (ref, s, modes[0]) in results:
                ratios = {}
                for mode in modes:
                    a, b = results[(ours, s, mode)]["times"], results[(ref, s, mode)]["times"]
                    ratios[mode] = statistics.median(b) / statistics.median(a)
                    ratios[f"{mode}_best"] = min(b) / min(a)
                if args.json:
                    print(json.dumps({"speedup": f"{ours}/{ref}", "shape": s, **ratios}))
                else:
                    text = " ".join(f"{k}={v:.2f}x" for k, v in ratios.items())
                    print(f"bench_models: speedup={ours}/{ref} shape={s} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
