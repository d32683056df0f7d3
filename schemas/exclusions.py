"""``exclusions``: every series the cohort step left out, with the rule that removed it.

Written by ``deepcac2 cohort`` beside the cohort (``<cohort>.exclusions.parquet``), kept by
``run`` and shipped by ``release build`` as ``tables/exclusions.parquet``: together with
``failures`` it says what the release left out and why. A localizer is an exclusion here (rule
``not_localizer``), never a failure.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

#: where a rule comes from
KINDS = ("eligibility", "filter", "policy", "sample")

TABLE = TableSchema(
    name="exclusions",
    version="1.0.0",
    doc="One row per series the cohort step excluded, with the first rule that removed it (rules run in order).",
    key=("SeriesInstanceUID",),
    columns=(
        Column("SeriesInstanceUID", pa.string(), "SeriesInstanceUID of the excluded series.", required=True),
        Column("StudyInstanceUID", pa.string(), "StudyInstanceUID of the excluded series."),
        Column("PatientID", pa.string(), "PatientID (NLST participant id); may be empty (rule patient_id)."),
        Column("collection_id", pa.string(), "IDC collection_id, e.g. 'nlst'; null for a local folder."),
        Column("study_year", pa.int16(), "NLST screening round: 0 = T0, 1 = T1, 2 = T2.", minimum=0, maximum=2),
        Column(
            "rule",
            pa.string(),
            "The rule that removed the series, e.g. not_localizer, min_instances_50, patient_id; its description "
            "says what it keeps.",
            required=True,
        ),
        Column("rule_kind", pa.string(), "eligibility, filter, policy or sample.", required=True, allowed=KINDS),
        Column("description", pa.string(), "What the rule keeps, in words.", required=True),
        Column("image_type", pa.string(), "NLST image type code (OPL = localizer, ...), when known."),
        Column("instanceCount", pa.int32(), "Number of instances (files) of the series."),
        Column("SeriesDescription", pa.string(), "DICOM SeriesDescription as stored."),
    ),
)
