"""Checks that need the meaning of ``cac_series`` columns, not only their schema.

* every risk category equals the band of its own Agatston score;
* the cohort is exactly done ∪ failed, and nothing is both;
* per-series QA flags raised by the pipeline, as warnings; ``cac_in_aorta`` (coronary calcium
  inside the anatomy's aorta mask) blocks.
"""

from __future__ import annotations

import math
from typing import Any

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.risk_categories import SCHEME_NAMES, category
from deepcac2.qa.result import CheckResult, Severity

B, W = Severity.BLOCKING, Severity.WARNING
#: flags that mean the output should not be trusted without a look
WARNING_FLAGS = (
    "heart_empty",
    "cac_outside_heart",
    "score_without_mask",
    "heart_at_scan_edge",
    "aortic_calcium_missed",  # calcified aortic wall in the anatomy's aorta, no aortic calcium reported
)
#: flags that make the release wrong: coronary calcium that is aortic
BLOCKING_FLAGS = ("cac_in_aorta",)


def check_categories(rows: list[dict[str, Any]]) -> list[CheckResult]:
    """risk_<scheme>_<convention> must be the band of agatston_<convention>."""
    out = []
    for row in sorted(rows, key=lambda r: r["SeriesInstanceUID"]):
        wrong = []
        for conv in CONVENTIONS:
            score = row.get(f"agatston_{conv}")
            for scheme in SCHEME_NAMES:
                label = row.get(f"risk_{scheme}_{conv}")
                if score is None and label is None:
                    continue
                if score is not None and not math.isfinite(score):  # the range check reports it too
                    wrong.append(f"{scheme}/{conv}: Agatston {score} has no category")
                    continue
                expected = None if score is None else category(scheme, score)
                if label != expected:
                    wrong.append(f"{scheme}/{conv}: {label!r} for Agatston {score} (expected {expected!r})")
        out.append(
            CheckResult(
                "table.cac_series.categories", row["SeriesInstanceUID"], not wrong, B, "; ".join(wrong) or "consistent"
            )
        )
    return out


def check_coverage(cohort_uids: list[str], done: list[str], failed: list[str]) -> list[CheckResult]:
    """cohort = done ∪ failed, done ∩ failed = ∅, nothing outside the cohort."""
    cohort, done_s, failed_s = set(cohort_uids), set(done), set(failed)
    missing = cohort - done_s - failed_s
    return coverage_results(
        len(missing),
        sorted(missing)[0] if missing else None,
        len(done_s & failed_s),
        len((done_s | failed_s) - cohort),
        len(done) - len(done_s),
    )


def coverage_results(
    missing: int, first_missing: str | None, both: int, extra: int, duplicates: int
) -> list[CheckResult]:
    """The coverage checks from their counts (``qa.coverage`` counts them out of core)."""
    return [
        CheckResult(
            "coverage.missing", "cohort", not missing, B,
            f"{missing} cohort series neither done nor failed" + (f", e.g. {first_missing}" if missing else ""),
            float(missing),
        ),
        CheckResult(
            "coverage.done_and_failed", "cohort", not both, B,
            f"{both} series both in cac_series and failures", float(both),
        ),
        CheckResult(
            "coverage.outside_cohort", "cohort", not extra, B,
            f"{extra} series not in the cohort", float(extra),
        ),
        CheckResult(
            "coverage.duplicates", "cac_series", duplicates == 0, B, f"{duplicates} repeated", float(duplicates)
        ),
    ]  # fmt: skip


def check_flags(rows: list[dict[str, Any]]) -> list[CheckResult]:
    out = []
    for row in sorted(rows, key=lambda r: r["SeriesInstanceUID"]):
        raised = [f for f in row.get("qa_flags") or [] if f in WARNING_FLAGS]
        out.append(
            CheckResult("series.qa_flags", row["SeriesInstanceUID"], not raised, W, ", ".join(raised) or "none raised")
        )
        blocking = [f for f in row.get("qa_flags") or [] if f in BLOCKING_FLAGS]
        voxels = row.get("cac_in_aorta_voxels")
        out.append(
            CheckResult(
                "series.cac_in_aorta",
                row["SeriesInstanceUID"],
                not blocking,
                B,
                f"{voxels} coronary calcium voxels inside the aorta mask" if blocking else "none",
                None if voxels is None else float(voxels),
            )
        )
    return out
