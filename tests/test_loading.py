"""Loading and sharing: one ``llmskel.load`` for the three folder kinds, wrong loaders that name the
right one, Hub arguments honoured against a local Hub cache (offline), model and dataset cards read
back with huggingface_hub, one Prediction type across the API and the commands, a light top-level
import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard, metadata_load

import llmskel
from llmskel.data.synthetic import generate_sample
from llmskel.errors import CheckpointError, SkeletonFormatError
from llmskel.models import get_model_config
from llmskel.models.skeleton_model import SkeletonModel, SkeletonModelConfig
from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig
from llmskel.prediction import LabelScore, Prediction

CLASSES = ["wave right hand", "clap", "kick something"]
SHA = "0123456789abcdef0123456789abcdef01234567"


def gcn(tmp: Path, training: dict | None = None) -> Path:
    arch = dict(get_model_config("ctrgcn_tiny"), num_classes=len(CLASSES), num_bodies=1, layout="ntu25")
    cfg = SkeletonModelConfig(model=arch, classes=list(CLASSES), layout="ntu25",
                              preprocessing={"num_frames": 16, "num_bodies": 1},
                              training=training or {"name": "tiny", "dataset": "synthetic", "protocol": "xsub",
                                                    "metrics": {"test_top1": 0.5, "test_top5": 1.0}})  # fmt: skip
    torch.manual_seed(0)
    SkeletonModel(cfg).eval().save_pretrained(tmp / "gcn")
    return tmp / "gcn"


def vq(tmp: Path, training: dict | None = None) -> Path:
    from llmskel.data.config import DataConfig
    from llmskel.methods.supervised import preprocessing_of

    torch.manual_seed(0)
    pre = preprocessing_of(DataConfig(num_frames=16, num_bodies=1))
    m = SkeletonVQTokenizer(
        VQConfig(window=4, codebook_size=8, code_dim=4, hidden_dim=16), "ntu25", 3, 16, 1, pre
    )
    m.train()
    m(torch.randn(16, 3, 16, 25, 1))
    m.eval().save_pretrained(tmp / "vq", training=training)
    return tmp / "vq"


def llm(tmp: Path, base: str = "SmolLM2-135M-Instruct"):
    """A real recognizer on a tiny random Llama saved under ``base`` (a folder name)."""
    from llmskel.methods.llm_recognizer import LlmConfig, LoraSettings, SkeletonLlm
    from llmskel.text.tiny import save_tiny_llm

    save_tiny_llm(tmp / base)
    cfg = LlmConfig(base_model=str(tmp / base), lora=LoraSettings(r=2, alpha=4.0, dropout=0.0))
    torch.manual_seed(0)
    m = SkeletonLlm.build(cfg, CLASSES[:2], SkeletonVQTokenizer.from_pretrained(vq(tmp)))
    m.save_pretrained(tmp / "llm", training={"name": "rec", "dataset": "nw-ucla", "protocol": "xview",
                                             "source": str(tmp / "data"), "metrics": {"test_top1": 0.25}})  # fmt: skip
    return m, tmp / "llm"


def hub_cache(tmp: Path, folder: Path, repo: str = "org/name", revision: str = "v1") -> Path:
    """A huggingface_hub cache holding ``folder`` as ``repo`` at commit SHA, reachable by ``revision``."""
    cache = tmp / "hub-cache"
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / SHA
    snap.mkdir(parents=True)
    (root / "blobs").mkdir()
    for f in folder.rglob("*"):
        if f.is_file():
            blob = root / "blobs" / f"{abs(hash(str(f.relative_to(folder)))):x}"
            shutil.copyfile(f, blob)
            dst = snap / f.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, dst.parent), dst)
    (root / "refs").mkdir()
    for ref in ("main", revision):
        (root / "refs" / ref).write_text(SHA)
    return cache


# ---------------------------------------------------------------------------------------------- load
def test_load_returns_the_right_class_and_wrong_loaders_name_the_right_one(tmp_path):
    g, v = gcn(tmp_path), vq(tmp_path)
    assert isinstance(llmskel.load(g), SkeletonModel) and isinstance(
        llmskel.load(str(v)), SkeletonVQTokenizer
    )
    with pytest.raises(CheckpointError, match=r"skeleton VQ tokenizer folder.*llmskel\.load.*SkeletonVQTokenizer\."
                                              r"from_pretrained"):  # fmt: skip
        SkeletonModel.from_pretrained(v)
    with pytest.raises(CheckpointError, match=r"skeleton model.*SkeletonModel\.from_pretrained"):
        SkeletonVQTokenizer.from_pretrained(g)
    # create_model: the open_clip / timm prefixes load a trained model with its weights
    m = llmskel.create_model(f"local-dir:{g}")
    assert isinstance(m, SkeletonModel) and not m.training
    with pytest.raises(llmskel.LlmskelError, match="cannot be overridden"):
        llmskel.create_model(f"local-dir:{g}", num_classes=5)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"type": "something-else"}))
    with pytest.raises(CheckpointError, match="not an llmskel model folder"):
        llmskel.load(tmp_path / "odd")


def test_config_is_read_as_bounded_json(tmp_path, monkeypatch):
    import llmskel.models.folders as folders

    g = gcn(tmp_path)
    (g / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="config.json: corrupt config"):
        llmskel.load(g)
    (g / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="a JSON object expected"):
        llmskel.load(g)
    monkeypatch.setattr(folders, "MAX_CONFIG_BYTES", 4)
    with pytest.raises(CheckpointError, match="more than a model config can be"):
        llmskel.load(g)


def test_llm_recognizer_loads_through_load_and_its_card_names_the_base_model(tmp_path):
    from llmskel.methods.llm_recognizer import SkeletonLlm

    m, folder = llm(tmp_path)
    loaded = llmskel.load(folder)
    assert isinstance(loaded, SkeletonLlm) and loaded.classes == CLASSES[:2]
    x = loaded.vq.prepare_inputs([generate_sample("clap")])
    torch.testing.assert_close(loaded.label_scores(x), m.eval().label_scores(x))
    with pytest.raises(CheckpointError, match=r"LLM recognizer folder.*SkeletonLlm\.from_pretrained"):
        SkeletonModel.from_pretrained(folder)
    card = ModelCard.load(folder / "README.md")
    assert (
        card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.library_name == "llmskel"
    )
    assert card.data.license == "other" and card.data.datasets == ["nw-ucla"] and "lora" in card.data.tags
    (res,) = card.data.eval_results
    assert (res.dataset_name, res.dataset_config, res.metric_value) == ("nw-ucla", "xview", 0.25)
    assert str(tmp_path) not in (folder / "README.md").read_text()
    assert card.data.pipeline_tag is None


def test_llm_card_without_a_hub_base_has_no_base_model(tmp_path):
    _, folder = llm(tmp_path, base="my-own-lm")
    meta = metadata_load(folder / "README.md")
    assert "base_model" not in meta and "my-own-lm" in (folder / "README.md").read_text()


# ------------------------------------------------------------------------------------- Hub arguments
def test_from_pretrained_honours_hub_arguments_offline(tmp_path):
    g = gcn(tmp_path)
    extra = tmp_path / "extra"
    shutil.copytree(g, extra)
    cache = hub_cache(tmp_path, extra)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    ref = SkeletonModel.from_pretrained(g)
    x = torch.randn(2, 3, 16, 25, 1)
    for revision in ("v1", SHA, None):
        m = SkeletonModel.from_pretrained(
            "org/name", cache_dir=cache, local_files_only=True, revision=revision
        )
        torch.testing.assert_close(m(x).logits, ref(x).logits, rtol=0, atol=0)
    assert isinstance(llmskel.load("org/name", cache_dir=str(cache), revision="v1"), SkeletonModel)
    m = llmskel.create_model("hf-hub:org/name", cache_dir=cache, local_files_only=True)
    assert isinstance(m, SkeletonModel) and m.name_or_path == "org/name"
    v = vq(tmp_path)
    vcache = hub_cache(tmp_path / "v", v, repo="org/tok")
    assert isinstance(SkeletonVQTokenizer.from_pretrained("org/tok", cache_dir=vcache, revision="v1"),
                      SkeletonVQTokenizer)  # fmt: skip
    # the arguments are used, not dropped: another cache, an unknown revision, no cache at all
    with pytest.raises(CheckpointError, match=r"'org/name' \(revision 'v2'\).*not cached"):
        SkeletonModel.from_pretrained("org/name", cache_dir=cache, revision="v2")
    with pytest.raises(CheckpointError, match="could not be fetched"):
        SkeletonModel.from_pretrained("org/name", cache_dir=tmp_path / "empty-cache")
    with pytest.raises(TypeError):
        SkeletonModel.from_pretrained(g, proxies={"http": "x"})  # not silently ignored


def test_downloads_fetch_only_the_files_a_folder_kind_needs():
    from huggingface_hub.utils import filter_repo_objects

    from llmskel.models.folders import KINDS

    repo = ["config.json", "model.safetensors", "README.md", "pytorch_model.bin", "modeling_evil.py",
            "notes.pkl", "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokenizer/merges.txt",
            "lm/model.safetensors", "lm/config.json", "base.gguf", "runs/events.out.tfevents"]  # fmt: skip
    got = {k: set(filter_repo_objects(repo, allow_patterns=list(kind.files))) for k, kind in KINDS.items()}
    assert got["skeleton-model"] == got["vq-tokenizer"] == {"config.json", "model.safetensors", "README.md"}
    assert {"tokenizer/tokenizer.json", "tokenizer/merges.txt", "lm/model.safetensors"} <= got[
        "llm-recognizer"
    ]
    assert not {"pytorch_model.bin", "modeling_evil.py", "notes.pkl", "base.gguf"} & got["llm-recognizer"]


# ------------------------------------------------------------------------------------------ cards
def test_model_card_metadata_reads_back_with_huggingface_hub(tmp_path):
    g = gcn(tmp_path, {"name": "tiny", "dataset": "synthetic", "protocol": "xsub", "notes": str(tmp_path / "x"),
                       "metrics": {"test_top1": 0.5, "test_top5": 1.0, "epochs": 2}})  # fmt: skip
    card = ModelCard.load(g / "README.md")
    d = card.data
    assert d.library_name == "llmskel" and d.license == "apache-2.0" and d.datasets == ["synthetic"]
    assert d.metrics == ["accuracy"] and {"llmskel", "skeleton-based-action-recognition", "ctrgcn"} <= set(
        d.tags
    )
    assert d.pipeline_tag is None  # no video widget for a model that takes skeletons
    res = {r.metric_name: r for r in d.eval_results}
    assert set(res) == {"test_top1", "test_top5"}  # epochs is no result
    top1 = res["test_top1"]
    assert (top1.dataset_name, top1.dataset_config, top1.dataset_split, top1.metric_type, top1.metric_value) == (
        "synthetic", "xsub", "test", "accuracy", 0.5)  # fmt: skip
    text = (g / "README.md").read_text()
    assert (
        str(tmp_path) not in text and "video-classification" not in text and "| test_top1 | 0.5000 |" in text
    )
    meta = metadata_load(g / "README.md")
    assert meta["model-index"][0]["results"][0]["dataset"]["name"] == "synthetic"


def test_vq_tokenizer_folder_has_a_card(tmp_path):
    v = vq(tmp_path, {"name": "tok", "dataset": "nw-ucla", "protocol": "xview", "source": str(tmp_path / "d"),
                      "metrics": {"val_recon_loss": 0.125, "val_codebook_usage_min": 0.5}})  # fmt: skip
    d = ModelCard.load(v / "README.md").data
    assert d.library_name == "llmskel" and d.license == "other" and d.datasets == ["nw-ucla"]
    assert {r.metric_name: r.metric_value for r in d.eval_results} == {
        "val_recon_loss": 0.125,
        "val_codebook_usage_min": 0.5,
    }
    assert {r.dataset_split for r in d.eval_results} == {"val"} and "skeleton-tokenizer" in d.tags
    assert str(tmp_path) not in (v / "README.md").read_text()


def test_dataset_card_of_data_export(tmp_path, monkeypatch):
    from huggingface_hub import DatasetCard

    from llmskel.data.hf import export_hf
    from llmskel.data.sample import SkeletonDataset

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    samples = [generate_sample(a, subject=k, num_frames=12).replace(label=i, label_name=a)
               for i, a in enumerate(("clap", "kick")) for k in (1, 2)]  # fmt: skip
    for name, lic in (("synthetic", "apache-2.0"), ("NW-UCLA", "other")):
        out = export_hf(SkeletonDataset(samples, ["clap", "kick"], "ntu25", name=name), tmp_path / name,
                        splits={"train": [0, 2], "test": [1, 3]})  # fmt: skip
        d = DatasetCard.load(out / "README.md").data
        assert d.license == lic and d.task_categories and d.size_categories == ["n<1K"]
        assert [f["split"] for f in d.configs[0]["data_files"]] == ["train", "test"]
        assert str(tmp_path) not in (out / "README.md").read_text()


# ------------------------------------------------------------------------------------ one vocabulary
def test_one_prediction_type_and_deprecated_forms(tmp_path):
    m = llmskel.load(gcn(tmp_path))
    s = generate_sample("clap", layout="ntu25")
    s = s.replace(data=s.data[:, :1])
    (p,) = m.predict([s], top_k=2)
    assert isinstance(p, Prediction) and isinstance(p.top_k[0], LabelScore) and len(p.top_k) == 2
    assert p.label == p.top_k[0].label and p.score == p.top_k[0].score and p.target == "clap"
    assert p.to_dict() == {"label": p.label, "score": p.score, "target": "clap",
                           "top_k": [{"label": t.label, "score": t.score} for t in p.top_k]}  # fmt: skip
    with pytest.warns(DeprecationWarning, match="top_k"):
        assert p[0][0] == p.label  # the old [(label, score), ...] shape, for one release
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert p and p.label  # no warning from the new API


def test_zero_and_few_shot_speak_the_same_vocabulary(tmp_path):
    from llmskel.methods.few_shot import FewShotClassifier
    from llmskel.text.tiny import save_tiny_sentence_encoder

    bert = save_tiny_sentence_encoder(tmp_path / "bert", hidden_size=16)
    arch = dict(get_model_config("ctrgcn_tiny"), num_classes=2, num_bodies=1)
    enc = {"spec": f"sentence:{bert}", "dim": 16, "fingerprint": "0" * 16}
    cfg = SkeletonModelConfig(model=arch, classes=["a", "b"], layout="ntu25", method="zeroshot",
                              preprocessing={"num_frames": 16, "num_bodies": 1},
                              heads={"zs_proj": {"type": "linear", "out_features": 16},
                                     "zs_logit_scale": {"type": "logit_scale"}},
                              text={"zeroshot": {"text_encoder": enc, "heads": {}}})  # fmt: skip
    torch.manual_seed(0)
    model = SkeletonModel(cfg).eval()
    xs = [generate_sample(a) for a in ("clap", "kick")]
    xs = [x.replace(data=x.data[:, :1]) for x in xs]
    zs = model.classify(xs, ["clap", "kick"], top_k=2)
    assert all(isinstance(p, Prediction) for p in zs) and [p.target for p in zs] == ["clap", "kick"]
    with pytest.warns(DeprecationWarning, match=r"classify\(skeletons=...\)"):
        again = model.classify(skeletons=xs, labels=["clap", "kick"], top_k=2)
    assert [p.top_k for p in again] == [p.top_k for p in zs]
    clf = FewShotClassifier(model, xs, ["clap", "kick"])
    fs = clf.predict(xs)
    assert [p.label for p in fs] == ["clap", "kick"] and isinstance(fs[0], Prediction)
    with pytest.warns(DeprecationWarning, match=r"predict\(query=...\)"):
        assert clf.predict(query=xs)[0].label == "clap"
    one = clf.predict(xs[0].data)  # one array is one sample, not one per frame
    assert len(one) == 1


def test_vq_tokenizer_shares_the_model_input_path(tmp_path):
    tok = SkeletonVQTokenizer.from_pretrained(vq(tmp_path))
    arr = np.random.default_rng(0).normal(size=(20, 1, 25, 3)).astype(np.float32)
    gm = SkeletonModel.from_pretrained(gcn(tmp_path))
    torch.testing.assert_close(
        tok.prepare_inputs(arr), gm.prepare_inputs(arr)
    )  # same preprocessing, same path
    with pytest.raises(SkeletonFormatError, match="2 channels per joint, but this model takes 3"):
        tok.prepare_inputs(arr[..., :2])


# ------------------------------------------------------------------------------------------ package
def test_top_level_api_is_lazy_and_complete():
    code = ("import sys, llmskel; assert 'torch' not in sys.modules, 'torch imported'; "
            "print(','.join(llmskel.__all__))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(llmskel.__file__).parents[1])})  # fmt: skip
    names = out.stdout.strip().split(",")
    assert {"load", "SkeletonModel", "create_model", "read_any", "FewShotClassifier", "Prediction"} <= set(
        names
    )
    import importlib.util

    assert ("StreamRecognizer" in names) == (importlib.util.find_spec("llmskel.stream") is not None)
    for name in names:
        assert getattr(llmskel, name) is not None
    from llmskel.hub import SkeletonModel as Again  # the old import path keeps working

    assert Again is SkeletonModel
