"""Read whatever skeleton input a user points at: :func:`read_any` (used by ``llmskel data show``,
``eval``, ``zeroshot``, ``recognize``).

A single input is recognised by its extension and name:

=================================  ==============================================================
input                              read as
=================================  ==============================================================
``synthetic:<action>``             one generated sample of that action (NTU-25)
``*.skeleton``                     NTU RGB+D raw file
``aXX_sYY_eZZ_vWW.json``           NW-UCLA sequence (or any JSON with ``skeletons`` and ``label``)
other ``*.json``                   pose-estimator COCO-17 keypoints (mmpose, COCO results, frames)
``*.npy`` / ``*.npz``              a (T, M, V, C) or (T, V, C) array (``layout`` or inferred)
``*.pkl`` / ``*.pickle``           pyskl / mmaction2 annotations (needs ``allow_pickle=True``)
``*.parquet``                      a Hugging Face export split file
a folder with ``info.json``        a prepared cache
a folder with ``README.md`` +      a Hugging Face export (every split)
``data/*.parquet``
a folder of ``*.skeleton``         every NTU file in it
a folder with ``actionLabel.txt``  UTKinect-Action3D segments
a folder of NW-UCLA JSON           every sequence in it
a folder of arrays / JSON          bring-your-own folder (with ``labels.csv`` if present)
=================================  ==============================================================
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SkeletonFormatError
from .layouts import convert_layout, get_layout
from .sample import SkeletonSample

SUPPORTED = (
    "synthetic:<action>",
    ".skeleton (NTU RGB+D)",
    ".json (NW-UCLA sequence or COCO-17 pose keypoints)",
    ".npy / .npz arrays",
    ".pkl / .pickle (pyskl, with allow_pickle)",
    ".parquet (Hugging Face export)",
    "a folder: prepared cache, Hugging Face export, NTU / NW-UCLA / UTKinect files, or arrays + labels.csv",
)


def _unsupported(path: Path, why: str) -> SkeletonFormatError:
    return SkeletonFormatError(path, f"{why}; supported inputs: {'; '.join(SUPPORTED)}")


def read_any(
    path: str | os.PathLike, layout: str | None = None, allow_pickle: bool = False
) -> list[SkeletonSample]:
    """Samples of one input file or folder (see the module docstring).

    ``layout`` names the layout of arrays that do not carry one; for inputs that do, the samples
    are converted to it when it differs (e.g. NTU-25 to COCO-17).
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
    if p.is_dir():
        return _to_layout(_read_dir(p, layout, allow_pickle), layout)
    suffix = p.suffix.lower()
    if suffix == ".skeleton":
        from .readers.ntu import read_ntu_file

        samples = [read_ntu_file(p)]
    elif suffix == ".json":
        samples = [_read_json(p)]
    elif suffix in (".npy", ".npz"):
        from .readers.folder import read_array_file

        data, lay = read_array_file(p, layout)
        return [SkeletonSample(data=data, layout=lay, source=str(p), extra={"name": p.stem})]
    elif suffix in (".pkl", ".pickle"):
        from .readers.pyskl import load_pyskl

        samples = list(load_pyskl(p, allow_pickle=allow_pickle, layout=layout).samples)
        return samples
    elif suffix == ".parquet":
        from .hf import load_hf_skeletons

        split = p.name.split("-", 1)[0] if "-" in p.name else "train"
        samples = list(load_hf_skeletons(p, split).samples)
    else:
        raise _unsupported(p, f"unknown input type {suffix or '(no extension)'!r}")
    return _to_layout(samples, layout)


def _read_json(p: Path) -> SkeletonSample:
    from .readers.folder import read_coco_json
    from .readers.nwucla import NWUCLA_NAME_RE, nwucla_from_dict

    if NWUCLA_NAME_RE.search(p.name):
        from .readers.files import read_json

        obj = read_json(p)
        if isinstance(obj, dict) and "skeletons" in obj:
            return nwucla_from_dict(obj, str(p))
    return read_coco_json(p)


def _read_dir(p: Path, layout: str | None, allow_pickle: bool) -> list[SkeletonSample]:
    from .cache import CachedSkeletonDataset, is_cache

    if is_cache(p) or (p / "info.json").exists():
        ds = CachedSkeletonDataset(p)
        return [ds.get(i) for i in range(len(ds))]
    if (p / "data").is_dir() and any((p / "data").glob("*.parquet")):
        from .hf import hf_splits, load_hf_skeletons

        return [s for split in hf_splits(p) for s in load_hf_skeletons(p, split).samples]
    if any(p.glob("*.skeleton")):
        from .readers.ntu import load_ntu

        return list(load_ntu(p).samples)
    if (p / "actionLabel.txt").is_file():
        from .readers.utkinect import load_utkinect

        return list(load_utkinect(p).samples)
    from .readers.nwucla import NWUCLA_NAME_RE

    jsons = list(p.glob("*.json"))
    if jsons and all(NWUCLA_NAME_RE.search(f.name) for f in jsons):
        from .readers.nwucla import load_nwucla

        return list(load_nwucla(p).samples)
    if jsons or any(p.glob("*.np[yz]")) or any(p.glob("*.csv")):
        from .readers.folder import load_folder

        return list(load_folder(p, layout=layout).samples)
    raise _unsupported(p, "no recognised skeleton data in this folder")


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
