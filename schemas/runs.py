"""``runs``: one row per pipeline run. The only table allowed to differ between reruns."""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

UTC_US = pa.timestamp("us", tz="UTC")

TABLE = TableSchema(
    name="runs",
    version="1.2.0",
    doc="One row per pipeline run: configuration, software versions, counts and timings.",
    key=("run_id",),
    columns=(
        Column("run_id", pa.string(), "Unique id of the run.", required=True),
        Column("started_at", UTC_US, "Start time (UTC)."),
        Column("finished_at", UTC_US, "End time (UTC)."),
        Column("wall_s", pa.float64(), "Wall-clock duration.", unit="s", minimum=0),
        Column("toolkit_version", pa.string(), "deepcac2 version.", required=True),
        Column("python_version", pa.string(), "Python version."),
        Column("versions_json", pa.string(), "JSON object: package -> version (numpy, pydicom, highdicom, ...)."),
        Column(
            "idc_index_version",
            pa.string(),
            "idc-index-data version of the IDC index the cohort was selected from (else the one installed).",
        ),
        Column("config_json", pa.string(), "The run configuration as a JSON object.", required=True),
        Column("host", pa.string(), "Host or cluster the run used."),
        Column("n_series", pa.int64(), "Series in the cohort.", minimum=0),
        Column("n_succeeded", pa.int64(), "Series converted.", minimum=0),
        Column("n_failed", pa.int64(), "Series in the failures table.", minimum=0),
        Column("timings_json", pa.string(), "JSON object: stage -> seconds (sum over series)."),
        Column(
            "outcome",
            pa.string(),
            "How the run ended: `ended` (every series has a result), `interrupted` (Ctrl-C, SIGTERM), "
            "or the error code that stopped it (`E_SCHEDULER_LOST`, `E_MODEL_LOAD`, ...); `--resume` continues.",
        ),
    ),
)
