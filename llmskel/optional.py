"""Optional dependencies: imported when a feature needs them, with one clear line when missing.

The core install (``pip install llmskel``) trains and runs the GCN models; the extras add the
rest: ``clip`` (open_clip text encoders), ``text`` (sentence-transformers), ``llm`` (peft, gguf:
the LLM recognizer), ``hf`` (Hugging Face datasets), ``export`` (ONNX export and onnxruntime),
``all`` (every one).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import LlmskelError

# import name -> (pip distribution, llmskel extra)
OPTIONAL = {
    "open_clip": ("open_clip_torch", "clip"),
    "sentence_transformers": ("sentence-transformers", "text"),
    "peft": ("peft", "llm"),
    "gguf": ("gguf", "llm"),
    "datasets": ("datasets", "hf"),
    "onnx": ("onnx", "export"),
    "onnxscript": ("onnxscript", "export"),
    "onnxruntime": ("onnxruntime", "export"),
}


class MissingDependencyError(LlmskelError, ImportError):
    """An optional package that a feature needs is not installed."""


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (a key of :data:`OPTIONAL`) or raise :class:`MissingDependencyError`
    naming ``feature`` and the ``pip install`` line that brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module.split(".")[0]:
            raise  # the package is there but one of its own imports failed: show that
        dist, extra = OPTIONAL[module.split(".")[0]]
        raise MissingDependencyError(
            f"{feature} needs the {dist} package, which is not installed: pip install 'llmskel[{extra}]'"
            f" (or pip install {dist})"
        ) from None
