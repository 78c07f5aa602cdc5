"""Streaming recognition: frames in, per-person window decisions and merged segments out.

:class:`StreamRecognizer` takes frames one at a time (:meth:`~StreamRecognizer.push`): a
:class:`~llmskel.data.readers.estimators.PoseFrame`, a frame object as a pose estimator writes it
(a dict, or one JSON line as text), or an array ``(M, V, C)``. For each frame it

1. parses and cleans it once (missing and low-confidence joints filled as absent, see
   :mod:`llmskel.data.readers.estimators`), links persons across frames (:mod:`.tracker`), converts
   each person's joints to the model's layout once, and writes them into that person's ring buffer
   of ``window`` frames: this per-frame work is never repeated for the windows that overlap it;
2. every ``stride`` frames (counted from the first frame, the same clock for every person) queues
   one window per person present in at least ``min_present`` of it;
3. classifies queued windows together, ``batch_windows`` at a time (1: every window is decided at
   once, the lowest latency; more: fewer, larger forward passes), with the classification code of
   the model's mode: :meth:`~llmskel.hub.SkeletonModel.predict_proba` (supervised and GAP models),
   :func:`llmskel.methods.zero_shot_text.classify` (``labels=``, zero-shot) or
   :class:`~llmskel.methods.few_shot.FewShotClassifier` (``support=``, few-shot; scores are cosine
   similarities, not probabilities);
4. merges decisions into segments (:class:`~llmskel.stream.segments.SegmentMerger`).

**Memory is bounded**: per active person one ring buffer of ``window`` frames and the open
segment; a person not seen for ``max_gap`` frames is closed and forgotten (a person who comes
back later gets a new id). Closed segments are returned, not kept. Per-person summary statistics
are kept for at most :data:`MAX_PERSON_STATS` persons, and at most ``max_problems`` problem reports.

**Bad input never stops the stream**: a malformed frame, a frame whose joint count does not match
the stream's layout, or a frame in another layout is dropped and reported (``where`` and why); NaN
joints are filled as missing and reported; a person without keypoints is left out and reported.
:meth:`~StreamRecognizer.summary` counts all of it. The one fatal error is a 2D input for a 3D
model (or the reverse): :class:`DimensionMismatchError`, raised on the first frame.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.layouts import can_convert, conversion_matrix, get_layout
from ..data.readers.estimators import MIN_SCORE, PoseFrame, clean_keypoints, parse_frame
from ..data.sample import SkeletonSample
from ..data.transforms import default_spatial_dims
from ..errors import ConfigError, LlmskelError
from .segments import NO_ACTION, Segment, SegmentMerger, WindowResult
from .tracker import CentroidTracker

log = logging.getLogger(__name__)

MAX_PERSON_STATS = 1000
_3D = ("ntu25", "kinect20")


class DimensionMismatchError(LlmskelError, ValueError):
    """A 2D input (x, y, score) given to a 3D model (x, y, z), or the reverse."""


def parse_span(value: int | float | str | None, fps: float | None, what: str) -> int | None:
    """Frames from ``48`` (frames) or ``"1.5s"`` (seconds, needs ``fps``)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.endswith("s"):
        if not fps:
            raise ConfigError(f"{what} {value!r} is in seconds: give the frame rate (--fps)")
        n = round(float(text[:-1]) * float(fps))
    else:
        try:
            n = int(text)
        except ValueError:
            raise ConfigError(f"{what} must be frames (48) or seconds (1.5s), got {value!r}") from None
    if n < 1:
        raise ConfigError(f"{what} must be at least one frame, got {value!r}")
    return n


def model_spatial_dims(model) -> int:
    dims = model.data_config().spatial_dims
    return int(dims) if dims else default_spatial_dims(model.layout, 3)


def _dims_name(d: int) -> str:
    return "3D (x, y, z)" if d == 3 else "2D (x, y, score)"


