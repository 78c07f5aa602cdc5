"""MATLAB ``.mat`` files through scipy (v4 to v7.2; v7.3 files are HDF5 and are refused by name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import SkeletonFormatError


def load_mat(path: str | os.PathLike, dataset: str) -> dict[str, Any]:
    """The variables of a ``.mat`` file; an unreadable file is a SkeletonFormatError naming it."""
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        raise SkeletonFormatError(path, f"MATLAB v7.3 (HDF5) file; {dataset} files are MATLAB v5") from None
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    except Exception as e:  # scipy raises ValueError / TypeError / others on corrupt content
        raise SkeletonFormatError(
            path, f"not a readable MATLAB .mat file ({type(e).__name__}: {e})"
        ) from None


def mat_variables(path: str | os.PathLike) -> set[str]:
    """Names of the variables of a ``.mat`` file without loading them (empty if unreadable)."""
    import scipy.io

    try:
        return {name for name, _, _ in scipy.io.whosmat(str(Path(path)))}
    except Exception:
        return set()
