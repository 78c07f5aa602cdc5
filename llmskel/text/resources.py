"""The prompt templates and description files shipped with llmskel (package ``llmskel.prompts``).

The top-level ``prompts/`` folder of the repository is installed as the package data
``llmskel.prompts``; nothing here reads relative to the working directory.

Template files (``prompts/templates/*.txt``)
    A header of ``# key: value`` lines (``name``, ``version``, ``purpose``), then sections introduced
    by a line ``[section]``: ``[system]`` (optional system message), ``[user]`` (the request) and
    ``[answer_prefix]`` (optional text the answer is made to start with). Placeholders are
    ``{label}``, ``{part}``, ``{part_noun}`` (the part's plural noun, "hands"), ``{other_label}``.
    A template's :attr:`Template.hash` is the SHA-256 of its sections (not of the header), so the
    description cache is keyed by what the model was asked, and a reworded template is a new key.

Label prompts (``prompts/templates/label_prompts.txt``)
    The same header, then one prompt per line with a slot for the class name: ``{label}``,
    ``{label_s}`` ("a person {label_s}." -> "a person sits down.") or ``{label_ing}``, filled for the
    label's form by :func:`llmskel.text.labels.render_prompt`; used for prompt ensembling.

Description files (``prompts/descriptions/<name>.json``)
    llmskel's description format (see :mod:`llmskel.text.descriptions`), one per dataset's classes:
    ``ntu120`` (NTU RGB+D 60/120), ``nw-ucla``, ``utkinect``, ``utd-mhad``, ``penn-action`` and
    ``synthetic``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from ..errors import LlmskelError

try:  # Python >= 3.11
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

PART_NOUNS = {"head": "head", "hand": "hands", "arm": "arms", "hip": "hips", "leg": "legs", "foot": "feet"}

# dataset name (DataConfig.dataset and a few aliases) -> shipped description file
DATASET_DESCRIPTIONS = {
    "ntu": "ntu120",
    "ntu60": "ntu120",
    "ntu120": "ntu120",
    "nw-ucla": "nw-ucla",
    "nwucla": "nw-ucla",
    "ucla": "nw-ucla",
    "utkinect": "utkinect",
    "synthetic": "synthetic",
    "utd-mhad": "utd-mhad",
    "utd_mhad": "utd-mhad",
    "utdmhad": "utd-mhad",
    "penn-action": "penn-action",
    "penn_action": "penn-action",
    "penn": "penn-action",
}


class TemplateError(LlmskelError, ValueError):
    """A prompt template is missing or malformed (names the file and the problem)."""


def prompts_root() -> Traversable:
    """The installed ``prompts/`` folder."""
    return files("llmskel.prompts")


def prompt_path(name: str) -> Traversable:
    """A file under ``prompts/`` by relative name (``"templates/part_description.txt"``)."""
    node = prompts_root()
    for piece in Path(name).parts:
        node = node / piece
    if not node.is_file():
        raise FileNotFoundError(f"llmskel.prompts has no file {name!r} (installed at {prompts_root()})")
    return node


@dataclass(frozen=True)
class Template:
    """A parsed prompt template; :meth:`render` fills the placeholders of every section."""

    name: str
    version: str
    sections: dict[str, str]
    source: str = ""
    header: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        body = "\n".join(f"[{k}]\n{v}" for k, v in sorted(self.sections.items()))
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]

    @property
    def tag(self) -> str:
        """``name@vVERSION#HASH``: what a description file's header records."""
        return f"{self.name}@v{self.version}#{self.hash}"

    def render(self, **values: str) -> dict[str, str]:
        if "part" in values and "part_noun" not in values:
            values["part_noun"] = PART_NOUNS.get(values["part"], values["part"])
        out = {}
        for key, text in self.sections.items():
            try:
                out[key] = text.format(**values)
            except KeyError as e:
                raise TemplateError(
                    f"{self.source}: section [{key}] uses placeholder {e} that was not given"
                ) from None
        return out


def _parse_header(lines: list[str], source: str) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        m = re.match(r"#\s*([A-Za-z_]+)\s*:\s*(.*)$", lines[i])
        if m:
            header[m.group(1).lower()] = m.group(2).strip()
        i += 1
    if "version" not in header:
        raise TemplateError(f"{source}: missing '# version: N' header line")
    return header, i


def parse_template(text: str, source: str = "<template>") -> Template:
    lines = text.splitlines()
    header, i = _parse_header(lines, source)
    sections: dict[str, list[str]] = {}
    current = None
    for lineno, line in enumerate(lines[i:], start=i + 1):
        m = re.fullmatch(r"\[([a-z_]+)\]\s*", line)
        if m:
            current = m.group(1)
            if current in sections:
                raise TemplateError(f"{source} (line {lineno}): section [{current}] appears twice")
            sections[current] = []
        elif current is None:
            if line.strip():
                raise TemplateError(f"{source} (line {lineno}): text before the first [section] line")
        else:
            sections[current].append(line)
    body = {k: "\n".join(v).strip() for k, v in sections.items()}
    if not body.get("user"):
        raise TemplateError(f"{source}: a template needs a non-empty [user] section")
    unknown = sorted(set(body) - {"system", "user", "answer_prefix"})
    if unknown:
        raise TemplateError(f"{source}: unknown sections {unknown}; valid: system, user, answer_prefix")
    name = header.get("name") or Path(source).stem
    return Template(name, header["version"], body, source, header)


def load_template(name_or_path: str) -> Template:
    """A shipped template by name (``"part_description"``) or a template file path."""
    p = Path(name_or_path)
    if p.suffix == ".txt" and p.is_file():
        return parse_template(p.read_text(encoding="utf-8"), str(p))
    node = prompt_path(f"templates/{name_or_path}.txt")
    return parse_template(node.read_text(encoding="utf-8"), f"llmskel.prompts/templates/{name_or_path}.txt")


@dataclass(frozen=True)
class LabelPrompts:
    """Prompts with a ``{label}`` placeholder, for ensembling class-name embeddings."""

    prompts: tuple[str, ...]
    version: str
    source: str

    def format(self, label: str) -> list[str]:
        from .labels import render_prompt

        return [render_prompt(p, label) for p in self.prompts]


def load_label_prompts(name_or_path: str = "label_prompts") -> LabelPrompts:
    p = Path(name_or_path)
    if p.suffix == ".txt" and p.is_file():
        text, source = p.read_text(encoding="utf-8"), str(p)
    else:
        text = prompt_path(f"templates/{name_or_path}.txt").read_text(encoding="utf-8")
        source = f"llmskel.prompts/templates/{name_or_path}.txt"
    lines = text.splitlines()
    header, i = _parse_header(lines, source)
    prompts = []
    for lineno, line in enumerate(lines[i:], start=i + 1):
        if not line.strip() or line.startswith("#"):
            continue
        from .labels import has_slot

        if not has_slot(line):
            raise TemplateError(
                f"{source} (line {lineno}): a label prompt needs a {{label}}, {{label_s}} or {{label_ing}} slot"
            )
        prompts.append(line.strip())
    if not prompts:
        raise TemplateError(f"{source}: no label prompts")
    return LabelPrompts(tuple(prompts), header["version"], source)


def shipped_descriptions_path(name: str) -> Traversable:
    """The shipped description file for a dataset name (``"nw-ucla"``, ``"ntu"``, ``"synthetic"``...)."""
    key = DATASET_DESCRIPTIONS.get(name.lower(), name.lower())
    try:
        return prompt_path(f"descriptions/{key}.json")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no shipped description file for {name!r}; shipped: {', '.join(list_shipped_descriptions())}"
        ) from None


def list_shipped_descriptions() -> list[str]:
    folder = prompts_root() / "descriptions"
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))
