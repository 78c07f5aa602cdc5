"""Label prompts that fit the label's grammatical form.

Class names come in many forms: verb phrases ("sit down", "pick up with one hand"), gerunds
("jogging in place"), noun phrases ("tennis serve", "jumping jacks"), snake_case or camelCase
identifiers ("baseball_pitch", "cleanAndJerk"), whole sentences ("A person raises a hand.") and
imperatives ("Raise your hand."). One template "a person {label}." reads well for few of them
("a person Raise your hand."). Templates therefore name the slot they offer:

* ``{label}``: the label as a phrase (identifiers split into words, no final full stop, first
  letter lower case unless the word is an acronym): "baseball pitch", "raise your hand";
* ``{label_s}``: what follows "a person": "sits down", "is jogging in place", "does tennis
  serve", "raises their hand" (an imperative is turned into the third person);
* ``{label_ing}``: what follows "someone": "sitting down", "jogging in place", "doing tennis serve".

A sentence label is complete on its own: every template renders it as that sentence (so the
ensemble holds it once). :func:`label_form` tells the form, :func:`render_prompt` fills one
template; both need no tagger, only the small verb list below and spelling rules (third person
"-s/-es/-ies", "-ing" with the silent-e drop and consonant doubling).
"""

from __future__ import annotations

import re
from functools import lru_cache

FORMS = ("sentence", "imperative", "gerund", "verb", "noun")
SLOTS = ("{label}", "{label_s}", "{label_ing}")

# base forms of verbs that start action labels (NTU-120, NW-UCLA, UTKinect, UTD-MHAD, Penn Action,
# Kinetics-style names); a first word not listed here is read as a noun ("tennis serve")
VERBS = frozenset(
    """apply bat bend blow bounce bow bowl box brush call capitulate carry catch check cheer chop clap climb
    close comb count crawl cross curl cut dance dig do don doff drag draw drink drive drop eat exchange fall
    fan flick fold follow get give go grab hammer hit hold hop hug hush jog juggle jump kick kneel knock
    laugh lean lie lift listen look lower lunge make march move nod open pat pick pitch play point pour
    press pull punch push put raise reach read remove ride roll rotate row rub run salute scratch serve
    shake shoot shout shrug sing sit skate ski skip slap slide smell smile sneeze sniff spin squat stagger
    stamp stand staple step stir stomp strum stretch support sway sweep swim swing swipe take talk tap tear
    throw tie toss touch turn type vomit walk wash wave wear whisper wield wipe write yawn""".split()
)
_SUBJECTS = frozenset(
    """i you he she it we they someone somebody everyone everybody nobody person people man men woman
    women boy girl child kid player subject actor human individual""".split()
)
_PRONOUNS = {"your": "their", "yours": "theirs", "yourself": "themselves", "yourselves": "themselves",
             "you": "them"}  # fmt: skip
_IRREGULAR_S = {"be": "is", "have": "has", "do": "does", "go": "goes"}
_IRREGULAR_ING = {"be": "being", "lie": "lying", "tie": "tying", "die": "dying", "see": "seeing",
                  "ski": "skiing", "don": "donning", "doff": "doffing"}  # fmt: skip


def clean_label(label: str) -> str:
    """The label as a phrase: identifiers split (``baseball_pitch`` -> ``baseball pitch``,
    ``cleanAndJerk`` -> ``clean and jerk``), spaces collapsed, no final full stop, first letter
    lower case unless the first word is an acronym (``TV``)."""
    text = str(label).strip()
    if "_" in text and " " not in text:
        text = text.replace("_", " ")
    if " " not in text and re.search(r"[a-z][A-Z][a-z]", text):  # camelCase: words in lower case
        text = re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", " ", text)
        text = " ".join(w if w.isupper() else w.lower() for w in text.split())
    text = " ".join(text.split()).rstrip(".!").strip()
    first = text.split(" ", 1)[0] if text else ""
    if first and not (len(first) > 1 and first[:2].isupper()):
        text = text[0].lower() + text[1:]
    return text


def third_person(verb: str) -> str:
    v = verb.lower()
    if v in _IRREGULAR_S:
        return _IRREGULAR_S[v]
    if re.search(r"(s|sh|ch|x|z|o)$", v):
        return v + "es"
    if re.search(r"[^aeiou]y$", v):
        return v[:-1] + "ies"
    return v + "s"


def gerund(verb: str) -> str:
    v = verb.lower()
    if v in _IRREGULAR_ING:
        return _IRREGULAR_ING[v]
    if v.endswith("ie"):
        return v[:-2] + "ying"
    if v.endswith("e") and not v.endswith(("ee", "ye", "oe")) and len(v) > 2:
        return v[:-1] + "ing"
    # one syllable ending in a single vowel and a single consonant: sit -> sitting, squat -> squatting
    if re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", v.replace("qu", "qw")):
        return v + v[-1] + "ing"
    return v + "ing"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


@lru_cache(maxsize=4096)
def label_form(label: str) -> str:
    """One of :data:`FORMS` for a label (see the module docstring)."""
    raw = str(label).strip()
    words = _words(clean_label(raw))
    if not words:
        return "noun"
    first = words[0]
    second = words[1] if len(words) > 1 else ""
    third = words[2] if len(words) > 2 else ""
    # a subject and a verb: "someone waves", "he is running", "a person raises a hand"
    if first in _SUBJECTS - {"you"} and second and (second.endswith("s") or second in ("is", "are", "was")):
        return "sentence"
    if (
        first in ("a", "an", "the")
        and second in _SUBJECTS
        and third
        and (third.endswith("s") or third in ("is", "are", "was"))
    ):
        return "sentence"
    second_person = any(w in _PRONOUNS for w in words)
    if first in VERBS and (second_person or (raw[:1].isupper() and raw.rstrip().endswith((".", "!")))):
        return "imperative"
    if first in VERBS:
        return "verb"
    if first.endswith("ing") and len(first) > 4:
        return "gerund"
    return "noun"


def label_slots(label: str) -> dict[str, str]:
    """``{"label": ..., "label_s": ..., "label_ing": ...}`` for a label (sentences: the sentence)."""
    form = label_form(label)
    phrase = clean_label(label)
    if form == "sentence":
        sentence = phrase[0].upper() + phrase[1:] + "."
        return {"label": sentence, "label_s": sentence, "label_ing": sentence, "form": form}
    if form == "imperative":
        phrase = " ".join(_PRONOUNS.get(w.lower(), w) for w in phrase.split())
    if form in ("verb", "imperative"):
        head, _, rest = phrase.partition(" ")
        tail = f" {rest}" if rest else ""
        return {"label": phrase, "label_s": third_person(head) + tail, "label_ing": gerund(head) + tail,
                "form": form}  # fmt: skip
    if form == "gerund":
        return {"label": phrase, "label_s": f"is {phrase}", "label_ing": phrase, "form": form}
    return {"label": phrase, "label_s": f"does {phrase}", "label_ing": f"doing {phrase}", "form": form}


def render_prompt(template: str, label: str) -> str:
    """One label prompt: ``template`` with its ``{label}`` / ``{label_s}`` / ``{label_ing}`` slot filled
    for the form of ``label``. A sentence label renders as the sentence itself."""
    slots = label_slots(label)
    if slots["form"] == "sentence":
        return slots["label"]
    return (
        template.replace("{label_s}", slots["label_s"])
        .replace("{label_ing}", slots["label_ing"])
        .replace("{label}", slots["label"])
    )


def has_slot(template: str) -> bool:
    return any(s in template for s in SLOTS)
