"""Window decisions merged into segments, and the metrics of temporal action segmentation.

**Which frames a window speaks for.** A window of ``W`` frames emitted every ``S`` frames decides
the ``S`` frames at its centre (``[end - (W - S) // 2 - S + 1, end - (W - S) // 2]``); a person's
first window also covers its frames before that, and the last one (at :meth:`SegmentMerger.flush`)
those after it, so every frame of a track gets exactly one decision. With ``S == W`` (fixed,
non-overlapping windows) a window decides its own frames.

**Decision.** With ``smooth = k`` the scores of ``k`` consecutive windows are averaged before the
decision of the middle one (``k = 1``: no smoothing; ``k > 1`` delays a decision by ``k // 2``
strides). The label is the best-scoring class, or ``no_action`` when its score is below
``threshold``. Consecutive decisions with one label form a :class:`Segment` whose score is the mean
of its windows' scores; a gap in the track (the person was away for a whole window) ends a segment.
With ``min_frames`` a segment shorter than that joins the segment before it (or, for the first one,
the one after it), keeping that segment's label and score; a segment is then returned once the
next one that cannot join it has closed (one segment of extra delay).

**Metrics** (:func:`frame_accuracy`, :func:`segment_f1`): frame-wise accuracy, and the segmental
F1 at an IoU threshold as in the action-segmentation literature: predicted segments are taken in
order; each is a true positive when its best-overlapping ground-truth segment of the same label
has IoU >= the threshold and was not matched before, else a false positive; unmatched ground-truth
segments are false negatives. Background (``background=``) forms no segment on either side.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

NO_ACTION = "no action"


@dataclass
class WindowResult:
    """One window's decision: frames ``start..end`` (inclusive, counted from 0 in arrival order)."""

    person: int
    start: int
    end: int
    label: str
    score: float
    scores: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    def to_dict(self, fps: float | None = None) -> dict:
        d = {"event": "window", "person": self.person, "start": self.start, "end": self.end,
             "label": self.label, "score": round(float(self.score), 4)}  # fmt: skip
        if fps:
            d.update(start_s=round(self.start / fps, 3), end_s=round((self.end + 1) / fps, 3))
        return d


@dataclass
class Segment:
    person: int
    start: int
    end: int  # inclusive
    label: str
    score: float
    windows: int = 1

    def to_dict(self, fps: float | None = None) -> dict:
        d = {"event": "segment", "person": self.person, "start": self.start, "end": self.end,
             "label": self.label, "score": round(float(self.score), 4), "windows": self.windows}  # fmt: skip
        if fps:
            d.update(start_s=round(self.start / fps, 3), end_s=round((self.end + 1) / fps, 3))
        return d


