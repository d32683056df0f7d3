"""Shared fixtures: the real CT in ../shared/data, tool lookups, small helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("DEEPCAC2_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _require_shared() -> bool:
    return os.environ.get("DEEPCAC2_REQUIRE_SHARED_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CT folder. Skips when absent, fails instead when CI requires it."""
    d = _shared_data_dir()
    if not (d / "README.md").exists():
        msg = f"real CT data not found at {d} (set DEEPCAC2_SHARED_DATA)"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def dciodvfy() -> str:
    """Path of dciodvfy; fails in CI (which installs it), skips elsewhere."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        if _require_shared():
            pytest.fail("dciodvfy not on PATH; apt-get install dicom3tools")
        pytest.skip("dciodvfy not on PATH; apt-get install dicom3tools")
    return exe
