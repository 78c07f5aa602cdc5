"""Crash-safe, code-free checkpoints and the run-folder lock.

Layout of a checkpoint (``<run>/checkpoints/checkpoint_<i>``)
    What Accelerate's ``save_state`` writes (``model.safetensors``, ``optimizer.bin``,
    ``scheduler.bin``, ``random_states_<rank>.pkl``, ``scaler.pt`` under fp16) plus
    ``checkpoint.json``: our training progress (plain JSON) and a manifest of every other file
    with its size and SHA-256. Nothing is registered with ``register_for_checkpointing``, so no
    ``custom_checkpoint_<i>.pkl`` exists: Accelerate would unpickle those with ``weights_only=False``.

Writing (all processes take part)
    The state goes to ``checkpoint_<i>.partial``; once every process has written its files the
    main process writes ``checkpoint.json`` last, fsyncs, and renames the folder to
    ``checkpoint_<i>``. A kill at any moment leaves either the previous complete checkpoints or a
    ``.partial`` folder, which is never resumed from and is removed by the next save. Old
    checkpoints are renamed to ``.deleting`` before they are removed.

Reading (``--resume``)
    :func:`verify_checkpoint` checks the manifest (missing, extra, truncated or changed files) and
    then opens every file without running code: safetensors headers, JSON, and the torch-pickle
    files with ``torch.load(weights_only=True)`` restricted to plain numpy arrays (the RNG states).
    Only then does Accelerate load the folder, with ``weights_only=True`` as well. Errors name the
    file and the problem. ``--resume`` (latest) falls back to the newest checkpoint that passes, with
    a warning that names the bad file; ``--resume PATH`` never falls back: it fails and names the
    newest complete checkpoint of the same run.

The run folder
    :class:`RunLock` is ``<run>/run.lock``, created with ``O_CREAT | O_EXCL`` and holding the
    owner's pid, host and process start time; a lock whose process is gone (same host) is stale and
    taken over with a warning. :func:`prepare_run_dir` refuses to start a fresh run in a folder that
    holds a previous run's checkpoints or results unless ``overwrite`` is set.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, LlmskelError

logger = logging.getLogger(__name__)

META_NAME = "checkpoint.json"
FORMAT = "llmskel-checkpoint"
FORMAT_VERSION = 1
LOCK_NAME = "run.lock"
_CKPT_RE = re.compile(r"checkpoint_(\d+)")
_MAX_META_BYTES = 64 * 1024 * 1024
# a run folder "holds a run" when any of these exists (config.yaml and logs/ alone do not count: a
# run that died before its first checkpoint left nothing worth keeping)
RESULT_OUTPUTS = ("checkpoints", "metrics.json", "best", "last", "scores")
# what --overwrite removes: llmskel's own outputs only, never other files in the folder
RUN_OUTPUTS = (*RESULT_OUTPUTS, "config.yaml", "logs", "per_class_accuracy.csv", "confusion_matrix.png",
               "curves.png")  # fmt: skip


class RunFolderError(LlmskelError):
    """The run folder is in use by another process, or holds another run."""


def on_main(accelerator, fn):
    """Run ``fn`` on the main process only; every process returns its result or raises its error
    (the other ranks wait in a broadcast rather than run ahead into a collective and hang)."""
    out: list[Any] = [None, None]
    err: BaseException | None = None
    if accelerator.is_main_process:
        try:
            out[0] = fn()
        except Exception as e:  # noqa: BLE001 - re-raised below, on every rank
            err, out[1] = e, (type(e).__name__, str(e))
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(out)
    if err is not None:
        raise err
    if out[1] is not None:
        raise LlmskelError(f"{out[1][0]} on the main process: {out[1][1]}")
    return out[0]


# ------------------------------------------------------------------------------------------------
# listing
def checkpoint_index(path: Path) -> int | None:
    m = _CKPT_RE.fullmatch(path.name)
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """``checkpoint_<i>`` folders of a run (complete by name; not yet verified), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_index(p) is not None]
    return sorted(found, key=lambda p: checkpoint_index(p))


