"""run_series on a local Dask cluster with the stand-in stages: bookkeeping, resume, fatal errors."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _refs(n: int) -> list[SeriesRef]:
    refs = []
    for i in range(n):
        params = {"fail": "E_NO_IMAGES"} if i % 5 == 1 else ({"transient": 1} if i % 5 == 2 else {})
        refs.append(SeriesRef(f"1.2.826.0.1.{i}", patient_id=f"P{i}", params=params))
    return refs


def _config(scheduler: str, **kw) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=scheduler), backoff_s=0.0, progress=False, **kw)


def _table(summary, name):
    return pq.read_table(summary.tables[name]).to_pylist()


def test_every_series_once_with_codes_and_scores(scheduler, tmp_path):
    refs = _refs(23)
    summary = run_series(refs, tmp_path, _config(scheduler, max_in_flight=3), stages=fake.STAGES)
    assert summary.complete and not summary.interrupted
    done = _table(summary, "fake_series")
    failed = _table(summary, "failures")
    uids = [r["SeriesInstanceUID"] for r in done] + [r["SeriesInstanceUID"] for r in failed]
    assert sorted(uids) == sorted(r.series_uid for r in refs)  # each exactly once
    bad = {r.series_uid for r in refs if r.params.get("fail")}
    assert {r["SeriesInstanceUID"] for r in failed} == bad
    assert {r["error_code"] for r in failed} == {"E_NO_IMAGES"}
    assert summary.by_code == {"E_NO_IMAGES": len(bad)}
    for row in done:  # the score each series got is its own (no mix-up between series)
        assert row["agatston"] == int(hashlib.sha256(row["SeriesInstanceUID"].encode()).hexdigest()[:6], 16) / 1000.0
    # the empty real tables exist too, with their schema
    assert pq.read_table(summary.tables["cac_series"]).num_rows == 0
    events = [json.loads(line)["event"] for line in summary.log_path.read_text().splitlines()]
    assert events[0] == "run_start" and events[-1] == "run_end"
    assert events.count("series_done") + events.count("series_failed") == len(refs)


def test_resume_skips_committed_series_and_keeps_tables_identical(scheduler, tmp_path):
    refs = _refs(12)
    first = run_series(refs, tmp_path / "a", _config(scheduler), stages=fake.STAGES)
    again = run_series(refs, tmp_path / "a", _config(scheduler, resume=True), stages=fake.STAGES)
    assert (again.skipped, again.done, again.failed) == (len(refs), 0, 0)
    assert again.by_code == first.by_code
    for name, path in first.tables.items():
        if name != "runs":  # the one table that lists each run
            assert path.read_bytes() == again.tables[name].read_bytes(), name
    runs = sorted(pq.read_table(again.tables["runs"]).to_pylist(), key=lambda r: r["started_at"])
    assert [(r["n_series"], r["n_succeeded"], r["n_failed"]) for r in runs] == [
        (len(refs), first.done, first.failed),
        (len(refs), 0, 0),
    ]
    with pytest.raises(DeepCACError) as err:
        run_series(refs, tmp_path / "a", _config(scheduler), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_OUTPUT_EXISTS


def test_a_model_that_cannot_load_stops_the_run_and_commits_nothing(scheduler, tmp_path):
    config = _config(scheduler, model=ModelSpec(name="missing"))
    with pytest.raises(DeepCACError) as err:
        run_series(_refs(4), tmp_path, config, stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_MODEL_UNKNOWN
    # A series that failed on its own before the model error arrived (bad input, in the load
    # step) is a real result and may be kept; but no series is done, and none is blamed for
    # the model: a rerun with a working model must process every one of them.
    fragments = [json.loads(p.read_text()) for p in (tmp_path / "state" / "series").glob("*/*.json")]
    assert all(f["status"] == "failed" and f["code"] == "E_NO_IMAGES" for f in fragments), fragments
    assert not (tmp_path / ".deepcac2-run.lock").exists()


def test_duplicate_series_in_cohort_is_refused(tmp_path):
    refs = [SeriesRef("1.2.3"), SeriesRef("1.2.3")]
    with pytest.raises(DeepCACError) as err:
        run_series(refs, tmp_path, RunConfig(progress=False), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_COHORT_INVALID


def test_unknown_convention_is_refused_before_any_work(tmp_path):
    with pytest.raises(DeepCACError) as err:
        run_series([SeriesRef("1.2.3")], tmp_path, RunConfig(conventions=("nope",)), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_CONVENTION_UNKNOWN


def test_asking_for_gpus_without_gpu_workers_is_refused(scheduler):
    from distributed import Client

    from deepcac2.pipeline.orchestrate.cluster import use_gpu_resource

    with Client(scheduler) as client:
        assert use_gpu_resource(client, ClusterSpec()) is False
        assert use_gpu_resource(client, ClusterSpec(gpu=False)) is False
        with pytest.raises(DeepCACError) as err:
            use_gpu_resource(client, ClusterSpec(gpu=True))
    assert "GPU" in err.value.message


def test_each_worker_gets_its_own_bounded_cache_folder(tmp_path):
    from deepcac2.pipeline.orchestrate.plugin import CacheSpec, PipelinePlugin

    plugin = PipelinePlugin(ModelSpec(), CacheSpec(str(tmp_path), max_bytes=10_000))
    plugin.worker_name = "tcp://10.0.0.1:4000"
    cache = plugin.cache()
    assert cache is plugin.cache()  # one per worker
    assert cache.root == tmp_path / "tcp___10.0.0.1_4000"
    assert cache.max_bytes == 10_000
    assert PipelinePlugin(ModelSpec()).cache() is None


def test_a_hung_series_times_out_its_worker_restarts_and_the_run_finishes(tmp_path):
    # its own cluster: the test restarts a worker
    refs = [SeriesRef(f"1.2.826.0.1.7{i}", params={"hang_s": 600} if i == 1 else {"work_s": 0.05}) for i in range(6)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        config = _config(cluster.scheduler_address, series_timeout_s=4.0)
        summary = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
    assert summary.complete and (summary.done, summary.failed) == (5, 1)
    (failure,) = _table(summary, "failures")
    assert (failure["SeriesInstanceUID"], failure["error_code"], failure["stage"]) == (
        refs[1].series_uid,
        ErrorCode.E_TIMEOUT.value,
        "fetch_load",
    )
    assert "restarted" in failure["message"], failure["message"]
    assert summary.elapsed_s < 120  # not the 600 s the series hangs for
    done = {r["SeriesInstanceUID"] for r in _table(summary, "fake_series")}
    assert done == {r.series_uid for r in refs} - {refs[1].series_uid}
