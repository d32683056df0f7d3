"""``cac_lesions``: one row per calcified lesion per scoring convention."""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

TABLE = TableSchema(
    name="cac_lesions",
    version="2.0.1",
    doc="One row per calcified lesion as each scoring convention delimits it. Lesions of different "
    "conventions are not the same objects: compare them within one convention.",
    key=("SeriesInstanceUID", "convention", "lesion_id"),
    columns=(
        Column("SeriesInstanceUID", pa.string(), "SeriesInstanceUID of the source CT series.", required=True),
        Column("convention", pa.string(), "Scoring convention name.", required=True),
        Column("lesion_id", pa.int32(), "Lesion number within (series, convention), from 1.", required=True, minimum=1),
        Column("vessel", pa.string(), "LM, LAD, LCX or RCA; null without vessel labels."),
        Column(
            "segment_number",
            pa.int32(),
            "Segment holding the lesion: its vessel's in the vessel SEG, else 1 in the CAC SEG.",
            minimum=1,
        ),
        Column("seg_sop_instance_uid", pa.string(), "SOPInstanceUID of the SEG holding that segment."),
        Column("first_slice", pa.int32(), "First slice index (k, loader order).", required=True, minimum=0),
        Column("last_slice", pa.int32(), "Last slice index (k, loader order).", required=True, minimum=0),
        Column("area_mm2", pa.float64(), "Summed in-plane area.", unit="mm2", minimum=0),
        Column("peak_hu", pa.float64(), "Highest HU in the lesion.", unit="HU"),
        Column("mean_hu", pa.float64(), "Mean HU in the lesion.", unit="HU"),
        Column("volume_mm3", pa.float64(), "Lesion volume.", unit="mm3", minimum=0),
        Column("agatston", pa.float64(), "The lesion's Agatston contribution.", minimum=0),
        Column("centroid_x_mm", pa.float64(), "Centroid, patient LPS x.", unit="mm"),
        Column("centroid_y_mm", pa.float64(), "Centroid, patient LPS y.", unit="mm"),
        Column("centroid_z_mm", pa.float64(), "Centroid, patient LPS z.", unit="mm"),
    ),
)