def next_checkpoint_index(run_dir: Path) -> int:
    """One above every index used in the run's checkpoints folder (complete, partial or bad)."""
    root = Path(run_dir) / "checkpoints"
    used = [-1]
    if root.is_dir():
        for p in root.iterdir():
            m = re.match(r"checkpoint_(\d+)", p.name)
            if m:
                used.append(int(m.group(1)))
    return max(used) + 1


# ------------------------------------------------------------------------------------------------
# reading without running code
def _safe_globals() -> list[Any]:
    """What the RNG-state file needs besides tensors: numpy arrays rebuilt from raw bytes."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray._reconstruct, np.ndarray, np.dtype, codecs.encode]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "UInt32DType"):
        allowed.append(dtypes.UInt32DType)
    return allowed


def safe_torch_load(path: Path) -> Any:
    """``torch.load`` that can rebuild tensors, containers, numbers and plain numpy arrays, and
    refuses everything else (it never calls a function named in the file)."""
    import torch

    with torch.serialization.safe_globals(_safe_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_of(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def read_meta(ckpt: Path) -> dict[str, Any]:
    meta_path = ckpt / META_NAME
    if not meta_path.is_file():
        raise CheckpointError(
            f"{meta_path}: missing; the checkpoint is incomplete, or was written by an llmskel older than "
            "the crash-safe format (those stored pickled state and cannot be resumed safely)"
        )
    if meta_path.stat().st_size > _MAX_META_BYTES:
        raise CheckpointError(
            f"{meta_path}: {meta_path.stat().st_size} bytes, far too large for a checkpoint index"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({_first_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f'{meta_path}: not an llmskel checkpoint index (no "format": {FORMAT!r})')
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: checkpoint format version {meta.get('version')!r}; this llmskel "
                              f"reads version {FORMAT_VERSION}")  # fmt: skip
    files, progress = meta.get("files"), meta.get("progress")
    if not isinstance(files, dict) or not isinstance(progress, dict):
        raise CheckpointError(f'{meta_path}: "files" and "progress" must be JSON objects')
    for name, entry in files.items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
        )
        if not ok or name.startswith("/") or ".." in Path(name).parts:
            raise CheckpointError(f'{meta_path}: bad entry for {name!r} in "files"')
    return meta


def verify_checkpoint(ckpt: Path, expected: Sequence[str] = ()) -> dict[str, Any]:
    """Check a checkpoint folder completely, loading nothing that could run code; returns its
    ``checkpoint.json``. ``expected``: files that must be there (what resuming will read). Raises
    :class:`CheckpointError` naming the first bad file."""
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        raise CheckpointError(f"{ckpt}: checkpoint folder does not exist")
    meta = read_meta(ckpt)
    listed: dict[str, dict[str, Any]] = meta["files"]
    present = [f for f in _files_of(ckpt) if f != META_NAME]
    for name in expected:
        if name not in listed:
            raise CheckpointError(f"{ckpt / name}: missing; the checkpoint is incomplete")
    for name in present:
        if name not in listed:
            raise CheckpointError(f"{ckpt / name}: not listed in {META_NAME}; it was not written by llmskel "
                                  "and is refused (remove it if you put it there)")  # fmt: skip
    for name, entry in sorted(listed.items()):
        path = ckpt / name
        if path.is_symlink() or not path.is_file():
            raise CheckpointError(f"{path}: missing (listed in {META_NAME}); the checkpoint is incomplete")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise CheckpointError(
                f"{path}: {size} bytes but {entry['bytes']} were written (truncated or changed)"
            )
        if _sha256(path) != entry["sha256"]:
            raise CheckpointError(
                f"{path}: content differs from what was written (SHA-256 mismatch): corrupt"
            )
    for name in sorted(listed):
        _check_loadable(ckpt / name)
    return meta


def _check_loadable(path: Path) -> None:
    """Open a file the way resuming will, without running code from it."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                f.keys()
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".bin", ".pkl", ".pt", ".pth"):
            safe_torch_load(path)
    except Exception as e:  # noqa: BLE001 - any failure is a bad file; say which and why
        raise CheckpointError(f"{path}: cannot be loaded safely ({_first_line(e)}); it is corrupt or holds "
                              "objects other than tensors and numbers, which are never unpickled") from None  # fmt: skip


