"""Trust and safety (issue 13, section 1): no code runs from a model folder unless the caller asks,
sizes are checked before allocating, and saved folders hold no local paths."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llmskel.errors import CheckpointError, ConfigError, LlmskelError, SkeletonFormatError
from llmskel.trust import UntrustedCodeError

MARKER_CODE = """
from pathlib import Path
Path({marker!r}).write_text("code from the model folder ran")
from transformers import LlamaConfig


class EvilConfig(LlamaConfig):
    model_type = "evil_llama"
"""


def plant_custom_code(folder: Path, marker: Path) -> Path:
    """A model folder whose config (and tokenizer config) point transformers at a python file that
    writes ``marker`` when imported."""
    (folder / "evil.py").write_text(MARKER_CODE.format(marker=str(marker)), encoding="utf-8")
    for name in ("config.json", "tokenizer_config.json"):
        p = folder / name
        d = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
        d["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilConfig"}
        p.write_text(json.dumps(d), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from llmskel.data.config import DataConfig
    from llmskel.methods.llm_recognizer import LlmConfig, LoraSettings, SkeletonLlm
    from llmskel.methods.supervised import preprocessing_of
    from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig
    from llmskel.text.tiny import save_tiny_llm

    root = tmp_path_factory.mktemp("sec")
    save_tiny_llm(root / "lm")
    torch.manual_seed(0)
    pre = preprocessing_of(DataConfig(num_frames=16, num_bodies=1))
    vq = SkeletonVQTokenizer(
        VQConfig(window=4, codebook_size=8, code_dim=4, hidden_dim=16), "ntu25", 3, 16, 1, pre
    )
    vq.eval().save_pretrained(root / "vq")
    cfg = LlmConfig(base_model=str(root / "lm"), vq_tokenizer=str(root / "vq"), lora=LoraSettings(r=2))
    SkeletonLlm.build(cfg, ["clap", "jump"], vq).save_pretrained(root / "rec")
    return root


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSKEL_CACHE", str(tmp_path / "cache"))


def _evil_copy(tiny: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(recognizer folder, its evil base model, marker) with the folder asking for remote code."""
    marker = tmp_path / "MARKER"
    base = plant_custom_code(Path(shutil.copytree(tiny / "lm", tmp_path / "evil_lm")), marker)
    rec = Path(shutil.copytree(tiny / "rec", tmp_path / "rec"))
    cfg = json.loads((rec / "config.json").read_text())
    cfg["llm"]["trust_remote_code"] = True
    cfg["llm"]["base_model"] = str(base)
    (rec / "config.json").write_text(json.dumps(cfg))
    return rec, base, marker


def test_saved_recognizer_never_asks_for_remote_code(tiny):
    cfg = json.loads((tiny / "rec" / "config.json").read_text())
    assert cfg["llm"]["trust_remote_code"] is False


def test_recognizer_folder_cannot_enable_remote_code(tiny, tmp_path):
    from llmskel.methods.llm_recognizer import SkeletonLlm

    rec, base, marker = _evil_copy(tiny, tmp_path)
    with pytest.raises(UntrustedCodeError, match=r"auto_map.*--trust-remote-code"):
        SkeletonLlm.from_pretrained(rec)
    assert not marker.exists()
    # the CLI: one line naming the problem, exit code 2, no code run
    from llmskel.cli import main

    assert main(["recognize", "--model", str(rec), "synthetic:clap"]) != 0
    assert not marker.exists()
    sys.modules.pop("evil", None)


def test_recognizer_tokenizer_folder_with_code_is_refused(tiny, tmp_path):
    from llmskel.methods.llm_recognizer import SkeletonLlm

    marker = tmp_path / "MARKER"
    rec = Path(shutil.copytree(tiny / "rec", tmp_path / "rec"))
    plant_custom_code(rec / "tokenizer", marker)
    with pytest.raises(UntrustedCodeError, match="tokenizer"):
        SkeletonLlm.from_pretrained(rec, base_model=str(tiny / "lm"))
    assert not marker.exists()


