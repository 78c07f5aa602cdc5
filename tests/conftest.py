"""Shared test fixtures.

* The Hub is never reached from tests: ``HF_HUB_OFFLINE=1`` is set before anything imports
  huggingface_hub.
* ``shared_data`` is ``../shared/data`` (real recordings kept outside the project); tests that
  need it skip with a reason when it is absent, as it is in a user's fresh clone.
* Accelerate's process-wide state is reset after every test so mixed precision and process
  counts do not leak from one test into the next.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LLMSKEL_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (real data lives in ../shared/data beside the project)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED_DATA, "shared real data")


@pytest.fixture(scope="session")
def ntu_sample_file(shared_data) -> Path:
    return _need(shared_data / "ntu_sample" / "S001C001P001R001A001.skeleton", "NTU sample file")


@pytest.fixture(scope="session")
def ucla_dir(shared_data) -> Path:
    return _need(shared_data / "nw_ucla" / "all_sqe", "NW-UCLA")


@pytest.fixture(scope="session")
def utkinect_dir(shared_data) -> Path:
    return _need(shared_data / "utkinect", "UTKinect-Action3D")


@pytest.fixture(scope="session")
def utd_mhad_dir(shared_data) -> Path:
    return _need(shared_data / "utd_mhad", "UTD-MHAD")


@pytest.fixture(scope="session")
def penn_action_dir(shared_data) -> Path:
    return _need(shared_data / "penn_action", "Penn Action")


@pytest.fixture(scope="session")
def gap_descriptions_dir(shared_data) -> Path:
    return _need(shared_data / "descriptions_gap", "GAP description files")


def reset_accelerate_state() -> None:
    try:
        from accelerate.state import AcceleratorState, GradientState, PartialState
    except ImportError:  # pragma: no cover
        return
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()


@pytest.fixture(autouse=True)
def _reset_accelerate_state():
    # before: processes forked by accelerate.debug_launcher must not inherit a 1-process state
    reset_accelerate_state()
    yield
    reset_accelerate_state()


@pytest.fixture(scope="session")
def text_cache_dir(tmp_path_factory) -> Path:
    """One embedding cache (LLMSKEL_CACHE) for the session, shared by the tiny text encoders."""
    return tmp_path_factory.getbasetemp() / "llmskel_cache"


@pytest.fixture
def text_cache(text_cache_dir, monkeypatch) -> Path:
    """Point LLMSKEL_CACHE at the session's cache for one test (``pytest.mark.usefixtures``)."""
    monkeypatch.setenv("LLMSKEL_CACHE", str(text_cache_dir))
    return text_cache_dir


@pytest.fixture(scope="session")
def train_tiny(text_cache_dir):
    """``train_tiny(cfg)``: training_function with the session's text cache and one torch thread
    (tiny matrices: one thread is faster, above all on a busy machine); both restored after."""
    import torch

    from llmskel.engine.trainer import training_function

    def run(cfg, **kwargs):
        old_cache, threads = os.environ.get("LLMSKEL_CACHE"), torch.get_num_threads()
        os.environ["LLMSKEL_CACHE"] = str(text_cache_dir)
        torch.set_num_threads(1)
        try:
            return training_function(cfg, **kwargs)
        finally:
            torch.set_num_threads(threads)
            if old_cache is None:
                os.environ.pop("LLMSKEL_CACHE", None)
            else:
                os.environ["LLMSKEL_CACHE"] = old_cache

    return run
