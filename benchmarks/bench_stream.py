"""Streaming speed: frames per second and latency of one window decision, on 1 CPU thread.

A recording (NW-UCLA test clips concatenated when ../shared/data is there, else a synthetic
Kinect v1 recording) is pushed frame by frame through :class:`llmskel.stream.StreamRecognizer`
with one person, every window decided as soon as it is due (``batch_windows=1``, the live
setting). Models have random weights (speed does not depend on them): CTR-GCN-small and the full
CTR-GCN, kinect20 layout, 10 classes, 32-frame model input. Prints one JSON line per model:
``fps`` (frames pushed per second of wall time, decisions included), ``decision_ms`` median and
95th percentile (the wall time of the ``push`` that emitted a window: buffer, preprocessing and
forward pass), ``frame_us`` (a push without a decision), ``forward_ms`` (the bare forward pass of
one 32-frame window, measured in the same run: what the machine's load does to the model alone),
and where a decision's time goes: ``prep_ms`` (``model.prepare_inputs`` of one window) against
``window_forward_ms`` on the same windows, ``prep_share_of_decision``, and
``per_frame_share_of_wall`` (the pushes that decided nothing: parsing, tracking, ring buffers).

    OMP_NUM_THREADS=1 python benchmarks/bench_stream.py [--frames 1200] [--window 32] [--stride 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from llmskel.data.sample import SkeletonSample
from llmskel.hub import SkeletonModel, SkeletonModelConfig
from llmskel.models import get_model_config
from llmskel.stream import StreamRecognizer
from llmskel.stream.recognizer import frames_from_sample


def recording(frames: int, data: Path) -> tuple[np.ndarray, str]:
    root = data / "nw_ucla" / "all_sqe"
    if root.is_dir():
        from llmskel.data.readers import load_nwucla

        ds = load_nwucla(root)
        parts, n = [], 0
        for s in ds.samples:
            if s.view == 3:
                parts.append(s.data[:, :1])
                n += s.num_frames
                if n >= frames:
                    break
        return np.concatenate(parts)[:frames], "NW-UCLA view-3 clips"
    from llmskel.data.layouts import convert_layout
    from llmskel.data.synthetic import generate_sample

    x = generate_sample("wave").data[:, :1]
    x = convert_layout(x, "ntu25", "kinect20")
    return np.concatenate([x] * (frames // len(x) + 1))[:frames], "synthetic"


def build(arch: str) -> SkeletonModel:
    cfg = dict(get_model_config(arch))
    cfg.update(layout="kinect20", num_classes=10, in_channels=3, num_bodies=1)
    torch.manual_seed(0)
    return SkeletonModel(SkeletonModelConfig(model=cfg, classes=[f"c{i}" for i in range(10)], layout="kinect20",
                                             preprocessing={"num_frames": 32, "num_bodies": 1})).eval()  # fmt: skip


def bench(model, data: np.ndarray, window: int, stride: int) -> dict:
    rec = StreamRecognizer(model, window=window, stride=stride, batch_windows=1)
    frames = list(frames_from_sample(SkeletonSample(data, "kinect20")))
    for fr in frames[: window + stride]:  # warm-up
        rec.push(fr)
    rec = StreamRecognizer(model, window=window, stride=stride, batch_windows=1)
    dec, plain = [], []
    t0 = time.perf_counter()
    for fr in frames:
        a = time.perf_counter()
        ev = rec.push(fr)
        (dec if ev else plain).append(time.perf_counter() - a)
    rec.flush()
    wall = time.perf_counter() - t0
    x = torch.from_numpy(np.ascontiguousarray(data[:32].transpose(3, 0, 2, 1)[None]))  # (1, C, T, V, M)
    fwd = []
    with torch.no_grad():
        for _ in range(30):  # the bare forward pass, for the share of the decision the model takes
            a = time.perf_counter()
            model(x)
            fwd.append(time.perf_counter() - a)
    # where a decision's time goes: the window's preprocessing (resampling, centring, the input
    # tensor: model.prepare_inputs) against the forward pass, timed apart on the stream's windows
    prep, fwd_w = [], []
    with torch.no_grad():
        for start in range(0, len(data) - window + 1, stride):
            sample = SkeletonSample(data[start : start + window], "kinect20", extra={"spatial_dims": 3})
            a = time.perf_counter()
            xw = model.prepare_inputs([sample])
            b = time.perf_counter()
            model(xw)
            prep.append(b - a)
            fwd_w.append(time.perf_counter() - b)
    split = {"prep_ms_median": round(1000 * float(np.median(prep)), 2),
             "window_forward_ms_median": round(1000 * float(np.median(fwd_w)), 2),
             "prep_share_of_decision": round(float(np.sum(prep) / (np.sum(prep) + np.sum(fwd_w))), 3),
             "per_frame_share_of_wall": round(float(np.sum(plain) / wall), 3)}  # fmt: skip
    return {**split, "frames": len(frames), "fps": round(len(frames) / wall, 1), "windows": len(dec),
            "forward_ms_median": round(1000 * float(np.median(fwd)), 2),
            "decision_ms_median": round(1000 * float(np.median(dec)), 2),
            "decision_ms_p95": round(1000 * float(np.percentile(dec, 95)), 2),
            "frame_us_median": round(1e6 * float(np.median(plain)), 1)}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1200)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--archs", default="ctrgcn_small,ctrgcn")
    ap.add_argument("--data", default="../shared/data")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data, what = recording(args.frames, Path(args.data))
    for arch in args.archs.split(","):
        r = bench(build(arch), data, args.window, args.stride)
        r.update(arch=arch, window=args.window, stride=args.stride, input=what, threads=torch.get_num_threads(),
                 torch=torch.__version__, machine=platform.machine())  # fmt: skip
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
