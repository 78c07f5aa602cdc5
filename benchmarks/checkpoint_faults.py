"""Fault injection on checkpoints, for real: SIGKILL during a step and during a save, corrupt
checkpoint files, two runs on one folder. Prints one line per trial and a summary.

    OMP_NUM_THREADS=1 python benchmarks/checkpoint_faults.py [--trials 5] [--workdir /tmp/faults]

Every run is the tiny synthetic config of tests/test_train.py (16 train samples, 4 steps an epoch,
3 epochs, a checkpoint every step). A reference run trains uninterrupted; every faulted run is then
resumed with ``--resume`` and its final weights are compared with the reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.synthetic.num_classes=4", "data.synthetic.samples_per_class=8", "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24", "data.num_frames=16", "data.num_bodies=1", "data.augment.rotate=10",
    "data.augment.noise=0.005", "model.name=ctrgcn_tiny", "model.overrides={drop_out: 0.2}",
    "train.batch_size=4", "train.eval_batch_size=5", "train.progress=false", "train.trackers=[jsonl]",
    "optim.lr=0.05", "optim.warmup_epochs=0", "train.epochs=3", "train.checkpoint_every=1",
    "train.keep_checkpoints=3",
]  # fmt: skip
# runs scripts/train.py; with KILL_AT_SAVE=i it SIGKILLs itself inside save i, after every state file
# is written and before checkpoint.json and the rename (the worst moment for a save)
CHILD = """
import os, signal, sys
import llmskel.engine.checkpoints as c
at = int(os.environ.get("KILL_AT_SAVE", "-1"))
seal = c.CheckpointWriter._seal
def seal_or_die(self, *a):
    if self.index == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return seal(self, *a)
c.CheckpointWriter._seal = seal_or_die
from llmskel.engine.commands import train_main
sys.exit(train_main(sys.argv[1:]))
"""


def env(**extra: str) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **extra)


def train(run: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, *TINY, f"output_dir={run}", *args], env=env(**extra),
                          cwd=ROOT, capture_output=True, text=True, timeout=900)  # fmt: skip


def weights(run: Path):
    from safetensors.torch import load_file

    return load_file(str(run / "last" / "model.safetensors"))


def same(a: Path, b: Path) -> bool:
    import torch

    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def losses(run: Path) -> list[float]:
    return [h["train_loss"] for h in json.loads((run / "metrics.json").read_text())["history"]]


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:220] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp/llmskel_faults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-points", default="1,4,6", help="saves to die in, comma-separated")
    ap.add_argument("--corrupt", type=int, default=5, help="how many of the corrupt-file cases to run")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = Path(a.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ref = work / "reference"
    t0 = time.perf_counter()
    out = train(ref)
    assert out.returncode == 0, out.stderr[-2000:]
    print(f"reference run: {time.perf_counter() - t0:.1f} s, losses {losses(ref)}")
    summary: dict[str, list[bool]] = {}

    def report(kind: str, ok: bool, detail: str) -> None:
        summary.setdefault(kind, []).append(ok)
        print(f"{kind}: {'OK ' if ok else 'BAD'} {detail}", flush=True)

    # 1. SIGKILL at a random moment (mostly inside a step; sometimes inside a save)
    for i in range(a.trials):
        run = work / f"kill_random_{i}"
        p = subprocess.Popen([sys.executable, "-c", CHILD, *TINY, f"output_dir={run}"], env=env(), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while not (run / "checkpoints").is_dir() and p.poll() is None:  # training has started
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = sorted(x.name for x in (run / "checkpoints").iterdir())
        out = train(run, "--resume")
        ok = out.returncode == 0 and same(ref, run) and losses(run) == losses(ref)
        report("kill -9 at a random time", ok, f"left {left}; resume rc={out.returncode}; weights and "
               f"metrics equal to the reference: {ok}")  # fmt: skip

    # 2. SIGKILL inside a save, after the state files, before the index and the rename
    for at in [int(x) for x in a.save_points.split(",")]:
        run = work / f"kill_in_save_{at}"
        out = train(run, KILL_AT_SAVE=str(at))
        left = sorted(x.name for x in (run / "checkpoints").iterdir())
        res = train(run, "--resume")
        ok = out.returncode == -signal.SIGKILL and res.returncode == 0 and same(ref, run)
        ok = ok and losses(run) == losses(ref)
        report("kill -9 inside save", ok, f"save {at}: rc={out.returncode}, left {left}; resume rc="
               f"{res.returncode}; equal to the reference: {ok}")  # fmt: skip

    # 3. corrupt files in the newest checkpoint: explicit --resume names the file; --resume falls back
    for name, how in (("model.safetensors", "truncate"), ("optimizer.bin", "garbage"), ("scheduler.bin", "delete"),
                      ("random_states_0.pkl", "truncate"), ("checkpoint.json", "garbage"))[: a.corrupt]:  # fmt: skip
        run = work / f"corrupt_{name}"
        out = train(run, KILL_AT_SAVE="6")  # dies inside save 6: checkpoints 3, 4 and 5 are complete
        from llmskel.engine.checkpoints import list_checkpoints

        newest = list_checkpoints(run)[-1]
        f = newest / name
        if how == "truncate":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        elif how == "garbage":
            f.write_bytes(os.urandom(f.stat().st_size))
        else:
            f.unlink()
        explicit = train(run, f"--resume={newest}")
        named = explicit.returncode == 1 and str(f) in explicit.stderr and "Traceback" not in explicit.stderr
        res = train(run, "--resume")
        ok = named and res.returncode == 0 and same(ref, run)
        report("corrupt checkpoint file", ok, f"{how} {name}: --resume PATH rc={explicit.returncode} says "
               f"'{last_line(explicit.stderr)}'; --resume falls back, rc={res.returncode}, equal: {ok}")  # fmt: skip

    # 4. two runs on one folder: at the same time, then one after the other
    run = work / "two_runs"
    first = subprocess.Popen([sys.executable, "-c", CHILD, *TINY, f"output_dir={run}"], env=env(), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    while not (run / "run.lock").exists() and first.poll() is None:
        time.sleep(0.01)
    second = train(run, "optim.lr=0.01")
    first.wait()
    ok = (
        second.returncode == 1
        and "in use by process" in second.stderr
        and first.returncode == 0
        and same(ref, run)
    )
    report("two runs at once", ok, f"second rc={second.returncode}: '{last_line(second.stderr)}'; first rc="
           f"{first.returncode}, equal to the reference: {same(ref, run)}")  # fmt: skip
    cfg_before = (run / "config.yaml").read_bytes()
    later = train(run, "optim.lr=0.01")
    ok = (
        later.returncode == 1
        and "holds a previous run" in later.stderr
        and (run / "config.yaml").read_bytes() == cfg_before
    )
    report("fresh run into a finished run", ok, f"rc={later.returncode}: '{last_line(later.stderr)}'; config.yaml "
           f"unchanged: {(run / 'config.yaml').read_bytes() == cfg_before}")  # fmt: skip

    print("summary: " + "; ".join(f"{k}: {sum(v)}/{len(v)} survived" for k, v in summary.items()))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
