"""Human review: a seeded sample to look at, and importing the verdicts into ``reviews``.

The sheet is a CSV a reviewer fills in next to the per-series pictures; importing
validates every row (unknown series, Likert outside 1-5, bad yes/no) and refuses the
whole file on any error, so a half-valid sheet never lands in a release.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.schemas.reviews import TABLE as REVIEWS

SHEET_COLUMNS = [
    "SeriesInstanceUID",
    "PatientID",
    "StudyInstanceUID",
    "agatston",
    "category",
    "image",
    "reviewer",
    "reviewer_role",
    "likert",
    "corrected",
    "comment",
]
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def sample_series(series_uids: list[str], n: int, seed: int) -> list[str]:
    """A seeded random sample, independent of input order (sorted first)."""
    uids = sorted(set(series_uids))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(uids), size=min(n, len(uids)), replace=False) if uids else []
    return sorted(uids[i] for i in picked)


def write_review_sheet(
    rows: list[dict],
    out_csv: str | Path,
    *,
    n: int,
    seed: int,
    convention: str = "deepcac",
    images_dir: str = "images",
    chosen: list[str] | None = None,
) -> Path:
    """Write the sheet for a seeded sample of ``cac_series`` rows; score and category under ``convention``.

    ``chosen``: the sample, when the caller drew it (``rows`` then need hold only its rows).
    """
    by_uid = {r["SeriesInstanceUID"]: r for r in rows}
    chosen = sample_series(list(by_uid), n, seed) if chosen is None else chosen
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SHEET_COLUMNS)
        w.writeheader()
        for uid in chosen:
            r = by_uid[uid]
            w.writerow(
                {
                    "SeriesInstanceUID": uid,
                    "PatientID": r.get("PatientID", ""),
                    "StudyInstanceUID": r.get("StudyInstanceUID", ""),
                    "agatston": r.get(f"agatston_{convention}", ""),
                    "category": r.get(f"risk_deepcac_{convention}", ""),
                    "image": f"{images_dir}/{uid}.png",
                }
            )
    return out_csv


def _parse_row(i: int, row: dict, known: set[str], seed: int | None) -> dict:
    where = f"row {i + 2}"  # header is row 1
    uid = (row.get("SeriesInstanceUID") or "").strip()
    if uid not in known:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: series {uid!r} is not in cac_series")
    reviewer = (row.get("reviewer") or "").strip()
    if not reviewer:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: reviewer is empty")
    try:
        likert = int(str(row.get("likert", "")).strip())
    except ValueError:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: likert {row.get('likert')!r} is not 1-5") from None
    if not 1 <= likert <= 5:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: likert {likert} is not 1-5")
    corrected_text = str(row.get("corrected", "")).strip().lower()
    if corrected_text not in _YES | _NO:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: corrected must be yes or no, got {corrected_text!r}")
    role = (row.get("reviewer_role") or "").strip() or None
    allowed_roles = REVIEWS.column("reviewer_role").allowed or ()
    if role is not None and role not in allowed_roles:
        raise DeepCACError(ErrorCode.E_REVIEW_INVALID, f"{where}: reviewer_role {role!r} not in {allowed_roles}")
    return {
        "SeriesInstanceUID": uid,
        "reviewer": reviewer,
        "reviewer_role": role,
        "likert": likert,
        "corrected": corrected_text in _YES,
        "comment": (row.get("comment") or "").strip() or None,
        "sample_seed": seed,
    }


def import_verdicts(sheets: list[str | Path], known_series: set[str], *, seed: int | None = None) -> pa.Table:
    """Read filled-in sheets into a ``reviews`` table, sorted by key. Rows with no verdict yet are skipped."""
    rows: dict[tuple[str, str], dict] = {}
    for sheet in sheets:
        with Path(sheet).open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                if not (row.get("likert") or "").strip() and not (row.get("reviewer") or "").strip():
                    continue  # not reviewed yet
                parsed = _parse_row(i, row, known_series, seed)
                key = (parsed["SeriesInstanceUID"], parsed["reviewer"])
                if key in rows and rows[key] != parsed:
                    raise DeepCACError(
                        ErrorCode.E_REVIEW_INVALID, f"{sheet}: conflicting verdicts for {key[0]} by {key[1]}"
                    )
                rows[key] = parsed
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=REVIEWS.arrow)
