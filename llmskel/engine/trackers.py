"""A JSON-lines tracker for Accelerate: one ``{"step": ..., metrics...}`` object per log call.

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

from accelerate.tracking import GeneralTracker


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
