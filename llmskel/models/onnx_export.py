"""ONNX export of a saved skeleton model (``llmskel export``).

The encoder returns an :class:`~llmskel.models.common.EncoderOutput` dataclass, which neither
``torch.onnx`` nor ``torch.export`` can trace as an output; :class:`PlainOutputs` wraps the model so
that it returns plain tensors: ``logits`` (N, classes) and ``features`` (N, D). The graph takes the
preprocessed batch ``x`` (N, C, T, V, M), as :meth:`SkeletonModel.prepare_inputs` makes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import LlmskelError


class ExportError(LlmskelError):
    """The model could not be exported or the exported graph disagrees with the eager model."""


class PlainOutputs(nn.Module):
    """``model(x)`` -> ``(logits, features)`` as tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.logits, out.feature


def example_input(model, batch: int = 1) -> torch.Tensor:
    """A zero batch of the shape the model's saved preprocessing produces."""
    arch = model.config.model
    pre = model.data_config()
    from ..data.layouts import get_layout

    joints = get_layout(model.layout).num_joints
    return torch.zeros(batch, int(arch.get("in_channels", 3)), int(pre.num_frames), joints, int(arch.get("num_bodies", pre.num_bodies)))  # fmt: skip


def export_onnx(model, out_file: str | os.PathLike, dynamic_batch: bool = False, opset: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Export ``model`` (a :class:`SkeletonModel`) to ``out_file`` through ``torch.onnx.export``
    (the ``torch.export``-based exporter); returns the input shape and names."""
    from ..optional import require

    require("onnxscript", "ONNX export")
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = PlainOutputs(model.eval()).eval()
    x = example_input(model, batch=2 if dynamic_batch else 1)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    kwargs: dict[str, Any] = {"opset_version": opset} if opset else {}
    try:
        with torch.no_grad():
            torch.onnx.export(wrapper, (x,), str(out), input_names=["x"], output_names=["logits", "features"],
                              dynamo=True, dynamic_shapes=dynamic_shapes, external_data=False, **kwargs)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; report one line
        raise ExportError(
            f"ONNX export of {type(model.encoder).__name__} failed: {type(e).__name__}: {str(e)[:500]}"
        ) from e
    return {"out": str(out), "input": "x", "input_shape": ["batch" if dynamic_batch else 1, *x.shape[1:]],
            "outputs": ["logits", "features"], "bytes": out.stat().st_size}  # fmt: skip


def check_onnx(model, onnx_file: str | os.PathLike, x: torch.Tensor) -> dict[str, float]:
    """Run ``onnx_file`` with onnxruntime on ``x`` and compare with the eager model: max |diff|."""
    from ..optional import require

    ort = require("onnxruntime", "checking an ONNX export")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    logits, feats = sess.run(["logits", "features"], {"x": x.numpy()})
    with torch.no_grad():
        ref = model.eval()(x)
    return {
        "max_abs_diff_logits": float((torch.from_numpy(logits) - ref.logits).abs().max()),
        "max_abs_diff_features": float((torch.from_numpy(feats) - ref.feature).abs().max()),
        "max_abs_logit": float(ref.logits.abs().max()),
        "max_rel_diff_logits": float(
            (torch.from_numpy(logits) - ref.logits).abs().max() / ref.logits.abs().max()
        ),
    }
