"""The LLM recognizer's features mode (``llm.code_input: features``): per-part feature tokens of a
frozen, trained skeleton encoder projected into a tiny random Llama (no download). Token order and
pooling, scoring against a full forward pass, the encoder staying frozen, save/reload without the
encoder's folder, the training engine, the command line and bad folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from llmskel.data.config import DataConfig
from llmskel.data.layouts import get_layout
from llmskel.errors import CheckpointError, ConfigError
from llmskel.methods.llm_recognizer import LlmConfig, LoraSettings, SkeletonLlm
from llmskel.methods.supervised import preprocessing_of
from llmskel.models import get_model_config
from llmskel.models.feature_tokenizer import FeatureTokenSettings, SkeletonFeatureTokenizer
from llmskel.models.skeleton_model import SkeletonModel, SkeletonModelConfig
from llmskel.text.tiny import save_tiny_llm

CLASSES = ["wave right hand", "wave left hand", "clap"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("llmfeat")
    save_tiny_llm(root / "lm")
    arch = dict(get_model_config("ctrgcn_tiny"), num_classes=3, num_bodies=1, layout="ntu25")
    pre = preprocessing_of(DataConfig(num_frames=16, num_bodies=1))
    cfg = SkeletonModelConfig(model=arch, classes=list(CLASSES), layout="ntu25", preprocessing=pre,
                              training={"name": "tiny", "dataset": "synthetic", "method": "supervised"})  # fmt: skip
    torch.manual_seed(0)
    gcn = SkeletonModel(cfg)
    gcn.train()
    with torch.no_grad():  # batch norm statistics away from their defaults, as after training
        gcn(torch.randn(8, 3, 16, 25, 1))
    gcn.eval().save_pretrained(root / "gcn")
    return root


def tokenizer(root: Path, **kw) -> SkeletonFeatureTokenizer:
    return SkeletonFeatureTokenizer.from_skeleton_model(str(root / "gcn"), FeatureTokenSettings(**kw))


def make(root: Path, windows: int = 2, init: bool = False) -> SkeletonLlm:
    cfg = LlmConfig(base_model=str(root / "lm"), code_input="features", features=FeatureTokenSettings(windows=windows),
                    lora=LoraSettings(r=4, alpha=8.0, dropout=0.0, init_weights=init))  # fmt: skip
    torch.manual_seed(0)
    return SkeletonLlm.build(cfg, CLASSES, tokenizer(root, windows=windows))


def inputs(n: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 3, 16, 25, 1)


def test_tokens_are_the_part_means_of_the_feature_map_by_window(root):
    ft = tokenizer(root, windows=2, parts=["global", "hand", "leg"])
    x = inputs(2)
    tokens = ft.encode(x)
    assert tokens.shape == (2, 2 * 3, ft.feature_dim) and ft.sentence_length == 6
    fm = ft.encoder.forward_features(x).feature_map.mean(1)  # (N, D, T', V)
    t = fm.shape[2]
    assert t >= 2
    lay = get_layout("ntu25")
    first = fm[:, :, : t // 2].mean(2)  # (N, D, V): the first window (T' even here)
    torch.testing.assert_close(tokens[:, 0], first.mean(-1))  # global: every joint
    torch.testing.assert_close(tokens[:, 1], first[:, :, list(lay.parts["hand"])].mean(-1))
    second = fm[:, :, t // 2 :].mean(2)
    torch.testing.assert_close(tokens[:, 5], second[:, :, list(lay.parts["leg"])].mean(-1))
    # one window over the whole clip: the global token is the encoder's pooled feature
    one = tokenizer(root, windows=1, parts=["global"]).encode(x)
    torch.testing.assert_close(one[:, 0], ft.encoder.forward_features(x).feature)


def test_more_windows_than_time_steps_still_fill_every_window(root):
    ft = tokenizer(root, windows=12)
    assert ft.encode(inputs(1)).shape == (1, 12 * 7, ft.feature_dim)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"parts": ["global", "tail"]}, "unknown parts"),
        ({"parts": []}, "at least one part"),
        ({"parts": ["hand", "hand"]}, "twice"),
        ({"projector": "transformer"}, "mlp or linear"),
    ],
)
def test_bad_feature_settings_are_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        FeatureTokenSettings(**bad).validate()


@torch.no_grad()
def full_logprob(m: SkeletonLlm, x: torch.Tensor, i: int, label: str) -> float:
    """One label scored by a single forward pass over the whole sequence (no cache, no tree)."""
    ids, n = m._answers([label])
    ans = ids[0, : int(n[0])]
    seq = torch.cat([m._embed(m.prefix_ids)[None], m._sentence_embeds(m.sentence_inputs(x[i : i + 1])),
                     m._embed(ans)[None]], dim=1)  # fmt: skip
    logits = m.lm(inputs_embeds=seq).logits[0, -len(ans) - 1 : -1, : m.output_vocab]
    return float(torch.log_softmax(logits.float(), -1).gather(1, ans[:, None]).sum())


def test_label_scores_equal_a_full_forward_pass_and_the_training_loss(root):
    m = make(root).eval()
    x = inputs(3)
    labels = ["clap", "wave right hand", "jump up and down"]
    s = m.label_scores(x, labels)
    for i in range(3):
        for k, label in enumerate(labels):
            assert float(s[i, k]) == pytest.approx(full_logprob(m, x, i, label), abs=1e-4)
    y = torch.tensor([2, 0, 1])
    nll = -sum(full_logprob(m, x, i, CLASSES[int(y[i])]) for i in range(3))
    n_tokens = int(m.answer_len[y].sum())
    with torch.no_grad():
        assert float(m(x, y)) == pytest.approx(nll / n_tokens, abs=1e-4)


def test_the_encoder_stays_frozen_while_the_projector_and_lora_learn(root):
    m = make(root).train()
    enc = {k: v.clone() for k, v in m.features.encoder.state_dict().items()}
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("features.") for n in trainable)
    assert any(n.startswith("code_embedder.") for n in trainable) and any("lora_" in n for n in trainable)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.05)
    proj = m.code_embedder.slot.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        m(inputs(4), torch.tensor([0, 1, 2, 0])).backward()
        opt.step()
    assert not m.features.training and not m.features.encoder.training  # batch norm in eval mode
    for k, v in m.features.encoder.state_dict().items():  # running statistics included
        torch.testing.assert_close(v, enc[k], msg=k)
    assert not torch.equal(proj, m.code_embedder.slot)


def test_saved_folder_reloads_to_identical_scores_without_the_encoder_folder(root, tmp_path):
    src = tmp_path / "gcn"
    shutil.copytree(root / "gcn", src)
    cfg = LlmConfig(base_model=str(root / "lm"), code_input="features", skeleton_encoder=str(src),
                    lora=LoraSettings(r=4, alpha=8.0, dropout=0.0, init_weights=False))  # fmt: skip
    torch.manual_seed(0)
    m = SkeletonLlm.build(
        cfg, CLASSES, SkeletonFeatureTokenizer.from_skeleton_model(str(src), cfg.features)
    ).eval()
    x = inputs(2)
    before = m.label_scores(x)
    folder = m.save_pretrained(tmp_path / "rec", training={"name": "t", "metrics": {"test_top1": 0.5}})
    shutil.rmtree(src)  # the recognizer carries the encoder's weights and config itself
    raw = json.loads((folder / "config.json").read_text())
    assert raw["features"]["type"] == "llmskel-feature-tokenizer" and "vq" not in raw
    assert str(tmp_path) not in (folder / "config.json").read_text()  # no local paths in a shared folder
    back = SkeletonLlm.from_pretrained(folder)
    torch.testing.assert_close(back.label_scores(x), before, rtol=1e-5, atol=1e-5)
    assert back.classes == CLASSES and back.layout == "ntu25"
    card = (folder / "README.md").read_text()
    assert "continuous feature tokens" in card and "ctrgcn" in card
    sample = np.random.default_rng(0).standard_normal((20, 1, 25, 3)).astype(np.float32)
    pred = back.predict([sample], labels=["clap", "jump"])[0]
    assert pred.label in ("clap", "jump")
    assert back.action_sentence(sample).startswith("<features> [t0] global:")
    texts = back.generate([sample, sample], max_new_tokens=3)  # open mode: free text, any action name
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and texts[0] == texts[1]


def test_folder_with_broken_feature_config_is_refused_by_name(root, tmp_path):
    folder = make(root).save_pretrained(tmp_path / "rec")
    cfg_path = folder / "config.json"
    raw = json.loads(cfg_path.read_text())
    for bad, match in [
        ({**raw, "features": {**raw["features"], "type": "llmskel-vq-tokenizer"}}, "not a feature tokenizer"),
        ({**raw, "features": {**raw["features"], "settings": {"windows": 0}}}, "windows"),
        ({**raw, "features": {**raw["features"], "encoder": {**raw["features"]["encoder"], "layout": "nope"}}},
         "nope"),
        ({k: v for k, v in raw.items() if k != "features"}, r"missing keys \['features'\]"),
    ]:  # fmt: skip
        cfg_path.write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=match):
            SkeletonLlm.from_pretrained(folder)


def test_a_vq_tokenizer_in_features_mode_is_refused(root):
    from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig

    pre = preprocessing_of(DataConfig(num_frames=16, num_bodies=1))
    vq = SkeletonVQTokenizer(
        VQConfig(window=4, codebook_size=8, code_dim=4, hidden_dim=16), "ntu25", 3, 16, 1, pre
    )
    cfg = LlmConfig(base_model=str(root / "lm"), code_input="features", lora=LoraSettings(r=2))
    with pytest.raises(ConfigError, match="reads a SkeletonFeatureTokenizer"):
        SkeletonLlm.build(cfg, CLASSES, vq)


# ----------------------------------------------------------------------------------------------
# the engine and the command line

RUN = [
    "method=llm",
    "llm.code_input=features",
    "data.synthetic.num_classes=3",
    "data.synthetic.samples_per_class=8",
    "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24",
    "data.num_frames=16",
    "data.num_bodies=1",
    "train.batch_size=4",
    "train.eval_batch_size=5",
    "train.progress=false",
    "train.trackers=[jsonl]",
    "optim.name=adamw",
    "optim.lr=0.01",
    "optim.weight_decay=0.0",
    "optim.warmup_epochs=0",
    "llm.lora.r=4",
]


def test_training_through_the_engine_and_recognize(root, tmp_path, capsys):
    from llmskel.cli import main
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    common = [*RUN, f"llm.base_model={root / 'lm'}", f"llm.skeleton_encoder={root / 'gcn'}"]
    # a config without the encoder is refused when it loads
    with pytest.raises(ConfigError, match="'llm.skeleton_encoder' is required"):
        load_experiment(None, [*RUN, f"llm.base_model={root / 'lm'}"])
    # an experiment that prepares inputs differently from the encoder's training is refused
    with pytest.raises(ConfigError, match=r"skeleton encoder .* trained on other inputs: data.num_frames: "
                                          r"tokenizer 16 vs experiment 20"):  # fmt: skip
        training_function(
            load_experiment(None, [*common, "data.num_frames=20", f"output_dir={tmp_path / 'x'}"])
        )
    res = training_function(
        load_experiment(None, [*common, "train.epochs=2", f"output_dir={tmp_path / 'r'}"])
    )
    assert res["steps"] == 6 and 0.0 <= res["test_top1"] <= 1.0
    folder = tmp_path / "r" / "last"
    back = SkeletonLlm.from_pretrained(folder)
    assert back.cfg.code_input == "features" and back.classes[:1] == ["wave right hand"]
    saved = json.loads((folder / "config.json").read_text())
    assert saved["llm"]["skeleton_encoder"] == "gcn"  # the folder's name, never its local path
    rc = main(["recognize", "--model", str(folder), "synthetic:clap", "--labels", "clap; jump", "--json",
               "--show-sentence"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["results"][0]["label"] in ("clap", "jump")
    assert out["results"][0]["sentence"].startswith("<features>")


def test_int8_scoring_stays_close_to_fp32_and_is_not_saved(root, tmp_path):
    m = make(root).eval()
    x = inputs(6)
    labels = ["clap", "wave right hand", "wave left hand", "jump up"]
    exact = m.label_scores(x, labels)
    q = m.quantize_int8()
    assert q is m and m.quantized and m.merged
    assert any("quantized" in type(mod).__module__ for mod in m.lm.modules())  # int8 linear layers
    approx = m.label_scores(x, labels)
    assert approx.shape == exact.shape and torch.isfinite(approx).all()
    assert float((approx - exact).abs().max()) < 0.05 * float(exact.abs().max())
    assert not torch.equal(approx, exact)
    with pytest.raises(ConfigError, match="inference only"):
        m.save_pretrained(tmp_path / "q")


def test_a_relative_encoder_path_is_not_written_into_the_folder(root, tmp_path, monkeypatch):
    """A run folder named relatively (runs/x/last, as the recipe's config does) is a local path too."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(root / "gcn", tmp_path / "runs" / "enc" / "last")
    cfg = LlmConfig(base_model=str(root / "lm"), code_input="features", skeleton_encoder="runs/enc/last",
                    lora=LoraSettings(r=2))  # fmt: skip
    m = SkeletonLlm.build(
        cfg, CLASSES, SkeletonFeatureTokenizer.from_skeleton_model("runs/enc/last", cfg.features)
    )
    folder = m.save_pretrained(tmp_path / "rec", training={"data": {"root": "data/ucla/all_sqe"}})
    text = (folder / "config.json").read_text() + (folder / "README.md").read_text()
    assert "runs/enc" not in text and "data/ucla" not in text
    assert json.loads((folder / "config.json").read_text())["llm"]["skeleton_encoder"] == "last"
