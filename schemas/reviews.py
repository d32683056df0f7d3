"""``reviews``: human verdicts on a seeded sample of outputs (BAMF's IDC practice)."""

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

TABLE = TableSchema(
    name="reviews",
    version="2.0.0",
    doc="One row per (series, reviewer): a Likert rating of the segmentation, whether the reviewer corrected it, "
    "and a free comment. Imported from filled-in review sheets with `deepcac2 qa --import-reviews`.",
    columns=(
        Column(
            "SeriesInstanceUID",
            pa.string(),
            "SeriesInstanceUID of the source CT series that was reviewed",
            required=True,
        ),
        Column("reviewer", pa.string(), "reviewer identifier (pseudonymous)", required=True),
        Column(
            "reviewer_role", pa.string(), "e.g. radiologist, non-expert", allowed=("radiologist", "non-expert", "other")
        ),
        Column("likert", pa.int8(), "1 = unusable ... 5 = no change needed", required=True, minimum=1, maximum=5),
        Column("corrected", pa.bool_(), "the reviewer produced a corrected segmentation", required=True),
        Column("comment", pa.string(), "free text"),
        Column("sample_seed", pa.int64(), "seed of the review sample the series was drawn in"),
    ),
    key=("SeriesInstanceUID", "reviewer"),
)