def test_explicit_opt_in_reaches_the_custom_code(tiny, tmp_path):
    """The caller's trust_remote_code=True is passed on: the folder's code is then imported (here it
    fails after writing the marker, since the planted config class is no real model)."""
    from llmskel.text.describe import load_causal_lm

    marker = tmp_path / "MARKER"
    base = plant_custom_code(Path(shutil.copytree(tiny / "lm", tmp_path / "evil_lm")), marker)
    with pytest.raises(UntrustedCodeError):
        load_causal_lm(str(base))
    assert not marker.exists()
    try:
        load_causal_lm(str(base), trust_remote_code=True)
    except Exception:  # noqa: BLE001 - the planted class is not a loadable model
        pass
    assert marker.exists()
    sys.modules.pop("evil", None)


def test_describe_and_text_encoders_refuse_custom_code(tmp_path):
    from llmskel.text.describe import Describer
    from llmskel.text.encoders import build_text_encoder
    from llmskel.text.tiny import save_tiny_llm, save_tiny_sentence_encoder

    marker = tmp_path / "MARKER"
    lm = plant_custom_code(save_tiny_llm(tmp_path / "lm"), marker)
    bert = plant_custom_code(save_tiny_sentence_encoder(tmp_path / "bert", hidden_size=16), marker)
    with pytest.raises(UntrustedCodeError, match="--trust-remote-code"):
        Describer(str(lm), cache=False)
    with pytest.raises(UntrustedCodeError, match="text encoders never run"):
        build_text_encoder(f"sentence:{bert}")
    with pytest.raises(UntrustedCodeError):
        build_text_encoder(f"causal_lm:{lm}")
    assert not marker.exists()


def test_zero_shot_folder_naming_an_encoder_with_code_is_refused(tmp_path):
    """A zero-shot model folder names its text encoder: one with custom code is refused on classify."""
    from llmskel.data.synthetic import generate_sample
    from llmskel.hub import SkeletonModel, SkeletonModelConfig
    from llmskel.methods.zero_shot_text import _ENCODERS
    from llmskel.models import get_model_config
    from llmskel.text.tiny import save_tiny_sentence_encoder

    marker = tmp_path / "MARKER"
    bert = plant_custom_code(save_tiny_sentence_encoder(tmp_path / "bert", hidden_size=16), marker)
    model_cfg = dict(get_model_config("ctrgcn_tiny"), num_classes=2, num_bodies=1)
    enc = {"spec": f"sentence:{bert}", "dim": 16, "fingerprint": "0" * 16}
    cfg = SkeletonModelConfig(model=model_cfg, classes=["a", "b"], layout="ntu25", method="zeroshot",
                              preprocessing={"num_frames": 16, "num_bodies": 1},
                              heads={"zs_proj": {"type": "linear", "out_features": 16},
                                     "zs_logit_scale": {"type": "logit_scale"}},
                              text={"zeroshot": {"text_encoder": enc, "heads": {}}})  # fmt: skip
    SkeletonModel(cfg).save_pretrained(tmp_path / "zs")
    saved = json.loads((tmp_path / "zs" / "config.json").read_text())
    saved["text"]["zeroshot"]["text_encoder"]["spec"] = f"sentence:{bert}"  # as a hostile folder would
    (tmp_path / "zs" / "config.json").write_text(json.dumps(saved))
    model = SkeletonModel.from_pretrained(tmp_path / "zs")
    _ENCODERS.clear()
    with pytest.raises(UntrustedCodeError):
        model.classify([generate_sample("clap").data[:, :1]], ["clap", "jump"])
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ sizes
def test_model_config_memory_bomb_is_refused_naming_file_and_field(tmp_path):
    from llmskel.hub import SkeletonModel, SkeletonModelConfig
    from llmskel.models import create_model, get_model_config

    folder = tmp_path / "m"

    SkeletonModel(SkeletonModelConfig(model=get_model_config("ctrgcn_tiny"), classes=[str(i) for i in range(10)],
                                      layout="ntu25")).save_pretrained(folder)  # fmt: skip
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["base_channels"] = 200000
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json.*parameters.*base_channels"):
        SkeletonModel.from_pretrained(folder)
    cfg["model"]["base_channels"] = -4
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json.*'base_channels' must be a positive integer"):
        SkeletonModel.from_pretrained(folder)
    cfg["model"]["base_channels"] = 8
    cfg["heads"] = {"p": {"type": "linear", "out_features": 10**9}}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="heads"):
        SkeletonModel.from_pretrained(folder)
    with pytest.raises(ConfigError, match="parameters"):
        create_model("stgcn_tiny", base_channels=100000)


