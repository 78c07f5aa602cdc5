"""One declarative record per dataset (:class:`DatasetRecord`), in one registry that every consumer reads.

The config (``data.dataset``), :mod:`~llmskel.data.sources` (loading), :mod:`~llmskel.data.protocols`
(train / test rules), :mod:`~llmskel.data.prepare` (``llmskel data prepare --format``),
:mod:`~llmskel.data.io` (recognising a file or folder a user points at) and ``llmskel data info``
all look a dataset up here; none of them names a dataset in code. Adding a dataset means writing its
reader (``llmskel/data/readers/<name>.py``) and its record below (or calling :func:`register_dataset`
from outside the package).

A record says:

* ``name``, ``aliases``, ``description``; ``layout`` and ``classes`` when the dataset fixes them;
* ``protocols``: the dataset's own split rules (a rule maps a sample's metadata to ``"train"``,
  ``"test"`` or ``None``), which one is the ``default``, and which generic protocols also apply
  (``none``, ``split``, ``split:<name>``, ``xsub``, ``loso-<subject>``; see
  :mod:`~llmskel.data.protocols`);
* how to load the whole dataset from a root (``load``, for ``data.dataset``);
* how to find its *units* in a root and read one (``find_files`` + ``read_file`` for one file per
  sample, else ``plan`` + ``read_unit``), for the parallel, resumable ``data prepare``;
* how to recognise its files (``sniff_file``, ``sniff_dir``) and read what was recognised
  (``read_input``), for ``read_any``.

Reader functions are callables or ``"module:function"`` strings (relative to ``llmskel.data``, or a
full ``llmskel....`` / third-party module path) and imported on first use; the readers' class lists
are imported with the registry (plain lists: no scipy, no reading).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .readers.ntu import NTU120_CLASSES
from .readers.nwucla import NWUCLA_CLASSES, NWUCLA_NAME_RE
from .readers.penn_action import PENN_ACTION_CLASSES
from .readers.utd_mhad import UTD_MHAD_CLASSES
from .readers.utkinect import UTKINECT_CLASSES

Rule = Callable[[dict[str, Any]], "str | None"]
GENERIC_SPLIT = ("none", "split", "split:<name>", "split:<train>,<test>")
GENERIC_SUBJECT = ("xsub", "loso-<subject>")


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    layout: str | None = None  # the layout every sample has; None: from the data / config
    classes: tuple[str, ...] | None = None  # the class list; None: from the data
    # protocols: the dataset's own rules, name -> rule(meta) -> "train" / "test" / None
    protocols: Mapping[str, Rule] = field(default_factory=dict)
    # protocol names rewritten before lookup (NTU: "xsub" -> "ntu120-xsub"); a callable gets the dataset
    protocol_aliases: Mapping[str, str] | Callable[[Any], Mapping[str, str]] = field(default_factory=dict)
    default_protocol: str | Callable[[Any], str] = "split"
    # the protocol names listed in errors and docs, in that order (default: own ones + generic ones)
    listed_protocols: tuple[str, ...] | None = None
    subject_protocols: bool = True  # generic xsub (odd subjects train) and loso-<k> apply
    split_protocols: bool = True  # list the generic none / split / split:<name> (they always apply)
    generic: bool = False  # a container format (folder, pyskl, cache, hf): names and classes from the data
    needs_root: bool = True
    # loading a whole dataset: "module:function"(root, cfg) -> BaseSkeletonDataset
    load: str | Callable[..., Any] | None = None
    # data prepare: one file per unit (find_files(root) -> paths, read_file(path) -> sample(s)), or a
    # custom plan(src, opts) -> {"units", "classes", "name", "ignored", "extra"} and
    # read_unit(payload, denoise) -> [samples]
    find_files: str | Callable[..., Any] | None = None
    read_file: str | Callable[..., Any] | None = None
    plan: str | Callable[..., Any] | None = None
    read_unit: str | Callable[..., Any] | None = None
    # recognising inputs (read_any): predicates on a path, and what reads a recognised input
    sniff_file: Callable[[Path], bool] | None = None
    sniff_dir: Callable[[Path], bool] | None = None
    read_input: str | Callable[..., Any] | None = (
        None  # "module:function"(path, layout, allow_pickle[, skipped]) -> [samples]; a folder reader
        # appends the records it skips to ``skipped`` (a list of dicts) when it takes that argument
    )
    input_help: str = ""  # one line for the list of supported inputs
    fallback: bool = False  # its sniffers accept nearly anything: tried after every other record

    # ------------------------------------------------------------------------------------------

    @property
    def preparable(self) -> bool:
        return bool(self.plan or (self.find_files and self.read_file))

    def valid_protocols(self) -> tuple[str, ...]:
        if self.listed_protocols is not None:
            return self.listed_protocols
        out = list(self.protocols)
        if self.split_protocols:
            out += [p for p in GENERIC_SPLIT if p not in out]
        if self.subject_protocols:
            out += [p for p in GENERIC_SUBJECT if p not in out]
        return tuple(out)

    def default_for(self, dataset: Any) -> str:
        d = self.default_protocol
        return d(dataset) if callable(d) else d

    def resolve_protocol(self, protocol: str, dataset: Any) -> str:
        aliases = self.protocol_aliases(dataset) if callable(self.protocol_aliases) else self.protocol_aliases
        return aliases.get(protocol, protocol)

    def func(self, attr: str) -> Callable[..., Any]:
        ref = getattr(self, attr)
        if not ref:
            raise ConfigError(f"dataset {self.name!r} has no {attr.replace('_', ' ')} function")
        return resolve(ref)


def resolve(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"readers.nwucla:load_nwucla"`` -> the function (module relative to ``llmskel.data`` unless it
    starts with ``llmskel.``); a callable is returned as is."""
    if callable(ref):
        return ref
    mod, _, attr = ref.partition(":")
    module = importlib.import_module(mod if mod.startswith("llmskel.") else f"llmskel.data.{mod}")
    return getattr(module, attr)


