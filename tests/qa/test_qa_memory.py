"""QA's outputs at NLST size: the report and checks.parquet are written a piece at a time, never whole in memory.

A 129k-series run lists ~10^5 findings in the report (~200 MB of HTML) and writes ~10^6 results;
as one string and one table they set QA's peak (issue 23). Counted, not timed: tracemalloc's peak.
"""

from __future__ import annotations

import tracemalloc

import pyarrow.parquet as pq

from deepcac2.qa import result as result_module
from deepcac2.qa.report import write_report
from deepcac2.qa.result import CheckResult, Severity, results_table, write_results

N = 30_000


def _warnings() -> list[CheckResult]:
    return [
        CheckResult(
            "review.picture",
            f"1.2.826.0.1.3680043.10.9999.{i}",
            False,
            Severity.WARNING,
            f"no picture {i}: " + "x" * 300,
        )  # the HTML per finding outweighs the pointers held per finding
        for i in range(N)
    ]


def _peak(f) -> int:
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_report_is_written_without_holding_its_html(tmp_path):
    results = _warnings()
    path = tmp_path / "report.html"
    peak = _peak(lambda: write_report(results, [], path, convention="deepcac", failures=[]))
    size = path.stat().st_size
    assert size > 10_000_000  # the findings are all listed ...
    assert peak < size / 2, f"write_report peaked at {peak} bytes for a report of {size}"  # ... never all at once
    text = path.read_text()
    assert (
        text.count("<tr class='warn'>") == N
        and text.startswith("<!doctype html>")
        and "\n<h2>Warnings</h2>\n<table>" in text
    )


def test_checks_are_written_a_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(result_module, "WRITE_ROWS", 7_000)
    results = _warnings()[::-1] + [CheckResult("a.check", "x", True, Severity.INFO, "", 1.0, "ab" * 32)]
    path = write_results(results, tmp_path / "checks.parquet")
    assert pq.read_table(path).equals(results_table(results))  # the same rows, in the same order
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 5 and max(metadata.row_group(i).num_rows for i in range(5)) == 7_000
