"""Errors that name the file, the place in it and the problem.

Every reader and loader in llmskel raises :class:`SkeletonFormatError` (a ``ValueError``) for bad
input, so a user sees ``path:line: problem`` instead of a numpy traceback, and directory-level jobs
can catch one type, record it in their report and go on.
"""

from __future__ import annotations

import os
import re


class LlmskelError(Exception):
    """Base class of llmskel's own errors."""


class SkeletonFormatError(LlmskelError, ValueError):
    """A data file is malformed: names the file, where in it (line, frame, record) and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str, where: str | None = None):
        self.path = None if path is None else str(path)
        self.where = where
        self.problem = problem
        loc = self.path or "<input>"
        if where:
            loc = f"{loc} ({where})"
        super().__init__(f"{loc}: {problem}")


class ConfigError(LlmskelError, ValueError):
    """A configuration key or value is wrong: names the key and lists what is valid.

    ``key`` (``"train.batch_size"``; read from a message that says ``config key '...'`` when not
    given) lets the config loader add the file and line where that key was set."""

    def __init__(self, message: str = "", key: str | None = None):
        super().__init__(message)
        if key is None:
            m = re.search(r"config keys? '([^']+)'", str(message))
            key = m.group(1) if m else None
        self.key = key


class CheckpointError(LlmskelError, ValueError):
    """A saved model or checkpoint is missing, corrupt or does not match what is asked of it."""
