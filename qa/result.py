"""One QA finding, and the table every check run writes (``checks.parquet``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class Severity(StrEnum):
    #: a release must not be built while a blocking check fails
    BLOCKING = "blocking"
    #: worth a look; shown in the report, does not stop a release
    WARNING = "warning"
    #: a measurement for the report (distributions, rates)
    INFO = "info"


@dataclass(frozen=True, slots=True)  # slots: QA holds one per series and check (~1M at NLST size)
class CheckResult:
    check: str
    #: what was checked: a series UID, a file path relative to the run, a table name
    subject: str
    passed: bool
    severity: Severity
    message: str = ""
    value: float | None = None
    #: SHA-256 of the file checked, for the rows that bind QA to its inputs (``qa.binding``)
    sha256: str | None = None

    @property
    def blocking_failure(self) -> bool:
        return self.severity is Severity.BLOCKING and not self.passed


CHECKS_SCHEMA = pa.schema(
    [
        pa.field("check", pa.string(), nullable=False),
        pa.field("subject", pa.string(), nullable=False),
        pa.field("passed", pa.bool_(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("blocking", pa.bool_(), nullable=False),
        pa.field("message", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("sha256", pa.string()),
    ]
)


def _sorted(results: list[CheckResult]) -> list[CheckResult]:
    return sorted(results, key=lambda r: (r.check, r.subject, r.message))


def _table_of(rows: list[CheckResult]) -> pa.Table:
    """The rows as a table, built a column at a time (a dict per result, ``asdict``, cost ~1 KB each)."""
    data = {
        "check": [r.check for r in rows],
        "subject": [r.subject for r in rows],
        "passed": [r.passed for r in rows],
        "severity": [r.severity.value for r in rows],
        "blocking": [r.severity is Severity.BLOCKING for r in rows],
        "message": [r.message for r in rows],
        "value": [r.value for r in rows],
        "sha256": [r.sha256 for r in rows],
    }
    return pa.table(data, schema=CHECKS_SCHEMA)


def results_table(results: list[CheckResult]) -> pa.Table:
    """Deterministically ordered table of results (by check, then subject)."""
    return _table_of(_sorted(results))


#: results converted and written at once by :func:`write_results`
WRITE_ROWS = 65_536


def write_results(results: list[CheckResult], path: Path) -> Path:
    """``results_table(results)`` written to ``path`` (zstd), ``WRITE_ROWS`` rows at a time.

    An NLST run has ~10^6 results; as one table they held ~300 MiB beside the results.
    """
    rows = _sorted(results)
    with pq.ParquetWriter(path, CHECKS_SCHEMA, compression="zstd") as writer:
        for start in range(0, len(rows), WRITE_ROWS):
            writer.write_table(_table_of(rows[start : start + WRITE_ROWS]), row_group_size=WRITE_ROWS)
    return path
