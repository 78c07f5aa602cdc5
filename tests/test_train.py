"""The Accelerate training engine on tiny synthetic data: learning, exact resume, outputs, failures."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llmskel.engine.config import load_experiment
from llmskel.engine.trainer import TrainingDivergedError, training_function
from llmskel.errors import CheckpointError, ConfigError

TINY = [
    "data.synthetic.num_classes=4",
    "data.synthetic.samples_per_class=8",
    "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24",
    "data.num_frames=16",
    "data.num_bodies=1",
    "data.augment.rotate=10",
    "data.augment.noise=0.005",
    "model.name=ctrgcn_tiny",
    "model.overrides={drop_out: 0.2}",
    "train.batch_size=4",
    "train.eval_batch_size=5",
    "train.progress=false",
    "train.trackers=[jsonl]",
    "optim.lr=0.05",
    "optim.warmup_epochs=0",
]


def tiny_cfg(tmp_path: Path, *extra: str, name: str = "run"):
    return load_experiment(None, TINY + [f"output_dir={tmp_path / name}", *extra])


def test_tiny_training_writes_every_output(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path, "train.epochs=3")
    # the CLI sets Accelerate's logger to WARNING (an earlier test may have run it): ask for INFO
    with caplog.at_level("INFO"), caplog.at_level("INFO", logger="accelerate"):
        res = training_function(cfg)
    run = Path(res["run_dir"])
    assert res["epochs"] == 3 and 0.0 <= res["test_top1"] <= 1.0
    for f in ("config.yaml", "metrics.json", "per_class_accuracy.csv", "confusion_matrix.png", "curves.png",
              "scores/test_scores.npz", "best/model.safetensors", "best/config.json", "best/README.md",
              "last/model.safetensors", "logs/metrics.jsonl"):  # fmt: skip
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        len(metrics["history"]) == 3 and metrics["num_test"] == 16
    )  # 4 classes x 8 samples, half the subjects
    losses = [h["train_loss"] for h in metrics["history"]]
    assert all(np.isfinite(losses))
    z = np.load(run / "scores" / "test_scores.npz")
    assert z["scores"].shape == (16, 4) and sorted(z["indices"].tolist()) == list(range(16))
    card = (run / "last" / "README.md").read_text()
    assert "synthetic" in card and "test_top1" in card
    # checkpoints are capped at keep_checkpoints (default 2)
    assert len(list((run / "checkpoints").iterdir())) == 2
    # ... and the rotation that keeps them at 2 is not reported as a warning at every checkpoint
    assert "checkpoint" in caplog.text and "to make room for new checkpoint" not in caplog.text
    # the resolved config reloads to the same experiment
    assert load_experiment(str(run / "config.yaml")) == cfg


def test_progress_off_also_hides_the_libraries_bars(tmp_path):
    import transformers.utils.logging as hf_logging
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    enable_progress_bars()  # (stays off if HF_HUB_DISABLE_PROGRESS_BARS was set at import)
    hf_logging.enable_progress_bar()
    before = (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled())
    try:
        training_function(tiny_cfg(tmp_path, "train.epochs=1", "train.progress=true"))
        assert (hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()) == before
        training_function(tiny_cfg(tmp_path, "train.epochs=1", name="quiet"))  # TINY: progress=false
        assert not hf_logging.is_progress_bar_enabled() and are_progress_bars_disabled()
    finally:
        enable_progress_bars()
        hf_logging.enable_progress_bar()


def test_loss_falls_on_synthetic(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=8", "data.augment.rotate=0", "model.overrides={drop_out: 0.0}")
    res = training_function(cfg)
    hist = json.loads((Path(res["run_dir"]) / "metrics.json").read_text())["history"]
    assert hist[-1]["train_loss"] < 0.7 * hist[0]["train_loss"]
    assert res["best_top1"] > 0.25 + 0.1  # above chance (4 classes)


def _params(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path):
    # 16 train samples / batch 4 = 4 steps per epoch; the "kill" lands inside epoch 2
    common = ["train.epochs=3", "train.checkpoint_every=1", "train.keep_checkpoints=3"]
    full = training_function(tiny_cfg(tmp_path, *common, name="full"))
    cfg = tiny_cfg(tmp_path, *common, name="killed")
    part = training_function(cfg, stop_after_steps=6)
    assert part.get("stopped_early") and part["steps"] == 6
    resumed = training_function(cfg, resume=True)
    assert resumed["steps"] == full["steps"] == 12
    a, b = _params(Path(full["run_dir"]) / "last"), _params(Path(resumed["run_dir"]) / "last")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert resumed["test_top1"] == pytest.approx(full["test_top1"])
    # the resumed run kept numbering its checkpoints after the loaded one
    names = sorted(p.name for p in (Path(cfg.run_dir) / "checkpoints").iterdir())
    assert "checkpoint_0" not in names


def test_resume_without_checkpoint_and_corrupt_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=1")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        training_function(cfg, resume=True)
    training_function(cfg)
    ckpt = sorted((Path(cfg.run_dir) / "checkpoints").iterdir())[-1]
    for f in ckpt.glob("*.safetensors"):
        f.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot resume"):
        training_function(cfg, resume=str(ckpt))


def test_nan_loss_stops_with_message_and_keeps_good_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=3", "train.checkpoint_every=1", "optim.lr=1e12",
                   "optim.name=sgd", "optim.momentum=0.0")  # fmt: skip
    with pytest.raises(TrainingDivergedError) as e:
        training_function(cfg)
    msg = str(e.value)
    assert "stopped before updating the weights" in msg and "Last good checkpoint" in msg
    cps = sorted((Path(cfg.run_dir) / "checkpoints").glob("checkpoint_*"))
    if cps:  # the first steps may already diverge; any checkpoint kept holds finite weights
        state = load_file(str(next(cps[-1].glob("model*.safetensors"))))
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="'optim.lrr'.*did you mean 'lr'"):
        load_experiment(None, ["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match="'data.stream' has invalid value 'bones'"):
        load_experiment(None, ["data.stream=bones"])
    with pytest.raises(ConfigError, match="did you mean 'ctrgcn_tiny'.*valid models: ctrgcn, "):
        training_function(tiny_cfg(tmp_path, "model.name=ctrgcm_tiny"))
    missing = tmp_path / "nowhere"
    with pytest.raises((FileNotFoundError, ValueError), match=str(missing)):
        training_function(tiny_cfg(tmp_path, "data.dataset=nw-ucla", f"data.root={missing}"))


def test_bf16_mixed_precision_from_config(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.max_steps=2", "train.mixed_precision=bf16")
    res = training_function(cfg)
    assert res["steps"] == 2 and np.isfinite(res["test_top1"])


def test_grad_accumulation_counts_optimizer_steps(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=1", "train.grad_accum=2")
    res = training_function(cfg)
    assert res["steps"] == 2  # 4 batches / 2


DDP_EVAL_CHECK = """
import json, sys
from accelerate import Accelerator
from llmskel.engine.config import load_experiment
from llmskel.engine.data import build_data, make_loaders
from llmskel.engine.trainer import evaluate, finish
from llmskel.methods.base import get_method