def check_dimensions(model, input_layout: str, channels: int = 3, where: str = "the input") -> None:
    """A clear :class:`DimensionMismatchError` when ``input_layout`` data cannot feed ``model``."""
    d_in = default_spatial_dims(input_layout, channels)
    d_model = model_spatial_dims(model)
    name = getattr(model, "name_or_path", None) or "the model"
    if d_in != d_model:
        hint = (
            "use a model trained on 2D data (pose-estimator keypoints, or the 2D projections of a 3D "
            "dataset: preprocessing spatial_dims 2)"
            if d_in == 2
            else "use a model trained on 3D data, or give 2D keypoints"
        )
        raise DimensionMismatchError(
            f"{where} is {_dims_name(d_in)} (layout {get_layout(input_layout).name}) but {name} expects "
            f"{_dims_name(d_model)} (layout {model.layout}); a {d_in}D input is never fed to a {d_model}D model: {hint}"
        )
    if not can_convert(input_layout, model.layout):
        raise DimensionMismatchError(
            f"{where} has layout {get_layout(input_layout).name} and {name} expects {model.layout}: "
            "no conversion between them"
        )


class WindowClassifier:
    """Scores (N, K) of window samples with the model's own classification code (see the module)."""

    def __init__(self, model, labels: Sequence[str] | str | None = None, support: Any = None,
                 support_labels: Sequence[str] | None = None, prompts: Any = None, text_fusion: float = 0.0):  # fmt: skip
        self.model = model
        self.labels = None
        self.fewshot = None
        if labels is not None and support is not None:
            raise ConfigError("give either labels (zero-shot) or a support set (few-shot), not both")
        if labels is not None:
            from ..methods.zero_shot_text import check_labels

            self.labels = check_labels(labels)
            self.prompts = prompts
            self.classes = list(self.labels)
            self.mode, self.score_kind = "zero-shot", "probability"
            self(np.zeros((0,)))  # builds the text prototypes now, not on the first window
        elif support is not None:
            from ..methods.few_shot import FewShotClassifier, load_support

            if support_labels is None:
                support, support_labels = load_support(support, layout=model.layout)
            self.fewshot = FewShotClassifier(model, support, support_labels, text_fusion=text_fusion)
            self.classes = list(self.fewshot.classes)
            self.mode, self.score_kind = "few-shot", "cosine"
        else:
            self.classes = list(model.classes)
            self.mode, self.score_kind = str(getattr(model.config, "method", "supervised")), "probability"

    def __call__(self, samples: Sequence[Any]) -> np.ndarray:
        if len(samples) == 0:
            if self.labels is not None:
                from ..methods.zero_shot_text import get_text_encoder, load_prompts, prototypes, text_side

                side = text_side(self.model)
                prototypes(get_text_encoder(side.encoder), self.labels, load_prompts(self.prompts, side.prompts),
                           None, side.sources)  # fmt: skip
            return np.zeros((0, len(self.classes)), np.float32)
        if self.labels is not None:
            from ..methods.zero_shot_text import classify

            ranks = classify(self.model, samples, self.labels, prompts=self.prompts, top_k=len(self.labels),
                             batch_size=len(samples))  # fmt: skip
            index = {c: i for i, c in enumerate(self.labels)}
            out = np.zeros((len(samples), len(self.labels)), np.float32)
            for r, pred in enumerate(ranks):
                for t in pred.top_k:
                    out[r, index[t.label]] = t.score
            return out
        if self.fewshot is not None:
            return self.fewshot.scores(samples).numpy()
        return self.model.predict_proba(samples, batch_size=len(samples))


@dataclass
class _Person:
    id: int
    buf: np.ndarray  # (window, V, C) in the model's layout
    present: np.ndarray  # (window,) bool
    first: int
    last_seen: int
    merger: SegmentMerger
    last_window_end: int = -1


@dataclass
class _Stats:
    first: int
    last: int
    frames: int = 0
    missing: int = 0
    joints: int = 0
    windows: int = 0


@dataclass
class StreamSummary:
    frames: int = 0
    frames_dropped: int = 0
    persons_dropped: int = 0
    nan_joints: int = 0
    windows: int = 0
    segments: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    problems_total: int = 0
    decision_seconds: float = 0.0
    decisions: int = 0


class StreamRecognizer:
    """Sliding-window recognition of every person in a stream of frames (see the module docstring).

    ``window`` / ``stride``: frames, or seconds as ``"2s"`` with ``fps`` (defaults: the model's
    ``num_frames`` and a quarter of the window). ``threshold``: below it a window is ``no action``
    (default 0: always the best class). ``smooth``: windows averaged per decision (odd, 1 = none).
    ``min_segment``: frames (or seconds); shorter segments join their neighbour (0 = off).
    """

    def __init__(self, model, labels: Sequence[str] | str | None = None, support: Any = None, *,
                 support_labels: Sequence[str] | None = None, window: int | str | None = None,
                 stride: int | str | None = None, fps: float | None = None, threshold: float = 0.0, smooth: int = 1,
                 batch_windows: int = 1, input_layout: str | None = None, min_score: float = MIN_SCORE,
                 min_present: float = 0.5, max_gap: int | None = None, track_distance: float = 0.5,
                 prompts: Any = None, text_fusion: float = 0.0, max_problems: int = 100,
                 no_action: str = NO_ACTION, min_segment: int | str | None = None):  # fmt: skip
        self.model = model.eval()
        self.classifier = WindowClassifier(model, labels, support, support_labels, prompts, text_fusion)
        self.classes = self.classifier.classes
        self.fps = float(fps) if fps else None
        self.window = parse_span(window, fps, "window") or int(model.data_config().num_frames)
        self.stride = parse_span(stride, fps, "stride") or max(1, self.window // 4)
        if self.stride > self.window:
            raise ConfigError(f"stride ({self.stride} frames) is longer than the window ({self.window})")
        self.threshold, self.smooth, self.no_action = float(threshold), int(smooth), no_action
        self.min_segment = 0 if min_segment in (None, 0, "0") else parse_span(min_segment, fps, "min_segment")
        self.batch_windows = max(1, int(batch_windows))
        self.min_score, self.min_present = float(min_score), float(min_present)
        self.max_gap = int(max_gap) if max_gap is not None else self.window
        self.max_problems = int(max_problems)
        self.model_dims = model_spatial_dims(model)
        self.layout = get_layout(model.layout)
        self.input_layout: str | None = None
        self._track_distance = float(track_distance)
        self.tracker: CentroidTracker | None = None
        if input_layout:
            self._set_layout(get_layout(input_layout).name, 3, "the input")
        self.t = 0
        self.persons: dict[int, _Person] = {}
        self.stats: dict[int, _Stats] = {}
        self.pending: list[tuple[_Person, int, int, np.ndarray]] = []
        self.info = StreamSummary()

    # ---------------------------------------------------------------------------- set-up
    def _set_layout(self, layout: str, channels: int, where: str) -> None:
        check_dimensions(self.model, layout, channels, where)
        self.input_layout = layout
        w = conversion_matrix(layout, self.layout)
        self._conv = None if np.array_equal(w, np.eye(len(w))) and w.shape[0] == w.shape[1] else w
        self._needs = w != 0  # (V_out, V_in): the source joints each target joint needs
        self.tracker = CentroidTracker(self._track_distance, self.max_gap, self.model_dims)

    def _problem(self, where: str, what: str) -> None:
        self.info.problems_total += 1
        if len(self.info.problems) < self.max_problems:
            self.info.problems.append({"where": where, "problem": what})
        log.warning("%s: %s", where, what)

    # ---------------------------------------------------------------------------- input
    def _to_frame(self, frame: Any, t: int) -> PoseFrame:
        if isinstance(frame, PoseFrame):
            return frame
        if isinstance(frame, np.ndarray):
            arr = frame[None] if frame.ndim == 2 else frame
            if arr.ndim != 3:
                raise ValueError(f"an array frame must be (M, V, C) or (V, C), got shape {frame.shape}")
            from ..data.readers.estimators import PosePerson

            return PoseFrame(
                t, [PosePerson(a, m) for m, a in enumerate(arr) if a.any()], layout=self.input_layout
            )
        if isinstance(frame, (str, bytes)):
            frame = json.loads(frame)
        fr, _, _ = parse_frame(frame, t, self.input_layout, self.min_score)
        return fr

    def push(self, frame: Any, where: str | None = None) -> list[WindowResult | Segment]:
        """One frame in; the window results and closed segments it produced out (in order)."""
        t = self.t
        self.t += 1
        self.info.frames += 1
        where = where or f"frame {t}"
        persons: list[tuple[int | None, np.ndarray]] = []
        try:
            fr = self._to_frame(frame, t)
            lay = (
                get_layout(fr.layout or self.input_layout or "").name
                if (fr.layout or self.input_layout)
                else None
            )
            if fr.persons and lay is None:
                raise ValueError("the frame does not say its layout; name the input layout")
            if lay is not None and self.input_layout is None:
                self._set_layout(lay, fr.persons[0].keypoints.shape[-1] if fr.persons else 3, where)
            if lay is not None and lay != self.input_layout:
                raise ValueError(f"layout {lay} differs from the stream's {self.input_layout}")
            n_in = get_layout(self.input_layout).num_joints if self.input_layout else None
            for i, p in enumerate(fr.persons):
                kp = np.asarray(p.keypoints, dtype=np.float32)
                if kp.ndim != 2 or kp.shape[0] != n_in:
                    raise ValueError(f"person {i} has {kp.shape[0] if kp.ndim else 0} joints; the stream's "
                                     f"layout {self.input_layout} has {n_in}")  # fmt: skip
                if kp.shape[1] != 3:
                    raise ValueError(f"person {i} has {kp.shape[1]} channels per joint, expected 3")
                persons.append((p.track_id, kp))
            if fr.nan_joints:
                self.info.nan_joints += fr.nan_joints
                self._problem(where, f"{fr.nan_joints} NaN joint(s), filled as missing")
            if fr.empty_persons:
                self.info.persons_dropped += fr.empty_persons
                self._problem(where, f"{fr.empty_persons} person(s) without keypoints left out")
        except DimensionMismatchError:
            raise
        except (ValueError, TypeError, KeyError) as e:
            self.info.frames_dropped += 1
            self._problem(where, f"frame dropped: {e}")
            persons = []
        return self._advance(t, persons)

    # ---------------------------------------------------------------------------- per frame
    def _convert(self, kp: np.ndarray) -> tuple[np.ndarray, int]:
        has_score = self.model_dims == 2
        kp, missing = clean_keypoints(kp, self.min_score, has_score)
        if self._conv is None:
            return kp, missing
        present = (kp != 0).any(axis=-1)
        out = self._conv @ kp
        out[(self._needs & ~present[None]).any(axis=1)] = 0.0  # a joint made from a missing one is missing
        return out.astype(np.float32), missing

    def _advance(self, t: int, persons: list[tuple[int | None, np.ndarray]]) -> list[WindowResult | Segment]:
        events: list[WindowResult | Segment] = []
        slot = t % self.window
        seen: set[int] = set()
        if persons and self.tracker is not None:
            ids = self.tracker.update(t, [kp for _, kp in persons], [g for g, _ in persons])
            for pid, (_, kp) in zip(ids, persons):
                if pid in seen:  # the same given track id twice in one frame: keep the first
                    self.info.persons_dropped += 1
                    self._problem(f"frame {t}", f"track id {pid} appears twice; the second is left out")
                    continue
                x, missing = self._convert(kp)
                if not x.any():
                    continue
                seen.add(pid)
                p = self.persons.get(pid)
                if p is None:
                    p = _Person(pid, np.zeros((self.window, *x.shape), np.float32), np.zeros(self.window, bool), t, t,
                                SegmentMerger(pid, self.classes, self.window, self.stride, self.threshold,
                                              self.smooth, self.no_action, self.min_segment))  # fmt: skip
                    self.persons[pid] = p
                p.buf[slot] = x
                p.present[slot] = True
                p.last_seen = t
                st = self.stats.get(pid)
                if st is None and len(self.stats) < MAX_PERSON_STATS:
                    st = self.stats[pid] = _Stats(t, t)
                if st is not None:
                    st.last, st.frames = t, st.frames + 1
                    st.missing, st.joints = st.missing + missing, st.joints + len(kp)
        for pid, p in list(self.persons.items()):
            if pid not in seen:
                p.buf[slot] = 0.0
                p.present[slot] = False
                if t - p.last_seen > self.max_gap:  # gone: decide what is queued, close the person
                    events += self._close(p)
        if (t + 1) % self.stride == 0:
            for p in self.persons.values():
                self._queue(p, t)
        if len(self.pending) >= self.batch_windows:
            events += self._classify()
        return events

    def _queue(self, p: _Person, t: int) -> None:
        if p.present.sum() < self.min_present * self.window:
            return
        idx = np.arange(t - self.window + 1, t + 1) % self.window
        start = max(t - self.window + 1, p.first)
        self.pending.append((p, start, t, p.buf[idx][:, None].copy()))  # (W, 1, V, C)
        p.last_window_end = t

    def _classify(self) -> list[WindowResult | Segment]:
        if not self.pending:
            return []
        batch, self.pending = self.pending, []
        samples = [
            SkeletonSample(x, self.layout.name, extra={"spatial_dims": self.model_dims})
            for _, _, _, x in batch
        ]
        t0 = time.perf_counter()
        scores = self.classifier(samples)
        self.info.decision_seconds += time.perf_counter() - t0
        self.info.decisions += 1
        events: list[WindowResult | Segment] = []
        for (p, start, end, _), s in zip(batch, scores):
            k = int(np.argmax(s))
            w = WindowResult(p.id, start, end, self.classes[k], float(s[k]), np.asarray(s, np.float32))
            if w.score < self.threshold:
                w.label = self.no_action
            events.append(w)
            self.info.windows += 1
            if p.id in self.stats:
                self.stats[p.id].windows += 1
            for seg in p.merger.add(w):
                events.append(seg)
                self.info.segments += 1
        return events

    def _close(self, p: _Person) -> list[WindowResult | Segment]:
        events: list[WindowResult | Segment] = []
        if p.last_window_end < p.last_seen:  # the frames after its last window
            end = p.last_seen
            t_now = self.t - 1
            idx = np.arange(t_now - self.window + 1, t_now + 1) % self.window
            x = p.buf[idx][:, None].copy()
            keep = np.arange(t_now - self.window + 1, t_now + 1) <= end
            x[~keep] = 0.0
            if p.present[idx][keep].any():
                self.pending.append((p, max(end - self.window + 1, p.first), end, x))
        events += self._classify()
        for seg in p.merger.flush(p.last_seen):
            events.append(seg)
            self.info.segments += 1
        del self.persons[p.id]
        return events

    def flush(self) -> list[WindowResult | Segment]:
        """End of the input: decide every queued window and close every person's open segment."""
        events = self._classify()
        for p in sorted(self.persons.values(), key=lambda q: q.id):
            events += self._close(p)
        return events

    def run(self, frames: Iterable[Any]) -> Iterator[WindowResult | Segment]:
        """Push every frame (or ``(frame, where)`` pair) and flush at the end; yields events as they come."""
        for item in frames:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
                yield from self.push(item[0], item[1])
            else:
                yield from self.push(item)
        yield from self.flush()

    # ---------------------------------------------------------------------------- report
    def summary(self) -> dict[str, Any]:
        i = self.info
        per = {
            str(pid): {
                "first_frame": s.first,
                "last_frame": s.last,
                "frames": s.frames,
                "windows": s.windows,
                "missing_fraction": round(s.missing / s.joints, 4) if s.joints else 0.0,
            }  # fmt: skip
            for pid, s in self.stats.items()
        }
        return {
            "event": "summary", "frames": i.frames, "frames_dropped": i.frames_dropped,
            "persons_dropped": i.persons_dropped, "nan_joints": i.nan_joints, "windows": i.windows,
            "segments": i.segments, "window": self.window, "stride": self.stride, "fps": self.fps,
            "mode": self.classifier.mode, "score": self.classifier.score_kind, "threshold": self.threshold,
            "input_layout": self.input_layout, "model_layout": self.layout.name,
            "ms_per_decision": round(1000 * i.decision_seconds / i.decisions, 2) if i.decisions else None,
            "persons": per, "problems": i.problems, "problems_total": i.problems_total,
        }  # fmt: skip


def frames_from_sample(sample: SkeletonSample) -> Iterator[PoseFrame]:
    """A (T, M, V, C) sample as frames, body index = track id (absent bodies are all-zero)."""
    from ..data.readers.estimators import PosePerson

    for t, bodies in enumerate(np.asarray(sample.data, np.float32)):
        yield PoseFrame(t, [PosePerson(b, m) for m, b in enumerate(bodies) if b.any()], layout=sample.layout)
