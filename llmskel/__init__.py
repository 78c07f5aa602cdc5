"""llmskel: skeleton-based action recognition with language.

Supervised recognition with part-wise language alignment (GAP), zero-shot recognition of classes
named at inference time, few-shot / one-shot recognition, and a LoRA-tuned LLM as recognizer.

The public API is importable from here; each name is imported on first use, so ``import llmskel``
stays light (no torch until a model is touched)::

    import llmskel
    model = llmskel.load("runs/ucla/best")          # any saved folder or Hub id -> the right class
    preds = model.predict(llmskel.read_any("clip.json"))
    print(preds[0].label, preds[0].score)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily by __getattr__)
_API = {
    "load": "llmskel.models.folders",
    "SkeletonModel": "llmskel.models.skeleton_model",
    "SkeletonModelConfig": "llmskel.models.skeleton_model",
    "SkeletonVQTokenizer": "llmskel.models.vq_tokenizer",
    "SkeletonLlm": "llmskel.models.llm_recognizer",
    "create_model": "llmskel.models.registry",
    "list_models": "llmskel.models.registry",
    "classify": "llmskel.methods.zero_shot_text",
    "FewShotClassifier": "llmskel.methods.few_shot",
    "load_support": "llmskel.methods.few_shot",
    "Prediction": "llmskel.prediction",
    "LabelScore": "llmskel.prediction",
    "read_any": "llmskel.data.io",
    "SkeletonSample": "llmskel.data.sample",
    "get_layout": "llmskel.data.layouts",
    "load_experiment": "llmskel.engine.config",
    "training_function": "llmskel.engine.trainer",
    "push_model": "llmskel.hub",
    "LlmskelError": "llmskel.errors",
}
# parts that other branches add: exported when present
if importlib.util.find_spec("llmskel.stream") is not None:
    _API["StreamRecognizer"] = "llmskel.stream"

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'llmskel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
