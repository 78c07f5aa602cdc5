"""The content check: well-formed but unusable part descriptions are refused, with the reason."""

from __future__ import annotations

import logging

import pytest

from llmskel.cli import main as cli_main
from llmskel.data.layouts import PART_NAMES
from llmskel.text.content import check_class, check_part, check_set, usable
from llmskel.text.descriptions import ClassDescription, DescriptionSet, load_descriptions
from llmskel.text.resources import list_shipped_descriptions

# answers SmolLM2-135M gave here (issue 12 and the describe cache), and what each must be refused for
SMOLLM2 = [
    ('The arms do not perform the action "high arm wave".', "high arm wave", "negates the action"),
    ("The legs do the high arm wave.", "high arm wave", "repeats the label"),
    ('The legs do the right-hand wave when performing the action "right hand wave" in a visual manner.',
     "right hand wave", "repeats the label"),
    ('The hands do the action "right hand draw x" in a visual manner, with the fingers and palms facing upwards.',
     "right hand draw x", "repeats the label"),
    ("The feet perform a specific movement in a visual manner.", "bowling", "says nothing about the part"),
    ("The hands move.", "clap", "too short"),
]  # fmt: skip

GOOD = [
    ("The feet do not move while the arms swing.", "high arm wave"),  # a negation that describes
    ("The legs stand still.", "donning"),
    ("Both arms move in front of the chest and cross at the forearms.", "cross hands in front"),
    ("The head faces the other person.", "kicking"),
    ("The right arm swings back and then forward to release the ball near the floor.", "bowling"),
]


@pytest.mark.parametrize(("text", "label", "rule"), SMOLLM2)
def test_unusable_answers_are_refused_with_the_rule(text, label, rule):
    why = check_part(text, label)
    assert why is not None and why.startswith(rule), why


@pytest.mark.parametrize(("text", "label"), GOOD)
def test_concrete_descriptions_pass(text, label):
    assert check_part(text, label) is None


def test_the_same_sentence_for_most_parts_is_refused_but_still_parts_are_fine():
    nouns = {"head": "head", "hand": "hands", "arm": "arms", "hip": "hips", "leg": "legs", "foot": "feet"}
    same = {p: [f"The {n} move quickly up and down in a circle."] for p, n in nouns.items()}
    problems = check_class("jump", same)
    assert set(problems) == set(PART_NAMES) and all(
        "same sentence for 6 parts" in v for v in problems.values()
    )
    still = {**{p: [f"The {n} stay still."] for p, n in nouns.items() if p in ("hip", "leg", "foot")},
             "head": ["The head looks at the hands."], "hand": ["The hands meet in front of the chest."],
             "arm": ["The arms bend at the elbows and swing inward."]}  # fmt: skip
    assert check_class("clap", still) == {}


def test_shipped_description_files_pass():
    for name in list_shipped_descriptions():
        ds = load_descriptions(name)
        assert check_set(ds) == {}, name


def test_usable_splits_missing_and_rejected_classes():
    good = ClassDescription(
        "clap", {p: ["The hands meet in front of the chest and part."] for p in PART_NAMES}
    )
    good.parts["head"] = ["The head looks down at the hands."]
    good.parts["foot"] = ["The feet stay flat on the floor."]
    good.parts["leg"] = ["The knees stay straight and locked."]
    good.parts["hip"] = ["The trunk stays upright and level."]
    good.parts["arm"] = ["The forearms swing inward at chest height."]
    bad = ClassDescription("wave", {p: ['The body does not perform the action "wave".'] for p in PART_NAMES})
    ds = DescriptionSet({"clap": good, "wave": bad})
    ok, rejected = usable(ds, ["clap", "wave", "kick"])
    assert list(ok) == ["clap"]
    assert rejected["kick"] == "no description" and "negates the action" in rejected["wave"]


def test_cli_check_reports_rejected_classes(tmp_path, capsys):
    d = {p: ['The part does not perform the action "wave".'] for p in PART_NAMES}
    ds = DescriptionSet({"wave": ClassDescription("wave", d)})
    path = ds.save(tmp_path / "d.json")
    assert cli_main(["descriptions", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED 'wave'" in out and "head: negates the action" in out
    assert cli_main(["descriptions", "check", "nw-ucla"]) == 0
    assert "content check passed" in capsys.readouterr().out


def test_zero_shot_texts_fall_back_to_label_prompts_and_warn(caplog):
    from llmskel.methods.zero_shot_text import usable_descriptions

    bad = ClassDescription("wave", {p: ['The body does not perform the action "wave".'] for p in PART_NAMES},
                           synonyms=["hand wave"])  # fmt: skip
    nw = load_descriptions("nw-ucla")
    ds = DescriptionSet({"wave": bad, "sit down": nw["sit down"]})
    with caplog.at_level(logging.WARNING):
        out = usable_descriptions(ds, ["wave", "sit down", "kick"], "test")
    assert out["sit down"] is nw["sit down"] or out["sit down"].parts == nw["sit down"].parts
    assert out["wave"].parts == {} and out["wave"].synonyms == ["hand wave"]  # synonyms kept, parts dropped
    assert "kick" not in out
    assert "wave" in caplog.text and "kick" in caplog.text and "label prompts" in caplog.text


UTD_MHAD = ["right arm swipe to the left", "right arm swipe to the right", "right hand wave", "two hand front clap",
            "right arm throw", "cross arms in the chest", "basketball shoot", "right hand draw x",
            "right hand draw circle (clockwise)", "right hand draw circle (counter clockwise)", "draw triangle",
            "bowling", "front boxing", "baseball swing from right", "tennis right hand forehand swing", "arm curl",
            "tennis serve", "two hand push", "right hand knock on door", "right hand catch an object",
            "right hand pick up and throw", "jogging in place", "walking in place", "sit to stand", "stand to sit",
            "forward lunge", "squat"]  # fmt: skip


def test_new_dataset_description_files():
    from llmskel.text.resources import shipped_descriptions_path

    utd = load_descriptions("utd-mhad", UTD_MHAD)
    assert utd.labels == UTD_MHAD
    assert "Claude" in utd.header["made_by"] and "No text from SmolLM2-135M" in utd.header["how"]
    penn = load_descriptions("penn_action")
    assert len(penn) == 15 and all(len(d.synonyms) == 3 and d.sentences for d in penn.classes.values())
    assert str(shipped_descriptions_path("penn")).endswith("penn-action.json")


def test_penn_action_names_match_the_mat_files(shared_data):
    scipy_io = pytest.importorskip("scipy.io")
    folder = shared_data / "penn_action"
    if not folder.is_dir():
        pytest.skip("penn_action data not present")
    names = set()
    for path in sorted(folder.glob("*.mat"))[::25]:  # every 25th clip: all 15 actions appear
        names.add(str(scipy_io.loadmat(path, variable_names=["action"])["action"][0]))
    assert names == set(load_descriptions("penn-action").labels)
