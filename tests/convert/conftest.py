"""Fixtures: one small synthetic CT series on disk and as a CTVolume."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import synthetic


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return synthetic.write_series(synthetic.ct_datasets(), tmp_path_factory.mktemp("ct"))


@pytest.fixture()
def ct():
    # a fresh volume per test: CTVolume is mutable
    return synthetic.ct_volume(synthetic.ct_datasets())
