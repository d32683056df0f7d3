"""Each CT series' candidate TotalSegmentator SEG(s): from IDC's offline index, or SEG files of a folder.

IDC index (offline, no ``seg_index``): a SEG of the analysis result
``totalsegmentator_ct_segmentations`` belongs to the CT series of the same study whose
SeriesNumber is N in its SeriesDescription ``TotalSegmentator(v1.5.6) Segmentation of
Series N`` (FACTS §6). SeriesNumber repeats inside some studies, so a series can have
several candidates; the provider reads each one's ReferencedSeriesSequence to decide.

Local folder: a SEG file (Modality SEG) whose description or algorithm names
TotalSegmentator is a candidate of every series its ReferencedSeriesSequence names.

Cohort columns: ``totalseg_series_uid`` and ``totalseg_crdc_series_uuid`` (the
first candidate; null when none), ``totalseg_candidates`` (how many) and
``totalseg_candidate_series`` (every candidate in the order the run tries them, each with
its SeriesInstanceUID, crdc_series_uuid, series_aws_url and local location).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deepcac2.pipeline.cohort.index import _path, _query

ANALYSIS_RESULT = "totalsegmentator_ct_segmentations"
COLUMNS = (
    "totalseg_series_uid",
    "totalseg_crdc_series_uuid",
    "totalseg_candidates",
    "totalseg_candidate_series",
)


def idc_candidates(collection: str, index_path: str | Path | None = None) -> pd.DataFrame:
    """TotalSegmentator SEG series of a collection, with the (study, CT SeriesNumber) each belongs to."""
    sql = (
        "SELECT StudyInstanceUID, regexp_extract(SeriesDescription, 'Segmentation of Series (\\S+)$', 1) AS ct_number, "
        "SeriesInstanceUID, crdc_series_uuid, series_aws_url FROM read_parquet(?) "
        "WHERE collection_id = ? AND Modality = 'SEG' AND analysis_result_id = ? ORDER BY SeriesInstanceUID"
    )
    return _query(_path(collection, index_path), sql, [collection, ANALYSIS_RESULT]).to_pandas()


def _columns(candidates: list[list[dict]]) -> dict[str, list]:
    return {
        "totalseg_series_uid": [c[0]["SeriesInstanceUID"] if c else None for c in candidates],
        "totalseg_crdc_series_uuid": [c[0]["crdc_series_uuid"] if c else None for c in candidates],
        "totalseg_candidates": [len(c) for c in candidates],
        "totalseg_candidate_series": [c or None for c in candidates],
    }


def attach_idc(df: pd.DataFrame, segs: pd.DataFrame) -> pd.DataFrame:
    """Add the totalseg columns to CT rows (which need StudyInstanceUID and SeriesNumber)."""
    table: dict[tuple[str, str], list[dict]] = {}
    for row in segs.itertuples(index=False):
        table.setdefault((row.StudyInstanceUID, str(row.ct_number)), []).append(
            {
                "SeriesInstanceUID": row.SeriesInstanceUID,
                "crdc_series_uuid": row.crdc_series_uuid,
                "series_aws_url": row.series_aws_url,
                "location": None,
            }  # fmt: skip
        )
    numbers = df["SeriesNumber"].astype(object).where(df["SeriesNumber"].notna(), None)
    keys = zip(df["StudyInstanceUID"], (None if n is None else str(n).strip() for n in numbers), strict=True)
    return df.assign(**_columns([table.get(k, []) for k in keys]))


def attach_local(df: pd.DataFrame, segs: list[dict]) -> pd.DataFrame:
    """Add the totalseg columns to the series rows of a folder from the SEG files found in it."""
    by_series: dict[str, list[dict]] = {}
    for seg in sorted(segs, key=lambda s: (s["SeriesInstanceUID"], s["location"])):
        for uid in seg["referenced_series"]:
            by_series.setdefault(uid, []).append(
                {
                    "SeriesInstanceUID": seg["SeriesInstanceUID"],
                    "crdc_series_uuid": None,
                    "series_aws_url": None,
                    "location": seg["location"],
                }  # fmt: skip
            )
    return df.assign(**_columns([by_series.get(uid, []) for uid in df["SeriesInstanceUID"]]))


def is_totalsegmentator(description: str | None, algorithm: str | None) -> bool:
    return "totalsegmentator" in f"{description or ''} {algorithm or ''}".lower()


def coverage(df: pd.DataFrame) -> tuple[int, int, int]:
    """Series with one candidate SEG, with several, with none."""
    if "totalseg_candidates" not in df.columns:
        return 0, 0, len(df)
    n = df["totalseg_candidates"].fillna(0).astype(int)
    return int((n == 1).sum()), int((n > 1).sum()), int((n == 0).sum())


def coverage_line(counts: tuple[int, int, int]) -> str:
    one, several, none = counts
    total = one + several + none
    share = 100.0 * (one + several) / total if total else 0.0
    return (
        f"TotalSegmentator SEG candidates: {one:,} series with one, {several:,} with several, {none:,} with none "
        f"({share:.1f}% covered; --anatomy auto uses classical for the rest)"
    )
