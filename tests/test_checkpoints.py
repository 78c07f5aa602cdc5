"""Checkpoints and run folders: nothing in a checkpoint runs code, crashes leave a usable state,
a resumed run reports what an uninterrupted one does, and one run owns its folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import TINY, tiny_cfg

from llmskel.engine.checkpoints import (
    META_NAME,
    CheckpointWriter,
    RunFolderError,
    list_checkpoints,
    verify_checkpoint,
)
from llmskel.engine.trainer import training_function
from llmskel.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parents[1]
# 16 train samples / batch 4 = 4 optimizer steps an epoch
RESUMABLE = ["train.epochs=2", "train.checkpoint_every=1", "train.keep_checkpoints=3"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted run, the reference for every resumed one."""
    res = training_function(tiny_cfg(tmp_path_factory.mktemp("ckpt"), *RESUMABLE, name="full"))
    return Path(res["run_dir"]), res


def _same_weights(a_run: Path, b_run: Path) -> None:
    a, b = (
        load_file(str(a_run / "last" / "model.safetensors")),
        load_file(str(b_run / "last" / "model.safetensors")),
    )
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def _history(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["history"]


# ------------------------------------------------------------------------------------------------
# no code from a checkpoint
class _Payload:
    """Unpickling this writes a marker file: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _payloads(marker: Path) -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save({"state": _Payload(marker)}, buf)  # what a torch-format state file would hold
    return {"pickle": pickle.dumps(_Payload(marker)), "torch.save": buf.getvalue()}


def _rehash(ckpt: Path) -> None:
    """Rewrite checkpoint.json to match the files as they are now: what an attacker who builds
    the whole folder would do, so the loader really opens the planted file."""
    meta = json.loads((ckpt / META_NAME).read_text())
    meta["files"] = {
        p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in ckpt.iterdir()
        if p.name != META_NAME
    }
    (ckpt / META_NAME).write_text(json.dumps(meta))


def test_planted_pickle_in_any_checkpoint_file_runs_no_code(full_run, tmp_path):
    run, _ = full_run
    ckpt = list_checkpoints(run)[-1]
    names = sorted(p.name for p in ckpt.iterdir())
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", META_NAME} <= set(
        names
    )
    assert not any(n.startswith("custom_checkpoint") for n in names)  # no pickled progress object
    assert json.loads((ckpt / META_NAME).read_text())["progress"]["global_step"] == 8

    marker = tmp_path / "PWNED"
    payloads = _payloads(marker)
    pickle.loads(payloads["pickle"])  # the payload is live: plain unpickling runs it
    assert marker.exists()
    marker.unlink()

    cfg = tiny_cfg(tmp_path, *RESUMABLE, name="victim")
    # every file of a real checkpoint, plus the file the review planted (custom_checkpoint_0.pkl)
    for target in [*names, "custom_checkpoint_0.pkl"]:
        for kind, payload in payloads.items():
            bad = tmp_path / "shared" / "checkpoints" / "checkpoint_7"
            shutil.rmtree(bad.parent.parent, ignore_errors=True)
            shutil.copytree(ckpt, bad)
            (bad / target).write_bytes(payload)
            if target != META_NAME:
                _rehash(bad)
            with pytest.raises(CheckpointError, match="cannot resume") as e:
                training_function(cfg, resume=str(bad))
            assert str(bad / target) in str(e.value), (target, kind, str(e.value))
            assert not marker.exists(), f"code ran from {target} ({kind})"
        # with the index left as written, the change itself is caught, before anything is opened
        if target != META_NAME:
            (bad / target).write_bytes(payloads["pickle"])
            meta = json.loads((bad / META_NAME).read_text())
            meta["files"].pop("custom_checkpoint_0.pkl", None)
            if target in meta["files"]:
                meta["files"][target]["sha256"] = "0" * 64
                meta["files"][target]["bytes"] = len(payloads["pickle"])
            (bad / META_NAME).write_text(json.dumps(meta))
            with pytest.raises(CheckpointError, match="SHA-256 mismatch|not listed") as e:
                verify_checkpoint(bad)
            assert str(bad / target) in str(e.value)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# corrupt and incomplete checkpoints
def test_truncated_or_missing_file_is_named_and_resume_falls_back(full_run, tmp_path, caplog):
    ref, ref_res = full_run
    cfg = tiny_cfg(tmp_path, *RESUMABLE)
    assert training_function(cfg, stop_after_steps=6)["stopped_early"]
    cps = list_checkpoints(Path(cfg.run_dir))
    # a checkpoint every step, one more at the epoch end; keep_checkpoints=3
    assert [c.name for c in cps] == ["checkpoint_4", "checkpoint_5", "checkpoint_6"]
    latest, previous = cps[-1], cps[-2]

    opt = latest / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[: opt.stat().st_size // 2])
    with pytest.raises(CheckpointError) as e:
        training_function(cfg, resume=str(latest))
    msg = str(e.value)
    assert str(opt) in msg and "truncated" in msg and f"newest complete checkpoint is {previous}" in msg

    (latest / "model.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        training_function(cfg, resume=str(latest))
    assert f"{latest / 'model.safetensors'}: missing" in str(e.value) and "pytorch_model.bin" not in str(
        e.value
    )
    # an index that no longer lists the weights at all: still named as missing
    meta = json.loads((latest / META_NAME).read_text())
    meta["files"].pop("model.safetensors")
    (latest / META_NAME).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        training_function(cfg, resume=str(latest))

    # --resume (latest) skips the bad one with a warning and continues from the one before
    with caplog.at_level("WARNING", logger="llmskel.engine.checkpoints"):
        res = training_function(cfg, resume=True)
    assert "skipping a bad checkpoint" in caplog.text and "model.safetensors" in caplog.text
    assert f"continuing from {previous}" in caplog.text
    assert res["steps"] == ref_res["steps"] == 8
    _same_weights(ref, Path(cfg.run_dir))
    # new checkpoints were numbered after the bad one, which rotation then removed
    assert [c.name for c in list_checkpoints(Path(cfg.run_dir))] == [
        "checkpoint_8",
        "checkpoint_9",
        "checkpoint_10",
    ]


def test_crash_during_save_keeps_previous_checkpoint_and_resume_is_exact(full_run, tmp_path, monkeypatch):
    ref, _ = full_run
    cfg = tiny_cfg(tmp_path, *RESUMABLE)
    seal = CheckpointWriter._seal

    def crash_at_third(self, tmp, final, progress):
        if self.index == 2:  # every state file is written; the index and the rename are not
            raise KeyboardInterrupt("killed while saving")
        return seal(self, tmp, final, progress)

    monkeypatch.setattr(CheckpointWriter, "_seal", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        training_function(cfg)
    monkeypatch.setattr(CheckpointWriter, "_seal", seal)
    root = Path(cfg.run_dir) / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint_0", "checkpoint_1", "checkpoint_2.partial"]
    assert [c.name for c in list_checkpoints(Path(cfg.run_dir))] == ["checkpoint_0", "checkpoint_1"]
    res = training_function(cfg, resume=True)
    assert res["steps"] == 8 and not (root / "checkpoint_2.partial").exists()
    _same_weights(ref, Path(cfg.run_dir))
    losses = [h["train_loss"] for h in _history(Path(cfg.run_dir))]
    assert losses == pytest.approx([h["train_loss"] for h in _history(ref)], rel=1e-6)


def test_resumed_run_reports_the_uninterrupted_metrics(full_run, tmp_path):
    ref, ref_res = full_run
    cfg = tiny_cfg(tmp_path, *RESUMABLE)
    assert training_function(cfg, stop_after_steps=6)["stopped_early"]  # inside epoch 2
    res = training_function(cfg, resume=True)
    got, want = _history(Path(cfg.run_dir)), _history(ref)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        # the interrupted epoch's loss averages all 4 of its batches, not the 2 after the resume
        assert g["train_loss"] == pytest.approx(w["train_loss"], rel=1e-6), (g, w)
        assert g["top1"] == w["top1"]
    assert res["test_top1"] == ref_res["test_top1"]


@pytest.mark.slow
def test_sigkill_during_save_then_resume(full_run, tmp_path):
    """A real SIGKILL inside the save (after the state files, before the rename), in a child process."""
    ref, _ = full_run
    run = tmp_path / "run"
    args = [*TINY, *RESUMABLE, f"output_dir={run}"]
    code = (
        "import os, signal, sys\n"
        "import llmskel.engine.checkpoints as c\n"
        "seal = c.CheckpointWriter._seal\n"
        "def die(self, *a):\n"
        "    if self.index == 5:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return seal(self, *a)\n"
        "c.CheckpointWriter._seal = die\n"
        "from llmskel.engine.commands import train_main\n"
        "sys.exit(train_main(sys.argv[1:]))\n"
    )
    # the child computes with as many threads as this process (the reference run): CPU reductions
    # split over another number of threads round differently
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert (run / "checkpoints" / "checkpoint_5.partial").is_dir() and (run / "run.lock").is_file()
    res = training_function(load_cfg(args), resume=True)  # takes over the dead process's lock
    assert res["steps"] == 8 and not (run / "run.lock").exists()
    _same_weights(ref, run)


def load_cfg(args: list[str]):
    from llmskel.engine.config import load_experiment

    return load_experiment(None, args)


# ------------------------------------------------------------------------------------------------
# the run folder
def test_fresh_run_into_an_old_run_is_refused_before_anything_is_written(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=1")
    training_function(cfg)
    run = Path(cfg.run_dir)
    before = {p: p.read_bytes() for p in (run / "config.yaml", run / "metrics.json")}
    old = [c.name for c in list_checkpoints(run)]
    other = tiny_cfg(tmp_path, "train.epochs=2", "optim.lr=0.01")  # a different experiment, same folder
    with pytest.raises(RunFolderError, match="holds a previous run .*--resume .*--overwrite"):
        training_function(other)
    assert {p: p.read_bytes() for p in before} == before
    assert [c.name for c in list_checkpoints(run)] == old and not (run / "run.lock").exists()

    with pytest.raises(ConfigError, match="choose one"):
        training_function(other, resume=True, overwrite=True)
    res = training_function(other, overwrite=True)
    assert res["epochs"] == 2
    assert [c.name for c in list_checkpoints(run)] == ["checkpoint_0", "checkpoint_1"]  # numbered afresh
    assert "lr: 0.01" in (run / "config.yaml").read_text()


def test_lock_of_a_live_process_refuses_and_a_dead_ones_is_taken_over(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path, "train.max_steps=1")
    run = Path(cfg.run_dir)
    run.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "run.lock").write_text(
            json.dumps({"pid": live.pid, "host": os.uname().nodename, "since": "now"})
        )
        with pytest.raises(RunFolderError, match=f"in use by process {live.pid}"):
            training_function(cfg)
        assert not (run / "config.yaml").exists()  # refused before anything was written
    finally:
        live.kill()
        live.wait()
    # the owner is gone now (killed): its lock is stale
    with caplog.at_level("WARNING", logger="llmskel.engine.checkpoints"):
        assert training_function(cfg)["steps"] == 1
    assert "stale lock" in caplog.text and not (run / "run.lock").exists()


@pytest.mark.slow
def test_two_trainings_on_one_folder_cli_says_so(tmp_path, capsys):
    """A second `llmskel train` while the first holds the folder: one clear line, exit 1."""
    from llmskel.cli import main

    run = tmp_path / "busy"
    first = subprocess.Popen(
        [sys.executable, "-c", "import sys; from llmskel.cli import main; sys.exit(main(sys.argv[1:]))",
         "train", *TINY, "train.epochs=4", f"output_dir={run}"],
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        import time

        t0 = time.time()
        while not (run / "run.lock").exists() and first.poll() is None and time.time() - t0 < 120:
            time.sleep(0.05)
        assert (run / "run.lock").exists(), first.communicate()[1][-2000:]
        rc = main(["train", *TINY, "train.epochs=1", f"output_dir={run}"])
        err = capsys.readouterr().err
        assert rc == 1 and "run folder is in use by process" in err and "Traceback" not in err
        assert "already exists" not in err
    finally:
        out, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 4  # the first run was untouched


# ------------------------------------------------------------------------------------------------
# how best/ was chosen
def test_card_says_best_was_chosen_on_the_test_set(full_run, tmp_path):
    run, _ = full_run
    card = (run / "best" / "README.md").read_text()
    assert "chosen on the test set" in card and "optimistic" in card
    assert json.loads((run / "metrics.json").read_text())["best_selected_on"] == "test"
    res = training_function(tiny_cfg(tmp_path, "train.epochs=1", "data.val_fraction=0.25"))
    card = (Path(res["run_dir"]) / "best" / "README.md").read_text()
    assert "highest validation top-1" in card and "test set" not in card
    assert res["best_selected_on"] == "validation"


@pytest.mark.slow
def test_two_gloo_ranks_lock_save_and_resume(tmp_path):
    """torchrun, 2 CPU ranks: only rank 0 takes the lock; a refusal ends both ranks (no hang); a
    2-rank checkpoint lists both RNG files and resumes."""
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               PYTHONPATH=str(ROOT))  # fmt: skip
    run = tmp_path / "ddp"

    def torchrun(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "scripts/train.py", *TINY, f"output_dir={run}", *extra]  # fmt: skip
        return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)

    run.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / "run.lock").write_text(json.dumps({"pid": live.pid, "host": os.uname().nodename}))
        out = torchrun("train.epochs=1")
        assert out.returncode != 0 and f"in use by process {live.pid}" in out.stderr
        # both ranks end with one line each (torchrun then prints its own summary of failed children)
        assert out.stderr.count("train.py: error:") == 2 and "llmskel/engine" not in out.stderr
        assert not (run / "config.yaml").exists()
    finally:
        live.kill()
        live.wait()
    (run / "run.lock").unlink()
    out = torchrun("train.epochs=1")
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = list_checkpoints(run)[-1]
    files = json.loads((ckpt / META_NAME).read_text())["files"]
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= set(files)
    out = torchrun("train.epochs=2", "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["steps"] == 4 and not (run / "run.lock").exists()