def test_vq_tokenizer_folder_memory_bomb_is_refused(tiny, tmp_path):
    from llmskel.models.vq_tokenizer import SkeletonVQTokenizer

    vq = Path(shutil.copytree(tiny / "vq", tmp_path / "vq"))
    cfg = json.loads((vq / "config.json").read_text())
    cfg["vq"]["codebook_size"] = 10**9
    (vq / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LlmskelError, match=r"config\.json.*parameters"):
        SkeletonVQTokenizer.from_pretrained(vq)


def _npy_with_claimed_shape(path: Path, shape: tuple[int, ...]) -> Path:
    """A .npy file whose header claims ``shape`` but that holds a few bytes of data."""
    from numpy.lib import format as npf

    with open(path, "wb") as f:
        npf.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)
    return path


def test_npy_header_claiming_a_huge_shape_is_skipped_and_reported(tmp_path):
    from llmskel.data.io import read_any
    from llmskel.data.readers.folder import load_folder, read_array_file

    good = np.random.default_rng(0).normal(size=(8, 1, 25, 3)).astype(np.float32)
    np.save(tmp_path / "good.npy", good)
    bomb = _npy_with_claimed_shape(tmp_path / "bomb.npy", (300000, 2, 25, 3000))  # 335 GiB claimed
    short = _npy_with_claimed_shape(tmp_path / "short.npy", (100, 1, 25, 3))  # 30 kB claimed, 64 B held
    with pytest.raises(SkeletonFormatError, match=r"bomb\.npy.*GiB.*LLMSKEL_MAX_ARRAY_BYTES"):
        read_array_file(bomb)
    with pytest.raises(SkeletonFormatError, match=r"short\.npy.*holds only"):
        read_array_file(short)
    skipped: list = []
    ds = load_folder(tmp_path, skipped=skipped)
    assert len(ds) == 1 and np.allclose(ds[0].data, good)
    assert sorted(Path(s["file"]).name for s in skipped) == ["bomb.npy", "short.npy"]
    assert len(read_any(tmp_path)) == 1


def test_npz_and_object_arrays_are_refused(tmp_path):
    from llmskel.data.readers.folder import read_array_file

    np.savez(tmp_path / "ok.npz", data=np.ones((4, 1, 25, 3), np.float32))
    assert read_array_file(tmp_path / "ok.npz")[0].shape == (4, 1, 25, 3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SkeletonFormatError, match="Python objects"):
        read_array_file(tmp_path / "obj.npy")
    import zipfile

    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as z:
        _npy_with_claimed_shape(tmp_path / "m.npy", (10**6, 2, 25, 3))
        z.write(tmp_path / "m.npy", "data.npy")
    with pytest.raises(SkeletonFormatError, match="bomb.npz"):
        read_array_file(tmp_path / "bomb.npz")


# ------------------------------------------------------------------------------------------ privacy
def _texts_with(folder: Path, needle: str) -> list[str]:
    hits = []
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".md", ".txt", ".yaml", ".jinja", ""):
            if needle in f.read_text(encoding="utf-8", errors="replace"):
                hits.append(str(f.relative_to(folder)))
    return hits


