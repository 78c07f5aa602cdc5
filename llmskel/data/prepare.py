"""Convert a folder of raw files into a cache (:mod:`llmskel.data.cache`): parallel, resumable, reported.

``prepare_directory(src, out, fmt=...)`` splits the source into *units* (a file, a recording, a
CSV row, an annotation), reads them in worker processes (``multiprocessing.Pool.imap_unordered``
in chunks) and flushes the results every ``shard_size`` units into ``out/shards/``: an ``.npz`` of
arrays, then a JSON manifest naming the units it covers, each written under a temporary name and
renamed. A manifest is the commit: the done list is the union of the manifests, so a run that is
interrupted (Ctrl-C, a kill, ``max_files``) loses at most the units since the last flush, and the
next run reads only the units no manifest names. When every unit is done the shards are merged,
in source order, into ``info.json`` + ``arrays.npy`` + ``samples.jsonl`` and removed.

Bad units never stop the job: each is listed in ``report.json`` with its error, as are NTU files
with missing skeletons, names in the ignore list, label rows without frames, and NTU files where
denoising dropped frames.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, SkeletonFormatError
from .cache import ARRAYS_FILE, INDEX_FILE, INFO_FILE, CacheWriter, _jsonable, is_cache
from .sample import SkeletonSample

log = logging.getLogger(__name__)


def formats() -> tuple[str, ...]:
    """Names of the registered datasets ``prepare_directory`` can read (``--format``)."""
    from .datasets import records

    return tuple(r.name for r in records() if r.preparable)


FORMATS = formats()
REPORT_FILE = "report.json"
SHARDS_DIR = "shards"


def read_ignore_list(path: str | os.PathLike) -> set[str]:
    """Sample names (file names without extension) one per line; ``#`` starts a comment."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ignore list not found: {p}")
    names = set()
    for line in p.read_text(errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(Path(line).stem.upper() if "." in Path(line).name else line.upper())
    return names


# ------------------------------------------------------------------------------------------
# units: what each format splits into, and how a worker reads one


def _plan(fmt: str, src: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """Units (key -> payload, in source order) and the dataset description for ``fmt`` (its record's
    ``plan``, or one unit per file found by its ``find_files``)."""
    from .datasets import find_dataset, plan_files

    rec = find_dataset(fmt)
    if rec is None or not rec.preparable:
        raise ConfigError(f"unknown data format {fmt!r}; valid formats: {', '.join(formats())}")
    if rec.plan:
        return rec.func("plan")(src, opts)
    return plan_files(rec, src, opts)


def _read_unit(fmt: str, payload: dict[str, Any], denoise: bool) -> list[SkeletonSample]:
    from .datasets import find_dataset, read_file_unit

    rec = find_dataset(fmt)
    if rec is None or not rec.preparable:
        raise ConfigError(f"unknown data format {fmt!r}")
    if rec.read_unit:
        return list(rec.func("read_unit")(payload, denoise))
    return read_file_unit(rec, payload, denoise)


def _work(task: tuple[str, str, dict[str, Any]], denoise: bool = True) -> dict[str, Any]:
    """Worker: read one unit; never raises (errors are results)."""
    fmt, key, payload = task
    from .readers.ntu import NtuMissingSkeleton

    try:
        samples = _read_unit(fmt, payload, denoise)
    except NtuMissingSkeleton as e:
        return {"key": key, "status": "missing", "error": str(e)}
    except (SkeletonFormatError, FileNotFoundError) as e:
        return {"key": key, "status": "error", "error": str(e)}
    except Exception as e:  # a bug or an unforeseen input: report it, keep the job going
        return {
            "key": key,
            "status": "error",
            "error": f"{payload.get('path', key)}: {type(e).__name__}: {e}",
        }
    out = []
    for s in samples:
        meta = _jsonable(s.meta())
        meta.pop("layout")
        out.append({"data": np.ascontiguousarray(s.data, dtype=np.float32), "layout": s.layout, "meta": meta})
    return {"key": key, "status": "ok", "samples": out}


# ------------------------------------------------------------------------------------------
# shards


def _manifests(shards: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for p in sorted(shards.glob("shard-*.json")):
        try:
            out.append((int(p.stem.split("-")[1]), json.loads(p.read_text())))
        except (ValueError, IndexError) as e:
            raise SkeletonFormatError(
                p, f"corrupt shard manifest ({e}); delete it to redo its files"
            ) from None
    return out


def _flush(shards: Path, shard_id: int, results: list[dict[str, Any]]) -> None:
    """Write one shard: arrays first, then the manifest (the commit), each via an atomic rename."""
    arrays: dict[str, np.ndarray] = {}
    manifest: dict[str, Any] = {"units": [], "samples": [], "failed": []}
    for r in results:
        manifest["units"].append(r["key"])
        if r["status"] != "ok":
            manifest["failed"].append({"key": r["key"], "status": r["status"], "error": r["error"]})
            continue
        for j, s in enumerate(r["samples"]):
            name = f"a{len(arrays)}"
            arrays[name] = s["data"]
            manifest["samples"].append(
                {
                    "key": r["key"],
                    "order": j,
                    "array": name,
                    "layout": s["layout"],
                    "shape": list(s["data"].shape),
                    "meta": s["meta"],
                }
            )
    npz = shards / f"shard-{shard_id:05d}.npz"
    with open(str(npz) + ".partial", "wb") as f:
        np.savez(f, **arrays)
    os.replace(str(npz) + ".partial", npz)
    tmp = shards / f"shard-{shard_id:05d}.json.partial"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, shards / f"shard-{shard_id:05d}.json")


def _merge(out: Path, shards: Path, plan: dict[str, Any], fmt: str, src: Path) -> int:
    """Merge every shard into the cache, in the source order of the units; returns the count."""
    order = {k: i for i, k in enumerate(plan["units"])}
    entries = []
    for sid, man in _manifests(shards):
        for e in man["samples"]:
            if e["key"] in order:
                entries.append((order[e["key"]], e["order"], sid, e))
    entries.sort(key=lambda x: (x[0], x[1]))
    if not entries:
        raise SkeletonFormatError(src, "no file could be read; see report.json for the errors")
    layouts = {e[3]["layout"] for e in entries}
    if len(layouts) > 1:
        raise SkeletonFormatError(
            src, f"samples have different layouts ({', '.join(sorted(layouts))}); name one layout"
        )
    chans = {e[3]["shape"][3] for e in entries}
    if len(chans) > 1:
        raise SkeletonFormatError(src, f"samples have different channel counts ({sorted(chans)})")
    num_bodies = max(e[3]["shape"][1] for e in entries)
    npz: dict[int, Any] = {}
    try:
        with CacheWriter(
            out,
            layout=layouts.pop(),
            classes=plan["classes"],
            num_bodies=num_bodies,
            channels=chans.pop(),
            name=plan["name"],
            source=f"llmskel data prepare --format {fmt} --src {src}",
        ) as w:
            for _, _, sid, e in entries:
                if sid not in npz:
                    npz[sid] = np.load(shards / f"shard-{sid:05d}.npz", allow_pickle=False)
                m = e["meta"]
                w.add(SkeletonSample(data=npz[sid][e["array"]], layout=e["layout"], **m))
            count = w.count
    finally:
        for z in npz.values():
            z.close()
    return count


# ------------------------------------------------------------------------------------------
# the job


def prepare_directory(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fmt: str = "ntu",
    workers: int | None = None,
    shard_size: int = 256,
    ignore_list: str | os.PathLike | None = None,
    max_files: int | None = None,
    denoise: bool = True,
    num_bodies: int | None = None,
    layout: str | None = None,
    classes: Sequence[str] | None = None,
    label_file: str | os.PathLike | None = None,
    allow_pickle: bool = False,
    skip_listed_missing: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare a cache in ``out`` from the raw data in ``src``; returns the report (also in
    ``out/report.json``). See the module docstring.

    ``workers``: processes (default: up to 4 CPUs; 0 or 1 reads in this process).
    ``max_files``: read at most this many new units, flush and stop (the rest on the next run).
    ``ignore_list``: a file of sample names to skip. ``skip_listed_missing`` (NTU): also skip the
    samples the dataset authors list as having missing skeletons.
    """
    t0 = time.time()
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"source not found: {src}")
    from .datasets import find_dataset

    rec = find_dataset(fmt)
    if rec is None or not rec.preparable:
        raise ConfigError(f"unknown data format {fmt!r}; valid formats: {', '.join(formats())}")
    fmt = rec.name
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; the cache is a folder: name a new or existing folder")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {out}: {parent} is a file, not a folder")
            break
    shards = out / SHARDS_DIR
    if is_cache(out) and not overwrite:
        if not shards.exists():
            report = _read_report(out)
            report["already_complete"] = True
            log.info("%s is already a finished cache (use overwrite to rebuild)", out)
            return report
    if overwrite:
        for name in (INFO_FILE, ARRAYS_FILE, INDEX_FILE, REPORT_FILE):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True, exist_ok=True)
    opts = {
        "ignore": read_ignore_list(ignore_list) if ignore_list else set(),
        "skip_listed_missing": skip_listed_missing,
        "num_bodies": num_bodies,
        "layout": layout,
        "classes": list(classes) if classes else None,
        "label_file": label_file,
        "allow_pickle": allow_pickle,
    }
    plan = _plan(fmt, src, opts)
    for p in shards.glob("*.partial"):  # leftovers of an interrupted flush
        p.unlink()
    manifests = _manifests(shards)
    for p in shards.glob("shard-*.npz"):  # arrays whose manifest was never written
        if not (shards / (p.stem + ".json")).exists():
            p.unlink()
    done = {k for _, m in manifests for k in m["units"]}
    todo = [k for k in plan["units"] if k not in done]
    already = len(plan["units"]) - len(todo)
    if max_files is not None:
        todo = todo[: max(0, int(max_files))]
    next_id = max((sid for sid, _ in manifests), default=-1) + 1
    workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    tasks = [(fmt, k, plan["units"][k]) for k in todo]
    processed = 0
    pending: list[dict[str, Any]] = []
    if already:
        log.info("resuming: %d of %d units already done", already, len(plan["units"]))
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(tasks),
        desc=f"prepare {fmt}",
        unit="file",
        file=sys.stderr,
        disable=not progress or not tasks,
    )
    pool = None
    try:
        work = partial(_work, denoise=denoise)
        if workers > 1 and len(tasks) > 1:
            pool = mp.get_context("spawn" if sys.platform == "darwin" else None).Pool(workers)
            chunk = max(1, min(32, len(tasks) // (workers * 8) or 1))
            results = pool.imap_unordered(work, tasks, chunksize=chunk)
        else:
            results = map(work, tasks)
        for res in results:
            pending.append(res)
            processed += 1
            bar.update(1)
            if len(pending) >= shard_size:
                _flush(shards, next_id, pending)
                next_id += 1
                pending = []
    finally:
        if pending:  # keep what was read, even when interrupted
            _flush(shards, next_id, pending)
        if pool is not None:
            pool.terminate()
            pool.join()
        bar.close()
    manifests = _manifests(shards)
    done = {k for _, m in manifests for k in m["units"]}
    complete = all(k in done for k in plan["units"])
    report = _build_report(fmt, src, out, plan, manifests, processed, already, complete, workers)
    if complete:
        report["samples"] = _merge(out, shards, plan, fmt, src)
        shutil.rmtree(shards)
    else:
        report["remaining"] = len(plan["units"]) - len(done)
        log.info("stopped with %d of %d units done; run again to continue", len(done), len(plan["units"]))
    report["seconds"] = round(time.time() - t0, 3)
    tmp = out / (REPORT_FILE + ".partial")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, out / REPORT_FILE)
    if report["error_count"]:
        log.warning("%d file(s) could not be read; listed in %s", report["error_count"], out / REPORT_FILE)
    return report


def _build_report(
    fmt: str,
    src: Path,
    out: Path,
    plan: dict[str, Any],
    manifests: list[tuple[int, dict[str, Any]]],
    processed: int,
    already: int,
    complete: bool,
    workers: int,
) -> dict[str, Any]:
    errors, missing, dropped = [], [], []
    nsamples = 0
    for _, m in manifests:
        for f in m["failed"]:
            item = {"file": f["key"], "error": f["error"]}
            (missing if f["status"] == "missing" else errors).append(item)
        for e in m["samples"]:
            nsamples += 1
            den = (e["meta"].get("extra") or {}).get("denoise") or {}
            if den.get("frames_dropped"):
                dropped.append({"file": e["key"], "frames_dropped": den["frames_dropped"]})
    report = {
        "format": fmt,
        "src": str(src),
        "out": str(out),
        "complete": complete,
        "units": len(plan["units"]),
        "samples": nsamples,
        "processed_this_run": processed,
        "already_done": already,
        "error_count": len(errors),
        "errors": sorted(errors, key=lambda x: x["file"]),
        "missing_skeletons": sorted(missing, key=lambda x: x["file"]),
        "ignored": sorted(plan["ignored"]),
        "frames_dropped": sorted(dropped, key=lambda x: x["file"]),
        "workers": workers,
    }
    report.update(plan["extra"])
    return report


def _read_report(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / REPORT_FILE).read_text())
    except (OSError, ValueError):
        info = json.loads((out / INFO_FILE).read_text())
        return {
            "out": str(out),
            "complete": True,
            "samples": info.get("count"),
            "error_count": 0,
            "errors": [],
        }
