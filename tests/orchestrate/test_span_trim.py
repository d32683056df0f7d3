"""The scheduler's span metadata does not grow with every series submitted (issue 23).

Distributed appends ``{"type": "Future"}`` to the default span for every ``client.submit``;
unchecked that was ~0.6 KB a series on the scheduler, in the client's process with a local
cluster. The loop trims it every ``TRIM_EVERY`` series.
"""

from __future__ import annotations

from typing import Any

from distributed import Client, LocalCluster

from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate import hooks
from deepcac2.pipeline.orchestrate import loop as loop_module
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.span_trim import trim_span_metadata, trim_spans
from deepcac2.pipeline.stage_values import SeriesRef


def span_collections(dask_scheduler: Any = None) -> int:
    """How many collection entries the scheduler's spans hold."""
    spans = dask_scheduler.extensions["spans"].spans.values()
    return sum(len((s._metadata or {}).get("collections", [])) for s in spans)


def test_trim_keeps_one_entry_of_each_kind():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.gather([client.submit(abs, -i, pure=False) for i in range(30)])
            before = client.run_on_scheduler(span_collections)
            assert before >= 30  # what distributed keeps without the trim
            assert trim_spans(client) == before - 1
            assert client.run_on_scheduler(span_collections) == 1
            assert trim_spans(client) == 0


def test_trim_leaves_an_unknown_layout_alone():
    class Span:
        _metadata = {"collections": "not a list"}

    class Spans:
        spans = {"a": Span()}

    class Scheduler:
        extensions = {"spans": Spans()}

    assert trim_span_metadata(Scheduler()) == 0
    assert trim_span_metadata(object()) == 0
    assert Span._metadata == {"collections": "not a list"}


def test_the_loop_trims_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(loop_module, "TRIM_EVERY", 4)
    box: dict[str, Any] = {}
    seen: list[int] = []

    def ready(client: Any, **_: Any) -> None:
        box["client"] = client

    def look(count: int, **_: Any) -> None:
        if count == 11:  # trimmed at 4 and 8: entries of at most 3 + in-flight series since, 3 each
            seen.append(box["client"].run_on_scheduler(span_collections))

    refs = [SeriesRef(f"1.2.826.0.1.3680043.78.{i}") for i in range(12)]
    config = RunConfig(cluster=ClusterSpec(workers=1, threads=1), max_in_flight=2, progress=False, backoff_s=0.0)
    with hooks.installed("client_ready", ready), hooks.installed("committed", look):
        summary = run_series(refs, tmp_path, config, stages=fake.STAGES)
    assert summary.complete and summary.done == 12
    assert seen and seen[0] <= 1 + 3 * (3 + config.max_in_flight), seen  # untrimmed: 3 x 13 = 39
