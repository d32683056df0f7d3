"""``cac_series``: one row per processed source series.

Scores are *wide*: one column per (metric, convention) for every named convention in
``deepcac2.pipeline.conventions.CONVENTIONS``, e.g. ``agatston_deepcac``.
Why wide and not nested or long: a release user filters and joins series with plain
SQL (``WHERE agatston_deepcac > 400``) without unnesting, every column keeps one
type and unit, and Parquet reads only the columns asked for. The long form, with
per-vessel values, is the ``measurements`` table. A new convention adds nullable
columns, a compatible (minor) schema change.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.risk_categories import SCHEMES, labels
from deepcac2.schemas.base import Column, TableSchema

STRINGS = pa.list_(pa.string())


def _convention_columns() -> list[Column]:
    cols: list[Column] = []
    for c in CONVENTIONS:
        cols += [
            Column(
                f"agatston_{c}", pa.float64(), f"Agatston score (3 mm-equivalent) under convention {c!r}.", minimum=0
            ),
            Column(f"volume_mm3_{c}", pa.float64(), f"Calcium volume score under {c!r}.", unit="mm3", minimum=0),
            Column(
                f"mass_mg_{c}",
                pa.float64(),
                f"Calcium mass under {c!r}; null when no calibration.",
                unit="mg",
                minimum=0,
            ),
            Column(f"lesion_count_{c}", pa.int32(), f"Number of calcified lesions under {c!r}.", minimum=0),
        ]
        for scheme, bands in SCHEMES.items():
            cols.append(
                Column(
                    f"risk_{scheme}_{c}",
                    pa.string(),
                    f"{bands.concept} of the {c!r} Agatston score.",
                    allowed=labels(scheme),
                )
            )
    return cols


def _aortic_columns() -> list[Column]:
    """Thoracic aortic calcium, scored with the same conventions; null when the model does not report it."""
    cols: list[Column] = []
    for c in CONVENTIONS:
        tac = "thoracic aortic calcium"
        cols += [
            Column(f"tac_agatston_{c}", pa.float64(), f"Agatston score of {tac} under {c!r}.", minimum=0),
            Column(f"tac_volume_mm3_{c}", pa.float64(), f"Volume of {tac} under {c!r}.", unit="mm3", minimum=0),
            Column(
                f"tac_mass_mg_{c}",
                pa.float64(),
                f"Mass of {tac} under {c!r}; null without calibration.",
                unit="mg",
                minimum=0,
            ),
            Column(f"tac_lesion_count_{c}", pa.int32(), f"Lesions of {tac} under {c!r}.", minimum=0),
        ]
    return cols


#: valve and annulus calcium reported beside the coronary scores: column prefix -> what it is
VALVE_CALCIUM = {"mac": "mitral annular calcification", "avc": "aortic valve calcium"}


def _valve_columns() -> list[Column]:
    """Mitral annular and aortic valve calcium, scored like the coronary; null when the model does not report it."""
    cols: list[Column] = []
    for prefix, what in VALVE_CALCIUM.items():
        for c in CONVENTIONS:
            cols += [
                Column(f"{prefix}_agatston_{c}", pa.float64(), f"Agatston score of {what} under {c!r}.", minimum=0),
                Column(
                    f"{prefix}_volume_mm3_{c}", pa.float64(), f"Volume of {what} under {c!r}.", unit="mm3", minimum=0
                ),
                Column(f"{prefix}_lesion_count_{c}", pa.int32(), f"Lesions of {what} under {c!r}.", minimum=0),
            ]
    return cols


TABLE = TableSchema(
    name="cac_series",
    version="2.3.0",
    doc="One row per processed source CT series: identifiers, acquisition, scores per convention, "
    "risk categories, QA flags, the UIDs of the SEG and SR written for it, and provenance.",
    key=("SeriesInstanceUID",),
    columns=(
        Column("SeriesInstanceUID", pa.string(), "SeriesInstanceUID of the source CT series.", required=True),
        Column("StudyInstanceUID", pa.string(), "StudyInstanceUID of the source (also the SEG's and SR's)."),
        Column("PatientID", pa.string(), "PatientID (NLST participant id)."),
        Column("collection_id", pa.string(), "IDC collection_id, e.g. 'nlst'."),
        Column("crdc_series_uuid", pa.string(), "IDC crdc_series_uuid of the source series."),
        Column("study_year", pa.int16(), "NLST screening round: 0 = T0, 1 = T1, 2 = T2.", minimum=0, maximum=2),
        Column(
            "is_primary",
            pa.bool_(),
            "The one series per (PatientID, study_year) to count a person by: DeepCAC's preference, a slice "
            "thickness in 2.5, 2.0, 1.75, 1.25, 1.0 mm (closest to 2.5), then the softer kernel, then the smaller "
            "SeriesInstanceUID. Set when the table is written; WHERE is_primary counts nobody twice.",
        ),
        Column(
            "scanner_manufacturer",
            pa.string(),
            "Scanner manufacturer: NLST code (GE, SE, PH, TO) or DICOM Manufacturer.",
        ),
        Column("scanner_model", pa.string(), "Scanner model: NLST code or DICOM ManufacturerModelName."),
        Column("kernel", pa.string(), "Reconstruction kernel (ConvolutionKernel)."),
        Column("slice_thickness_mm", pa.float64(), "Nominal slice thickness.", unit="mm", minimum=0),
        Column("slice_spacing_mm", pa.float64(), "Distance between slice centres as loaded.", unit="mm", minimum=0),
        Column("pixel_spacing_mm", pa.float64(), "In-plane pixel spacing (column spacing).", unit="mm", minimum=0),
        Column("kvp", pa.float64(), "Peak kilovoltage.", unit="kV", minimum=0),
        Column("tube_current_ma", pa.float64(), "Tube current.", unit="mA", minimum=0),
        Column("rows", pa.int32(), "Image rows.", minimum=1),
        Column("columns", pa.int32(), "Image columns.", minimum=1),
        Column("num_slices", pa.int32(), "Slices in the loaded volume.", minimum=1),
        Column(
            "mass_factor", pa.float64(), "Calcium Scoring Mass Factor from the header; null when absent.", minimum=0
        ),
        Column("heart_volume_ml", pa.float64(), "Volume of the predicted heart mask.", unit="mL", minimum=0),
        *_convention_columns(),
        *_aortic_columns(),
        *_valve_columns(),
        Column("qa_flags", STRINGS, "QA flags raised for this series (sorted; empty list when none).", required=True),
        Column(
            "loader_notes",
            STRINGS,
            "What the loader and the anatomy stage did on purpose (dropped duplicates, anatomy fallbacks, ...).",
            required=True,
        ),
        Column("seg_series_uid", pa.string(), "SeriesInstanceUID of the CAC SEG (calcium segments)."),
        Column("seg_sop_instance_uid", pa.string(), "SOPInstanceUID of the CAC SEG."),
        Column("seg_encoding", pa.string(), "'binary' or 'labelmap'."),
        Column(
            "cac_segment_number", pa.int32(), "Segment number of all coronary calcium in the CAC SEG (1).", minimum=1
        ),
        Column(
            "tac_segment_number",
            pa.int32(),
            "Segment of thoracic aortic calcium in the CAC SEG (2); null: none.",
            minimum=1,
        ),
        Column(
            "vessel_seg_series_uid", pa.string(), "SeriesInstanceUID of the SEG of calcium by vessel; null: no labels."
        ),
        Column("vessel_seg_sop_instance_uid", pa.string(), "SOPInstanceUID of the SEG of calcium by vessel."),
        Column(
            "heart_seg_series_uid",
            pa.string(),
            "SeriesInstanceUID of the SEG of the heart made here; null when the heart was IDC's (anatomy_seg_uid).",
        ),
        Column("heart_seg_sop_instance_uid", pa.string(), "SOPInstanceUID of the SEG of the heart made here."),
        Column("sr_series_uid", pa.string(), "SeriesInstanceUID of the TID 1500 SR."),
        Column("sr_sop_instance_uid", pa.string(), "SOPInstanceUID of the TID 1500 SR."),
        Column(
            "anatomy_provider",
            pa.string(),
            "Anatomy provider that gave the heart and great vessels, e.g. 'idc-totalsegmentator', 'classical'.",
        ),
        Column(
            "anatomy_version",
            pa.string(),
            "Version of the anatomy provider, e.g. 'TotalSegmentator v1.5.6' or the toolkit version.",
        ),
        Column(
            "anatomy_seg_uid",
            pa.string(),
            "SeriesInstanceUID of the DICOM SEG the anatomy was read from; null when computed here.",
        ),
        Column(
            "candidate_rules_json",
            pa.string(),
            "JSON object: calcium voxels (>= 130 HU) each named candidate rule of the model rejected "
            "(noise, valve, aortic, pulmonary, bone, shell, chest_wall, annulus); null when the model has no rules.",
        ),
        Column(
            "aortic_calcium_voxels",
            pa.int32(),
            "Voxels of the model's thoracic aortic calcium mask; null when the model does not report one.",
            minimum=0,
        ),
        Column(
            "cac_in_aorta_voxels",
            pa.int32(),
            "Coronary calcium voxels inside the anatomy's aorta mask (QA blocks on any).",
            minimum=0,
        ),
        Column(
            "aorta_wall_calcium_voxels",
            pa.int32(),
            "Voxels >= 130 HU inside the anatomy's aorta mask, in pieces of at least 5 voxels (QA warns when "
            "the model reports no aortic calcium although this is at least 10).",
            minimum=0,
        ),
        Column("model_name", pa.string(), "Model name from its model card.", required=True),
        Column("model_version", pa.string(), "Model version.", required=True),
        Column("model_weights_sha256", pa.string(), "SHA-256 of the weights file; null for weightless models."),
        Column("model_id", pa.string(), "name:version:first 12 hex of the weights hash.", required=True),
        Column(
            "model_description",
            pa.string(),
            "The model card's description: how the model ran (for deepcac2-unet: crop grid, CT pixel type, windows, "
            "precision, around which heart).",
        ),
        Column("toolkit_version", pa.string(), "deepcac2 version that wrote the row.", required=True),
        Column("conventions_json", pa.string(), "JSON object: convention name -> its parameters.", required=True),
    ),
)
