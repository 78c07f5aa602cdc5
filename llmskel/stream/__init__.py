"""Recognising actions in long recordings and live streams of skeleton frames.

* :mod:`.recognizer`: :class:`StreamRecognizer`, sliding windows per person, batched, bounded memory;
* :mod:`.tracker`: identities across frames (the estimator's track ids, else nearest keypoint centre);
* :mod:`.segments`: windows merged into segments, and the action-segmentation metrics;
* :mod:`.commands`: ``llmskel stream``, its terminal timeline and ``--plot``.
"""

from .recognizer import DimensionMismatchError, StreamRecognizer, WindowResult
from .segments import Segment, frame_accuracy, labels_to_segments, segment_f1
from .tracker import CentroidTracker

__all__ = [
    "CentroidTracker", "DimensionMismatchError", "Segment", "StreamRecognizer", "WindowResult", "frame_accuracy",
    "labels_to_segments", "segment_f1",
]  # fmt: skip
