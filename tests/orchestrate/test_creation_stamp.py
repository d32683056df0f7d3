"""The DICOM objects' creation stamp: given once per output folder, recorded, reused on --resume."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from deepcac2.pipeline.orchestrate.run import CREATED_FILE, _stamp_environment, creation_stamp


def test_stamp_is_recorded_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    before = int(time.time())
    first = creation_stamp(tmp_path)
    assert before <= int(first) <= int(time.time())  # the creation's time, not the source study's
    assert (tmp_path / CREATED_FILE).read_text().strip() == first
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
    assert creation_stamp(tmp_path) == first  # a resume keeps the recorded stamp: same bytes
    assert creation_stamp(tmp_path / "other") == "1000"  # a fresh folder takes the given one


def test_stamp_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    with _stamp_environment("1767225600"):
        assert os.environ["SOURCE_DATE_EPOCH"] == "1767225600"
    assert "SOURCE_DATE_EPOCH" not in os.environ
