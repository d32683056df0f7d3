"""``failures``: one row per series and stage that failed.

No wall-clock columns: a rerun that fails the same way writes the same bytes.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

TABLE = TableSchema(
    name="failures",
    version="2.0.0",
    doc="One row per (series, stage) that failed after its retries, with the stable error code.",
    key=("SeriesInstanceUID", "stage"),
    columns=(
        Column("SeriesInstanceUID", pa.string(), "SeriesInstanceUID of the source CT series.", required=True),
        Column("stage", pa.string(), "Pipeline stage: fetch, load, anatomy, infer, score, convert, ...", required=True),
        Column("error_code", pa.string(), "Stable code from deepcac2.errors.ErrorCode.", required=True),
        Column("message", pa.string(), "Human-readable message.", required=True),
        Column("attempts", pa.int32(), "How many times the stage was tried.", required=True, minimum=0),
        Column("transient", pa.bool_(), "Whether the code is one worth retrying.", required=True),
        Column("detail_json", pa.string(), "Structured detail of the error as a JSON object."),
        Column("toolkit_version", pa.string(), "deepcac2 version.", required=True),
    ),
)
