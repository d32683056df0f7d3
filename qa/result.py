"""One QA finding, and the table every check run writes (``checks.parquet``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

from deepcac2.location import QA_CHECKS


class Severity(StrEnum):
    #: a release must not be built while a blocking check fails
    BLOCKING = "blocking"
    #: worth a look; shown in the report, does not stop a release
    WARNING = "warning"
    #: a measurement for the report (distributions, rates)
    INFO = "info"


@dataclass(frozen=True)
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
    """Deterministically ordered table of results (by check, then subject)."""
    rows = sorted(results, key=lambda r: (r.check, r.subject, r.message))
    data = {name: [] for name in CHECKS_SCHEMA.names}
    for r in rows:
        d = asdict(r)
        d["severity"] = r.severity.value
        d["blocking"] = r.severity is Severity.BLOCKING
        for name in CHECKS_SCHEMA.names:
            data[name].append(d[name])
    return pa.table(data, schema=CHECKS_SCHEMA)


#: what ``deepcac2 qa`` writes into its folder (``RUN_DIR/qa``), and nothing else
QA_FILES = (QA_CHECKS, "report.html", "review_sheet.csv")


def clear_qa(qa_dir: Path) -> None:
    """Remove the QA a run's folder holds (``run --overwrite``: it checked results that are gone).

    Only the files QA writes are removed (:data:`QA_FILES` and ``images/*.png``); anything else stays.
    """
    for name in QA_FILES:
        (qa_dir / name).unlink(missing_ok=True)
    images = qa_dir / "images"
    if images.is_dir() and not images.is_symlink():
        for png in images.glob("*.png"):
            png.unlink()