def select_checkpoint(
    run_dir: Path, resume: bool | str, expected: Sequence[str] = ()
) -> tuple[Path, dict[str, Any]]:
    """The checkpoint ``--resume`` continues from, verified, and its ``checkpoint.json``.

    ``True`` / ``"latest"``: the newest checkpoint that verifies; newer bad ones are skipped with
    a warning naming the bad file. A path: that checkpoint, or an error naming the bad file and the
    newest complete checkpoint beside it.
    """
    if resume is True or resume == "latest":
        cps = list_checkpoints(run_dir)
        if not cps:
            raise CheckpointError(f"--resume: no checkpoint in {Path(run_dir) / 'checkpoints'}")
        problems: list[str] = []
        for ckpt in reversed(cps):
            try:
                meta = verify_checkpoint(ckpt, expected)
            except CheckpointError as e:
                problems.append(str(e))
                continue
            for p in problems:
                logger.warning("--resume: skipping a bad checkpoint: %s", p)
            if problems:
                logger.warning("--resume: continuing from %s, the newest complete checkpoint", ckpt)
            return ckpt, meta
        raise CheckpointError("cannot resume: no complete checkpoint in "
                              f"{Path(run_dir) / 'checkpoints'}: " + "; ".join(problems))  # fmt: skip
    ckpt = Path(str(resume))
    if not ckpt.is_dir():
        what = "is a file, not a checkpoint folder" if ckpt.exists() else "does not exist"
        raise CheckpointError(f"--resume: checkpoint folder {ckpt} {what}")
    try:
        return ckpt, verify_checkpoint(ckpt, expected)
    except CheckpointError as e:
        hint = "no complete checkpoint beside it"
        for other in reversed(list_checkpoints(ckpt.parent.parent)):
            if other.resolve() == ckpt.resolve():
                continue
            try:
                verify_checkpoint(other, expected)
            except CheckpointError:
                continue
            hint = f"the newest complete checkpoint is {other} (--resume {other})"
            break
        raise CheckpointError(f"cannot resume from {ckpt}: {e}; {hint}") from None