acc = Accelerator()
cfg = load_experiment(None, json.loads(sys.argv[1]))
bundle = build_data(cfg.data, seed=cfg.seed)
method = get_method("supervised")(cfg, bundle)
model = method.build_model()
_, test_loader = make_loaders(bundle, 4, 5, 0, cfg.seed)  # 16 samples / (2 x 5): a ragged end
model, test_loader = acc.prepare(model, test_loader)
res = evaluate(model, test_loader, acc, method, "test")
if acc.is_main_process:
    print("RESULT", json.dumps({"world": acc.num_processes, "indices": sorted(res["indices"].tolist()),
                                "n": len(bundle.test)}))
del model, test_loader  # what a script must do before the group goes (see trainer.finish)
finish(acc)
"""


def _torchrun(args: list[str], tmp_path: Path) -> str:
    import os
    import subprocess
    import sys

    # gloo picks its network interface from the host name, which can hang; loopback is enough here
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    out = subprocess.run(cmd, env=env, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_two_cpu_processes_gloo(tmp_path):
    """The documented multi-process CPU launch: two real gloo ranks running scripts/train.py."""
    run = tmp_path / "ddp"
    stdout = _torchrun(["scripts/train.py", *TINY, f"output_dir={run}", "train.epochs=2", "--json"], tmp_path)
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["steps"] == 2 * 2  # 16 train samples / (4 per process x 2 processes) per epoch
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test"] == 16 and metrics["steps"] == 4
    # evaluation counts each test sample exactly once although the shards do not divide evenly
    script = tmp_path / "ddp_eval.py"
    script.write_text(DDP_EVAL_CHECK)
    out = _torchrun([str(script), json.dumps(TINY)], tmp_path)
    rec = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[7:])
    assert rec["world"] == 2 and rec["indices"] == list(range(rec["n"])) and rec["n"] == 16


def test_torchrun_without_cpu_flag_is_refused(tmp_path, monkeypatch):
    """Plain torchrun on a machine without GPUs would start two independent rank-0 jobs."""
    from llmskel.engine.trainer import check_world_size
    from llmskel.errors import LlmskelError

    class One:
        num_processes = 1

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LlmskelError, match="ACCELERATE_USE_CPU=1"):
        check_world_size(One())


def test_validation_split_is_stratified_and_used(tmp_path):
    from llmskel.engine.data import stratified_holdout

    labels = np.repeat(np.arange(4), 5)
    idx = np.arange(100, 120)
    keep, held = stratified_holdout(labels, idx, 0.2, seed=3)
    assert len(held) == 4 and set(np.concatenate([keep, held])) == set(idx) and not set(keep) & set(held)
    assert sorted(labels[held - 100].tolist()) == [0, 1, 2, 3]  # one per class
    again, _ = stratified_holdout(labels, idx, 0.2, seed=3)
    assert np.array_equal(keep, again)

    seen: list = []
    from llmskel.methods.supervised import SupervisedMethod

    orig = SupervisedMethod.on_epoch_end
    SupervisedMethod.on_epoch_end = lambda self, model, epoch, rep: seen.append(rep)
    try:
        res = training_function(tiny_cfg(tmp_path, "train.epochs=2", "data.val_fraction=0.25"))
    finally:
        SupervisedMethod.on_epoch_end = orig
    hist = json.loads((Path(res["run_dir"]) / "metrics.json").read_text())["history"]
    assert all("val_top1" in h and "top1" in h for h in hist)
    assert hist[0]["val_top1"] is not None and res["best_epoch"] in (1, 2)
    # the hook saw the validation split (4 held-out samples), not the 16 test samples
    assert [r["num_samples"] for r in seen] == [4, 4]


# ------------------------------------------------------------------------------------------------
# host syncs: on an accelerator the losses are read every train.log_every steps, not every batch
_SYNCS = ("item", "tolist", "__float__", "__bool__", "__int__", "cpu", "numpy")


def _count_loop_syncs(monkeypatch, cfg, read_every_batch: bool) -> tuple[dict, list[str]]:
    """Run ``cfg`` recording the Tensor -> host reads (each makes the host wait for a GPU) that
    llmskel's own code makes inside ``train_epoch`` (the sampler's per-epoch permutation, in torch, is
    left out); ``read_every_batch`` picks the trainer's CPU or accelerator policy."""
    import llmskel.engine.trainer as trainer

    state: dict[str, Any] = {"on": False, "calls": []}
    for name in _SYNCS:
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, _name=name, **k):
            caller = sys._getframe(1).f_code
            if state["on"] and f"{os.sep}llmskel{os.sep}" in caller.co_filename:
                state["calls"].append(f"{_name} in {caller.co_name}")
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    train_epoch = trainer.train_epoch

    def counting_epoch(*a, **k):
        state["on"] = True
        try:
            return train_epoch(*a, **k)
        finally:
            state["on"] = False

    monkeypatch.setattr(trainer, "train_epoch", counting_epoch)
    monkeypatch.setattr(trainer, "reads_loss_every_batch", lambda device: read_every_batch)
    res = training_function(cfg)
    monkeypatch.undo()
    return res, state["calls"]


