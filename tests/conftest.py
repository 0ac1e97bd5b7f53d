"""Shared fixtures: the real-data folder, quiet progress bars, single-threaded torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("ASTROMODAL_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def shared_data_dir() -> Path:
    """The real survey data folder: $ASTROMODAL_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("ASTROMODAL_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real survey data not found at {path} (set ASTROMODAL_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield
