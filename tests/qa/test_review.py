from __future__ import annotations

import csv
from pathlib import Path

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.qa.review import import_verdicts, sample_series, write_review_sheet

UIDS = [f"1.2.826.0.1.{i}" for i in range(50)]


def test_sample_is_seeded_and_order_free() -> None:
    a = sample_series(UIDS, 10, seed=7)
    b = sample_series(list(reversed(UIDS)), 10, seed=7)
    assert a == b and len(a) == 10 and len(set(a)) == 10
    assert sample_series(UIDS, 10, seed=8) != a
    assert sample_series(UIDS[:3], 10, seed=1) == sorted(UIDS[:3])


def _fill(sheet: Path, verdicts: dict[int, dict]) -> None:
    rows = list(csv.DictReader(sheet.open()))
    for i, v in verdicts.items():
        rows[i].update(v)
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_sheet_round_trip_into_reviews(tmp_path: Path) -> None:
    rows = [{"SeriesInstanceUID": u, "PatientID": "p", "agatston_deepcac": 12.0} for u in UIDS]
    sheet = write_review_sheet(rows, tmp_path / "sheet.csv", n=5, seed=3)
    chosen = [r["SeriesInstanceUID"] for r in csv.DictReader(sheet.open())]
    assert chosen == sample_series(UIDS, 5, seed=3)
    _fill(
        sheet,
        {
            0: {"reviewer": "r1", "reviewer_role": "radiologist", "likert": "4", "corrected": "no"},
            1: {"reviewer": "r1", "likert": "2", "corrected": "yes", "comment": "missed LAD lesion"},
        },
    )
    table = import_verdicts([sheet], set(UIDS), seed=3)
    assert table.num_rows == 2  # unreviewed rows are skipped
    got = {r["SeriesInstanceUID"]: r for r in table.to_pylist()}
    assert got[chosen[0]]["likert"] == 4 and got[chosen[0]]["corrected"] is False
    assert got[chosen[1]]["corrected"] is True and got[chosen[1]]["comment"] == "missed LAD lesion"


@pytest.mark.parametrize(
    "verdict,fragment",
    [
        ({"reviewer": "r1", "likert": "6", "corrected": "no"}, "likert 6"),
        ({"reviewer": "r1", "likert": "x", "corrected": "no"}, "not 1-5"),
        ({"reviewer": "r1", "likert": "3", "corrected": "maybe"}, "yes or no"),
        ({"reviewer": "", "likert": "3", "corrected": "no"}, "reviewer is empty"),
        ({"reviewer": "r1", "likert": "3", "corrected": "no", "reviewer_role": "intern"}, "reviewer_role"),
    ],
)
def test_bad_verdicts_are_refused(tmp_path: Path, verdict: dict, fragment: str) -> None:
    rows = [{"SeriesInstanceUID": u} for u in UIDS]
    sheet = write_review_sheet(rows, tmp_path / "s.csv", n=3, seed=0)
    _fill(sheet, {0: verdict})
    with pytest.raises(DeepCACError) as err:
        import_verdicts([sheet], set(UIDS))
    assert err.value.code is ErrorCode.E_REVIEW_INVALID
    assert fragment in err.value.message


def test_unknown_series_is_refused(tmp_path: Path) -> None:
    rows = [{"SeriesInstanceUID": u} for u in UIDS]
    sheet = write_review_sheet(rows, tmp_path / "s.csv", n=3, seed=0)
    _fill(sheet, {0: {"reviewer": "r", "likert": "3", "corrected": "no"}})
    with pytest.raises(DeepCACError, match="not in cac_series"):
        import_verdicts([sheet], set(UIDS[:0]))
