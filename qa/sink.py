"""QA's results on disk as they come: ``checks.parquet`` and the report's lists without 10^6 results in memory.

An NLST run makes ~10^6 check results (~1.2M with the input bindings); held as a list they
cost ~2 KB per series (issue 23). ``ResultSink`` keeps ``SINK_ROWS`` of them at a time:

* each full buffer is sorted (stably, by check, subject, message) and written as a run file;
  :meth:`ResultSink.write_checks` merges the runs (``heapq.merge``: ties keep the earlier run
  first), which is the order of one stable sort of every result: ``write_results``' rows;
* the results the report lists (blocking failures, warnings, statistics) go, in the order they
  came, to one file per list, which :meth:`ResultSink.listed` reads back a batch at a time;
* the report's counts (blocking, warnings, checks passed) and the command's are counted as results come.
"""

from __future__ import annotations

import heapq
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.qa.result import CHECKS_SCHEMA, WRITE_ROWS, CheckResult, Severity, _sorted, _table_of

#: results held before they are written (a run file, a part of a report list)
SINK_ROWS = 16_384
#: rows held while the runs are merged, all runs together (each run's share read at a time)
MERGE_ROWS = 65_536
#: a run file's row groups (what one read of a run decodes at least)
RUN_GROUP_ROWS = 1_024
#: the report's lists, by name
LISTS = ("blocking", "warnings", "info")


def _list_of(r: CheckResult) -> str | None:
    if r.blocking_failure:
        return "blocking"
    if r.severity is Severity.WARNING and not r.passed:
        return "warnings"
    return "info" if r.severity is Severity.INFO else None


def _result_of(row: dict) -> CheckResult:
    return CheckResult(
        row["check"], row["subject"], row["passed"], Severity(row["severity"]), row["message"], row["value"],
        row["sha256"],
    )  # fmt: skip


class ResultSink:
    """Check results written to a temporary folder as they are added (``sink += results``).

    ``listed=False`` (:meth:`add`) for results the report does not show (the input bindings).
    Use as a context manager: the folder goes when it closes.
    """

    def __init__(self, rows: int | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="deepcac2-qa-results-"))
        self._rows = rows or SINK_ROWS
        self._buffer: list[CheckResult] = []
        self._runs: list[Path] = []
        self._lists = {name: pq.ParquetWriter(self._dir / f"{name}.parquet", CHECKS_SCHEMA) for name in LISTS}
        self._pending: dict[str, list[CheckResult]] = {name: [] for name in LISTS}
        self.count = 0
        self._finished = False
        #: results per report list, checks passed (not INFO), blocking failures and warnings by check
        self.listed_count: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.warned: Counter[str] = Counter()

    def __enter__(self) -> ResultSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._finished:
            self.finish()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __iadd__(self, results: Iterable[CheckResult]) -> ResultSink:
        self.add(results)
        return self

    def append(self, result: CheckResult) -> None:
        self.add((result,))

    def add(self, results: Iterable[CheckResult], *, listed: bool = True) -> None:
        if self._finished:
            raise RuntimeError("results added after the report's lists were written")
        for r in results:
            self.count += 1
            self._buffer.append(r)
            if r.blocking_failure:
                self.failed[r.check] += 1
            elif not r.passed:
                self.warned[r.check] += 1
            if listed:
                if r.passed and r.severity is not Severity.INFO:
                    self.passed[r.check] += 1
                name = _list_of(r)
                if name is not None:
                    self.listed_count[name] += 1
                    self._pending[name].append(r)
                    if len(self._pending[name]) >= self._rows:
                        self._flush_list(name)
            if len(self._buffer) >= self._rows:
                self._flush_run()

    def _flush_list(self, name: str) -> None:
        if self._pending[name]:
            self._lists[name].write_table(_table_of(self._pending[name]))
            self._pending[name] = []

    def _flush_run(self) -> None:
        if self._buffer:
            path = self._dir / f"run-{len(self._runs):06d}.parquet"
            pq.write_table(_table_of(_sorted(self._buffer)), path, row_group_size=RUN_GROUP_ROWS)
            self._runs.append(path)
            self._buffer = []

    def finish(self) -> None:
        """No more results: the report's lists written out (then :meth:`listed` reads them)."""
        for name, writer in self._lists.items():
            self._flush_list(name)
            writer.close()
        self._finished = True

    def listed(self, name: str, batch: int = SINK_ROWS) -> Iterator[list[CheckResult]]:
        """The results of one report list (``LISTS``), in the order they were added, ``batch`` at a time."""
        if not self._finished:
            self.finish()
        for part in pq.ParquetFile(self._dir / f"{name}.parquet", pre_buffer=False).iter_batches(batch_size=batch):
            yield [_result_of(row) for row in part.to_pylist()]

    def _merged(self) -> Iterator[tuple]:
        share = max(64, MERGE_ROWS // max(1, len(self._runs)))

        def rows(path: Path) -> Iterator[tuple]:
            for part in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=share):
                yield from zip(*(part.column(i).to_pylist() for i in range(part.num_columns)), strict=True)

        yield from heapq.merge(*(rows(p) for p in self._runs), key=lambda t: (t[0], t[1], t[5]))

    def write_checks(self, path: Path) -> Path:
        """Every result added, as ``write_results`` writes them (same rows, order and row groups)."""
        self._flush_run()
        names = CHECKS_SCHEMA.names
        with pq.ParquetWriter(path, CHECKS_SCHEMA, compression="zstd") as writer:
            chunk: list[tuple] = []
            for row in self._merged():
                chunk.append(row)
                if len(chunk) == WRITE_ROWS:
                    writer.write_table(_columns(chunk, names), row_group_size=WRITE_ROWS)
                    chunk = []
            if chunk:
                writer.write_table(_columns(chunk, names), row_group_size=WRITE_ROWS)
        return path


def _columns(rows: list[tuple], names: list[str]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return pa.table({n: list(c) for n, c in zip(names, columns, strict=True)}, schema=CHECKS_SCHEMA)
