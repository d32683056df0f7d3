"""QA's memory stays flat with the series (issue 23): ``cac_series`` never read whole, results never all held.

Counted, not timed: a read of the whole table is refused, and the live ``CheckResult`` objects are
counted while ``checks.parquet`` is written. The outputs equal those of the in-memory functions.
"""

from __future__ import annotations

import gc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline.convert.parquet_tables import to_arrow
from deepcac2.pipeline.dev import standin_stages
from deepcac2.pipeline.process import REVIEW_PICTURE
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.qa import plausibility, series_scan, sink
from deepcac2.qa.result import CheckResult, Severity, results_table
from deepcac2.qa.run import run_qa
from deepcac2.qa.series_scan import SeriesTable
from deepcac2.schemas.registry import TABLES

N = 150


def _standin_run(root, n=N):
    """A run folder of ``n`` stand-in series (header-only SEG and SR), three series to a study."""
    rows = []
    for i in range(n):
        uid = f"1.2.826.0.1.3680043.10.9999.{i}"
        ref = SeriesRef(uid, f"1.2.3.{i // 3}", f"P{i // 3}", "nlst", params={"study_year": i % 3})
        got = standin_stages.finish(ref, {"uid": ref.series_uid}, None, root / "dicom", ("deepcac",))
        for row in got["cac_series"]:
            row["StudyInstanceUID"] = f"1.2.3.{i // 3}"
        rows += got["cac_series"]
    (root / "tables").mkdir()
    pq.write_table(to_arrow(TABLES["cac_series"], rows, derive=False), root / "tables" / "cac_series.parquet")
    return root


def _live_results() -> int:
    return sum(isinstance(o, CheckResult) for o in gc.get_objects())


def test_qa_reads_cac_series_a_batch_at_a_time_and_spills_its_results(tmp_path, monkeypatch):
    run = _standin_run(tmp_path / "run")
    with_picture = sorted(p.name for p in (run / "dicom").iterdir())[::50]
    for uid in with_picture:
        (run / "dicom" / uid / REVIEW_PICTURE).write_bytes(b"png")
    monkeypatch.setattr(series_scan, "BATCH_ROWS", 16)
    monkeypatch.setattr(sink, "SINK_ROWS", 40)
    read_table = pq.read_table

    def whole(source, *args, **kwargs):
        assert "cac_series" not in str(source), "cac_series read whole"
        return read_table(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", whole)
    live: list[int] = []
    write_checks = sink.ResultSink.write_checks

    def counted(self, path):
        live.append(_live_results())
        return write_checks(self, path)

    monkeypatch.setattr(sink.ResultSink, "write_checks", counted)
    outcome = run_qa(run, sample=2, out_dir=tmp_path / "qa")
    monkeypatch.setattr(pq, "read_table", read_table)
    assert outcome.n_results > 5 * N  # a few per series, and the bindings
    assert live and live[0] < 4 * 40 + 50, f"{live[0]} results held of {outcome.n_results}"
    checks = pq.read_table(outcome.checks_path)
    assert checks.num_rows == outcome.n_results
    assert outcome.failed["table.cac_series.present"] == 0
    assert outcome.warned["review.picture"] == N - len(with_picture)  # the pictures found are linked
    assert sorted(p.stem for p in (tmp_path / "qa" / "images").iterdir()) == with_picture


def test_streamed_row_checks_equal_the_whole_table_checks(tmp_path, monkeypatch):
    run = _standin_run(tmp_path / "run", 40)
    monkeypatch.setattr(series_scan, "BATCH_ROWS", 7)  # batches end inside studies: whole studies are handed on
    series = SeriesTable(run / "tables" / "cac_series.parquet")
    rows = pq.read_table(series.path).to_pylist()
    streamed = [r for batch in series.by_study(["kernel", "agatston_deepcac"]) for r in
                plausibility.sharp_kernel_excess(batch, "deepcac")]  # fmt: skip
    assert streamed == plausibility.sharp_kernel_excess(rows, "deepcac")
    studies = [batch.column("StudyInstanceUID") for batch in series.by_study(["kernel"])]
    assert all(b[-1] != a[0] for a, b in zip(studies[1:], studies[:-1], strict=True))  # no study split
    assert sum(map(len, studies)) == 40
    uids = [u for batch in series.by_series([]) for u in batch.column("SeriesInstanceUID")]
    assert uids == sorted(r["SeriesInstanceUID"] for r in rows)


@pytest.mark.parametrize("rows", [7, 1000])
def test_the_sink_writes_what_results_table_sorts(tmp_path, rows):
    results = [
        CheckResult(f"c{i % 5}", f"s{(i * 7) % 13}", i % 3 != 0, list(Severity)[i % 3], f"m{i % 2}", float(i))
        for i in range(200)
    ]
    with sink.ResultSink(rows=rows) as spilled:
        spilled.add(results[:50], listed=False)
        spilled += results[50:]
        path = spilled.write_checks(tmp_path / "checks.parquet")
        listed = {name: [r for part in spilled.listed(name) for r in part] for name in sink.LISTS}
    assert pq.read_table(path).equals(results_table(results))  # one stable sort of every result
    shown = results[50:]
    assert listed["blocking"] == [r for r in shown if r.blocking_failure]
    assert listed["warnings"] == [r for r in shown if r.severity is Severity.WARNING and not r.passed]
    assert listed["info"] == [r for r in shown if r.severity is Severity.INFO]
    assert pa.types.is_float64(pq.read_schema(path).field("value").type)
