"""Scores as plain rows (long form: one row per convention) for JSON and Parquet output of ``deepcac2 score``.

The release tables (``schemas/cac_series.py``, wide) are written by the convert stage;
these rows are the simple standalone form of one scoring run.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from deepcac2.pipeline.stage_values import VESSEL_LABELS, Scores


def convention_row(scores: Scores, series_uid: str | None) -> dict[str, object]:
    row: dict[str, object] = {
        "SeriesInstanceUID": series_uid,
        "convention": scores.convention,
        "agatston": scores.agatston,
        "volume_mm3": scores.volume_mm3,
        "mass_mg": scores.mass_mg,
        "lesion_count": scores.lesion_count,
    }
    for scheme, label in scores.categories.items():
        row[f"risk_{scheme}"] = label
    for name in VESSEL_LABELS.values():
        v = scores.per_vessel.get(name)
        row[f"agatston_{name}"] = None if v is None else v.agatston
        row[f"volume_mm3_{name}"] = None if v is None else v.volume_mm3
        row[f"lesion_count_{name}"] = None if v is None else v.lesion_count
    row["convention_params"] = json.dumps(scores.convention_params, sort_keys=True)
    return row


def lesion_rows(scores: Scores, series_uid: str | None) -> list[dict[str, object]]:
    rows = []
    for les in scores.lesions:
        d = asdict(les)
        x, y, z = d.pop("centroid_lps")
        row = {"SeriesInstanceUID": series_uid, "convention": scores.convention, **d}
        row.update(centroid_x_mm=x, centroid_y_mm=y, centroid_z_mm=z)
        rows.append(row)
    return rows


def scores_json(scores: Scores, series_uid: str | None) -> dict[str, object]:
    """Everything about one scoring as a JSON-able object."""
    d = asdict(scores)
    d["SeriesInstanceUID"] = series_uid
    return d
