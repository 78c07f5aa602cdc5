"""Bad configs, model folders and command lines fail early with one clear error that names the file,
the line or key and the allowed values; results printed as JSON are always valid JSON."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from llmskel.cli import main
from llmskel.config import bounded, save_config
from llmskel.engine.config import ExperimentConfig, load_experiment
from llmskel.errors import CheckpointError, ConfigError
from llmskel.hub import SkeletonModel, SkeletonModelConfig
from llmskel.models import get_model_config

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# YAML files


def test_base_pointing_at_itself_or_a_cycle_names_the_files(tmp_path):
    write(tmp_path / "self.yaml", "base: self.yaml\nname: x\n")
    with pytest.raises(ConfigError, match=r"self\.yaml.*'base:' chain loops"):
        load_experiment(str(tmp_path / "self.yaml"))
    write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    write(tmp_path / "b.yaml", "base: a.yaml\nseed: 3\n")
    with pytest.raises(ConfigError, match=r"loops.*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_experiment(str(tmp_path / "a.yaml"))
    write(tmp_path / "c.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml.*the 'base:' of .*c\.yaml.*does not exist"):
        load_experiment(str(tmp_path / "c.yaml"))


def test_duplicate_keys_name_the_file_key_and_both_lines(tmp_path):
    p = write(tmp_path / "dup.yaml", "name: x\ntrain:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(str(p))
    assert f"{p}:5:" in str(e.value) and "'train.epochs' is given twice (first on line 3)" in str(e.value)
    write(tmp_path / "dup_top.yaml", "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"dup_top\.yaml:2: key 'seed' is given twice"):
        load_experiment(str(tmp_path / "dup_top.yaml"))


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", r"empty\.yaml' is empty"),
        ("# only a comment\n", r"empty\.yaml' is empty"),
        ("- a\n- b\n", r"empty\.yaml:1: a config file must hold a mapping .* found a list"),
        ("train:\n\tepochs: 3\n", r"empty\.yaml:2:1: config file is not valid YAML.*never tabs"),
        ("train:\n  epochs: [1\n", r"empty\.yaml:\d+:\d+: config file is not valid YAML"),
        ("train:\n  epochs: many\n", r"empty\.yaml:2: config key 'train.epochs' must be an integer"),
        ("train: [1, 2]\n", r"empty\.yaml:1: config key 'train' must be a mapping"),
        ("optim:\n  lr: .nan\n", r"empty\.yaml:2: config key 'optim.lr' must be a finite number"),
        ("a: 1\n---\nb: 2\n", r"empty\.yaml:\d+:\d+: config file is not valid YAML"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, pattern):
    p = write(tmp_path / "empty.yaml", text)
    with pytest.raises(ConfigError, match=pattern):
        load_experiment(str(p))


def test_errors_name_where_a_key_was_set_through_base_files(tmp_path):
    write(tmp_path / "base.yaml", "name: b\ntrain:\n  keep_checkpoints: 0\n")
    write(tmp_path / "child.yaml", "base: base.yaml\nseed: 2\n")
    with pytest.raises(
        ConfigError, match=r"base\.yaml:3: config key 'train.keep_checkpoints' must be >= 1, got 0"
    ):
        load_experiment(str(tmp_path / "child.yaml"))


# ----------------------------------------------------------------------------------------------
# numeric ranges and types


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ("train.batch_size=0", "train.batch_size", ">= 1"),
        ("optim.lr=-1", "optim.lr", "> 0"),
        ("optim.lr=0", "optim.lr", "> 0"),
        ("train.checkpoint_every=-3", "train.checkpoint_every", ">= 0"),
        ("train.keep_checkpoints=0", "train.keep_checkpoints", ">= 1"),
        ("train.epochs=-1", "train.epochs", ">= 0"),
        ("train.eval_batch_size=0", "train.eval_batch_size", ">= 1"),
        ("train.max_steps=0", "train.max_steps", ">= 1"),
        ("train.log_every=0", "train.log_every", ">= 1"),
        ("train.eval_every=0", "train.eval_every", ">= 1"),
        ("data.num_workers=-2", "data.num_workers", ">= 0"),
        ("optim.weight_decay=-0.1", "optim.weight_decay", ">= 0"),
        ("optim.warmup_epochs=-1", "optim.warmup_epochs", ">= 0"),
        ("optim.momentum=1.5", "optim.momentum", ">= 0 and < 1"),
        ("optim.label_smoothing=1", "optim.label_smoothing", ">= 0 and < 1"),
        ("optim.milestones=[10, -5]", "optim.milestones", ">= 0"),
        ("data.augment.flip=2", "data.augment.flip", ">= 0 and <= 1"),
        ("data.synthetic.num_classes=0", "data.synthetic.num_classes", ">= 1"),
        ("seed=-1", "seed", ">= 0"),
    ],
)
def test_numeric_ranges_are_checked_at_load(override, key, rule):
    with pytest.raises(ConfigError) as e:
        load_experiment(None, [override])
    msg = str(e.value)
    assert f"config key {key!r} must be {rule}" in msg and f"command-line override {override!r}" in msg


def test_method_section_ranges_and_types():
    with pytest.raises(ConfigError, match=r"'llm.lora.r' must be >= 1"):
        load_experiment(None, ["method=llm", "llm.vq_tokenizer=x", "llm.lora.r=0"])
    with pytest.raises(ConfigError, match=r"'align.refine.pairs' must be >= 1"):
        load_experiment(None, ["method=gap", "align.refine.pairs=0"])
    with pytest.raises(ConfigError, match=r"'vq.collapse_threshold' must be >= 0 and <= 1"):
        load_experiment(None, ["method=vq", "vq.collapse_threshold=3"])
    with pytest.raises(ConfigError, match=r"'zeroshot' must be a mapping"):
        load_experiment(None, ["method=zeroshot", "zeroshot=[1, 2]"])


# ----------------------------------------------------------------------------------------------
# the whole experiment, method sections included, before any work


def test_unknown_keys_in_method_sections_are_errors_whatever_the_method(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'align.bogus' in section 'align'"):
        load_experiment(None, ["align.bogus=1"])  # a supervised config
    p = write(tmp_path / "x.yaml", "method: zeroshot\nzeroshot:\n  temprature: 0.1\n")
    with pytest.raises(
        ConfigError, match=r"x\.yaml:3: unknown config key 'zeroshot.temprature'.*'temperature'"
    ):
        load_experiment(str(p))
    with pytest.raises(ConfigError, match=r"unknown config key 'alig'.*did you mean 'align'"):
        load_experiment(None, ["alig.weight=1"])


def test_method_sections_are_typed_and_round_trip(tmp_path):
    from llmskel.methods.gap import AlignConfig

    cfg = load_experiment(None, ["method=gap", "align.weight=0.5", "align.refine.pairs=2"])
    assert isinstance(cfg.align, AlignConfig) and cfg.align.weight == 0.5 and cfg.align.refine.pairs == 2
    assert cfg.zeroshot.temperature == 0.07  # a section not given: its defaults
    save_config(cfg, tmp_path / "c.yaml")
    text = (tmp_path / "c.yaml").read_text()
    assert "\nalign:\n" in text and "sections" not in text
    assert load_experiment(str(tmp_path / "c.yaml")) == cfg


def test_model_and_method_typos_fail_at_load_before_a_run_folder_exists(tmp_path, capsys):
    with pytest.raises(
        ConfigError, match=r"'model.name'.*unknown model 'ctrgcn_smal'.*did you mean 'ctrgcn_small'"
    ):
        load_experiment(None, ["model.name=ctrgcn_smal"])
    with pytest.raises(ConfigError, match=r"'model.overrides' names unknown keys \['base_chanels'\]"):
        load_experiment(None, ["model.overrides={base_chanels: 8}"])
    with pytest.raises(ConfigError, match=r"unknown method 'supervisd'; valid methods: .*supervised"):
        load_experiment(None, ["method=supervisd"])
    with pytest.raises(ConfigError, match=r"'llm.vq_tokenizer' is required"):
        load_experiment(None, ["method=llm"])
    with pytest.raises(ConfigError, match=r"'align.refine.every' > 0 needs data.val_fraction"):
        load_experiment(None, ["method=gap", "align.refine.every=1"])
    run = tmp_path / "run"
    assert main(["train", "--output-dir", str(run), "model.name=ctrgcn_smal", "train.max_steps=1"]) == 1
    assert "unknown model 'ctrgcn_smal'" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_experiment(str(path))
    from llmskel.methods.base import get_method

    method = get_method(cfg.method)
    if method.config_section:
        assert isinstance(getattr(cfg, method.config_section), method.config_class)


def test_a_new_method_is_one_registration_with_its_typed_section():
    """A method and its config section are declared in one place (the decorator); the experiment
    config, its strict checks and the saved YAML pick them up with no other edit."""
    from llmskel.methods import base

    @dataclass
    class EchoConfig:
        depth: int = bounded(2, ge=1)
        mode: str = "plain"

    @base.register_method("echo_test", section="echo", config=EchoConfig)
    class EchoMethod(base.Method):
        pass

    try:
        cfg = load_experiment(None, ["method=echo_test", "echo.depth=4"])
        assert isinstance(cfg.echo, EchoConfig) and cfg.echo.depth == 4
        assert base.get_method("echo_test") is EchoMethod
        with pytest.raises(ConfigError, match=r"'echo.depth' must be >= 1"):
            load_experiment(None, ["method=echo_test", "echo.depth=0"])
        with pytest.raises(ConfigError, match=r"unknown config key 'echo.mdoe'.*did you mean 'mode'"):
            load_experiment(None, ["method=echo_test", "echo.mdoe=x"])
        # every section is checked whatever the method: the new one under a supervised config too
        with pytest.raises(ConfigError, match=r"'echo.depth' must be >= 1"):
            load_experiment(None, ["echo.depth=0"])
    finally:
        base.METHODS.pop("echo_test", None)


def test_default_experiment_config_still_builds():
    cfg = ExperimentConfig()
    assert cfg.method == "supervised" and cfg.align.weight == 0.8  # defaults of an absent section


# ----------------------------------------------------------------------------------------------
# model folders


def _folder(tmp_path: Path, classes=("wave", "clap", "kick")) -> Path:
    arch = dict(get_model_config("ctrgcn_tiny"))
    arch.update(layout="ntu25", num_classes=len(classes), in_channels=3, num_bodies=2)
    cfg = SkeletonModelConfig(model=arch, classes=list(classes), layout="ntu25",
                              preprocessing={"num_frames": 16, "num_bodies": 2, "stream": "joint"})  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path / "m"
    SkeletonModel(cfg).save_pretrained(folder)
    return folder


def _edit_config(folder: Path, **changes) -> None:
    p = folder / "config.json"
    d = json.loads(p.read_text())
    d.update(changes)
    p.write_text(json.dumps(d))


@pytest.mark.parametrize("classes", [["wave", "clap"], ["wave", "clap", "kick", "jump"]])
def test_classes_not_matching_num_classes_is_refused_at_load(tmp_path, classes):
    folder = _folder(tmp_path)
    _edit_config(folder, classes=classes)
    with pytest.raises(CheckpointError) as e:
        SkeletonModel.from_pretrained(folder)
    assert str(folder / "config.json") in str(e.value)
    assert f"'classes' lists {len(classes)} names but the classifier has model.num_classes = 3" in str(
        e.value
    )


def test_duplicate_or_non_string_classes_are_refused(tmp_path):
    folder = _folder(tmp_path)
    _edit_config(folder, classes=["wave", "wave", "kick"])
    with pytest.raises(CheckpointError, match=r"config\.json: 'classes' names \['wave'\] more than once"):
        SkeletonModel.from_pretrained(folder)
    _edit_config(folder, classes="wave,clap,kick")
    with pytest.raises(CheckpointError, match=r"config\.json: key 'classes' must be a list"):
        SkeletonModel.from_pretrained(folder)


def test_unknown_method_in_a_folder_lists_the_known_ones(tmp_path):
    folder = _folder(tmp_path)
    _edit_config(folder, method="teleport")
    with pytest.raises(
        CheckpointError, match=r"config\.json: unknown method 'teleport'; known methods: .*gap.*supervised"
    ):
        SkeletonModel.from_pretrained(folder)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_are_refused_at_load(tmp_path, bad, capsys):
    folder = _folder(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[-1]
    state[key] = state[key].clone().fill_(bad)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        SkeletonModel.from_pretrained(folder)
    assert str(folder / "model.safetensors") in str(e.value) and "NaN or infinite" in str(e.value)
    assert key in str(e.value)
    # the command line: one JSON error object on stdout, exit code 1, never "score": NaN
    arr = tmp_path / "x.npy"
    np.save(arr, np.zeros((20, 2, 25, 3), dtype=np.float32))
    assert main(["predict", "--model", str(folder), str(arr), "--layout", "ntu25", "--json"]) == 1
    out = capsys.readouterr()
    obj = json.loads(out.out)
    assert obj["command"] == "predict" and "NaN or infinite" in obj["error"] and "NaN or infinite" in out.err


def test_non_finite_weights_in_a_vq_tokenizer_folder(tmp_path):
    from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig

    vq = SkeletonVQTokenizer(VQConfig(window=4, codebook_size=8, code_dim=4, hidden_dim=8), layout="ntu25",
                             channels=3, num_frames=8, num_bodies=1)  # fmt: skip
    vq.save_pretrained(tmp_path / "vq")
    state = load_file(str(tmp_path / "vq" / "model.safetensors"))
    state["codebook"] = state["codebook"].clone().fill_(math.nan)
    save_file(state, str(tmp_path / "vq" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"vq/model\.safetensors: 1 weight tensors hold NaN.*codebook"):
        SkeletonVQTokenizer.from_pretrained(tmp_path / "vq")


def test_push_with_the_hub_unreachable_is_one_clear_line(tmp_path):
    folder = _folder(tmp_path)
    env = dict(os.environ, HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN="hf_fake",
               PYTHONPATH=str(ROOT))  # fmt: skip
    code = "from llmskel.cli import main; raise SystemExit(main())"
    r = subprocess.run([sys.executable, "-c", code, "push", "--model", str(folder), "--repo-id", "me/model", "--json"],
                       env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "cannot reach the Hugging Face Hub to push 'me/model'" in r.stderr
    assert json.loads(r.stdout)["command"] == "push"


# ----------------------------------------------------------------------------------------------
# --json output


def test_json_output_writes_null_for_non_finite_numbers(capsys):
    import argparse

    from llmskel.cli import emit

    emit(argparse.Namespace(json=True), {"top1": math.nan, "top5": np.float32("inf"), "per": np.array([0.5, np.nan]),
                                         "nested": {"x": [1.0, -math.inf]}, "n": np.int64(3)})  # fmt: skip
    out = capsys.readouterr().out
    obj = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {out}"))
    assert obj == {"top1": None, "top5": None, "per": [0.5, None], "nested": {"x": [1.0, None]}, "n": 3}


def test_json_errors_are_one_object_on_stdout(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "absent"), "x.npy", "--json"]) == 1
    out = capsys.readouterr()
    obj = json.loads(out.out)
    assert set(obj) == {"error", "command"} and obj["command"] == "predict" and "absent" in obj["error"]
    assert "absent" in out.err
    # usage errors too (argparse exits 2)
    with pytest.raises(SystemExit) as e:
        main(["predict", "--model", "m", "x.npy", "--top-k", "three", "--json"])
    assert e.value.code == 2
    out = capsys.readouterr()
    obj = json.loads(out.out)
    assert obj["command"] == "predict" and "--top-k" in obj["error"] and "invalid int value" in out.err
    # a bad config under train --json
    assert main(["train", "train.batch_size=0", "--json", "--output-dir", str(tmp_path / "r")]) == 1
    obj = json.loads(capsys.readouterr().out)
    assert obj["command"] == "train" and "'train.batch_size' must be >= 1" in obj["error"]


# ----------------------------------------------------------------------------------------------
# command-line flags with bad values


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["predict", "--model", "m", "x.npy", "--top-k", "0"], r"argument --top-k: must be >= 1, got 0"),
        (
            ["eval", "--model", "m", "--data", "synthetic", "--batch-size", "-4"],
            r"--batch-size: must be >= 1",
        ),
        (["ensemble", "a.npz", "--weights", "nan"], r"--weights: must be a number in"),
        (
            ["fewshot", "--model", "m", "--support", "s", "--query", "q", "--text-fusion", "2"],
            r"--text-fusion",
        ),
        (["recognize", "--model", "m", "x.npy", "--batch-size", "0"], r"--batch-size: must be >= 1"),
    ],
)
def test_bad_flag_values_are_usage_errors(argv, pattern, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert re.search(pattern, capsys.readouterr().err)


def test_ensemble_of_a_non_score_file_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 4), dtype=np.float32))
    assert main(["ensemble", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "x.npy: not a" in err and ("score file" in err or "valid .npz" in err) and "Traceback" not in err


def test_training_function_checks_a_config_built_in_python(tmp_path):
    import dataclasses

    from llmskel.engine.trainer import training_function

    cfg = load_experiment(None, [f"output_dir={tmp_path / 'run'}"])
    bad = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=0))
    with pytest.raises(ConfigError, match=r"'train.batch_size' must be >= 1, got 0"):
        training_function(bad)
    assert not (tmp_path / "run").exists()
