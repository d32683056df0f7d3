"""What a run records besides the series results: ``failures`` rows and the ``runs`` table."""

from __future__ import annotations

import json
import platform
import socket
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepcac2._version import __version__
from deepcac2.location import COHORT_FILE
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.orchestrate.tasks import Failure

if TYPE_CHECKING:
    from deepcac2.pipeline.orchestrate.run import RunConfig, RunSummary


def failure_row(failure: Failure) -> dict[str, Any]:
    """One row of the ``failures`` table (schemas/failures.py); nothing in it depends on the clock."""
    return {
        "SeriesInstanceUID": failure.series_uid,
        "stage": failure.stage,
        "error_code": failure.code,
        "message": failure.message,
        "attempts": failure.attempts,
        "transient": failure.transient,
        "detail_json": json.dumps(failure.detail, sort_keys=True) if failure.detail else None,
        "toolkit_version": __version__,
    }


#: packages whose versions each run records (read from metadata: nothing is imported)
_VERSIONED = (
    "deepcac2",
    "dask",
    "distributed",
    "numpy",
    "scipy",
    "pydicom",
    "highdicom",
    "pyarrow",
    "SimpleITK",
    "torch",
    "idc-index-data",
)


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def idc_index_version(cohort: Path) -> str | None:
    """The IDC index the cohort was selected from (its ``idc_index_data`` metadata), else the one installed."""
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(cohort).metadata or {}
        if meta.get(b"idc_index_data"):
            return meta[b"idc_index_data"].decode()
    except (OSError, ValueError):
        pass  # no cohort file kept: the installed index is the one the run could see
    return _versions().get("idc-index-data")


def run_record(summary: RunSummary, config: RunConfig, identity: dict[str, Any], started: float) -> dict[str, Any]:
    """One ``runs`` row, with times as unix seconds (converted when the table is written)."""
    return {
        "run_id": summary.run_id,
        "started_at": started,
        "finished_at": started + summary.elapsed_s,
        "wall_s": summary.elapsed_s,
        "toolkit_version": __version__,
        "python_version": platform.python_version(),
        "versions_json": json.dumps(_versions(), sort_keys=True),
        "idc_index_version": idc_index_version(Path(summary.out_dir) / COHORT_FILE),
        "config_json": json.dumps({**asdict(config), "identity": identity}, sort_keys=True, default=str),
        "host": f"{socket.gethostname()} {config.cluster.scheduler or 'local cluster'}",
        "n_series": summary.total,
        "n_succeeded": summary.done,
        "n_failed": summary.failed,
        "timings_json": json.dumps(summary.stage_seconds, sort_keys=True),
        "outcome": summary.stopped_by or ("interrupted" if summary.interrupted else "ended"),
    }


def write_runs_table(store: OutputStore) -> Path:
    """``tables/runs.parquet``: every run that wrote into this directory (it differs between reruns)."""
    from deepcac2.pipeline.convert.parquet_tables import write_table
    from deepcac2.schemas.registry import TABLES

    rows = []
    for record in store.run_records():
        row = {"idc_index_version": None, "outcome": None, **record}  # records of older runs lack them
        for key in ("started_at", "finished_at"):
            row[key] = datetime.fromtimestamp(record[key], tz=UTC)
        rows.append(row)
    return write_table(TABLES["runs"], rows, store.tables_dir / "runs.parquet")
