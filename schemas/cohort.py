"""The cohort table: which series to process, where they are and why each was chosen.

Written by ``deepcac2 cohort`` (from the IDC index or a local folder), read by
``deepcac2 fetch`` and the run orchestration.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

#: the fields of one ``totalseg_candidate_series`` entry
TOTALSEG_CANDIDATE_FIELDS = ("SeriesInstanceUID", "crdc_series_uuid", "series_aws_url", "location")

TABLE = TableSchema(
    name="cohort",
    version="2.0.0",
    doc="One row per selected CT series, in patient / study / series order.",
    key=("SeriesInstanceUID",),
    columns=(
        Column("collection_id", pa.string(), "IDC collection, e.g. 'nlst'; null for a local folder", required=False),
        Column("PatientID", pa.string(), "patient identifier (DICOM PatientID)", required=True),
        Column("StudyInstanceUID", pa.string(), "DICOM StudyInstanceUID", required=True),
        Column("SeriesInstanceUID", pa.string(), "DICOM SeriesInstanceUID", required=True),
        Column("crdc_series_uuid", pa.string(), "IDC storage identifier of the series (folder name in the bucket)"),
        Column("series_aws_url", pa.string(), "s3://bucket/<crdc_series_uuid>/* ; null for local series"),
        Column("location", pa.string(), "local folder holding the series files; null for IDC series"),
        Column("series_size_bytes", pa.int64(), "total size of the series files", unit="bytes"),
        Column("instanceCount", pa.int32(), "number of instances (files) in the series", required=True),
        Column("Modality", pa.string(), "DICOM Modality"),
        Column("SeriesDescription", pa.string(), "DICOM SeriesDescription as stored"),
        Column("TransferSyntaxUID", pa.string(), "transfer syntax UID(s), comma-separated when files differ"),
        Column("study_year", pa.int16(), "NLST screening round: 0 = T0 (baseline), 1 = T1, 2 = T2"),
        Column("image_type", pa.string(), "NLST image type code (OPA = original primary axial, OPL = localizer...)"),
        Column("scanner_manufacturer", pa.string(), "NLST manufacturer code (GE, SE, PH, TO) or DICOM Manufacturer"),
        Column("scanner_model", pa.string(), "NLST scanner model code or DICOM ManufacturerModelName"),
        Column("kernel", pa.string(), "reconstruction kernel (ConvolutionKernel)"),
        Column("fov_mm", pa.float32(), "field of view / reconstruction diameter", unit="mm"),
        Column("slice_thickness_mm", pa.float32(), "nominal slice thickness", unit="mm"),
        Column("kvp", pa.float32(), "tube voltage", unit="kV"),
        Column("ma", pa.float32(), "tube current", unit="mA"),
        Column("nlst_field10", pa.float32(), "10th NLST description value (acquisition value, meaning not documented)"),
        Column("nlst_field11", pa.float32(), "11th NLST description value (acquisition value, meaning not documented)"),
        Column(
            "selection_reason", pa.string(), "why this row was chosen: policy and the rules it passed", required=True
        ),
        Column(
            "totalseg_series_uid",
            pa.string(),
            "the TotalSegmentator SEG series tried first for this CT (IDC analysis result "
            "totalsegmentator_ct_segmentations, or a SEG file of the folder); null when none",
        ),
        Column("totalseg_crdc_series_uuid", pa.string(), "IDC storage identifier of that SEG series; null locally"),
        Column(
            "totalseg_candidates",
            pa.int32(),
            "how many candidate TotalSegmentator SEGs this CT has (several when SeriesNumber repeats in the study)",
            minimum=0,
        ),
        Column(
            "totalseg_candidate_series",
            pa.list_(pa.struct([(name, pa.string()) for name in TOTALSEG_CANDIDATE_FIELDS])),
            "every candidate SEG in the order the anatomy stage tries them (the first whose "
            "ReferencedSeriesSequence names this CT is used): SeriesInstanceUID, crdc_series_uuid, "
            "series_aws_url, location (local SEG file)",
        ),
        Column(
            "source_fingerprint",
            pa.string(),
            "local series: '<files>:<sha256>' over the relative path, size and mtime of every file under "
            "`location`; `run` refuses the series (E_INPUT_CHANGED) when it differs, unless --rescan. "
            "Null for IDC series (their instanceCount is checked after the fetch)",
        ),
    ),
)
