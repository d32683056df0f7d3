"""Fixtures of the operator probes (tests/robust): one small in-process Dask cluster per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import LocalCluster


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A one-worker, thread-based local cluster (quick to start; the stand-in stages need no processes)."""
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address
