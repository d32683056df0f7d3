"""The two tables a synthetic cohort writes next to its DICOM: ``manifest`` and ``truth``."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from deepcac2.pipeline.synth.phantom import Phantom
from deepcac2.pipeline.synth.truth import ExpectedScores
from deepcac2.schemas.base import Column, TableSchema

MANIFEST = TableSchema(
    name="synth_manifest",
    version="1.0.0",
    doc="One row per series a synthetic cohort wrote.",
    key=("folder",),
    columns=(
        Column("PatientID", pa.string(), "PatientID.", required=True),
        Column("StudyInstanceUID", pa.string(), "StudyInstanceUID.", required=True),
        Column(
            "SeriesInstanceUID",
            pa.string(),
            "SeriesInstanceUID as written in the headers (may be invalid on purpose).",
            required=True,
        ),
        Column("study_year", pa.int32(), "NLST study year: 0, 1, 2 = T0, T1, T2.", required=True),
        Column("kind", pa.string(), "What the series is.", required=True, allowed=("chest", "localizer", "qrm", "bad")),
        Column("defect", pa.string(), "Bad-input corpus: the defect name (see docs/synth.md); null otherwise."),
        Column(
            "expected_error_code",
            pa.string(),
            "The ErrorCode the loader must raise on this series; null: it must load.",
        ),
        Column("folder", pa.string(), "Series folder relative to the cohort root.", required=True),
        Column("n_files", pa.int32(), "Files in the folder.", required=True),
        Column("series_description", pa.string(), "SeriesDescription (NLST 11-field form)."),
        Column("scanner_manufacturer", pa.string(), "Manufacturer (DICOM)."),
        Column("kernel", pa.string(), "ConvolutionKernel."),
        Column("transfer_syntax", pa.string(), "Transfer syntax UID of the files."),
        Column("truth_file", pa.string(), "truth/<series>.json relative to the cohort root; null for localizers."),
    ),
)

TRUTH = TableSchema(
    name="synth_truth",
    version="1.2.0",
    doc="Expected scores: one row per (series, scoring convention), nominal and in the image.",
    key=("folder", "convention"),
    columns=(
        Column("PatientID", pa.string(), "PatientID.", required=True),
        Column("StudyInstanceUID", pa.string(), "StudyInstanceUID.", required=True),
        Column("SeriesInstanceUID", pa.string(), "SeriesInstanceUID.", required=True),
        Column("folder", pa.string(), "Series folder relative to the cohort root.", required=True),
        Column("kind", pa.string(), "chest, qrm or bad.", required=True),
        Column("convention", pa.string(), "Scoring convention name (deepcac2.pipeline.conventions).", required=True),
        Column(
            "exact",
            pa.bool_(),
            "True: noise-free, the values are exact; False: nominal (noise-free values of a noisy series).",
            required=True,
        ),
        Column("agatston", pa.float64(), "Expected Agatston score; null when not analytic (see reason)."),
        Column("volume_mm3", pa.float64(), "Expected volume score.", unit="mm3"),
        Column("mass_mg", pa.float64(), "Expected mass score; null without a mass factor.", unit="mg"),
        Column("lesion_count", pa.int32(), "Expected number of lesions."),
        Column("reason", pa.string(), "Why the values are null."),
        Column("category_deepcac", pa.string(), "DeepCAC risk category of the expected Agatston."),
        Column("category_classic", pa.string(), "Classic risk category."),
        Column("category_cac_drs", pa.string(), "CAC-DRS category (cut-offs unconfirmed)."),
        Column("per_vessel_json", pa.string(), "Per-vessel expected scores as a JSON object."),
        Column(
            "agatston_in_image",
            pa.float64(),
            "What a reader scores on the written image (noise and blur included): the engine under this "
            "convention on the painted plaques grown by one voxel, at or above the threshold (image_truth.py). "
            "Equals agatston for an exact series. `deepcac2 evaluate` compares with it by default.",
        ),
        Column("volume_mm3_in_image", pa.float64(), "Volume score in the image (as agatston_in_image).", unit="mm3"),
        Column("mass_mg_in_image", pa.float64(), "Mass score in the image; null without a mass factor.", unit="mg"),
        Column("lesion_count_in_image", pa.int32(), "Lesions in the image (as agatston_in_image)."),
        Column("category_deepcac_in_image", pa.string(), "DeepCAC risk category of agatston_in_image."),
        Column("n_truth_lesions", pa.int32(), "Ground-truth lesions in the phantom.", required=True),
        Column("rows", pa.int32(), "Rows.", required=True),
        Column("cols", pa.int32(), "Columns.", required=True),
        Column("n_slices", pa.int32(), "Slices.", required=True),
        Column("spacing_x", pa.float64(), "Column spacing.", required=True, unit="mm"),
        Column("spacing_y", pa.float64(), "Row spacing.", required=True, unit="mm"),
        Column("spacing_z", pa.float64(), "Slice spacing (increment).", required=True, unit="mm"),
        Column("origin_x", pa.float64(), "LPS x of voxel (0,0,0).", required=True, unit="mm"),
        Column("origin_y", pa.float64(), "LPS y of voxel (0,0,0).", required=True, unit="mm"),
        Column("origin_z", pa.float64(), "LPS z of voxel (0,0,0) (the most inferior slice).", required=True, unit="mm"),
        Column("slice_thickness_mm", pa.float64(), "SliceThickness.", required=True, unit="mm"),
        Column("kvp", pa.int32(), "KVP.", required=True),
        Column("mass_factor", pa.float64(), "Calcium Scoring Mass Factor written, mg/cm3 per HU; null if none."),
        Column("great_vessels", pa.bool_(), "Built with real mediastinal anatomy (ChestSpec.great_vessels)."),
        Column(
            "noncoronary_json",
            pa.string(),
            "Non-coronary calcium by structure (labels.Distractor name -> group, voxels, voxels >= 130 HU, "
            "volume, peak HU, pieces) as a JSON object; the same on every convention row of a series.",
        ),
    ),
)


def noncoronary(phantom: Phantom) -> dict[str, dict[str, Any]]:
    """The phantom's non-coronary calcium by structure name (see ``phantom.CalciumTruth``)."""
    return {c.structure: {k: v for k, v in vars(c).items() if k != "structure"} for c in phantom.calcium}


def truth_document(
    phantom: Phantom,
    row: dict[str, Any],
    expected: dict[str, ExpectedScores],
    in_image: dict[str, ExpectedScores] | None = None,
) -> dict[str, Any]:
    """The per-series truth JSON: ids, geometry, lesions, expected scores per convention."""
    g = phantom.geometry
    return {
        **{
            k: row[k]
            for k in (
                "PatientID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "study_year",
                "kind",
                "defect",
                "expected_error_code",
                "folder",
            )
        },
        "seed": phantom.seed,
        "exact": phantom.exact,
        "shape_zyx": list(phantom.hu.shape),
        "geometry": {"origin": list(g.origin), "spacing": list(g.spacing), "direction": list(g.direction)},
        "slice_thickness_mm": phantom.slice_thickness_mm,
        "kvp": phantom.kvp,
        "mass_factor": phantom.mass_factor,
        "mass_factor_unit": "mg/cm3 per HU",
        "lesions": [
            {
                "lesion_id": les.lesion_id,
                "vessel": les.vessel,
                "kind": les.kind,
                "hu": les.hu,
                "box_kji": list(les.box),
                "pixels_per_slice": [list(p) for p in les.pixels_per_slice],
                "n_voxels": les.n_voxels,
                "position": les.position,
                "density_mg_cm3": les.density_mg_cm3,
            }
            for les in phantom.truth
        ],
        "expected": {name: e.to_dict() for name, e in expected.items()},
        "expected_in_image": {name: e.to_dict() for name, e in (in_image or {}).items()},
        "great_vessels": phantom.great_vessels,
        "noncoronary_calcium": noncoronary(phantom),
        "landmarks": phantom.landmarks,
    }


def truth_rows(
    phantom: Phantom,
    row: dict[str, Any],
    expected: dict[str, ExpectedScores],
    in_image: dict[str, ExpectedScores] | None = None,
) -> list[dict[str, Any]]:
    g = phantom.geometry
    nz, ny, nx = phantom.hu.shape
    common = {
        **{k: row[k] for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "folder", "kind")},
        "n_truth_lesions": len(phantom.truth),
        "rows": ny,
        "cols": nx,
        "n_slices": nz,
        **{f"spacing_{a}": float(v) for a, v in zip("xyz", g.spacing, strict=True)},
        **{f"origin_{a}": float(v) for a, v in zip("xyz", g.origin, strict=True)},
        "slice_thickness_mm": phantom.slice_thickness_mm,
        "kvp": phantom.kvp,
        "mass_factor": phantom.mass_factor,
        "great_vessels": phantom.great_vessels,
        "noncoronary_json": json.dumps(noncoronary(phantom), sort_keys=True),
    }
    out = []
    for name, e in expected.items():
        out.append(
            {
                **common,
                "convention": name,
                "exact": e.exact,
                "agatston": e.agatston,
                "volume_mm3": e.volume_mm3,
                "mass_mg": e.mass_mg,
                "lesion_count": e.lesion_count,
                "reason": e.reason,
                "category_deepcac": e.categories.get("deepcac"),
                "category_classic": e.categories.get("classic"),
                "category_cac_drs": e.categories.get("cac_drs"),
                "per_vessel_json": json.dumps({k: vars(v) for k, v in e.per_vessel.items()}, sort_keys=True),
                **_in_image((in_image or {}).get(name)),
            }
        )
    return out


def _in_image(e: ExpectedScores | None) -> dict[str, Any]:
    if e is None:
        return {}
    return {
        "agatston_in_image": e.agatston,
        "volume_mm3_in_image": e.volume_mm3,
        "mass_mg_in_image": e.mass_mg,
        "lesion_count_in_image": e.lesion_count,
        "category_deepcac_in_image": e.categories.get("deepcac"),
    }


def to_table(rows: list[dict[str, Any]], schema: TableSchema) -> pa.Table:
    names = [c.name for c in schema.columns]
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema.arrow)
