"""The ``is_primary`` flag of ``cac_series``: one series per patient and screening round.

NLST studies often hold more than one reconstruction of the same scan (two kernels, two
thicknesses): counting every series counts people twice. The rule is DeepCAC's series
preference (FACTS.md section 1, ``pipeline.cohort.nlst.deepcac_rank``): a slice thickness
among 2.5, 2.0, 1.75, 1.25 and 1.0 mm first, then the one closest to 2.5 mm, then the
softer kernel in DeepCAC's order (B31f, B30f, B20f, C, FC10, ... LUNG; unlisted last);
the smallest SeriesInstanceUID breaks a tie, so the choice never depends on row order.
A round is ``(PatientID, study_year)``; without a study year (not NLST) it is the study.
"""

from __future__ import annotations

import math
from typing import Any

from deepcac2.pipeline.cohort.nlst import deepcac_rank


def _round(row: dict[str, Any]) -> tuple[str, str]:
    year = row.get("study_year")
    return str(row.get("PatientID")), f"year {year}" if year is not None else f"study {row.get('StudyInstanceUID')}"


def _thickness(row: dict[str, Any]) -> float | None:
    value = row.get("slice_thickness_mm")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = row.get("slice_spacing_mm")  # the loader's measurement when the header had none
    return None if value is None else float(value)


class PrimaryChooser:
    """The rule above, fed one row at a time (a streaming writer never holds every row)."""

    def __init__(self) -> None:
        self._best: dict[tuple[str, str], tuple] = {}

    def add(self, row: dict[str, Any]) -> None:
        key = (*deepcac_rank(_thickness(row), row.get("kernel")), str(row["SeriesInstanceUID"]))
        round_ = _round(row)
        if round_ not in self._best or key < self._best[round_]:
            self._best[round_] = key

    def chosen(self) -> set[str]:
        """The SeriesInstanceUIDs marked primary."""
        return {key[-1] for key in self._best.values()}


def mark_primary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` with ``is_primary`` set: True for exactly one series per round."""
    chooser = PrimaryChooser()
    for row in rows:
        chooser.add(row)
    chosen = chooser.chosen()
    return [{**row, "is_primary": str(row["SeriesInstanceUID"]) in chosen} for row in rows]
