"""One QA finding, and the table every check run writes (``checks.parquet``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


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


def results_table(results: list[CheckResult]) -> pa.Table:
    """Deterministically ordered table of results (by check, then subject).

    Built a column at a time from the results: a dict per result (``asdict``) cost ~1 KB each.
    """
    rows = sorted(results, key=lambda r: (r.check, r.subject, r.message))
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
