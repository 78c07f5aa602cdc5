"""The skeleton VQ tokenizer: shapes, action sentences, learning, dead-code restarts, collapse warnings,
strict folders and training through the Accelerate engine (method vq)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from llmskel.data.synthetic import generate_sample
from llmskel.engine.config import load_experiment
from llmskel.engine.trainer import training_function
from llmskel.errors import CheckpointError, ConfigError
from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig

PRE = {"num_frames": 16, "num_bodies": 2, "stream": "joint", "center": True}


def small_vq(**kw) -> SkeletonVQTokenizer:
    cfg = VQConfig(**{"window": 4, "codebook_size": 8, "code_dim": 4, "hidden_dim": 16, **kw})
    torch.manual_seed(0)
    return SkeletonVQTokenizer(cfg, "ntu25", channels=3, num_frames=16, num_bodies=2, preprocessing=PRE)


class OneProcess:
    num_processes = 1
    is_main_process = True


def test_windows_round_trip_and_shapes():
    vq = small_vq()
    x = torch.randn(2, 3, 16, 25, 2)  # (N, C, T, V, M)
    g = vq.windows(x)
    assert g.shape == (2, 4, 2, 6, 3 * 4 * vq.part_index.shape[1])  # (N, S, M, P, C * w * J)
    torch.testing.assert_close(vq.unwindows(g), x)  # every joint sits in exactly one part
    vq.eval()
    codes = vq.encode(x)
    assert codes.shape == (2, 4, 2, 6) and codes.dtype == torch.long
    assert vq.decode(codes).shape == x.shape and vq.sentence_length == 4 * 2 * 6
    body = small_vq(grouping="body")
    assert body.part_names == ["body"] and body.encode(x).shape == (2, 4, 2, 1)
    with pytest.raises(ValueError, match=r"expects \(N, 3, 16, V, 2\)"):
        vq.encode(torch.randn(1, 3, 12, 25, 2))
    with pytest.raises(
        ConfigError, match="'data.num_frames' \\(18\\) must be a multiple of 'vq.window' \\(4\\)"
    ):
        SkeletonVQTokenizer(VQConfig(window=4), "ntu25", 3, 18, 1)


def test_tokenize_a_sample_and_render_the_sentence():
    vq = small_vq().eval()
    s = generate_sample("clap")
    codes = vq.tokenize(s)
    assert codes.shape == (4, 2, 6) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 8
    # a bare (T, M, V, C) array in the tokenizer's layout gives the same codes
    np.testing.assert_array_equal(vq.tokenize(s.data), codes)
    text = vq.render(codes)
    words = text.split()
    assert words[0] == "<s>" and words[-1] == "</s>" and words[1] == "[t0]" and words[2] == "b0"
    assert words[3] == f"head:{codes[0, 0, 0]}" and text.count("[t") == 4
    assert f"[t3] b0 head:{codes[3, 0, 0]} hand:{codes[3, 0, 1]}" in text


def _synthetic_batches(n: int = 48) -> torch.Tensor:
    from llmskel.data.config import DataConfig
    from llmskel.data.pipeline import SkeletonPipeline
    from llmskel.data.sample import to_model_input
    from llmskel.data.synthetic import ACTION_NAMES

    pipe = SkeletonPipeline(DataConfig(num_frames=16, num_bodies=2), "ntu25")
    xs = [pipe(generate_sample(ACTION_NAMES[i % 6], subject=1 + i % 3, take=i))["x"] for i in range(n)]
    return to_model_input(np.stack(xs))  # (n, 3, 16, 25, 2)


def test_reconstruction_falls_with_training():
    x = _synthetic_batches()
    vq = small_vq(codebook_size=16, hidden_dim=32, code_dim=8)
    vq.train()
    opt = torch.optim.Adam(vq.parameters(), lr=3e-3)
    losses = []
    for step in range(80):
        out = vq(x[(step * 8) % 48 : (step * 8) % 48 + 8])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["recon_loss"]))
    assert bool(vq.initialized) and int(vq.steps) == 80
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:3])
    vq.eval()
    full = vq(x)
    # decoding the codes is what the forward pass reconstructs
    torch.testing.assert_close(vq.decode(full["codes"]), full["recon"], rtol=1e-4, atol=1e-5)


def test_dead_codes_are_restarted_near_the_data():
    x = _synthetic_batches(16)
    vq = small_vq(restart_after=3)
    vq.train()
    with torch.no_grad():
        z = vq.encode_windows(vq.windows(x).reshape(-1, 6, vq.in_dim))  # (B, P, D)
        far = z.mean(0) + 100.0  # (P, D) far from every encoder output
        vq.codebook.copy_(far[:, None].repeat(1, 8, 1))
        vq.codebook[:, 0] = z.mean(0)  # only code 0 is reachable
        vq.ema_sum.copy_(vq.codebook)
        vq.initialized.fill_(1)
    for _ in range(3):
        out = vq(x)
    assert (vq.restarts == 7).all(), vq.restarts  # codes 1..7 of every part, after 3 idle steps
    with torch.no_grad():
        dist = torch.cdist(vq.codebook, z.transpose(0, 1)).min(-1).values  # (P, K) to the nearest output
    assert float(dist.max()) < 1.0  # every code now sits on the data
    out = vq(x)
    used = (out["counts"] > 0).sum(-1)
    assert (used > 1).all(), used


def test_collapsed_codebook_is_reported_with_the_figure(caplog):
    from llmskel.methods.vq import VQMethod

    vq = small_vq(collapse_threshold=0.2)
    with torch.no_grad():
        vq.codebook.zero_()  # every code identical: the nearest is always code 0
    x = _synthetic_batches(8)
    method = VQMethod.__new__(VQMethod)
    with caplog.at_level(logging.WARNING):
        metrics = method.validation_metrics(vq, [{"x": x}], OneProcess())
    assert metrics["codebook_collapsed"] == 1.0 and metrics["codebook_usage_min"] == pytest.approx(1 / 8)
    assert metrics["perplexity"] == pytest.approx(1.0) and metrics["recon_mse"] > 0
    assert (
        "part 'hand' uses 1 of 8 codes (12.5 %)" in caplog.text and "collapse_threshold 20 %" in caplog.text
    )


def test_folder_round_trip_is_strict(tmp_path):
    vq = small_vq()
    vq.train()
    vq(_synthetic_batches(8))  # data init + one EMA step
    vq.eval()
    folder = vq.save_pretrained(tmp_path / "vq", training={"metrics": {"recon_mse": 0.1}})
    back = SkeletonVQTokenizer.from_pretrained(folder)
    for k, v in vq.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, msg=k)
    s = generate_sample("jump")
    np.testing.assert_array_equal(back.tokenize(s), vq.tokenize(s))
    assert back.training_record["metrics"]["recon_mse"] == 0.1 and back.preprocessing == PRE
    # a weight missing from the file is named
    state = load_file(str(folder / "model.safetensors"))
    del state["ema_count"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \['ema_count'\]"):
        SkeletonVQTokenizer.from_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "type": "something-else"}))
    with pytest.raises(CheckpointError, match="not a skeleton VQ tokenizer"):
        SkeletonVQTokenizer.from_pretrained(folder)


VQ_RUN = [
    "method=vq",
    "data.synthetic.num_classes=4",
    "data.synthetic.samples_per_class=8",
    "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24",
    "data.num_frames=16",
    "data.num_bodies=1",
    "train.batch_size=4",
    "train.eval_batch_size=8",
    "train.progress=false",
    "train.trackers=[jsonl]",
    "optim.name=adamw",
    "optim.lr=0.003",
    "optim.weight_decay=0.0",
    "optim.warmup_epochs=0",
    "vq.window=4",
    "vq.codebook_size=8",
    "vq.code_dim=8",
    "vq.hidden_dim=32",
    "vq.restart_after=4",
    "vq.collapse_threshold=0.0",
]


def test_tokenizer_trains_and_resumes_through_the_engine(tmp_path):
    common = [*VQ_RUN, "train.epochs=3", "train.checkpoint_every=1", "train.keep_checkpoints=3"]
    full = training_function(load_experiment(None, [*common, f"output_dir={tmp_path / 'full'}"]))
    run = Path(full["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    hist = metrics["history"]
    assert len(hist) == 3 and hist[-1]["recon_mse"] < hist[0]["recon_mse"]
    for key in ("recon_mse", "perplexity", "codebook_usage", "dead_code_restarts", "codebook_collapsed"):
        assert key in metrics and key in full, key
    vq = SkeletonVQTokenizer.from_pretrained(run / "last")
    assert (
        vq.preprocessing["num_frames"] == 16
        and vq.training_record["metrics"]["recon_mse"] == full["recon_mse"]
    )
    # killed inside epoch 2 and resumed: the same weights, EMA statistics and restart counters
    cfg = load_experiment(None, [*common, f"output_dir={tmp_path / 'killed'}"])
    assert training_function(cfg, stop_after_steps=6)["stopped_early"]
    resumed = training_function(cfg, resume=True)
    assert resumed["steps"] == full["steps"] == 12
    a, b = (
        load_file(str(run / "last" / "model.safetensors")),
        load_file(str(tmp_path / "killed/last/model.safetensors")),
    )
    assert a.keys() == b.keys() and "ema_count" in a and "idle" in a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