def test_losses_are_read_every_log_every_steps_off_cpu_with_the_same_result(tmp_path, monkeypatch):
    # 2 epochs x 4 steps; trackers log every 4 steps
    common = ["train.epochs=2", "train.log_every=4", "train.checkpoint_every=0", "data.augment.rotate=0"]
    per_batch, calls_per_batch = _count_loop_syncs(monkeypatch, tiny_cfg(tmp_path, *common, name="cpu"), True)
    grouped, calls_grouped = _count_loop_syncs(monkeypatch, tiny_cfg(tmp_path, *common, name="gpu"), False)
    # 8 steps of one batch, 2 of them log steps, where the method's logged "ce" is read too; before
    # this, every batch made 4 reads (finite check x2, the epoch loss sum, the method's "ce")
    assert sorted(calls_per_batch) == ["item in _host"] * 2 + ["tolist in read"] * 8, calls_per_batch
    assert sorted(calls_grouped) == ["item in _host"] * 2 + ["tolist in read"] * 2, calls_grouped
    # the same run either way: losses, logs and weights
    hist = [
        json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["history"] for r in (per_batch, grouped)
    ]
    assert [h["train_loss"] for h in hist[0]] == [h["train_loss"] for h in hist[1]]
    logs = [
        (Path(r["run_dir"]) / "logs" / "metrics.jsonl").read_text().splitlines() for r in (per_batch, grouped)
    ]
    strip = [[{k: v for k, v in json.loads(line).items() if k != "time" and "samples_s" not in k} for line in x]
             for x in logs]  # fmt: skip
    assert strip[0] == strip[1] and any("train/loss" in r for r in strip[0])
    a, b = _params(Path(per_batch["run_dir"]) / "last"), _params(Path(grouped["run_dir"]) / "last")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grouped_loss_reads_still_stop_a_diverged_run_naming_epoch_and_batch(tmp_path, monkeypatch):
    import llmskel.engine.trainer as trainer

    monkeypatch.setattr(trainer, "reads_loss_every_batch", lambda device: False)
    cfg = tiny_cfg(tmp_path, "train.epochs=3", "train.checkpoint_every=2", "train.log_every=3", "optim.lr=1e12",
                   "optim.name=sgd", "optim.momentum=0.0")  # fmt: skip
    with pytest.raises(TrainingDivergedError) as e:
        training_function(cfg)
    msg = str(e.value)
    assert "at epoch 1, batch " in msg and "Last good checkpoint" in msg
    assert "stopped before updating the weights" in msg or "so the weights were updated since" in msg
    for ckpt in sorted((Path(cfg.run_dir) / "checkpoints").glob("checkpoint_*")):  # none holds NaN weights
        state = load_file(str(next(ckpt.glob("model*.safetensors"))))
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt
