"""Description files: llmskel's JSON format, the shipped files, the published GAP formats, bad input."""

from __future__ import annotations

import json

import pytest

from llmskel.cli import main as cli_main
from llmskel.data.layouts import PART_NAMES
from llmskel.data.readers.ntu import NTU120_CLASSES
from llmskel.data.readers.nwucla import NWUCLA_CLASSES
from llmskel.data.readers.utkinect import UTKINECT_CLASSES
from llmskel.data.synthetic import ACTION_NAMES
from llmskel.text.descriptions import (
    DescriptionError,
    load_descriptions,
    read_label_file,
    read_pasta,
    read_published,
    read_sentences,
    read_synonyms,
    synthetic_description_set,
)
from llmskel.text.resources import list_shipped_descriptions, shipped_descriptions_path

# our own toy sentences, in the two pasta variants seen in published files
PASTA = (
    "wave;head stays upright; hand swings above the head; arm lifts out to the side; hip stays level; "
    "leg stays straight; foot stays flat\n"
    "kick;head: looks down; hand: stays at the side; arm: swings for balance; hip: turns forward; "
    "leg: swings forward from the hip; foot: strikes forward\n"
)


@pytest.mark.parametrize(
    "name, classes",
    [("ntu120", NTU120_CLASSES), ("nw-ucla", NWUCLA_CLASSES), ("utkinect", UTKINECT_CLASSES),
     ("synthetic", ACTION_NAMES)],
)  # fmt: skip
def test_shipped_files_cover_their_classes_strictly(name, classes):
    ds = load_descriptions(name, list(classes))
    assert ds.labels == list(classes) and not ds.filled
    for d in ds.classes.values():
        assert all(d.parts[p] and all(len(t.split()) >= 4 for t in d.parts[p]) for p in PART_NAMES)
        assert d.synonyms and d.sentences
    assert ds.header["made_by"] and ds.header["format"] == "llmskel-descriptions"
    if name != "synthetic":  # written by an assistant: the header says so and which template it followed
        assert "Claude" in ds.header["made_by"] and "part_description" in ds.header["template"]


def test_shipped_synthetic_file_is_the_generated_set():
    shipped = load_descriptions("synthetic")
    generated = synthetic_description_set()
    assert {k: v.to_json() for k, v in shipped.classes.items()} == {
        k: v.to_json() for k, v in generated.classes.items()
    }


def test_ntu60_is_the_first_60_of_ntu120_and_lookup_ignores_case():
    ds = load_descriptions("ntu", list(NTU120_CLASSES[:60]))
    assert len(ds) == 60 and ds.labels[-1] == NTU120_CLASSES[59]
    assert ds["DRINK  Water"].label == "drink water"
    with pytest.raises(KeyError, match="did you mean 'drink water'"):
        ds["drnk water"]
    assert list_shipped_descriptions() == [
        "ntu120",
        "nw-ucla",
        "penn-action",
        "synthetic",
        "utd-mhad",
        "utkinect",
    ]
    assert shipped_descriptions_path("NW-UCLA").name == "nw-ucla.json"


def test_dataset_class_names_find_the_shipped_descriptions_by_name():
    """Penn Action's classes ("baseball pitch") match file keys with underscores ("baseball_pitch");
    UTD-MHAD's names with a note ("bowling (right hand)") match the entry without it, while an entry
    that keeps its note ("right hand draw circle (clockwise)") is still matched exactly first."""
    from llmskel.data.readers.penn_action import PENN_ACTION_CLASSES
    from llmskel.data.readers.utd_mhad import UTD_MHAD_CLASSES
    from llmskel.methods.zero_shot_text import usable_descriptions

    penn = load_descriptions("penn-action")
    assert all(c in penn for c in PENN_ACTION_CLASSES) and penn["baseball pitch"].label == "baseball_pitch"
    utd = load_descriptions("utd-mhad")
    assert len(utd.for_classes(UTD_MHAD_CLASSES)) == 27
    assert utd["bowling (right hand)"].label == "bowling"
    assert (
        utd["right hand draw circle (counter clockwise)"].label
        == "right hand draw circle (counter clockwise)"
    )
    assert "right hand draw circle" not in utd and "bowling (left hand)" in utd
    # the zero-shot path (content check included) uses every one of them
    assert len(usable_descriptions(penn, PENN_ACTION_CLASSES, "penn")) == 15
    assert len(usable_descriptions(utd, UTD_MHAD_CLASSES, "utd")) == 27


