"""``llmskel stream``: recognise actions in a long recording or a live stream of skeleton frames.

    llmskel stream --model DIR [--labels "wave; sit down" | --support DIR] [--window 2s --fps 30] INPUT

``INPUT`` is a pose estimator's output (an OpenPose folder, MediaPipe JSON/CSV, mmpose / rtmlib
JSON), JSON lines (a file, or ``-`` for stdin: one frame per line, as another process sends them),
or any file :func:`llmskel.data.io.read_any` reads (arrays, NW-UCLA JSON, NTU ``.skeleton``) plus
UTKinect ``joints_sXX_eYY.txt`` recordings. Output: segments as they close and, at the end, a text
timeline per person; with ``--json`` one JSON object per line (``"event"``: ``segment``, ``window``
with ``--windows``, and a final ``summary``): the exception to the one-object rule of the other
commands, so that a consumer can read events while the stream runs. ``--plot FILE.png`` draws the
timeline. Bad frames are reported on stderr and counted in the summary; the stream goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line is built without numpy or torch
    from .segments import Segment, WindowResult


# ------------------------------------------------------------------------------ input
def iter_input(path: str, layout: str | None = None, min_score: float = 0.1) -> Iterator[tuple[Any, str]]:
    """(frame, where) pairs of any supported input (see the module docstring), read lazily where possible."""
    from ..data.readers.estimators import read_mediapipe_csv, read_pose_json
    from ..errors import SkeletonFormatError
    from .recognizer import frames_from_sample

    if path == "-":
        for ln, text in enumerate(sys.stdin, start=1):
            if text.strip():
                yield text, f"<stdin> line {ln}"
        return
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    if p.is_dir() and any(p.glob("*_keypoints.json")):
        from ..data.readers.estimators import _OPENPOSE_NAME_RE

        def number(f: Path) -> tuple[int, str]:
            m = _OPENPOSE_NAME_RE.search(f.name)
            return (int(m.group(1)) if m else -1, f.name)

        for f in sorted(p.glob("*_keypoints.json"), key=number):
            yield f.read_bytes(), f.name
        return
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with open(p, encoding="utf-8") as fh:
            for ln, text in enumerate(fh, start=1):
                if text.strip():
                    yield text, f"{p.name} line {ln}"
        return
    if suffix == ".csv":
        rec = read_mediapipe_csv(p, min_score)
        for item in rec.skipped:
            print(f"{p} ({item['where']}): skipped: {item['error']}", file=sys.stderr)
        yield from ((fr, f"{p.name} frame {fr.index}") for fr in rec.frames)
        return
    if suffix == ".txt" and p.name.startswith("joints_"):
        from ..data.readers.utkinect import read_utkinect_joints
        from ..data.sample import SkeletonSample

        _, joints = read_utkinect_joints(p)
        sample = SkeletonSample(joints[:, None], "kinect20", source=str(p))
        yield from ((fr, f"{p.name} frame {fr.index}") for fr in frames_from_sample(sample))
        return
    if suffix == ".json":
        try:
            rec = read_pose_json(p, layout, min_score)
        except SkeletonFormatError:
            rec = None
        if rec is not None:
            for item in rec.skipped:
                print(f"{p} ({item['where']}): skipped: {item['error']}", file=sys.stderr)
            yield from ((fr, f"{p.name} frame {fr.index}") for fr in rec.frames)
            return
    from ..data.io import read_any

    for s in read_any(p, layout):
        yield from ((fr, f"{Path(s.source or p).name} frame {fr.index}") for fr in frames_from_sample(s))


# ------------------------------------------------------------------------------ rendering
def _clock(frame: int, fps: float | None) -> str:
    if not fps:
        return f"{frame}"
    s = frame / fps
    return f"{int(s // 60):02d}:{s % 60:05.2f}"


def format_segment(seg: Segment, fps: float | None) -> str:
    span = f"{_clock(seg.start, fps)}-{_clock(seg.end + 1, fps)}"
    frames = f" (frames {seg.start}-{seg.end})" if fps else " frames"
    return f"person {seg.person:<3} {span}{frames}  {seg.label}  {seg.score:.2f}"


def text_timeline(
    segments: Sequence[Segment], num_frames: int, fps: float | None = None, width: int = 72
) -> str:
    """One row per person, one character per ``num_frames / width`` frames: a letter per label."""
    from .segments import NO_ACTION

    if not segments or num_frames <= 0:
        return "(no segments)"
    labels = sorted({s.label for s in segments if s.label != NO_ACTION})
    code = {lab: chr(ord("A") + i) if i < 26 else "#" for i, lab in enumerate(labels)}
    code[NO_ACTION] = "."
    per = max(1, -(-num_frames // width))
    cols = -(-num_frames // per)
    rows = []
    for pid in sorted({s.person for s in segments}):
        line = [" "] * cols
        for s in segments:
            if s.person == pid:
                for c in range(s.start // per, min(cols, s.end // per + 1)):
                    line[c] = code[s.label]
        rows.append(f"person {pid:<3} |{''.join(line)}|")
    unit = f"{per / fps:.2f} s" if fps else f"{per} frame(s)"
    end = _clock(num_frames, fps) + ("" if fps else " frames")
    legend = "  ".join(f"{c}={lab}" for lab, c in code.items())
    return "\n".join([f"timeline: 0 .. {end}, one character = {unit}", *rows, legend])


def plot_timeline(segments: Sequence[Segment], windows: Sequence[WindowResult], num_frames: int, path: str,
                  fps: float | None = None, title: str | None = None) -> None:  # fmt: skip
    """Per person: coloured bars for the segments (label written in them) and the window scores."""
    import matplotlib

    from .segments import NO_ACTION

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    persons = sorted({s.person for s in segments})
    labels = sorted({s.label for s in segments if s.label != NO_ACTION})
    cmap = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    colour = {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}
    colour[NO_ACTION] = (0.85, 0.85, 0.85, 1.0)
    scale = (1.0 / fps) if fps else 1.0
    fig, ax = plt.subplots(figsize=(13, 1.6 + 0.9 * max(2, len(persons))))
    for row, pid in enumerate(persons):
        y = len(persons) - 1 - row
        for s in (s for s in segments if s.person == pid):
            x0, w = s.start * scale, (s.end + 1 - s.start) * scale
            ax.broken_barh([(x0, w)], (y + 0.05, 0.6), facecolors=colour[s.label], edgecolor="white")
            if w > num_frames * scale * 0.04:
                ax.text(x0 + w / 2, y + 0.35, s.label, ha="center", va="center", fontsize=8, clip_on=True)
        ws = [w for w in windows if w.person == pid]
        if ws:
            xs = [(w.end + 1) * scale for w in ws]
            ax.plot(xs, [y + 0.67 + 0.3 * w.score for w in ws], color="black", lw=0.8)
    ax.set_yticks([len(persons) - 1 - r + 0.4 for r in range(len(persons))])
    ax.set_yticklabels([f"person {p}" for p in persons])
    ax.set_xlim(0, num_frames * scale)
    ax.set_ylim(0, max(1, len(persons)))
    ax.set_xlabel("time (s)" if fps else "frame")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[lab]) for lab in [*labels, NO_ACTION]]
    ax.legend(handles, [*labels, NO_ACTION], loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
              frameon=False, ncol=1 if len(labels) < 12 else 2)  # fmt: skip
    ax.set_title(title or "actions per person (bars: segments; line above: window score, 0-1)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------ command
def cmd_stream(args: argparse.Namespace) -> int:
    from ..hub import SkeletonModel
    from .recognizer import StreamRecognizer
    from .segments import Segment, WindowResult

    labels = None
    if args.labels:
        from ..methods.commands import _labels_arg

        labels = _labels_arg(args.labels)
    model = SkeletonModel.from_pretrained(args.model)
    rec = StreamRecognizer(
        model, labels=labels, support=args.support, window=args.window, stride=args.stride, fps=args.fps,
        threshold=args.threshold, smooth=args.smooth, batch_windows=args.batch_windows, input_layout=args.layout,
        min_score=args.min_score, max_gap=args.max_gap, min_segment=args.min_segment,
    )  # fmt: skip
    keep = args.plot is not None or not args.json
    segments: list[Segment] = []
    windows: list[WindowResult] = []
    problems_seen = 0
    for ev in rec.run(iter_input(args.input, args.layout, args.min_score)):
        if isinstance(ev, Segment):
            if keep:
                segments.append(ev)
            if args.json:
                print(json.dumps(ev.to_dict(rec.fps)), flush=True)
            else:
                print(format_segment(ev, rec.fps), flush=True)
        else:
            if args.plot is not None:
                windows.append(WindowResult(ev.person, ev.start, ev.end, ev.label, ev.score))
            if args.json and args.windows:
                print(json.dumps(ev.to_dict(rec.fps)), flush=True)
        for item in rec.info.problems[problems_seen:]:
            print(f"{item['where']}: {item['problem']}", file=sys.stderr)
        problems_seen = len(rec.info.problems)
    summary = rec.summary()
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(text_timeline(segments, rec.t, rec.fps))
        print(f"frames: {summary['frames']} (dropped {summary['frames_dropped']}), persons left out: "
              f"{summary['persons_dropped']}, NaN joints: {summary['nan_joints']}, windows: {summary['windows']}, "
              f"mode: {summary['mode']} ({summary['score']})")  # fmt: skip
        for pid, st in summary["persons"].items():
            print(f"person {pid}: frames {st['first_frame']}-{st['last_frame']} ({st['frames']} seen), "
                  f"{100 * st['missing_fraction']:.1f} % of joints missing")  # fmt: skip
    if args.plot:
        plot_timeline(segments, windows, rec.t, args.plot, rec.fps)
        print(f"timeline plot: {args.plot}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("stream", help="recognise actions per person in a long recording or a live stream")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--labels", default=None, help='zero-shot labels ("wave; sit down") or @FILE')
    p.add_argument(
        "--support", default=None, help="few-shot support set (folder of class subfolders, or CSV)"
    )
    p.add_argument("--window", default=None, help="window: frames (48) or seconds (1.5s, needs --fps); "
                   "default the model's num_frames")  # fmt: skip
    p.add_argument("--stride", default=None, help="frames or seconds between windows (default window / 4)")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the input (for seconds)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="below this score a window is 'no action' (probability; cosine with --support)")  # fmt: skip
    p.add_argument("--smooth", type=int, default=1, help="windows averaged per decision (odd; 1 = none)")
    p.add_argument(
        "--batch-windows", type=int, default=1, help="windows classified together (latency vs speed)"
    )
    p.add_argument(
        "--min-segment", default=None, help="frames or seconds: shorter segments join their neighbour"
    )
    p.add_argument("--layout", default=None, help="the input's layout when it does not say it")
    p.add_argument("--min-score", type=float, default=0.1, help="keypoints below this confidence are missing")
    p.add_argument(
        "--max-gap", type=int, default=None, help="frames a person may be away before the track ends"
    )
    p.add_argument("--windows", action="store_true", help="with --json, also print every window decision")
    p.add_argument("--plot", default=None, help="write the timeline as a PNG")
    p.add_argument("input", help="file, folder, or - for JSON lines on stdin")
    p.add_argument("--json", action="store_true", help="print events as JSON lines (one object per line)")
    p.set_defaults(func=cmd_stream)