# ------------------------------------------------------------------------------------------
# the registry

_REGISTRY: dict[str, DatasetRecord] = {}
_ALIASES: dict[str, str] = {}


def register_dataset(record: DatasetRecord, *, replace: bool = False) -> DatasetRecord:
    """Add ``record`` to the registry (after the built-in ones, so it is sniffed last)."""
    key = record.name.lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"dataset {record.name!r} is already registered")
    _REGISTRY[key] = record
    for a in (record.name, *record.aliases):
        _ALIASES[a.lower()] = key
    return record


def unregister_dataset(name: str) -> None:
    """Remove a registered dataset (and its aliases)."""
    key = _ALIASES.get(name.lower())
    if key is None:
        return
    _REGISTRY.pop(key, None)
    for a in [a for a, k in _ALIASES.items() if k == key]:
        del _ALIASES[a]


def dataset_names() -> list[str]:
    """Registered dataset names, in registry order."""
    return [r.name for r in _REGISTRY.values()]


def find_dataset(name: str) -> DatasetRecord | None:
    """The record of a name or alias (case-insensitive), or None."""
    key = _ALIASES.get(str(name).strip().lower())
    return _REGISTRY.get(key) if key else None


def get_dataset(name: str) -> DatasetRecord:
    """The record of a name or alias; an unknown name lists the registered ones."""
    rec = find_dataset(name)
    if rec is None:
        raise ConfigError(f"unknown dataset {name!r}; datasets: {', '.join(dataset_names())}")
    return rec


def records() -> list[DatasetRecord]:
    return list(_REGISTRY.values())


def kind_of_name(name: str | None) -> str:
    """The dataset (not a container format) whose name a dataset's name is or starts with
    (``name-...`` / ``name_...``); ``other`` for container formats and unknown names."""
    low = (name or "").lower()
    for r in _REGISTRY.values():
        n = r.name.lower()
        if not r.generic and (low == n or low.startswith(n + "-") or low.startswith(n + "_")):
            return r.name
    return "other"


