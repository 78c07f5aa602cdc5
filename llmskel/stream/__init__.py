"""Recognising actions in long recordings and live streams of skeleton frames.

* :mod:`.recognizer`: :class:`StreamRecognizer`, sliding windows per person, batched, bounded memory;
* :mod:`.tracker`: identities across frames (the estimator's track ids, else nearest keypoint centre);
* :mod:`.segments`: windows merged into segments, and the action-segmentation metrics;
* :mod:`.commands`: ``llmskel stream``, its terminal timeline and ``--plot``.
"""

import importlib
from typing import Any

# loaded on first use, so that ``llmskel --help`` (which imports llmskel.stream.commands) stays light
_EXPORTS = {
    "CentroidTracker": "tracker", "DimensionMismatchError": "recognizer", "Segment": "segments",
    "StreamRecognizer": "recognizer", "WindowResult": "segments", "frame_accuracy": "segments",
    "labels_to_segments": "segments", "segment_f1": "segments",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
