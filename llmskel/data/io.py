"""Read whatever skeleton input a user points at: :func:`read_any` (used by ``llmskel data show``,
``eval``, ``zeroshot``, ``recognize``).

A single input is recognised by its extension and name:

=================================  ==============================================================
input                              read as
=================================  ==============================================================
``synthetic:<action>``             one generated sample of that action (NTU-25)
``*.skeleton``                     NTU RGB+D raw file
``aXX_sYY_eZZ_vWW.json``           NW-UCLA sequence (or any JSON with ``skeletons`` and ``label``)
pose-estimator output              one sample per tracked person (``<file>#person<id>``, missing-
                                   joint share in ``extra["missing_fraction"]``): a folder of
                                   OpenPose ``*_keypoints.json``, mmpose ``instance_info`` /
                                   rtmlib / MediaPipe ``*.json``, a MediaPipe ``*.csv``, ``*.jsonl``
                                   frames, any JSON with track ids or 18/25/26/33/133 keypoints
other ``*.json``                   COCO-17 keypoints (COCO results, frames of 17-point persons):
                                   one sample, the two strongest tracks as bodies
``*.npy`` / ``*.npz``              a (T, M, V, C) or (T, V, C) array (``layout`` or inferred)
``*.pkl`` / ``*.pickle``           pyskl / mmaction2 annotations (needs ``allow_pickle=True``)
``*.parquet``                      a Hugging Face export split file
``aA_sS_tT_skeleton.mat``          UTD-MHAD sequence (any ``.mat`` holding ``d_skel``)
``NNNN.mat``                       Penn Action clip (any ``.mat`` holding ``x``, ``y``, ``visibility``)
a folder with ``info.json``        a prepared cache
a folder with ``README.md`` +      a Hugging Face export (every split)
``data/*.parquet``
a folder of ``*.skeleton``         every NTU file in it
a folder with ``actionLabel.txt``  UTKinect-Action3D segments
a folder of NW-UCLA JSON           every sequence in it
a folder of UTD-MHAD / Penn .mat   every sequence / clip in it
a folder of arrays / JSON          bring-your-own folder (with ``labels.csv`` if present)
=================================  ==============================================================

What is recognised, in which order, and what reads it, comes from the dataset records of
:mod:`llmskel.data.datasets` (``sniff_file`` / ``sniff_dir`` / ``read_input``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import SkeletonFormatError
from .layouts import convert_layout, get_layout
from .sample import SkeletonSample


def supported() -> tuple[str, ...]:
    """One line per kind of input read_any recognises (from the dataset records)."""
    from .datasets import supported_inputs

    return ("synthetic:<action>", *supported_inputs())


def _unsupported(path: Path, why: str) -> SkeletonFormatError:
    return SkeletonFormatError(path, f"{why}; supported inputs: {'; '.join(supported())}")


def read_any(
    path: str | os.PathLike,
    layout: str | None = None,
    allow_pickle: bool = False,
    skipped: list[dict[str, Any]] | None = None,
) -> list[SkeletonSample]:
    """Samples of one input file or folder (see the module docstring).

    ``layout`` names the layout of arrays that do not carry one; for inputs that do, the samples
    are converted to it when it differs (e.g. NTU-25 to COCO-17). A folder's unreadable files are
    skipped with a warning and, when ``skipped`` is given, appended to it (one dict per file, with
    at least the file and the error), so that a caller can report them.
    """
    text = str(path)
    if text.startswith("synthetic:"):
        from .synthetic import ACTION_NAMES, generate_sample

        action = text.split(":", 1)[1].strip()
        if action not in ACTION_NAMES:
            raise KeyError(f"unknown synthetic action {action!r}; actions: {', '.join(ACTION_NAMES)}")
        samples = [generate_sample(action)]
        return _to_layout(samples, layout)
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    from .datasets import sniff

    rec = sniff(p)
    if rec is None or not rec.read_input:
        if p.is_dir():
            raise _unsupported(p, "no recognised skeleton data in this folder")
        raise _unsupported(p, f"unknown input type {p.suffix.lower() or '(no extension)'!r}")
    reader = rec.func("read_input")
    if skipped is not None and _takes_skipped(reader):
        return _to_layout(list(reader(p, layout, allow_pickle, skipped=skipped)), layout)
    return _to_layout(list(reader(p, layout, allow_pickle)), layout)


def _takes_skipped(fn) -> bool:
    import inspect

    try:
        return "skipped" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _to_layout(samples: list[SkeletonSample], layout: str | None) -> list[SkeletonSample]:
    if not layout:
        return samples
    dst = get_layout(layout).name
    out = []
    for s in samples:
        if get_layout(s.layout).name == dst:
            out.append(s)
            continue
        try:
            out.append(s.replace(data=convert_layout(s.data, s.layout, dst), layout=dst))
        except KeyError as e:
            raise SkeletonFormatError(s.source, str(e.args[0])) from None
    return out