def known_class_lists() -> list[tuple[str, list[str]]]:
    """(dataset name, classes) of every record that fixes its class list, in registry order."""
    out = []
    for r in _REGISTRY.values():
        if r.classes is not None:
            out.append((r.name, list(r.classes)))
    return out


def sniff(path: str | os.PathLike) -> DatasetRecord | None:
    """The first record that recognises ``path`` (a file or a folder), or None."""
    p = Path(path)
    ordered = [r for r in _REGISTRY.values() if not r.fallback] + [
        r for r in _REGISTRY.values() if r.fallback
    ]
    for r in ordered:
        test = r.sniff_dir if p.is_dir() else r.sniff_file
        if test is not None and test(p):
            return r
    return None


def supported_inputs() -> list[str]:
    return [r.input_help for r in _REGISTRY.values() if r.input_help]


# ------------------------------------------------------------------------------------------
# generic pieces records share


def plan_files(record: DatasetRecord, src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """Units of a one-file-per-sample dataset: ``{file name: {"path"}}``, minus the ignore list."""
    ignore: set[str] = set(opts.get("ignore") or ())
    units, ignored = {}, []
    for f in record.func("find_files")(src):
        if f.stem.upper() in ignore:
            ignored.append(f.name)
            continue
        units[f.name] = {"path": str(f)}
    classes = list(record.classes) if record.classes is not None else list(opts.get("classes") or [])
    return {"units": units, "classes": classes, "name": record.name, "ignored": ignored, "extra": {}}


def read_file_unit(record: DatasetRecord, payload: dict[str, Any], denoise: bool) -> list[Any]:
    out = record.func("read_file")(payload["path"])
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _has_suffix(*suffixes: str) -> Callable[[Path], bool]:
    return lambda p: p.suffix.lower() in suffixes


def _any_file(pattern: str, name_re: Any = None) -> Callable[[Path], bool]:
    def test(p: Path) -> bool:
        for f in p.glob(pattern):
            if name_re is None or name_re.search(f.name):
                return True
        return False

    return test


def _mat_with(*variables: str, name_re: str | None = None) -> Callable[[Path], bool]:
    """A ``.mat`` file holding these variables (read from its header, without loading the data)."""
    import re

    rx = re.compile(name_re, re.IGNORECASE) if name_re else None

    def test(p: Path) -> bool:
        if p.suffix.lower() != ".mat" or (rx is not None and not rx.search(p.name)):
            return False
        from .readers.matlab import mat_variables

        return set(variables) <= mat_variables(p)

    return test


def _dir_of(file_test: Callable[[Path], bool], pattern: str = "*.mat") -> Callable[[Path], bool]:
    """A folder whose first ``pattern`` file passes ``file_test``."""

    def test(p: Path) -> bool:
        first = next(iter(sorted(p.glob(pattern))), None)
        return first is not None and file_test(first)

    return test


# ------------------------------------------------------------------------------------------
# the built-in datasets: loaders, plans and sniffers that need more than a reference


def _load_synthetic(root: Path | None, cfg: Any) -> Any:
    from .synthetic import make_synthetic_dataset

    return make_synthetic_dataset(cfg.synthetic)


def _load_hf(root: Path | None, cfg: Any) -> Any:
    from .sources import _load_hf

    return _load_hf(cfg)


def _load_cache(root: Path, cfg: Any) -> Any:
    from .cache import CachedSkeletonDataset

    return CachedSkeletonDataset(root)  # raises a clear error naming what is missing


def _load_ntu(root: Path, cfg: Any) -> Any:
    from .readers.ntu import load_ntu

    return load_ntu(root, num_bodies=max(cfg.num_bodies, 1))


def _load_folder(root: Path, cfg: Any) -> Any:
    from .readers.folder import load_folder

    return load_folder(root, layout=cfg.layout, classes=cfg.classes, max_bodies=cfg.num_bodies)


def _load_pyskl(root: Path, cfg: Any) -> Any:
    from .readers.pyskl import load_pyskl

    return load_pyskl(root, allow_pickle=cfg.allow_pickle, layout=cfg.layout, classes=cfg.classes)


def _load_root_only(ref: str) -> Callable[[Path, Any], Any]:
    return lambda root, cfg: resolve(ref)(root)


def _plan_ntu(src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from .readers.ntu import NTU_NAME_RE, find_ntu_files, ntu_classes_for, ntu_missing_samples, parse_ntu_name

    ignore: set[str] = set(opts.get("ignore") or ())
    ignored: list[str] = []
    files = find_ntu_files(src)
    named = [f for f in files if NTU_NAME_RE.search(f.name)]
    classes = ntu_classes_for(parse_ntu_name(f)["action"] for f in named)
    if opts.get("skip_listed_missing", True):
        ignore |= set(ntu_missing_samples(120))
    units = {}
    for f in files:
        m = NTU_NAME_RE.search(f.name)
        if m and m.group(0).upper() in ignore:
            ignored.append(f.name)
            continue
        units[f.name] = {"path": str(f), "classes": classes, "num_bodies": opts.get("num_bodies") or 2}
    return {"units": units, "classes": classes, "name": "ntu", "ignored": ignored, "extra": {}}


def _read_ntu_unit(payload: dict[str, Any], denoise: bool) -> list[Any]:
    from .readers.ntu import read_ntu_file

    return [
        read_ntu_file(
            payload["path"], denoise=denoise, num_bodies=payload["num_bodies"], classes=payload["classes"]
        )
    ]


def _plan_utkinect(src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    from .readers.utkinect import UTKINECT_CLASSES, utkinect_segments

    ignore: set[str] = set(opts.get("ignore") or ())
    files, skipped_rows = utkinect_segments(src, opts.get("label_file"))
    units = {
        jf.name: {"path": str(jf), "segments": [asdict(s) for s in segs]}
        for jf, segs in sorted(files.items())
        if jf.stem.upper() not in ignore
    }
    return {
        "units": units,
        "classes": UTKINECT_CLASSES,
        "name": "utkinect",
        "ignored": [],
        "extra": {"skipped_segments": skipped_rows},
    }


def _read_utkinect_unit(payload: dict[str, Any], denoise: bool) -> list[Any]:
    from .readers.utkinect import UtkSegment, cut_segments

    return cut_segments(payload["path"], [UtkSegment(**s) for s in payload["segments"]])


def _plan_folder(src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from .readers.folder import folder_rows

    ignore: set[str] = set(opts.get("ignore") or ())
    ignored: list[str] = []
    root, csv_path, rows, classes = folder_rows(src, opts.get("csv_file"), opts.get("classes"))
    units = {}
    for row in rows:
        if Path(row["file"]).stem.upper() in ignore:
            ignored.append(row["file"])
            continue
        units[f"{row['file']}@{row['_line']}"] = {
            "root": str(root),
            "csv": str(csv_path or root),
            "row": row,
            "classes": classes,
            "layout": opts.get("layout"),
            "max_bodies": opts.get("num_bodies") or 2,
        }
    return {"units": units, "classes": classes, "name": root.name, "ignored": ignored, "extra": {}}


def _read_folder_unit(payload: dict[str, Any], denoise: bool) -> list[Any]:
    from .readers.folder import read_folder_row

    return [
        read_folder_row(
            Path(payload["root"]),
            payload["row"],
            Path(payload["csv"]),
            payload["classes"],
            payload["layout"],
            payload["max_bodies"],
        )
    ]


def _plan_pyskl(src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    from .readers.pyskl import pyskl_classes, read_pyskl_file

    ignore: set[str] = set(opts.get("ignore") or ())
    ignored: list[str] = []
    anns, membership = read_pyskl_file(src, allow_pickle=bool(opts.get("allow_pickle")))
    classes = pyskl_classes(anns, opts.get("classes"))
    units = {}
    for i, ann in enumerate(anns):
        name = str(ann.get("frame_dir", f"#{i}")) if isinstance(ann, dict) else f"#{i}"
        if name.upper() in ignore:
            ignored.append(name)
            continue
        units[f"{i}:{name}"] = {
            "src": str(src),
            "index": i,
            "ann": ann,
            "splits": membership.get(name, []),
            "classes": classes,
            "layout": opts.get("layout"),
        }
    return {"units": units, "classes": classes, "name": src.stem, "ignored": ignored, "extra": {}}


def _read_pyskl_unit(payload: dict[str, Any], denoise: bool) -> list[Any]:
    from .readers.pyskl import annotation_to_sample

    s = annotation_to_sample(
        payload["ann"],
        payload["src"],
        layout=payload["layout"],
        classes=payload["classes"],
        index=payload["index"],
    )
    s.extra["splits"] = list(payload["splits"])
    return [s]


# inputs (read_any): one function per kind of input, (path, layout, allow_pickle) -> samples


def _input_cache(p: Path, layout: str | None, allow_pickle: bool) -> list[Any]:
    from .cache import CachedSkeletonDataset

    ds = CachedSkeletonDataset(p)
    return [ds.get(i) for i in range(len(ds))]


def _input_hf(p: Path, layout: str | None, allow_pickle: bool) -> list[Any]:
    from .hf import hf_splits, load_hf_skeletons

    if p.is_dir():
        return [s for split in hf_splits(p) for s in load_hf_skeletons(p, split).samples]
    split = p.name.split("-", 1)[0] if "-" in p.name else "train"
    return list(load_hf_skeletons(p, split).samples)


def _input_ntu(p: Path, layout: str | None, allow_pickle: bool, skipped: list | None = None) -> list[Any]:
    from .readers.ntu import load_ntu, read_ntu_file

    return list(load_ntu(p, skipped=skipped).samples) if p.is_dir() else [read_ntu_file(p)]


def _input_json(p: Path, layout: str | None, allow_pickle: bool, skipped: list | None = None) -> list[Any]:
    """An NW-UCLA-named JSON holding ``skeletons`` is NW-UCLA; any other is COCO-17 keypoints."""
    from .readers.folder import read_coco_json
    from .readers.nwucla import NWUCLA_NAME_RE, load_nwucla, nwucla_from_dict

    if p.is_dir():
        return list(load_nwucla(p, skipped=skipped).samples)
    if NWUCLA_NAME_RE.search(p.name):
        from .readers.files import read_json

        obj = read_json(p)  # invalid or too deeply nested JSON is an error naming the file
        if isinstance(obj, dict) and "skeletons" in obj:
            return [nwucla_from_dict(obj, str(p))]
    return [read_coco_json(p)]


def _input_folder(p: Path, layout: str | None, allow_pickle: bool, skipped: list | None = None) -> list[Any]:
    from .readers.folder import load_folder, read_array_file
    from .sample import SkeletonSample

    if p.is_dir():
        return list(load_folder(p, layout=layout, skipped=skipped).samples)
    if p.suffix.lower() == ".json":
        return _input_json(p, layout, allow_pickle)
    data, lay = read_array_file(p, layout)
    return [SkeletonSample(data=data, layout=lay, source=str(p), extra={"name": p.stem})]


def _input_estimator(p: Path, layout: str | None, allow_pickle: bool) -> list[Any]:
    # no ``skipped`` argument: bad frames are skipped inside the recording and counted in each
    # sample's extra["skipped_frames"]
    from .readers.estimators import read_estimator_samples

    return read_estimator_samples(p, per_person=True)


def _input_pyskl(p: Path, layout: str | None, allow_pickle: bool, skipped: list | None = None) -> list[Any]:
    from .readers.pyskl import load_pyskl

    return list(load_pyskl(p, allow_pickle=allow_pickle, layout=layout, skipped=skipped).samples)


def _input_with(load_ref: str, read_ref: str) -> Callable[..., list[Any]]:
    """Inputs of a one-file-per-sample dataset: a folder through ``load_ref`` (which lists the files it
    skips in ``skipped``), a file through ``read_ref``."""

    def read(p: Path, layout: str | None, allow_pickle: bool, skipped: list | None = None) -> list[Any]:
        if p.is_dir():
            return list(resolve(load_ref)(p, skipped=skipped).samples)
        out = resolve(read_ref)(p)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return read


def _is_cache_dir(p: Path) -> bool:
    from .cache import is_cache

    return is_cache(p) or (p / "info.json").exists()


def _is_hf_dir(p: Path) -> bool:
    return (p / "data").is_dir() and any((p / "data").glob("*.parquet"))


def _is_nwucla_dir(p: Path) -> bool:
    from .readers.nwucla import NWUCLA_NAME_RE

    jsons = list(p.glob("*.json"))
    return bool(jsons) and all(NWUCLA_NAME_RE.search(f.name) for f in jsons)


def _is_folder_dir(p: Path) -> bool:
    return any(p.glob("*.json")) or any(p.glob("*.np[yz]")) or any(p.glob("*.csv")) or any(p.glob("*.jsonl"))


def _ntu_default(ds: Any) -> str:
    return "ntu120-xsub" if ds.num_classes > 60 else "ntu60-xsub"


def _ntu_aliases(ds: Any) -> dict[str, str]:
    big = ds.num_classes > 60
    return {"xsub": "ntu120-xsub" if big else "ntu60-xsub", "xview": "ntu60-xview", "xset": "ntu120-xset"}


def _ntu_protocols() -> dict[str, Rule]:
    from .protocols import NTU60_XSUB_TRAIN, NTU120_XSUB_TRAIN, NTU_XVIEW_TRAIN_CAMERAS, _need, _side

    def ntu60(key: str, members: frozenset[int], p: str) -> Rule:
        return lambda m: None if _need(m, "setup", p) > 17 else _side(_need(m, key, p) in members)

    return {
        "ntu60-xsub": ntu60("subject", NTU60_XSUB_TRAIN, "ntu60-xsub"),
        "ntu60-xview": ntu60("view", NTU_XVIEW_TRAIN_CAMERAS, "ntu60-xview"),
        "ntu120-xsub": lambda m: _side(_need(m, "subject", "ntu120-xsub") in NTU120_XSUB_TRAIN),
        "ntu120-xset": lambda m: _side(_need(m, "setup", "ntu120-xset") % 2 == 0),
    }


def _nwucla_xview(m: dict[str, Any]) -> str:
    from .protocols import NWUCLA_XVIEW_TRAIN_VIEWS, _need, _side

    return _side(_need(m, "view", "xview") in NWUCLA_XVIEW_TRAIN_VIEWS)


def _official_split(m: dict[str, Any]) -> str | None:
    """Penn Action's own train flag (``extra["split"]``, set by the reader)."""
    s = (m.get("extra") or {}).get("split")
    if s is None:
        raise ConfigError(
            f"protocol 'official' needs the train / test flag of every clip, and {m.get('source') or 'a sample'} "
            "has none (the 'train' variable of a Penn Action .mat file)"
        )
    return "train" if str(s).lower() == "train" else "test"


def _builtin() -> list[DatasetRecord]:
    return [
        DatasetRecord(
            "synthetic",
            "the procedural action set (llmskel.data.synthetic), the embedded default",
            layout=None,
            default_protocol="xsub",
            listed_protocols=("xsub", "loso-<subject>", "none"),
            split_protocols=False,
            needs_root=False,
            load="datasets:_load_synthetic",
        ),
        DatasetRecord(
            "cache",
            "a prepared cache (llmskel data prepare)",
            generic=True,
            load="datasets:_load_cache",
            sniff_dir=_is_cache_dir,
            read_input="datasets:_input_cache",
            input_help="a folder with info.json: a prepared cache",
        ),
        DatasetRecord(
            "hf",
            "a Hugging Face export folder or Hub dataset id",
            generic=True,
            load="datasets:_load_hf",
            sniff_dir=_is_hf_dir,
            sniff_file=_has_suffix(".parquet"),
            read_input="datasets:_input_hf",
            input_help=".parquet (Hugging Face export) or an export folder (README.md + data/*.parquet)",
        ),
        DatasetRecord(
            "ntu",
            "NTU RGB+D 60 / 120, raw .skeleton files (Kinect v2, 25 joints)",
            aliases=("ntu60", "ntu120", "ntu-rgbd"),
            layout="ntu25",
            classes=tuple(NTU120_CLASSES),
            protocols=_ntu_protocols(),
            protocol_aliases=_ntu_aliases,
            default_protocol=_ntu_default,
            listed_protocols=(
                "ntu60-xsub",
                "ntu60-xview",
                "ntu120-xsub",
                "ntu120-xset",
                "xsub",
                "xview",
                "xset",
                "none",
                "split",
            ),  # fmt: skip
            subject_protocols=False,
            load="datasets:_load_ntu",
            plan="datasets:_plan_ntu",
            read_unit="datasets:_read_ntu_unit",
            sniff_file=_has_suffix(".skeleton"),
            sniff_dir=_any_file("*.skeleton"),
            read_input="datasets:_input_ntu",
            input_help=".skeleton (NTU RGB+D) or a folder of them",
        ),
        DatasetRecord(
            "utkinect",
            "UTKinect-Action3D: joints_sXX_eYY.txt recordings cut by actionLabel.txt",
            layout="kinect20",
            classes=tuple(UTKINECT_CLASSES),
            default_protocol="xsub",
            listed_protocols=("xsub", "loso-<subject>", "none"),
            split_protocols=False,
            load="datasets:_load_utkinect",
            plan="datasets:_plan_utkinect",
            read_unit="datasets:_read_utkinect_unit",
            sniff_dir=lambda p: (p / "actionLabel.txt").is_file(),
            read_input="datasets:_input_utkinect",
            input_help="a folder with actionLabel.txt: UTKinect-Action3D",
        ),
        DatasetRecord(
            "pose-estimator",
            "pose-estimator output (OpenPose folders, MediaPipe Pose JSON / CSV, mmpose / rtmlib JSON, JSON "
            "lines): 2D x, y, score, one sample per tracked person",
            aliases=("estimator", "openpose", "mediapipe", "mmpose", "rtmlib"),
            generic=True,
            # before nw-ucla: OpenPose run on NW-UCLA videos writes aXX_sYY_eZZ_vWW_..._keypoints.json
            sniff_file=lambda p: resolve("readers.estimators:sniff_estimator_file")(p),
            sniff_dir=lambda p: resolve("readers.estimators:sniff_estimator_dir")(p),
            read_input="datasets:_input_estimator",
            input_help="pose-estimator output: an OpenPose folder (*_keypoints.json), MediaPipe .json / .csv, "
            "mmpose / rtmlib .json, .jsonl frames (one sample per tracked person)",
        ),
        DatasetRecord(
            "nw-ucla",
            "Northwestern-UCLA Multiview Action3D, one JSON per sequence",
            aliases=("nwucla", "ucla"),
            layout="kinect20",
            classes=tuple(NWUCLA_CLASSES),
            protocols={"xview": _nwucla_xview},
            default_protocol="xview",
            listed_protocols=("xview", "xsub", "none"),
            split_protocols=False,
            load="datasets:_load_nwucla",
            find_files="readers.nwucla:find_nwucla_files",
            read_file="readers.nwucla:read_nwucla_file",
            sniff_file=lambda p: p.suffix.lower() == ".json" and bool(NWUCLA_NAME_RE.search(p.name)),
            sniff_dir=_is_nwucla_dir,
            read_input="datasets:_input_json",
            input_help="aXX_sYY_eZZ_vWW.json (NW-UCLA) or a folder of them",
        ),
        DatasetRecord(
            "utd-mhad",
            "UTD-MHAD skeletons, aA_sS_tT_skeleton.mat (Kinect v1, 20 joints in the dataset's order)",
            aliases=("utdmhad", "utd"),
            layout="utd20",
            classes=tuple(UTD_MHAD_CLASSES),
            default_protocol="xsub",
            listed_protocols=("xsub", "loso-<subject>", "none"),
            split_protocols=False,
            load="datasets:_load_utd_mhad",
            find_files="readers.utd_mhad:find_utd_mhad_files",
            read_file="readers.utd_mhad:read_utd_mhad_file",
            sniff_file=_mat_with("d_skel"),
            sniff_dir=_dir_of(_mat_with("d_skel"), "*_skeleton.mat"),
            read_input="datasets:_input_utd_mhad",
            input_help="aA_sS_tT_skeleton.mat (UTD-MHAD, variable d_skel) or a folder of them",
        ),
        DatasetRecord(
            "penn-action",
            "Penn Action pose annotations, NNNN.mat (2D, 13 joints, visibility, official train/test flag)",
            aliases=("penn", "pennaction", "penn_action"),
            layout="penn13",
            classes=tuple(PENN_ACTION_CLASSES),
            protocols={"official": _official_split},
            default_protocol="official",
            listed_protocols=("official", "none", "split"),
            subject_protocols=False,
            load="datasets:_load_penn_action",
            find_files="readers.penn_action:find_penn_action_files",
            read_file="readers.penn_action:read_penn_action_file",
            sniff_file=_mat_with("x", "y", "visibility"),
            sniff_dir=_dir_of(_mat_with("x", "y", "visibility"), "*.mat"),
            read_input="datasets:_input_penn_action",
            input_help="NNNN.mat (Penn Action, variables x, y, visibility) or a folder of them",
        ),
        DatasetRecord(
            "pyskl",
            "a pyskl / mmaction2 annotation pickle (opt-in: allow_pickle)",
            generic=True,
            load="datasets:_load_pyskl",
            plan="datasets:_plan_pyskl",
            read_unit="datasets:_read_pyskl_unit",
            sniff_file=_has_suffix(".pkl", ".pickle"),
            read_input="datasets:_input_pyskl",
            input_help=".pkl / .pickle (pyskl, with allow_pickle)",
        ),
        DatasetRecord(
            "folder",
            "bring your own: .npy / .npz arrays or pose JSON files, with a labels CSV",
            generic=True,
            load="datasets:_load_folder",
            plan="datasets:_plan_folder",
            read_unit="datasets:_read_folder_unit",
            sniff_file=_has_suffix(".npy", ".npz", ".json"),
            sniff_dir=_is_folder_dir,
            read_input="datasets:_input_folder",
            input_help=".npy / .npz arrays, .json COCO-17 pose keypoints, or a folder of them + labels.csv",
            fallback=True,
        ),
    ]


_load_nwucla = _load_root_only("readers.nwucla:load_nwucla")
_load_utkinect = _load_root_only("readers.utkinect:load_utkinect")
_load_utd_mhad = _load_root_only("readers.utd_mhad:load_utd_mhad")
_load_penn_action = _load_root_only("readers.penn_action:load_penn_action")
_input_utkinect = _input_with("readers.utkinect:load_utkinect", "readers.utkinect:load_utkinect")
_input_utd_mhad = _input_with("readers.utd_mhad:load_utd_mhad", "readers.utd_mhad:read_utd_mhad_file")
_input_penn_action = _input_with(
    "readers.penn_action:load_penn_action", "readers.penn_action:read_penn_action_file"
)

for _r in _builtin():
    register_dataset(_r)
