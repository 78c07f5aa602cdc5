"""Eager PyTorch vs onnxruntime for one clip on 1 CPU thread, and max |diff| on real clips.

    python benchmarks/bench_export.py --model DIR --onnx FILE [--clips 20]

Uses NW-UCLA clips from ../shared/data/nw_ucla/all_sqe when present (through the model's saved
preprocessing), else random input of the model's shape. The ONNX file comes from
``llmskel export --model DIR --out FILE``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
UCLA = ROOT.parent / "shared" / "data" / "nw_ucla" / "all_sqe"


def median_ms(fn, repeat: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--clips", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    import onnxruntime as ort

    from llmskel.hub import SkeletonModel
    from llmskel.models.onnx_export import example_input

    model = SkeletonModel.from_pretrained(args.model).eval()
    files = sorted(UCLA.glob("*.json"))[: args.clips] if UCLA.is_dir() else []
    if files:
        from llmskel.data.io import read_any

        x = model.prepare_inputs([s for f in files for s in read_any(str(f))])
        source = f"{len(files)} NW-UCLA clips"
    else:
        x = torch.randn(example_input(model, args.clips).shape)
        source = f"{args.clips} random inputs"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.onnx, opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(x).logits
    got = torch.cat(
        [torch.from_numpy(sess.run(["logits"], {"x": x[i : i + 1].numpy()})[0]) for i in range(len(x))]
    )
    diff = float((got - ref).abs().max())
    rel = diff / float(ref.abs().max())
    agree = float((got.argmax(1) == ref.argmax(1)).float().mean())
    one = x[:1]
    with torch.no_grad():
        eager = median_ms(lambda: model(one))
    onnx = median_ms(lambda: sess.run(["logits"], {"x": one.numpy()}))
    print(f"bench_export: {source}: max |diff| logits {diff:.2e} (relative {rel:.1e}), top-1 agreement {agree:.0%}; "
          f"one clip, 1 thread: eager {eager:.1f} ms, onnxruntime {onnx:.1f} ms ({eager / onnx:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
