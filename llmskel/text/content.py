"""Content checks for part descriptions: refuse text that is well formed but says nothing usable.

:func:`~llmskel.text.describe.check_answer` and the description readers catch malformed text (empty,
unfinished, repeated, not text). A small LLM also writes fluent sentences that carry no movement
information, for example (SmolLM2-135M, label "high arm wave")::

    The arms do not perform the action "high arm wave".     (negates the action)
    The legs do the high arm wave.                            (repeats the label)
    The feet perform a specific movement in a visual manner.  (says nothing about the feet)

and often the same sentence for every part with only the part noun changed. Such text makes a
class's part prototypes near copies of its label embedding, so alignment with it learns nothing.

Rules (each refusal names the rule; :data:`RULES`):

* ``too short``: fewer than :data:`MIN_WORDS` words;
* ``negates the action``: a negation ("not", "never", "n't", "no") together with the label's own
  words or with "perform / action / involved / participate / part of" ("The feet do not move" is a
  description and passes);
* ``repeats the label``: fewer than :data:`MIN_INFORMATIVE` words that are not the label's words,
  body-part words, function words or vague filler (one such word is enough in a sentence of five
  words or more that does not name a label of several words verbatim);
  a part said to "do / perform (the action) <label>" is refused the same way;
* ``says nothing about the part``: the same count is low although the label is not repeated
  (only vague words: "specific", "movement", "manner", "way", ...);
* ``same sentence for N parts``: within one class, :data:`SAME_PARTS` or more parts have the same
  text once the part words are masked (token overlap >= :data:`SAME_OVERLAP`); two or three parts
  that all "stay still" are a fair description and pass.

:func:`check_part` checks one text, :func:`check_class` a class (all rules), :func:`check_set` a
description set; the result maps label -> part -> reason, empty when everything passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..data.layouts import PART_NAMES

MIN_WORDS = 4
MIN_INFORMATIVE = 2
SAME_OVERLAP = 0.8
SAME_PARTS = 4  # the same sentence for this many parts (of six) is refused
RULES = (
    "too short",
    "negates the action",
    "repeats the label",
    "says nothing about the part",
    "same sentence",
)

# words that name a body part, per part (masked when comparing parts, never informative on their own)
PART_WORDS = {
    "head": {"head", "heads", "face", "neck", "necks", "chin", "eyes"},
    "hand": {"hand", "hands", "finger", "fingers", "palm", "palms", "wrist", "wrists", "fist", "fists"},
    "arm": {"arm", "arms", "elbow", "elbows", "shoulder", "shoulders", "forearm", "forearms"},
    "hip": {"hip", "hips", "waist", "pelvis", "torso", "trunk"},
    "leg": {"leg", "legs", "knee", "knees", "thigh", "thighs"},
    "foot": {"foot", "feet", "toe", "toes", "heel", "heels", "ankle", "ankles"},
}
_ALL_PART_WORDS = set().union(*PART_WORDS.values())

_FUNCTION = set(
    """a an the and or but nor so yet of to in on at by for with from into onto
    as than then that this these those there their they them its it his her he she him one's person's
    is are was were be been being am do does did done doing has have had having will would can could
    may might shall should must while when where which who whom whose what how also very just only
    each every both either neither all any some such own same other another too quite rather more most
    person people someone somebody human individual""".split()
)
_VAGUE = set(
    """perform performs performed performing performance action actions activity activities act acts
    movement movements motion motions move moves moved moving manner way ways specific certain various
    particular visual visually manner involve involves involved involving participate participates
    part parts role roles body bodies component components primary main overall general generally
    typically usually often use used uses using help helps helped helping allow allows allowed
    position positioned positions thing things something entire whole appropriate appropriately
    correct correctly proper properly process task""".split()
)
_NEGATION = re.compile(r"\b(?:not|never|no|neither|nor)\b|n't\b", re.IGNORECASE)
_ACTION_WORDS = re.compile(r"\b(?:perform\w*|action|involved|participat\w*|part of|take part|do the|does the)\b",
                           re.IGNORECASE)  # fmt: skip


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("n't", " not"))


def label_words(label: str) -> set[str]:
    """The content words of a label (snake_case and camelCase split), with simple inflections."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", label).replace("_", " ").replace("-", " ")
    out = set()
    for w in words(text):
        if w in _FUNCTION:
            continue
        out |= {w, w + "s", w + "es", w + "ing", w + "ed"}
        if w.endswith("e"):
            out |= {w[:-1] + "ing", w + "d"}
        if w.endswith("s"):
            out.add(w[:-1])
        if w.endswith("ing"):
            out |= {w[:-3], w[:-3] + "e"}
    return out