def test_json_round_trip_and_variants(tmp_path):
    ds = load_descriptions("nw-ucla")
    ds.add_variant("throw", "arm", "The arm whips forward.")
    out = ds.save(tmp_path / "d.json")
    back = load_descriptions(out, list(NWUCLA_CLASSES))
    assert back["throw"].parts["arm"][0] == "The arm whips forward." and len(back["throw"].parts["arm"]) == 2
    assert back.to_dict()["classes"] == ds.to_dict()["classes"]
    assert back.header["classes"] == 10


def _write_json(tmp_path, classes: dict) -> str:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"header": {"made_by": "test"}, "classes": classes}, indent=2))
    return str(p)


def _entry(**parts):
    full = {p: f"the {p} moves in a circle" for p in PART_NAMES}
    full.update(parts)
    return {"parts": {k: v for k, v in full.items() if v is not None}, "synonyms": ["x"],
            "sentence": "The whole body turns around."}  # fmt: skip


def test_json_missing_part_names_file_line_and_part_unless_allowed(tmp_path):
    path = _write_json(tmp_path, {"wave": _entry(), "spin": _entry(foot=None, leg="  ")})
    with pytest.raises(DescriptionError) as e:
        load_descriptions(path)
    msg = str(e.value)
    assert path in msg and "(line " in msg and "'spin'" in msg and "['leg', 'foot']" in msg
    line = int(msg.split("(line ")[1].split(")")[0])
    assert '"spin"' in open(path).read().splitlines()[line - 1]
    ds = load_descriptions(path, allow_missing=True)
    assert ds.filled == {"spin": ["leg", "foot"]}
    assert ds["spin"].parts["foot"] == ["The whole body turns around."]


def test_json_errors_unknown_label_bad_part_and_syntax(tmp_path):
    path = _write_json(tmp_path, {"wave": _entry(), "jmup": _entry()})
    with pytest.raises(DescriptionError, match=r"unknown label 'jmup'.*did you mean 'jump'"):
        load_descriptions(path, ["wave", "jump"])
    path = _write_json(tmp_path, {"wave": {"parts": {**_entry()["parts"], "tail": "wags"}}})
    with pytest.raises(DescriptionError, match=r"unknown parts \['tail'\]"):
        load_descriptions(path)
    p = tmp_path / "syntax.json"
    p.write_text('{"header": {},\n "classes": {\n  "wave": {,}\n }}')
    with pytest.raises(DescriptionError, match=r"syntax.json \(line 3\): not valid JSON"):
        load_descriptions(p)
    with pytest.raises(DescriptionError, match=r"no description for 1 of the 2 classes.*'jump'"):
        load_descriptions(_write_json(tmp_path, {"wave": _entry()}), ["wave", "jump"])


def test_pasta_both_variants_and_labelled_segments(tmp_path):
    p = tmp_path / "my_pasta.txt"
    p.write_text(PASTA)
    ds = read_pasta(p)
    assert ds.labels == ["wave", "kick"]
    assert ds["wave"].parts["hand"] == ["hand swings above the head"]
    assert ds["kick"].parts["leg"] == ["leg: swings forward from the hip"]
    # labelled segments are matched by name, in any order
    p.write_text("kick;foot: strikes; head: looks down; hand: rests; arm: swings; hip: turns; leg: lifts\n")
    assert read_pasta(p)["kick"].parts["foot"] == ["foot: strikes"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("wave;a;b;c;d;e;f;g\n", r"line 1\): class 'wave': 7 ';'-separated segments, expected 6"),
        ("wave;a;b;c\n", r"3 ';'-separated segments, expected 6.*\['hip', 'leg', 'foot'\] are missing"),
        ("wave;a;arm: lifts;c;d;e;f\n", r"segment 2 is labelled 'arm' but position 2 is 'hand'"),
        ("wave;a;b;c;d;e;f\nkick;a;b;c;d;e;f\nWave;a;b;c;d;e;f\n", r"line 3\): label 'Wave' appears twice \(first at line 1\)"),
        ("wave a b c\n", r"line 1\): no separator ';' after the label"),
        ("wave;a;;c;d;e;f\n", r"class 'wave' has no description for parts \['hand'\]"),
    ],
)  # fmt: skip
def test_pasta_errors_name_file_line_and_problem(tmp_path, text, match):
    p = tmp_path / "pasta_bad.txt"
    p.write_text(text)
    with pytest.raises(DescriptionError, match=match) as e:
        load_descriptions(p)
    assert str(p) in str(e.value)


def test_missing_parts_filled_from_sentence_file_when_allowed(tmp_path):
    pasta, sent, syn = tmp_path / "pasta.txt", tmp_path / "sentence.txt", tmp_path / "synonym.txt"
    pasta.write_text("wave;a;b;c\nkick;a;b;c;d;e;f\n")
    sent.write_text("wave,The arm waves above the head.\nkick;The leg swings forward.\n")
    syn.write_text("wave,greet, hail, greet\nkick,boot\n")
    ds = read_published(pasta, syn, sent, allow_missing=True)
    assert ds.filled == {"wave": ["hip", "leg", "foot"]}
    assert ds["wave"].parts["leg"] == ["The arm waves above the head."]
    assert ds["wave"].synonyms == ["greet", "hail"] and ds["kick"].sentences == ["The leg swings forward."]
    assert read_synonyms(syn)["kick"].synonyms == ["boot"]
    assert read_sentences(sent)["kick"].sentences == ["The leg swings forward."]


def test_labels_with_the_separator_are_matched_against_the_class_list(tmp_path):
    p = tmp_path / "synonym.txt"
    p.write_text("sit, then stand,rise, get up\nwalk,stroll\n")
    ds = read_synonyms(p, ["walk", "sit, then stand"])
    assert ds.labels == ["walk", "sit, then stand"] and ds["sit, then stand"].synonyms == ["rise", "get up"]


def test_label_file_reader(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text(" drink water\r\n\r\nclap\n")
    assert read_label_file(p) == ["drink water", "clap"]
    p.write_text("clap\nwave\nClap\n")
    with pytest.raises(DescriptionError, match=r"line 3\): label 'Clap' appears twice \(first at line 1\)"):
        read_label_file(p)


# ------------------------------------------------------------------------------ published files


def test_published_ntu120_files_load_strictly(gap_descriptions_dir):
    ds = load_descriptions(gap_descriptions_dir, list(NTU120_CLASSES))
    assert ds.labels == list(NTU120_CLASSES) and not ds.filled
    assert all(len(d.parts) == 6 and d.synonyms and len(d.sentences) == 1 for d in ds.classes.values())
    assert read_label_file(gap_descriptions_dir / "ntu120_label_map.txt") == list(NTU120_CLASSES)


def test_published_ucla_files_with_labelled_and_positional_lines(gap_descriptions_dir):
    ds = load_descriptions(gap_descriptions_dir, list(NWUCLA_CLASSES))  # the ucla_* set is picked
    assert ds.labels == list(NWUCLA_CLASSES) and "ucla_pasta" in ds.header["sources"][0]
    # the first lines label their segments ("head: ..."), later ones are positional sentences
    assert all(ds["sit down"].parts[p][0].startswith(f"{p}:") for p in PART_NAMES)
    assert not any(ds["stand up"].parts[p][0].startswith(f"{p}:") for p in PART_NAMES)
    assert all(d.sentences for d in ds.classes.values())


def test_cli_descriptions_check_and_convert(tmp_path, capsys, gap_descriptions_dir):
    assert cli_main(["descriptions", "check", "nw-ucla", "--classes", "nw-ucla", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == 10 and out["part_variants"]["head"] == 10
    dst = tmp_path / "ucla.json"
    rc = cli_main(
        [
            "descriptions",
            "convert",
            str(gap_descriptions_dir),
            "--classes",
            "nw-ucla",
            "--out",
            str(dst),
            "--json",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["classes"] == 10
    back = load_descriptions(dst, list(NWUCLA_CLASSES))
    assert back.header["made_by"] == "llmskel descriptions convert" and len(back["throw"].synonyms) >= 5
    bad = tmp_path / "pasta_x.txt"
    bad.write_text("throw;a;b\n")
    assert cli_main(["descriptions", "check", str(bad), "--classes", "nw-ucla"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "line 1" in err and "2 ';'-separated segments" in err


def test_merge_unions_variants_synonyms_and_classes():
    a = load_descriptions("utkinect")
    b = load_descriptions("nw-ucla")
    b.add_variant("throw", "arm", "The arm snaps forward.")
    m = a.merge(b)
    assert len(m) == len(set(a.labels) | set(b.labels)) == 16  # sit down, stand up, throw, carry shared
    assert m["throw"].parts["arm"] == [a["throw"].parts["arm"][0], "The arm snaps forward."]  # a's first
    assert m["carry"].synonyms == a["carry"].synonyms + [
        s for s in b["carry"].synonyms if s not in a["carry"].synonyms
    ]
    assert len(a["throw"].parts["arm"]) == 1  # the inputs are left as they were
