"""Finding a dataset's files under a folder, the same way for every reader."""

from __future__ import annotations

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
