"""Label prompts fit the label's form: verb phrase, gerund, noun phrase, sentence, imperative, snake_case."""

from __future__ import annotations

import pytest

from llmskel.methods.zero_shot_text import class_texts, load_prompts
from llmskel.text.labels import clean_label, gerund, label_form, render_prompt, third_person
from llmskel.text.resources import TemplateError, load_label_prompts

CASES = [  # label, form, "a person {label_s}.", "someone {label_ing}"
    ("Raise your hand.", "imperative", "a person raises their hand.", "someone raising their hand"),
    ("Sit down!", "imperative", "a person sits down.", "someone sitting down"),
    ("pick up with one hand", "verb", "a person picks up with one hand.", "someone picking up with one hand"),
    ("squat", "verb", "a person squats.", "someone squatting"),
    ("carry", "verb", "a person carries.", "someone carrying"),
    ("cross arms in the chest", "verb", "a person crosses arms in the chest.", "someone crossing arms in the chest"),
    ("jogging in place", "gerund", "a person is jogging in place.", "someone jogging in place"),
    ("tennis serve", "noun", "a person does tennis serve.", "someone doing tennis serve"),
    ("baseball_pitch", "noun", "a person does baseball pitch.", "someone doing baseball pitch"),
    ("strum_guitar", "verb", "a person strums guitar.", "someone strumming guitar"),
    ("cleanAndJerk", "noun", "a person does clean and jerk.", "someone doing clean and jerk"),
    ("A person raises a hand.", "sentence", "A person raises a hand.", "A person raises a hand."),
    ("someone waves at the camera", "sentence", "Someone waves at the camera.", "Someone waves at the camera."),
]  # fmt: skip


@pytest.mark.parametrize(("label", "form", "with_s", "with_ing"), CASES)
def test_templates_fit_the_label_form(label, form, with_s, with_ing):
    assert label_form(label) == form
    assert render_prompt("a person {label_s}.", label) == with_s
    assert render_prompt("someone {label_ing}", label) == with_ing


def test_spelling_rules():
    assert [third_person(v) for v in ("push", "carry", "go", "play", "wave")] == [
        "pushes", "carries", "goes", "plays", "waves"]  # fmt: skip
    assert [gerund(v) for v in ("sit", "wave", "lie", "throw", "clap", "open", "squat", "pick")] == [
        "sitting", "waving", "lying", "throwing", "clapping", "opening", "squatting", "picking"]  # fmt: skip
    assert clean_label("baseball_pitch") == "baseball pitch" and clean_label("TV remote.") == "TV remote"


def test_shipped_prompts_never_read_oddly():
    prompts = load_label_prompts()
    assert prompts.version == "2"
    for label in ("Raise your hand.", "baseball_pitch", "A person raises a hand.", "jogging in place"):
        texts = prompts.format(label)
        assert not any("a person Raise" in t or "_" in t or ".." in t for t in texts), texts
    # a sentence label is its own prompt: the ensemble holds it once
    assert class_texts("A person raises a hand.", prompts.prompts) == ["A person raises a hand."]
    assert "a person is doing the action: baseball pitch." in prompts.format("baseball_pitch")


def test_old_single_slot_prompts_still_work_and_bad_ones_are_refused(tmp_path):
    # a model saved with version-1 prompts keeps its {label} templates
    assert class_texts("clap", ["a person {label}.", "{label}"]) == ["a person clap.", "clap"]
    assert load_prompts(["a person {label_s}."], ()) == ("a person {label_s}.",)
    with pytest.raises(ValueError, match="slot"):
        load_prompts(["a person."], ())
    bad = tmp_path / "p.txt"
    bad.write_text("# version: 1\na person\n")
    with pytest.raises(TemplateError, match="slot"):
        load_label_prompts(str(bad))


def test_synonyms_use_their_own_form():
    from llmskel.text.descriptions import ClassDescription

    d = ClassDescription("clap", {}, synonyms=["applauding", "hand clap"])
    texts = class_texts("clap", ["a person {label_s}."], d, ("label", "synonyms"))
    assert texts == ["a person claps.", "a person is applauding.", "a person does hand clap."]