@pytest.mark.slow
def test_saved_folders_hold_no_local_paths(tmp_path, train_tiny, text_cache_dir, monkeypatch):
    """Every kind of saved folder, trained from inputs at absolute paths: no path in its text files,
    and the folders still load on this machine."""
    from llmskel.data.synthetic import generate_sample
    from llmskel.engine.config import load_experiment
    from llmskel.hub import SkeletonModel
    from llmskel.methods.llm_recognizer import SkeletonLlm
    from llmskel.methods.zero_shot_text import _ENCODERS
    from llmskel.text.tiny import save_tiny_llm, save_tiny_sentence_encoder

    root = tmp_path / "inputs"
    bert = save_tiny_sentence_encoder(root / "bert16", hidden_size=16, seed=0)
    lm = save_tiny_llm(root / "lm")
    prompts = Path(__file__).resolve().parents[1] / "prompts"
    shutil.copy(prompts / "descriptions" / "synthetic.json", root / "desc.json")
    shutil.copy(prompts / "templates" / "label_prompts.txt", root / "lp.txt")
    base = ["data.synthetic.num_classes=24", "data.synthetic.samples_per_class=2", "data.synthetic.num_subjects=4",
            "data.synthetic.num_frames=24", "data.num_frames=16", "data.num_bodies=1", "model.name=ctrgcn_tiny",
            "train.batch_size=8", "train.eval_batch_size=8", "train.progress=false", "train.trackers=[jsonl]",
            "optim.warmup_epochs=0", "train.epochs=1"]  # fmt: skip
    runs = {}
    kinds = {
        "sup": ["method=supervised"],
        "zs": ["method=zeroshot", "zeroshot.unseen=[clap]", f"zeroshot.text_encoder=sentence:{bert}",
               "zeroshot.text_max_length=128", f"zeroshot.descriptions={root / 'desc.json'}",
               f"zeroshot.label_prompts={root / 'lp.txt'}"],
        "gap": ["method=gap", f"align.text_encoder=sentence:{bert}", f"align.descriptions={root / 'desc.json'}"],
        "vq": ["method=vq", "vq.window=4", "vq.codebook_size=8", "vq.code_dim=8", "vq.hidden_dim=32"],
    }  # fmt: skip
    for name, extra in kinds.items():
        out = train_tiny(load_experiment(None, base + [f"output_dir={tmp_path / 'runs' / name}", *extra]))
        runs[name] = Path(out["run_dir"]) / "last"
    llm = [f"llm.base_model={lm}", f"llm.vq_tokenizer={runs['vq']}", "llm.lora.r=2", "method=llm"]
    runs["llm"] = Path(train_tiny(load_experiment(None, base + [f"output_dir={tmp_path / 'runs' / 'llm'}", *llm]))["run_dir"]) / "last"  # fmt: skip
    from llmskel.data.hf import export_hf
    from llmskel.data.readers.folder import load_folder

    arrays = tmp_path / "arrays"
    arrays.mkdir()
    np.save(arrays / "a.npy", generate_sample("clap").data)
    runs["export"] = export_hf(load_folder(arrays), tmp_path / "export")
    for name, folder in runs.items():
        assert _texts_with(Path(folder), str(tmp_path)) == [], name
    if runs["export"]:
        import pyarrow.parquet as pq

        for f in Path(runs["export"]).rglob("*.parquet"):
            assert str(tmp_path) not in str(pq.read_table(f).to_pylist())
    # still usable here: the machine-local index (in the cache train_tiny used) knows where the local
    # encoder and base model are
    monkeypatch.setenv("LLMSKEL_CACHE", str(text_cache_dir))
    _ENCODERS.clear()
    assert SkeletonModel.from_pretrained(runs["zs"]).classify([generate_sample("clap")], ["clap", "kick"])
    assert SkeletonLlm.from_pretrained(runs["llm"]).classes[:2] == ["wave right hand", "wave left hand"]


def test_relative_paths_with_folders_count_as_local(tmp_path, monkeypatch):
    from llmskel.trust import is_local_path, public_name, scrub_local_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine").mkdir()
    assert is_local_path("models/mine") and public_name("models/mine") == "mine"  # exists here
    assert is_local_path("runs/ucla/last") and public_name("runs/ucla/last") == "last"  # a Hub id has one "/"
    for keep in (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "sit down",
        "a/b c/d",
        "https://x.org/a/b",
        "nw-ucla",
    ):
        assert not is_local_path(keep) and public_name(keep) == keep
    assert scrub_local_paths({"root": "data/nw_ucla/all_sqe", "enc": "sentence:models/mine"}) == {
        "root": "all_sqe",
        "enc": "sentence:mine",
    }
