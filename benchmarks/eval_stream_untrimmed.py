"""Untrimmed evaluation of streaming recognition on real recordings with known boundaries.

Three settings, each streamed through :class:`llmskel.stream.StreamRecognizer` and scored with
frame-wise accuracy and segmental F1 at IoU 0.1 / 0.25 / 0.5 (:mod:`llmskel.stream.segments`):

* ``ucla-concat``: NW-UCLA test clips (view 3, the cross-view protocol's test set), shuffled with a
  fixed seed and concatenated ``--clips`` at a time into long recordings;
* ``utk-concat``: the same with UTKinect's test-subject segments (even subjects, cross-subject);
* ``utk-original``: UTKinect's original untrimmed recordings of the even subjects, with the label
  file's frame ranges as ground truth; frames outside every range are background (no action);
* ``utd-concat``: UTD-MHAD's test-subject clips (even subjects, cross-subject), concatenated as for
  NW-UCLA (``--utd-model``).

Against a **baseline** that classifies fixed, non-overlapping windows of the same length
independently (stride = window, no smoothing, no threshold). Frame accuracy counts labelled frames
only (background frames are not scored); segment F1 leaves background and "no action" out.

    OMP_NUM_THREADS=1 python benchmarks/eval_stream_untrimmed.py \\
        --ucla-model runs/ucla_small_stream/best --utk-model runs/utk_small_stream/best \\
        --utd-model runs/utd_small_stream/last

A model path that does not exist skips its settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from llmskel.data.sample import SkeletonSample
from llmskel.hub import SkeletonModel
from llmskel.stream import StreamRecognizer, frame_accuracy, segment_f1
from llmskel.stream.recognizer import frames_from_sample
from llmskel.stream.segments import NO_ACTION, Segment, segments_to_frames

BG = "(background)"
IOUS = (0.1, 0.25, 0.5)


def concat_recordings(samples, classes, clips: int, seed: int):
    """Shuffled samples concatenated ``clips`` at a time: [(data (T, 1, V, C), frame labels)]."""
    order = np.random.default_rng(seed).permutation(len(samples))
    out = []
    for i in range(0, len(order), clips):
        group = [samples[j] for j in order[i : i + clips]]
        data = np.concatenate([s.data[:, :1] for s in group])
        labels = [classes[s.label] for s in group for _ in range(s.num_frames)]
        out.append((data, labels))
    return out


def utk_original(root: Path, subjects):
    """UTKinect's untrimmed recordings of ``subjects`` with per-frame labels from the label file."""
    from llmskel.data.readers.utkinect import UTKINECT_CLASSES, read_utkinect_joints, utkinect_segments

    files, _ = utkinect_segments(root)
    out = []
    for jf, segs in sorted(files.items()):
        if segs[0].subject not in subjects:
            continue
        ids, joints = read_utkinect_joints(jf)
        labels = [BG] * len(ids)
        for seg in segs:
            for k in np.flatnonzero((ids >= seg.start) & (ids <= seg.end)):
                labels[k] = UTKINECT_CLASSES[seg.label]
        out.append((joints[:, None], labels))
    return out


def run(
    model,
    recordings,
    window: int,
    stride: int,
    smooth: int,
    threshold: float,
    batch: int,
    min_segment: int = 0,
):
    preds, trues = [], []
    for data, labels in recordings:
        rec = StreamRecognizer(model, window=window, stride=stride, smooth=smooth, threshold=threshold,
                               batch_windows=batch, max_gap=10**9, min_segment=min_segment)  # fmt: skip
        sample = SkeletonSample(data, model.layout)
        segs = [e for e in rec.run(frames_from_sample(sample)) if isinstance(e, Segment)]
        pred = segments_to_frames(segs, len(labels))
        preds.append(pred)
        trues.append(labels)
    return preds, trues


def score(preds, trues) -> dict:
    p_all = [x for p in preds for x in p]
    t_all = [x for t in trues for x in t]
    acc = frame_accuracy(p_all, t_all, ignore=BG)
    f1 = {}
    for iou in IOUS:
        vals = []
        for p, t in zip(preds, trues):
            # background and "no action" form no segment on either side
            p2 = [BG if x == NO_ACTION else x for x in p]
            vals.append(segment_f1(p2, t, iou, background=BG))
        f1[f"f1@{iou}"] = float(np.mean(vals))
    return {"frame_acc": acc, **f1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ucla-model", default="runs/ucla_small_stream/best")
    ap.add_argument("--utk-model", default="runs/utk_small_stream/best")
    ap.add_argument("--utd-model", default="runs/utd_small_stream/last")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threshold", type=float, default=0.5, help="no-action threshold of the last row (0: no row)"
    )
    ap.add_argument("--smooth", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = Path(args.data)
    results = []
    settings = []
    if args.ucla_model and Path(args.ucla_model).exists():
        from llmskel.data.readers import load_nwucla

        m = SkeletonModel.from_pretrained(args.ucla_model)
        ds = load_nwucla(data / "nw_ucla" / "all_sqe")
        test = [s for s in ds.samples if s.view == 3]
        settings.append(("ucla-concat", m, concat_recordings(test, ds.classes, args.clips, args.seed), 32, 8))
    if args.utk_model and Path(args.utk_model).exists():
        from llmskel.data.readers import load_utkinect

        m = SkeletonModel.from_pretrained(args.utk_model)
        ds = load_utkinect(data / "utkinect")
        test = [s for s in ds.samples if s.subject % 2 == 0]
        settings.append(("utk-concat", m, concat_recordings(test, ds.classes, args.clips, args.seed), 24, 4))
        settings.append(("utk-original", m, utk_original(data / "utkinect", {2, 4, 6, 8, 10}), 24, 4))
    if args.utd_model and Path(args.utd_model).exists():
        from llmskel.data.readers.utd_mhad import load_utd_mhad

        m = SkeletonModel.from_pretrained(args.utd_model)
        ds = load_utd_mhad(data / "utd_mhad")
        test = [s for s in ds.samples if s.subject % 2 == 0]
        settings.append(("utd-concat", m, concat_recordings(test, ds.classes, args.clips, args.seed), 32, 8))
    for name, model, recs, window, stride in settings:
        frames = sum(len(lab) for _, lab in recs)
        methods = {
            "baseline (fixed windows)": (window, 1, 0.0, 0),
            "stream (overlap + smoothing)": (stride, args.smooth, 0.0, 0),
            "stream + min segment W/2": (stride, args.smooth, 0.0, window // 2),
        }
        if args.threshold > 0:
            methods[f"stream + min segment + threshold {args.threshold}"] = (stride, args.smooth, args.threshold,
                                                                              window // 2)  # fmt: skip
        for method, (s, sm, th, ms) in methods.items():
            t0 = time.perf_counter()
            preds, trues = run(model, recs, window, s, sm, th, batch=16, min_segment=ms)
            r = {"setting": name, "method": method, "recordings": len(recs), "frames": frames, "window": window,
                 "stride": s, "smooth": sm, "threshold": th, "min_segment": ms, **score(preds, trues),
                 "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            results.append(r)
            print(json.dumps(r), flush=True)
    print(
        "\n| setting | method | recordings (frames) | window / stride | frame acc | F1@0.1 | F1@0.25 | F1@0.5 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['setting']} | {r['method']} | {r['recordings']} ({r['frames']}) | {r['window']} / {r['stride']} | "
              f"{100 * r['frame_acc']:.1f} % | {100 * r['f1@0.1']:.1f} | {100 * r['f1@0.25']:.1f} | "
              f"{100 * r['f1@0.5']:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
