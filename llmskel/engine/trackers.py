"""Experiment trackers: our JSON-lines tracker and every tracker Accelerate knows.

``train.trackers`` takes ``jsonl`` (:class:`JsonlTracker`, one ``{"step": ..., metrics...}`` object
per log call, no extra package) and any name in ``accelerate.tracking.LOGGER_TYPE_TO_CLASS`` of the
installed Accelerate (tensorboard, wandb, trackio, mlflow, comet_ml, aim, clearml, dvclive, swanlab
in 1.16). :func:`resolve_trackers` checks them before training starts: an unknown name lists the
valid ones, a tracker whose library is missing names the package to install (Accelerate itself would
only drop it with a debug message).

Accelerate calls a tracker's ``log`` and ``store_init_configuration`` on the main process only.
The file opens on first use: constructing the tracker must not touch Accelerate's process state
(its ``on_main_process`` helpers would create that state before the ``Accelerator`` does, and it
would then miss ``ACCELERATE_USE_CPU`` and see one process instead of several).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker

from ..errors import ConfigError

# pip names where they differ from the tracker name
_PACKAGES = {"comet_ml": "comet-ml"}


class TrackerUnavailableError(ConfigError):
    """A tracker named in ``train.trackers`` needs a library that is not installed."""


class JsonlTracker(GeneralTracker):
    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / "metrics.jsonl"
        self._f = None

    @property
    def tracker(self):
        return self._file()

    def _file(self):
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")
        return self._f

    def store_init_configuration(self, values: dict):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (self.path.parent / "hparams.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict, step: int | None = None, **kwargs):
        rec = {"step": step, "time": round(time.time(), 3)}
        rec.update({k: (float(v) if hasattr(v, "__float__") else v) for k, v in values.items()})
        f = self._file()
        f.write(json.dumps(rec) + "\n")
        f.flush()

    def finish(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def accelerate_trackers() -> dict[str, Any]:
    """Tracker names the installed Accelerate knows -> its ``is_<name>_available`` check (None for a
    tracker class registered at run time with ``register_tracker_class``, which needs no check)."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS
    from accelerate.utils import imports

    return {name: getattr(imports, f"is_{name}_available", None) for name in LOGGER_TYPE_TO_CLASS}


def resolve_trackers(names: list[str], run_name: str, logging_dir: str | os.PathLike) -> list[Any]:
    """``train.trackers`` -> what ``Accelerator(log_with=...)`` takes: a :class:`JsonlTracker` for
    ``jsonl``, the name itself for Accelerate's trackers. Raises :class:`ConfigError` for an unknown
    name and :class:`TrackerUnavailableError` when a tracker's library is not installed."""
    known = accelerate_trackers()
    out: list[Any] = []
    for name in names:
        if name == "jsonl":
            out.append(JsonlTracker(run_name, logging_dir))
        elif name in known:
            available = known[name]
            if available is not None and not available():
                pkg = _PACKAGES.get(name, name)
                raise TrackerUnavailableError(
                    f"config key 'train.trackers': tracker {name!r} needs the {pkg!r} package, which is not "
                    f"installed (accelerate.utils.is_{name}_available() is false): pip install {pkg}, or "
                    "remove it from train.trackers"
                )
            out.append(name)
        else:
            valid = ", ".join(["jsonl", *sorted(known)])
            raise ConfigError(f"config key 'train.trackers': unknown tracker {name!r}; valid: {valid}")
    return out
