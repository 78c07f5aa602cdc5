"""Errors that name the file, the place in it and the problem.

Every reader and loader in llmskel raises :class:`SkeletonFormatError` (a ``ValueError``) for bad
input, so a user sees ``path:line: problem`` instead of a numpy traceback, and directory-level jobs
can catch one type, record it in their report and go on.
"""

from __future__ import annotations

import os


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
    """A configuration key or value is wrong: names the key and lists what is valid."""


class CheckpointError(LlmskelError, ValueError):
    """A saved model or checkpoint is missing, corrupt or does not match what is asked of it."""
