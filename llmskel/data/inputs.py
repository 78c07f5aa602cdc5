"""Raw skeletons -> model input through a saved model's preprocessing: the one path every saved
model uses (the GCN :class:`~llmskel.models.skeleton_model.SkeletonModel`, the VQ tokenizer and,
through it, the LLM recognizer).

* :func:`as_sample_list`: what ``predict`` / ``classify`` accept, as a list of single samples;
* :func:`preprocessing_config`: a folder's ``preprocessing`` record as a :class:`DataConfig`;
* :func:`prepare_inputs`: samples or arrays -> (N, C, T, V, M), checked against the layout and the
  channels, layouts converted when a conversion exists, each input named in errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import SkeletonFormatError


def as_sample_list(samples: Any) -> list[Any]:
    """What a model's ``predict`` accepts, as a list of single samples.

    An array (numpy or torch) of rank 3 or 4 is ONE sample ((T, V, C) or (T, M, V, C)); rank 5 is
    a batch (N, T, M, V, C); any other rank is an error. A :class:`SkeletonSample` is one sample;
    anything else is taken as a sequence of samples.
    """
    from .sample import SkeletonSample

    if isinstance(samples, SkeletonSample):
        return [samples]
    if isinstance(samples, (np.ndarray, torch.Tensor)):
        arr = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
        if arr.ndim in (3, 4):
            return [arr]
        if arr.ndim == 5:
            return list(arr)
        raise SkeletonFormatError(
            "input",
            f"expected one sample (T, M, V, C) or (T, V, C), a batch (N, T, M, V, C) or a list of "
            f"samples; got an array of shape {tuple(arr.shape)}",
        )
    return list(samples)


def preprocessing_config(preprocessing: dict[str, Any]):
    """A saved ``preprocessing`` record (keys of :class:`DataConfig`) as the DataConfig it describes."""
    from ..config import from_dict
    from .config import DataConfig

    pre = dict(preprocessing)
    pre.setdefault("dataset", "synthetic")
    return from_dict(DataConfig, pre, prefix="preprocessing")


def prepare_inputs(samples: Any, layout: str, preprocessing: dict[str, Any],
                   channels: int | None = None, pipe: Any = None) -> torch.Tensor:  # fmt: skip
    """Samples or (T, M, V, C) / (T, V, C) arrays -> (N, C, T, V, M) through the evaluation pipeline of
    ``preprocessing``, in ``layout``.

    ``samples``: see :func:`as_sample_list`. Arrays are taken to be in ``layout``; a sample in another
    layout is converted when a conversion exists, else the error names both layouts. Joints and (when
    ``channels`` is given) channels are checked, with an error naming the input. ``pipe``: the
    evaluation pipeline of ``preprocessing`` when the caller keeps one (built here otherwise).

    A joint-space model (``preprocessing.joint_space``, llmskel.data.joint_space) takes any layout
    that maps into the joint space; its pipeline maps it and refuses 2D input to a 3D model."""
    from .layouts import can_convert, convert_layout, get_layout
    from .pipeline import SkeletonPipeline
    from .sample import SkeletonSample, to_model_input, validate_array

    samples = as_sample_list(samples)
    if pipe is None:
        pipe = SkeletonPipeline(preprocessing_config(preprocessing), layout, train=False)
    cfg = pipe.cfg  # a kept pipeline is not rebuilt: parsing the config costs more than a small forward
    dst = get_layout(layout).name
    joint_space = bool(getattr(pipe, "joint_space", False))
    if joint_space:
        channels = None  # the pipeline builds the joint-space channels (mask or score) itself
    xs = []
    for i, s in enumerate(samples):
        if not isinstance(s, SkeletonSample):
            try:
                arr = np.asarray(s, dtype=np.float32)
            except (ValueError, TypeError) as e:
                raise SkeletonFormatError(f"input {i}", f"not a numeric array ({e})") from None
            if arr.ndim == 3:
                arr = arr[:, None]
            s = SkeletonSample(validate_array(arr, layout, source=f"input {i}"), layout)
        if channels is not None and s.data.shape[-1] != int(channels):
            raise SkeletonFormatError(
                s.source or f"input {i}",
                f"{s.data.shape[-1]} channels per joint, but this model takes {int(channels)} "
                f"(data shape {tuple(s.data.shape)}, expected (T, M, {get_layout(layout).num_joints}, "
                f"{int(channels)}))",
            )
        src = get_layout(s.layout).name
        if joint_space:
            from .joint_space import can_map

            if not can_map(src):
                raise SkeletonFormatError(
                    s.source or f"input {i}", f"layout {src!r} has no mapping into this model's joint space"
                )
            xs.append(pipe(s)["x"])
            continue
        if src != dst:
            if not can_convert(src, dst):
                raise SkeletonFormatError(
                    s.source or f"input {i}",
                    f"layout {src!r} cannot be used with this model, which expects {dst!r} "
                    f"(no conversion from {src} to {dst})",
                )
            s = s.replace(data=convert_layout(s.data, src, dst), layout=dst)
        xs.append(pipe(s)["x"])  # (T, M, V, C); evaluation: no randomness
    if not xs:
        return torch.zeros(
            0, int(channels or 0), cfg.num_frames, get_layout(layout).num_joints, cfg.num_bodies
        )
    return to_model_input(np.stack(xs))