class SegmentMerger:
    """Per person: window results in, closed segments out (see the module docstring)."""

    def __init__(self, person: int, classes: Sequence[str], window: int, stride: int, threshold: float = 0.0,
                 smooth: int = 1, no_action: str = NO_ACTION, min_frames: int = 0):  # fmt: skip
        self.person, self.classes = person, list(classes)
        self.window, self.stride = int(window), int(stride)
        self.threshold, self.no_action = float(threshold), no_action
        self.smooth = max(1, int(smooth))
        self._buf: list[WindowResult] = []  # undecided windows and the context they need
        self._undecided = 0
        self._open: Segment | None = None
        self._last_end = -1  # last frame given a decision
        self._last_window_end = -1
        self.min_frames = int(min_frames)
        self._held: Segment | None = None  # the last closed segment, while a short one may still join it

    def _span(self, w: WindowResult, last: bool) -> tuple[int, int]:
        end = w.end if last else min(w.end, w.end - (self.window - self.stride) // 2)
        if self._last_end < 0 or w.start > self._last_end + 1:  # first window, or after a gap
            return w.start, end
        return self._last_end + 1, end

    def _decide(self, w: WindowResult, neighbours: Sequence[WindowResult], last: bool) -> list[Segment]:
        s = np.mean([n.scores for n in neighbours], axis=0) if neighbours[0].scores.size else None
        if s is not None:
            k = int(np.argmax(s))
            label, score = self.classes[k], float(s[k])
        else:
            label, score = w.label, w.score
        if score < self.threshold:
            label = self.no_action
        start, end = self._span(w, last)
        if end < start:
            return []
        out = []
        if self._open is not None and (self._open.label != label or start > self._open.end + 1):
            out += self._emit(self._open)
            self._open = None
        if self._open is None:
            self._open = Segment(self.person, start, end, label, score, 1)
        else:
            o = self._open
            o.score = (o.score * o.windows + score) / (o.windows + 1)
            o.end, o.windows = end, o.windows + 1
        self._last_end = end
        return out

    def _run(self, final: bool) -> list[Segment]:
        out: list[Segment] = []
        half = self.smooth // 2
        while self._undecided > (0 if final else half):
            i = len(self._buf) - self._undecided
            nb = self._buf[max(0, i - half) : i + half + 1]
            out += self._decide(self._buf[i], nb, last=final and self._undecided == 1)
            self._undecided -= 1
        drop = len(self._buf) - self._undecided - half  # keep `half` decided windows as context
        if drop > 0:
            del self._buf[:drop]
        return out

    def add(self, w: WindowResult) -> list[Segment]:
        """A new window (in order); returns the segments it closes."""
        self._buf.append(w)
        self._undecided += 1
        self._last_window_end = max(self._last_window_end, w.end)
        return self._run(final=False)

    def flush(self, last_frame: int | None = None) -> list[Segment]:
        """Decide the windows still waiting for neighbours and close the open segment, which ends at
        ``last_frame`` (the person's last frame) when given, else at the end of the last window."""
        out = self._run(final=True)
        if self._open is not None:
            end = last_frame if last_frame is not None else self._last_window_end
            if end >= self._open.start:
                self._open.end = end
            out += self._emit(self._open)
            self._open = None
        if self._held is not None:
            out.append(self._held)
            self._held = None
        return out

    def _emit(self, seg: Segment) -> list[Segment]:
        """Closed segments in order; with ``min_frames`` a shorter one joins its neighbour (see above)."""
        if self.min_frames <= 1:
            return [seg]
        h = self._held
        if h is None:
            self._held = seg
            return []
        touching = seg.start == h.end + 1
        short = seg.end - seg.start + 1 < self.min_frames
        if touching and (seg.label == h.label or short):  # joins the held segment
            if seg.label == h.label:
                h.score = (h.score * h.windows + seg.score * seg.windows) / (h.windows + seg.windows)
                h.windows += seg.windows
            h.end = seg.end
            return []
        if touching and h.end - h.start + 1 < self.min_frames:  # the held one is short: it joins this one
            seg.start = h.start
            self._held = seg
            return []
        self._held = seg
        return [h]


# ------------------------------------------------------------------------------ metrics
def labels_to_segments(
    labels: Sequence[Hashable], background: Hashable | None = None
) -> list[tuple[Hashable, int, int]]:
    """Runs of equal labels as (label, start, end) with ``end`` inclusive; background runs left out."""
    out = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != background:
                out.append((labels[start], start, i - 1))
            start = i
    return out


def frame_accuracy(
    pred: Sequence[Hashable], true: Sequence[Hashable], ignore: Hashable | None = None
) -> float:
    """Share of frames (where ``true`` is not ``ignore``) whose predicted label is the true one."""
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} predicted frames but {len(true)} true ones")
    keep = [i for i, t in enumerate(true) if t != ignore] if ignore is not None else range(len(true))
    keep = list(keep)
    return sum(pred[i] == true[i] for i in keep) / len(keep) if keep else float("nan")


def segment_f1(pred: Sequence[Hashable], true: Sequence[Hashable], iou: float,
               background: Hashable | None = None) -> float:  # fmt: skip
    """Segmental F1 at IoU threshold ``iou`` between two frame-label sequences (module docstring)."""
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} predicted frames but {len(true)} true ones")
    ps, ts = labels_to_segments(pred, background), labels_to_segments(true, background)
    hit = [False] * len(ts)
    tp = fp = 0
    for lab, s, e in ps:
        best, bj = 0.0, -1
        for j, (tl, ts_, te) in enumerate(ts):
            if tl != lab:
                continue
            inter = min(e, te) - max(s, ts_) + 1
            if inter <= 0:
                continue
            union = max(e, te) - min(s, ts_) + 1
            if inter / union > best:
                best, bj = inter / union, j
        if bj >= 0 and best >= iou and not hit[bj]:
            tp += 1
            hit[bj] = True
        else:
            fp += 1
    fn = len(ts) - sum(hit)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def segments_to_frames(segments: Sequence[Segment], num_frames: int, person: int | None = None,
                       fill: str = NO_ACTION) -> list[str]:  # fmt: skip
    """Per-frame labels of one person's segments (frames no segment covers get ``fill``)."""
    out = [fill] * num_frames
    for s in segments:
        if person is None or s.person == person:
            for f in range(max(0, s.start), min(num_frames, s.end + 1)):
                out[f] = s.label
    return out
