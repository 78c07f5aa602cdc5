"""Per-class action descriptions: llmskel's JSON format and readers for the published GAP formats.

The schema (one entry per class)
    ``parts``: for each body part of :data:`llmskel.data.layouts.PART_NAMES` (head, hand, arm, hip,
    leg, foot) a list of description variants (at least one, none empty); ``synonyms``: other names
    of the action; ``sentence``: one or more whole-body sentences. In memory a
    :class:`ClassDescription`; a :class:`DescriptionSet` holds the classes in order plus a header.

llmskel's file format (JSON)::

    {"header": {"format": "llmskel-descriptions", "format_version": 1, "made_by": "...",
                "model": "...", "template": "part_description@v1#<hash>", "date": "2025-01-31"},
     "classes": {"drink water": {"parts": {"head": ["..."], ...}, "synonyms": ["..."],
                                 "sentence": ["..."]}, ...}}

Published formats a user may have (the text files released with the GAP paper), read in place:

* ``pasta``: ``label;head ...;hand ...;arm ...;hip ...;leg ...;foot ...``. The six segments are
  positional, in that order; segments may instead all be labelled (``head: tilts forward``), and
  then they are matched by name in any order. A labelled segment at the wrong position is an error.
* ``synonym``: ``label,syn1, syn2, ...``.
* ``sentence``: ``label,paragraph`` (or ``label;paragraph``).

When a class list is given, a line's label is the longest class name it starts with (so labels may
contain the separator), matched case- and space-insensitively.

Policy for bad input
    Every problem is a :class:`DescriptionError` naming the file, the line and the problem: a line
    without the separator, an unknown label (with the closest class name), a label given twice, a
    wrong number of pasta segments, a part that is missing or empty, and (when a class list is
    given) classes that have no description. Missing parts are an error by default; with
    ``allow_missing=True`` each missing part is filled from the class's sentence (or, without one,
    from "a person {label}") and listed in :attr:`DescriptionSet.filled`, which callers report.
    The published files checked here (NTU-120 and NW-UCLA, GAP release) have six non-empty segments
    on every line, so they load strictly; a few segments there describe another part than their
    position says (for example the hand segment of "stretch oneself" talks about the arms); they
    are kept as written, positionally, as the paper's code used them.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.layouts import PART_NAMES
from ..errors import LlmskelError

try:  # Python >= 3.11
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

FORMAT_NAME = "llmskel-descriptions"
FORMAT_VERSION = 1
PUBLISHED_FORMATS = ("pasta", "synonym", "sentence")


class DescriptionError(LlmskelError, ValueError):
    """A description file or entry is wrong: ``path (line N): problem``."""

    def __init__(self, path: str | os.PathLike | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        loc = self.path or "<descriptions>"
        if line is not None:
            loc = f"{loc} (line {line})"
        super().__init__(f"{loc}: {problem}")


def normalize_label(label: str) -> str:
    """The key labels are matched by: lower case, underscores as spaces, single spaces, no surrounding
    space or full stop ("baseball_pitch" in a file matches the class "baseball pitch")."""
    return re.sub(r"\s+", " ", label.replace("_", " ").strip().strip(".").strip()).lower()


def label_keys(label: str) -> list[str]:
    """The keys a class name is looked up by, in order: its normalized name, then the name without a
    trailing note in parentheses (UTD-MHAD's "bowling (right hand)" finds a description of "bowling";
    "draw circle (clockwise)" still finds its own entry first)."""
    key = normalize_label(label)
    base = re.sub(r"\s*\([^()]*\)$", "", key).strip()
    return [key, base] if base and base != key else [key]


def find_label(index: Mapping[str, Any], label: str) -> Any:
    """``index[key]`` for the first of :func:`label_keys` that ``index`` (keyed by normalized names) has."""
    for key in label_keys(label):
        if key in index:
            return index[key]
    return None


# ----------------------------------------------------------------------------------------------
# the schema


@dataclass
class ClassDescription:
    label: str
    parts: dict[str, list[str]]  # PART_NAMES -> variants
    synonyms: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)

    def part(self, name: str, variant: int = 0) -> str:
        options = self.parts[name]
        return options[variant % len(options)]

    def missing_parts(self) -> list[str]:
        return [p for p in PART_NAMES if not [t for t in self.parts.get(p, []) if t.strip()]]

    def to_json(self) -> dict[str, Any]:
        return {
            "parts": {p: list(self.parts[p]) for p in PART_NAMES if p in self.parts},
            "synonyms": list(self.synonyms),
            "sentence": list(self.sentences),
        }


@dataclass
class DescriptionSet:
    """Descriptions of classes, in order, with the header that says how they were made."""

    classes: dict[str, ClassDescription]  # label -> description, in file order
    header: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    filled: dict[str, list[str]] = field(default_factory=dict)  # label -> parts filled from the sentence
    lines: dict[str, int] = field(default_factory=dict, repr=False)  # label -> line in the source file

    def __post_init__(self) -> None:
        self._index = {normalize_label(k): k for k in self.classes}

    # -- lookup
    @property
    def labels(self) -> list[str]:
        return list(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def __contains__(self, label: str) -> bool:
        return find_label(self._index, label) is not None

    def __getitem__(self, label: str) -> ClassDescription:
        key = find_label(self._index, label)
        if key is None:
            raise KeyError(
                f"{self.source or 'descriptions'}: no description of class {label!r}{_close(label, self.labels)}"
            )
        return self.classes[key]

    def for_classes(self, classes: Sequence[str]) -> DescriptionSet:
        """The descriptions of ``classes`` in that order (matched by name); every class must be there."""
        missing = [c for c in classes if c not in self]
        if missing:
            hints = "; ".join(f"{c!r}{_close(c, self.labels)}" for c in missing[:10])
            raise DescriptionError(
                self.source, f"no description for {len(missing)} of the {len(classes)} classes: {hints}"
                + (" ..." if len(missing) > 10 else "")
            )  # fmt: skip
        out = {c: _relabel(self[c], c) for c in classes}
        filled = {c: self.filled[self[c].label] for c in classes if self[c].label in self.filled}
        return DescriptionSet(out, dict(self.header), self.source, filled)

    # -- editing
    def add_variant(self, label: str, part: str, text: str, front: bool = True) -> None:
        """Add a description variant of one part (refinement); ``front`` makes it variant 0."""
        if part not in PART_NAMES:
            raise KeyError(f"unknown part {part!r}; valid parts: {', '.join(PART_NAMES)}")
        options = self[label].parts.setdefault(part, [])
        if text in options:
            options.remove(text)
        options.insert(0 if front else len(options), text)

    def merge(self, other: DescriptionSet) -> DescriptionSet:
        """Union: variants, synonyms and sentences of both (self's first); classes of both."""
        out = {k: _copy(v) for k, v in self.classes.items()}
        merged = DescriptionSet(out, dict(self.header), self.source, dict(self.filled))
        for label, d in other.classes.items():
            if label not in merged:
                merged.classes[label] = _copy(d)
                merged._index[normalize_label(label)] = label
                continue
            mine = merged[label]
            for p, texts in d.parts.items():
                mine.parts.setdefault(p, [])
                mine.parts[p] += [t for t in texts if t not in mine.parts[p]]
            mine.synonyms += [s for s in d.synonyms if s not in mine.synonyms]
            mine.sentences += [s for s in d.sentences if s not in mine.sentences]
        return merged

    # -- files
    def to_dict(self) -> dict[str, Any]:
        header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **self.header}
        header["classes"] = len(self.classes)
        return {"header": header, "classes": {k: v.to_json() for k, v in self.classes.items()}}

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def make_header(made_by: str, **extra: Any) -> dict[str, Any]:
    """A header recording how a file was made (tool/author, model, template, date, ...)."""
    from .. import __version__

    return {"made_by": made_by, "date": _dt.date.today().isoformat(), "llmskel_version": __version__,
            **{k: v for k, v in extra.items() if v is not None}}  # fmt: skip


def _copy(d: ClassDescription) -> ClassDescription:
    return ClassDescription(
        d.label, {p: list(v) for p, v in d.parts.items()}, list(d.synonyms), list(d.sentences)
    )


def _relabel(d: ClassDescription, label: str) -> ClassDescription:
    c = _copy(d)
    c.label = label
    return c


def _close(label: str, labels: Iterable[str]) -> str:
    norm = {normalize_label(x): x for x in labels}
    close = difflib.get_close_matches(normalize_label(label), list(norm), n=1, cutoff=0.6)
    return f" (did you mean {norm[close[0]]!r}?)" if close else ""


# ----------------------------------------------------------------------------------------------
# building and checking


class _Builder:
    """Collects classes line by line, with the checks every reader shares."""

    def __init__(self, path: str, classes: Sequence[str] | None):
        self.path = path
        self.classes = list(classes) if classes is not None else None
        self.known = {normalize_label(c): c for c in self.classes} if self.classes is not None else None
        self.out: dict[str, ClassDescription] = {}
        self.lines: dict[str, int] = {}

    def split_label(self, text: str, seps: str, line: int) -> tuple[str, str]:
        """``label<sep>rest`` -> (label, rest); with a class list, the longest matching class name."""
        if self.known is not None:
            low = text.lower().lstrip()
            best = None
            for key, name in self.known.items():
                if low.startswith(key) and len(low) > len(key) and low[len(key)] in seps:
                    if best is None or len(key) > len(best[0]):
                        best = (key, name)
            if best is not None:
                return best[1], text.lstrip()[len(best[0]) + 1 :]
        m = re.search(f"[{re.escape(seps)}]", text)
        if not m:
            raise DescriptionError(
                self.path, f"no separator {' or '.join(map(repr, seps))} after the label", line
            )
        label = text[: m.start()].strip()
        if not label:
            raise DescriptionError(self.path, "empty label", line)
        return self.canonical(label, line), text[m.end() :]

    def canonical(self, label: str, line: int) -> str:
        if self.known is None:
            return label.strip()
        key = normalize_label(label)
        if key not in self.known:
            raise DescriptionError(
                self.path, f"unknown label {label.strip()!r}: not among the {len(self.known)} classes"
                + _close(label, self.known.values()), line,
            )  # fmt: skip
        return self.known[key]

    def add(self, desc: ClassDescription, line: int) -> None:
        key = normalize_label(desc.label)
        for k, first in self.lines.items():
            if normalize_label(k) == key:
                raise DescriptionError(
                    self.path, f"label {desc.label!r} appears twice (first at line {first})", line
                )
        self.out[desc.label] = desc
        self.lines[desc.label] = line

    def finish(self, header: dict[str, Any], check_parts: bool, allow_missing: bool,
               require_all: bool = True) -> DescriptionSet:  # fmt: skip
        filled: dict[str, list[str]] = {}
        if check_parts:
            for label, d in self.out.items():
                missing = d.missing_parts()
                if not missing:
                    continue
                if not allow_missing:
                    raise DescriptionError(
                        self.path, f"class {label!r} has no description for parts {missing} (pass "
                        "allow_missing=True / --allow-missing to fill them from the class sentence)",
                        self.lines.get(label),
                    )  # fmt: skip
                fill = d.sentences[0] if d.sentences else f"a person {label}"
                for p in missing:
                    d.parts[p] = [fill]
                filled[label] = missing
        if self.classes is not None and require_all:
            absent = [c for c in self.classes if c not in self.out]
            if absent:
                raise DescriptionError(
                    self.path, f"no description for {len(absent)} of the {len(self.classes)} classes: "
                    f"{absent[:10]}{' ...' if len(absent) > 10 else ''}",
                )  # fmt: skip
            self.out = {c: self.out[c] for c in self.classes}
        return DescriptionSet(self.out, header, self.path, filled, dict(self.lines))


def _read_lines(path: str | os.PathLike | Traversable) -> list[tuple[int, str]]:
    try:
        raw = Path(path).read_bytes() if not isinstance(path, Traversable) else path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DescriptionError(path, f"not UTF-8 text ({e})") from None
    return [(i, line.rstrip("\r")) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]


# ----------------------------------------------------------------------------------------------
# llmskel JSON


def _json_line(text: str, label: str) -> int | None:
    pos = text.find(json.dumps(label, ensure_ascii=False) + ":")
    if pos < 0:
        pos = text.find(json.dumps(label) + ":")
    return None if pos < 0 else text.count("\n", 0, pos) + 1


def _str_list(value: Any, what: str, path: str, line: int | None) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DescriptionError(path, f"{what} must be a string or a list of strings, got {value!r}", line)
    return [v.strip() for v in value if v.strip()]


def read_json(path: str | os.PathLike | Traversable, classes: Sequence[str] | None = None,
              allow_missing: bool = False) -> DescriptionSet:  # fmt: skip
    """llmskel's JSON description file (see the module docstring)."""
    path_s = str(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DescriptionError(path_s, f"not valid JSON: {e.msg}", e.lineno) from None
    except RecursionError:
        raise DescriptionError(path_s, "JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        raise DescriptionError(
            path_s, "expected an object with 'header' and 'classes' (llmskel description format)"
        )
    header = data.get("header") or {}
    if not isinstance(header, dict):
        raise DescriptionError(path_s, f"'header' must be an object, got {type(header).__name__}")
    if header.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise DescriptionError(path_s, f"header.format is {header.get('format')!r}, expected {FORMAT_NAME!r}")
    version = header.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DescriptionError(path_s, f"header.format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise DescriptionError(path_s, f"format_version {header['format_version']} is newer than this llmskel reads "
                                       f"({FORMAT_VERSION}); upgrade llmskel")  # fmt: skip
    b = _Builder(path_s, classes)
    for label, entry in data["classes"].items():
        line = _json_line(text, label)
        name = b.canonical(label, line)
        if not isinstance(entry, dict):
            raise DescriptionError(path_s, f"class {label!r}: expected an object with 'parts'", line)
        unknown = sorted(set(entry) - {"parts", "synonyms", "sentence"})
        if unknown:
            raise DescriptionError(
                path_s, f"class {label!r}: unknown keys {unknown}; valid: parts, synonyms, sentence", line
            )
        parts_raw = entry.get("parts") or {}
        if not isinstance(parts_raw, dict):
            raise DescriptionError(path_s, f"class {label!r}: 'parts' must map part names to text", line)
        bad = sorted(set(parts_raw) - set(PART_NAMES))
        if bad:
            raise DescriptionError(
                path_s, f"class {label!r}: unknown parts {bad}; valid parts: {', '.join(PART_NAMES)}", line
            )
        parts = {p: _str_list(parts_raw[p], f"class {label!r} part {p!r}", path_s, line)
                 for p in PART_NAMES if p in parts_raw}  # fmt: skip
        desc = ClassDescription(
            name, parts,
            _str_list(entry.get("synonyms", []), f"class {label!r} synonyms", path_s, line),
            _str_list(entry.get("sentence", []), f"class {label!r} sentence", path_s, line),
        )  # fmt: skip
        b.add(desc, line or 0)
    return b.finish(header, check_parts=True, allow_missing=allow_missing)


def _read_text(path: str | os.PathLike | Traversable) -> str:
    try:
        raw = path.read_bytes() if isinstance(path, Traversable) else Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DescriptionError(path, f"not UTF-8 text ({e})") from None


# ----------------------------------------------------------------------------------------------
# published formats


_PART_WORDS = {**{p: p for p in PART_NAMES}, **{p + "s": p for p in PART_NAMES}, "feet": "foot"}


def _part_label(segment: str) -> str | None:
    """``"head: tilts"`` -> ``"head"`` (a labelled segment), else None."""
    m = re.match(r"\s*([A-Za-z]+)\s*:", segment)
    return _PART_WORDS.get(m.group(1).lower()) if m else None


def read_pasta(path: str | os.PathLike, classes: Sequence[str] | None = None, allow_missing: bool = False,
               check_parts: bool = True) -> DescriptionSet:  # fmt: skip
    """``label;head ...;hand ...;arm ...;hip ...;leg ...;foot ...`` (see the module docstring).

    ``check_parts=False`` leaves missing parts empty (for :func:`read_published`, which fills them
    from the sentence file when allowed)."""
    path_s = str(path)
    b = _Builder(path_s, classes)
    for line, text in _read_lines(path):
        label, rest = b.split_label(text, ";", line)
        segs = [s.strip() for s in rest.split(";")]
        while segs and not segs[-1]:
            segs.pop()  # a trailing ';'
        named = [_part_label(s) for s in segs]
        parts: dict[str, list[str]] = {}
        if segs and all(named):
            for s, n in zip(segs, named):
                if n in parts:
                    raise DescriptionError(path_s, f"class {label!r}: part {n!r} is given twice", line)
                body = s.split(":", 1)[1].strip()
                parts[n] = [s.strip()] if body else []
        else:
            if len(segs) > len(PART_NAMES):
                raise DescriptionError(
                    path_s, f"class {label!r}: {len(segs)} ';'-separated segments, expected {len(PART_NAMES)} "
                    f"({', '.join(PART_NAMES)})", line,
                )  # fmt: skip
            if len(segs) < len(PART_NAMES) and not allow_missing:
                raise DescriptionError(
                    path_s, f"class {label!r}: {len(segs)} ';'-separated segments, expected {len(PART_NAMES)} "
                    f"({', '.join(PART_NAMES)}); parts {list(PART_NAMES[len(segs):])} are missing (pass "
                    "allow_missing=True / --allow-missing to fill them from the class sentence)", line,
                )  # fmt: skip
            for i, (s, n) in enumerate(zip(segs, named)):
                want = PART_NAMES[i]
                if n is not None and n != want:
                    raise DescriptionError(
                        path_s, f"class {label!r}: segment {i + 1} is labelled {n!r} but position {i + 1} is {want!r}",
                        line,
                    )  # fmt: skip
                parts[want] = [s] if s and (n is None or s.split(":", 1)[1].strip()) else []
        b.add(ClassDescription(label, parts), line)
    return b.finish({"made_by": f"published pasta file {Path(path_s).name}"}, check_parts, allow_missing)


def read_synonyms(path: str | os.PathLike, classes: Sequence[str] | None = None) -> DescriptionSet:
    """``label,syn1, syn2, ...`` per line."""
    path_s = str(path)
    b = _Builder(path_s, classes)
    for line, text in _read_lines(path):
        label, rest = b.split_label(text, ",", line)
        syns: list[str] = []
        for s in rest.split(","):
            s = s.strip()
            if s and s.lower() not in (x.lower() for x in syns):
                syns.append(s)
        if not syns:
            raise DescriptionError(path_s, f"class {label!r}: no synonyms after the label", line)
        b.add(ClassDescription(label, {}, syns), line)
    return b.finish(
        {"made_by": f"published synonym file {Path(path_s).name}"}, check_parts=False, allow_missing=True
    )


def read_sentences(path: str | os.PathLike, classes: Sequence[str] | None = None) -> DescriptionSet:
    """``label,paragraph`` or ``label;paragraph`` per line."""
    path_s = str(path)
    b = _Builder(path_s, classes)
    for line, text in _read_lines(path):
        label, rest = b.split_label(text, ",;", line)
        if not rest.strip():
            raise DescriptionError(path_s, f"class {label!r}: no sentence after the label", line)
        b.add(ClassDescription(label, {}, [], [rest.strip()]), line)
    return b.finish(
        {"made_by": f"published sentence file {Path(path_s).name}"}, check_parts=False, allow_missing=True
    )


def read_published(pasta: str | os.PathLike, synonyms: str | os.PathLike | None = None,
                   sentences: str | os.PathLike | None = None, classes: Sequence[str] | None = None,
                   allow_missing: bool = False) -> DescriptionSet:  # fmt: skip
    """A pasta file plus optional synonym and sentence files -> one checked :class:`DescriptionSet`.

    Missing parts are filled from the sentence file only with ``allow_missing`` (see the module
    docstring); the sentence and synonym files must cover the same classes as the pasta file.
    """
    base = read_pasta(pasta, classes, allow_missing, check_parts=False)
    for extra, reader in ((synonyms, read_synonyms), (sentences, read_sentences)):
        if extra is None:
            continue
        other = reader(extra, classes if classes is not None else base.labels)
        absent = [c for c in base.labels if c not in other]
        if absent:
            raise DescriptionError(extra, f"no line for {len(absent)} classes of {pasta}: {absent[:10]}")
        for label in base.labels:
            d, o = base[label], other[label]
            d.synonyms += o.synonyms
            d.sentences += o.sentences
    b = _Builder(str(pasta), classes)
    b.out = dict(base.classes)
    b.lines = dict(base.lines)
    header = {
        "made_by": "published GAP-format files",
        "sources": [str(p) for p in (pasta, synonyms, sentences) if p],
    }
    return b.finish(header, check_parts=True, allow_missing=allow_missing)


def find_published_files(folder: str | os.PathLike, classes: Sequence[str] | None = None) -> dict[str, Path]:
    """In a folder of published files, the pasta / synonym / sentence files of one class set.

    Several sets (``pasta_*.txt`` for NTU, ``ucla_pasta_*.txt`` for NW-UCLA) are told apart by their
    file name prefix; with a class list the set whose pasta file names those classes is chosen.
    """
    folder = Path(folder)
    sets: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.glob("*.txt")):
        for kind in PUBLISHED_FORMATS:
            m = re.match(rf"(.*?){kind}", p.name)
            if m:
                sets.setdefault(m.group(1), {}).setdefault(kind, p)
    sets = {k: v for k, v in sets.items() if "pasta" in v}
    if not sets:
        raise FileNotFoundError(f"{folder}: no *pasta*.txt description file")
    if len(sets) == 1 or classes is None:
        if len(sets) > 1:
            raise DescriptionError(
                folder, f"several description sets {sorted(sets)}; give the class list to choose"
            )
        return next(iter(sets.values()))
    want = {normalize_label(c) for c in classes}
    scores = {}
    for prefix, files in sets.items():
        labels = {normalize_label(t.split(";", 1)[0]) for _, t in _read_lines(files["pasta"])}
        scores[prefix] = len(want & labels)
    best = max(scores, key=lambda k: scores[k])
    return sets[best]


# ----------------------------------------------------------------------------------------------
# one entry point


def load_descriptions(source: str | os.PathLike | Traversable, classes: Sequence[str] | None = None,
                      allow_missing: bool = False, fmt: str = "auto") -> DescriptionSet:  # fmt: skip
    """Descriptions from our JSON file, a published pasta file, or a folder of published files.

    ``source`` may also be the name of a shipped file (``"nw-ucla"``, ``"ntu"``, ``"synthetic"``...,
    see :func:`llmskel.text.resources.shipped_descriptions_path`). With ``classes`` the result holds
    exactly those classes in that order (matched by name). A user's file must then describe exactly
    those classes: an unknown label is an error (most often a typo); a shipped file may describe more
    (``ntu120`` serves NTU-60) and the subset is taken. To take a subset of a user's file, load it
    without ``classes`` and call :meth:`DescriptionSet.for_classes`.
    """
    if isinstance(source, Traversable) and not isinstance(source, Path):
        return read_json(source, classes, allow_missing)
    p = Path(source)
    if not p.exists() and fmt == "auto" and p.suffix == "" and os.sep not in str(source):
        from .resources import shipped_descriptions_path

        # a shipped file may describe more classes than asked (ntu120 serves NTU-60): take the subset
        full = read_json(shipped_descriptions_path(str(source)), None, allow_missing)
        return full if classes is None else full.for_classes(classes)
    if p.is_dir():
        files = find_published_files(p, classes)
        return read_published(
            files["pasta"], files.get("synonym"), files.get("sentence"), classes, allow_missing
        )
    if not p.exists():
        raise FileNotFoundError(f"description file {p} does not exist")
    if fmt == "auto":
        fmt = (
            "json"
            if p.suffix.lower() == ".json"
            else next((k for k in PUBLISHED_FORMATS if k in p.name.lower()), "pasta")
        )
    if fmt == "json":
        return read_json(p, classes, allow_missing)
    if fmt == "pasta":
        return read_published(p, classes=classes, allow_missing=allow_missing)
    raise DescriptionError(p, f"{fmt!r} files hold no part descriptions; load them with read_synonyms / "
                              "read_sentences, or use read_published(pasta, synonyms, sentences)")  # fmt: skip


def read_label_file(path: str | os.PathLike) -> list[str]:
    """Class names: one per line (a text file) or a JSON list; duplicates are an error."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(_read_text(p))
        except json.JSONDecodeError as e:
            raise DescriptionError(p, f"not valid JSON: {e.msg}", e.lineno) from None
        except RecursionError:
            raise DescriptionError(p, "JSON nested too deeply") from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise DescriptionError(p, "a JSON label file must be a list of strings")
        items = [(i + 1, x) for i, x in enumerate(data)]
    else:
        items = _read_lines(p)
    seen: dict[str, int] = {}
    labels = []
    for line, text in items:
        label = text.strip()
        key = normalize_label(label)
        if key in seen:
            raise DescriptionError(p, f"label {label!r} appears twice (first at line {seen[key]})", line)
        seen[key] = line
        labels.append(label)
    if not labels:
        raise DescriptionError(p, "no labels")
    return labels


def synthetic_description_set() -> DescriptionSet:
    """The descriptions of the synthetic actions, generated from their motion programs
    (:func:`llmskel.data.synthetic.synthetic_descriptions`); the shipped ``synthetic.json`` is this
    set saved (a test checks that they agree)."""
    from .. import __version__
    from ..data.synthetic import ACTION_NAMES, synthetic_descriptions

    raw = synthetic_descriptions()
    classes = {}
    for name in ACTION_NAMES:
        e = raw[name]
        parts = {p: [str(e[p])] for p in PART_NAMES}
        classes[name] = ClassDescription(name, parts, [str(s) for s in e["synonyms"]], [str(e["sentence"])])
    header = {
        "made_by": "llmskel.data.synthetic.synthetic_descriptions()",
        "llmskel_version": __version__,
        "how": "generated from the synthetic motion programs (degrees of freedom and measured canonical "
        "motion), no language model; regenerate with llmskel.text.descriptions.synthetic_description_set()",
    }
    return DescriptionSet(classes, header, "synthetic_descriptions()")