# ------------------------------------------------------------------------------------------------
# writing
def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Remove a folder without ever leaving a half-deleted ``checkpoint_<i>``: rename it first."""
    if not path.exists():
        return
    if checkpoint_index(path) is not None:
        doomed = path.with_name(path.name + ".deleting")
        shutil.rmtree(doomed, ignore_errors=True)
        os.replace(path, doomed)
        path = doomed
    shutil.rmtree(path, ignore_errors=True)


class CheckpointWriter:
    """Saves ``checkpoint_<i>`` folders as described in the module docstring. Every process calls
    :meth:`save`; only the main process writes the index, renames and rotates."""

    def __init__(self, accelerator, run_dir: Path, keep: int, start_index: int):
        self.accelerator = accelerator
        self.root = Path(run_dir) / "checkpoints"
        self.keep = max(int(keep), 1)
        self.index = int(start_index)

    def save(self, progress: dict[str, Any]) -> Path:
        acc = self.accelerator
        final = self.root / f"checkpoint_{self.index}"
        tmp = self.root / f"checkpoint_{self.index}.partial"

        def start() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            if final.exists():
                raise CheckpointError(
                    f"{final}: exists already; another run is writing to {self.root.parent}?"
                )
            tmp.mkdir()

        on_main(acc, start)  # every rank learns of a failure instead of waiting for the others
        acc.save_state(str(tmp))  # collective: every process writes its own RNG state
        acc.wait_for_everyone()
        if acc.is_main_process:
            self._seal(tmp, final, progress)
            self._rotate(final)
        acc.wait_for_everyone()
        self.index += 1
        return final

    def _seal(self, tmp: Path, final: Path, progress: dict[str, Any]) -> None:
        files = {}
        for name in _files_of(tmp):
            path = tmp / name
            _fsync(path)
            files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "index": self.index,
            "num_processes": self.accelerator.num_processes,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "progress": progress,
            "files": files,
        }
        part = tmp / (META_NAME + ".tmp")
        with open(part, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, tmp / META_NAME)
        _fsync(tmp)
        os.replace(tmp, final)  # the moment the checkpoint exists
        _fsync(self.root)

    def _rotate(self, newest: Path) -> None:
        for p in self.root.iterdir():  # leftovers of killed saves and removals
            if p != newest and p.name.endswith((".partial", ".deleting")):
                shutil.rmtree(p, ignore_errors=True)
        cps = list_checkpoints(self.root.parent)
        for old in cps[: max(len(cps) - self.keep, 0)]:
            _remove(old)


# ------------------------------------------------------------------------------------------------
# the run folder
def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), to tell a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``<run>/run.lock``: one process per run folder. Use as a context manager or call
    :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _owner(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def _stale(self, owner: dict[str, Any] | None) -> bool:
        if owner is None:  # unreadable: a writer killed between create and write, unless brand new
            try:
                return time.time() - self.path.stat().st_mtime > 10
            except OSError:
                return True
        if owner.get("host") != socket.gethostname():
            return False  # cannot see that machine's processes
        pid = owner.get("pid")
        if not isinstance(pid, int) or not _pid_alive(pid):
            return True
        started = owner.get("proc_start")
        return started is not None and _proc_start(pid) not in (None, started)

    def acquire(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise CheckpointError(f"run folder {self.path.parent} (or a folder above it) is a file; "
                                  "pass another --output-dir") from None  # fmt: skip
        me = {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": _proc_start(os.getpid()),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if not self._stale(owner):
                    who = (f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')})"
                           if owner else "another process")  # fmt: skip
                    raise RunFolderError(
                        f"{self.path.parent}: run folder is in use by {who}; wait for it to finish or "
                        f"choose another output_dir. If no training runs there, delete {self.path}"
                    ) from None
                # stale: move it aside (atomic), then look again at what was moved
                aside = self.path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
                try:
                    os.replace(self.path, aside)
                except FileNotFoundError:
                    continue
                moved = None
                try:
                    moved = json.loads(aside.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    pass
                if moved != owner:  # someone else's fresh lock: put it back
                    os.replace(aside, self.path)
                    continue
                aside.unlink(missing_ok=True)
                logger.warning("%s: taking over a stale lock of %s (that process is gone)", self.path,
                               f"process {owner.get('pid')}" if owner else "an unknown process")  # fmt: skip
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunFolderError(f"{self.path}: could not take the run-folder lock (contended); try again")

    def release(self) -> None:
        if self.held:
            owner = self._owner()
            if owner is None or owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a fresh run in a folder holding another run's checkpoints or results, unless
    ``overwrite`` (then remove llmskel's outputs there). Call with the run lock held."""
    run_dir = Path(run_dir)
    if resume:
        return
    found = [n for n in RESULT_OUTPUTS if (run_dir / n).exists()]
    if found and not overwrite:
        raise RunFolderError(
            f"{run_dir}: holds a previous run ({', '.join(found)}); pass --resume to continue it, "
            "--overwrite to replace it, or choose another output_dir"
        )
    for name in RUN_OUTPUTS:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    if found:
        logger.warning("%s: --overwrite: removed the previous run's %s", run_dir, ", ".join(found))
