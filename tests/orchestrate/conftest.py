"""Fixtures of the orchestration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import DaskProcesses, start_dask, stop_dask


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    """A scheduler and two worker processes, shared by the tests of a module (starting them takes seconds)."""
    procs = start_dask(tmp_path_factory.mktemp("dask"))
    try:
        yield procs
    finally:
        stop_dask(procs)


@pytest.fixture(autouse=True)
def _one_creation_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs compared byte for byte across folders share one creation stamp, as SOURCE_DATE_EPOCH gives
    a reproducible build one (a run in a fresh folder otherwise stamps its objects with the time it started)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
