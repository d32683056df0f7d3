"""Memory stays flat over a cohort of a thousand tiny series (stand-in stages)."""

from __future__ import annotations

import json

import pytest

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef

N = 1000
PAYLOAD_KB = 512  # each loaded series carries 512 KiB: holding all of them would be 500 MiB


@pytest.mark.slow
def test_client_and_worker_memory_stay_flat_over_a_thousand_series(dask_processes, tmp_path):
    refs = [SeriesRef(f"1.2.826.0.1.3680043.77.{i}", params={"payload_kb": PAYLOAD_KB}) for i in range(N)]
    config = RunConfig(
        # an external scheduler: the client's own memory is measured, not the scheduler's logs
        cluster=ClusterSpec(scheduler=dask_processes.address),
        max_in_flight=6,
        progress=False,
        memory_every=125,
    )
    summary = run_series(refs, tmp_path, config, stages=fake.STAGES)
    assert summary.complete and summary.done == N
    samples = [json.loads(line) for line in summary.log_path.read_text().splitlines()]
    samples = [s for s in samples if s["event"] == "memory"]
    assert len(samples) == N // 125
    assert max(s["in_flight"] for s in samples) <= config.max_in_flight
    # from the second sample on (imports and pools warmed up), growth must stay far below what
    # keeping results would cost: N * PAYLOAD_KB = 500 MiB
    base = samples[1]
    client_growth = max(s["client_rss_mb"] for s in samples[1:]) - base["client_rss_mb"]
    assert client_growth < 15, [s["client_rss_mb"] for s in samples]
    for worker, rss0 in base["worker_rss_mb"].items():
        growth = max(s["worker_rss_mb"][worker] for s in samples[1:]) - rss0
        assert growth < 25, (worker, [s["worker_rss_mb"][worker] for s in samples])