def informative_words(text: str, label: str, part: str | None = None) -> list[str]:
    """Words of ``text`` that are neither the label's, a body part's, function words nor vague filler."""
    lw = label_words(label)
    return [w for w in words(text) if w not in lw and w not in _ALL_PART_WORDS and w not in _FUNCTION
            and w not in _VAGUE and len(w) > 1]  # fmt: skip


def check_part(text: str, label: str, part: str | None = None) -> str | None:
    """The first content problem of one part description, or None when it is usable."""
    ws = words(text)
    if len(ws) < MIN_WORDS:
        return f"too short ({len(ws)} words; at least {MIN_WORDS})"
    lw = label_words(label)
    if _NEGATION.search(text):
        repeats = sum(w in lw for w in ws) >= max(1, min(2, len(lw) // 4))
        if repeats or _ACTION_WORDS.search(text):
            return "negates the action (says what the part does not do in the action, not what it does)"
    squashed, name = _squash(text), _squash(label)
    if re.search(
        rf"\b(?:do|does|did|doing|perform|performs|performing|performed)\b(?: the| a| an)?"
        rf"(?: action| activity| movement| motion)?(?: of| called)?(?: the)? {re.escape(name)}\b",
        squashed,
    ):
        return "repeats the label (says the part does or performs the action by name instead of how it moves)"
    info = informative_words(text, label, part)
    named = len(_squash(label).split()) >= 2 and _squash(label) in _squash(
        text
    )  # a label of 2+ words, verbatim
    if len(info) < MIN_INFORMATIVE and (len(info) == 0 or named or len(ws) < MIN_WORDS + 1):
        said = "repeats the label" if any(w in lw for w in ws) else "says nothing about the part"
        return f"{said} (only {len(info)} word(s) beyond the label, part names and filler: {info})"
    return None


def _squash(text: str) -> str:
    return " ".join(words(re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ")))


def _masked(text: str) -> list[str]:
    return ["<part>" if w in _ALL_PART_WORDS else w for w in words(text)]


def _overlap(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / max(len(sa | sb), 1)


def check_class(label: str, parts: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """part -> reason for the part texts of one class that fail (variant 0..n: the first failing)."""
    problems: dict[str, str] = {}
    for p in PART_NAMES:
        for i, text in enumerate(parts.get(p, [])):
            why = check_part(text, label, p)
            if why:
                problems[p] = why if len(parts[p]) == 1 else f"variant {i + 1}: {why}"
                break
    names = [p for p in PART_NAMES if parts.get(p)]
    masked = {p: _masked(parts[p][0]) for p in names}
    for p in names:
        same = [q for q in names if q != p and _overlap(masked[p], masked[q]) >= SAME_OVERLAP]
        if len(same) + 1 >= SAME_PARTS and p not in problems:
            problems[p] = (
                f"same sentence for {len(same) + 1} parts (only the part words differ: {', '.join(same)})"
            )
    return problems


def check_set(descriptions: Any) -> dict[str, dict[str, str]]:
    """label -> part -> reason over a :class:`DescriptionSet` (or a mapping label -> ClassDescription)."""
    classes = getattr(descriptions, "classes", descriptions)
    out = {}
    for label, d in classes.items():
        bad = check_class(label, d.parts)
        if bad:
            out[label] = bad
    return out


def usable(descriptions: Any, labels: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """({label: description} that pass, {label: why not}) for ``labels`` (missing ones included)."""
    classes = getattr(descriptions, "classes", descriptions) or {}
    from .descriptions import find_label, normalize_label

    index = {normalize_label(k): v for k, v in classes.items()}
    good, bad = {}, {}
    for label in labels:
        d = find_label(index, label)
        if d is None:
            bad[label] = "no description"
            continue
        problems = check_class(label, d.parts)
        if problems:
            part, why = next(iter(problems.items()))
            bad[label] = f"{len(problems)} part(s) rejected, e.g. {part}: {why}"
        else:
            good[label] = d
    return good, bad
