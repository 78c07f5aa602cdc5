"""train.trackers: every tracker Accelerate knows passes through, with clear errors before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import tiny_cfg

from llmskel.engine.trackers import TrackerUnavailableError, accelerate_trackers
from llmskel.engine.trainer import training_function
from llmskel.errors import ConfigError


def test_accelerate_trackers_are_all_known():
    known = accelerate_trackers()
    # what Accelerate 1.x ships; a newer one may add more, never fewer
    assert {"tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive"} <= set(known)
    assert all(callable(known[name]) for name in ("tensorboard", "wandb", "mlflow"))


def test_a_known_tracker_without_its_package_names_the_package(tmp_path):
    missing = [name for name, check in accelerate_trackers().items() if check is not None and not check()]
    if not missing:
        pytest.skip("every tracker library Accelerate knows is installed here")
    name = missing[0]
    cfg = tiny_cfg(tmp_path, "train.epochs=1", f"train.trackers=[jsonl, {name}]")
    with pytest.raises(TrackerUnavailableError) as e:
        training_function(cfg)
    msg = str(e.value)
    assert f"tracker {name!r}" in msg and "not installed" in msg and "pip install" in msg
    assert e.value.key == "train.trackers"
    assert not Path(cfg.run_dir).exists()  # refused before the run folder was made


def test_an_unknown_tracker_lists_the_valid_ones(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=1", "train.trackers=[tensorbord]")
    with pytest.raises(ConfigError) as e:
        training_function(cfg)
    msg = str(e.value)
    assert "unknown tracker 'tensorbord'" in msg
    for name in ("jsonl", "tensorboard", "wandb", "mlflow"):
        assert name in msg.split("valid:")[1], name
    assert not Path(cfg.run_dir).exists()


def test_tensorboard_and_jsonl_both_log(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.epochs=1", "train.log_every=1", "train.trackers=[tensorboard, jsonl]")
    res = training_function(cfg)
    logs = Path(res["run_dir"]) / "logs"
    rows = [json.loads(line) for line in (logs / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4]  # 16 samples / batch 4
    assert any("epoch/top1" in r for r in rows)
    assert list(logs.rglob("events.out.tfevents.*")), "no TensorBoard event file"
