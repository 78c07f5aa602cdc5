"""Finding a dataset's files under a folder, the same way for every reader."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ...errors import SkeletonFormatError


def dataset_files(
    root: str | os.PathLike,
    dataset: str,
    pattern: str,
    name_re: re.Pattern[str] | None = None,
    what: str = "",
) -> list[Path]:
    """Files under ``root`` (recursively) that match the glob ``pattern`` and, if given, whose name
    matches ``name_re``; sorted by file name, so the order does not depend on the folder tree.

    ``root`` may be one file (returned as is). A missing ``root`` is a FileNotFoundError and a folder
    with no matching file a SkeletonFormatError, both naming ``dataset`` and the path; ``what``
    describes the expected files in that message (default: ``pattern``).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{dataset} folder not found: {root}")
    if root.is_file():
        return [root]
    files = sorted(
        (p for p in root.rglob(pattern) if name_re is None or name_re.search(p.name)), key=lambda p: p.name
    )
    if not files:
        raise SkeletonFormatError(root, f"no {dataset} {what or pattern} file in this folder")
    return files


def parse_json(text: str | bytes, source: str | os.PathLike | None, where: str | None = None) -> object:
    """Decode JSON text; invalid or too deeply nested JSON is a SkeletonFormatError naming ``source``.

    Python's decoder raises ``RecursionError`` on nesting deeper than the interpreter's recursion
    limit (a few hundred to a thousand levels); no skeleton format nests more than five levels.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise SkeletonFormatError(source, "JSON nested too deeply to read", where) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise SkeletonFormatError(source, f"not valid JSON ({e})", where) from None


def read_json(path: str | os.PathLike) -> object:
    """Read and decode one JSON file (see :func:`parse_json`); an unreadable file names the path."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    return parse_json(data, path)
