"""Failed series, by error code: counted for the report, and a warning for every ``E_INTERNAL``.

``E_INTERNAL`` means an exception no stage expected: a bug, not bad input. Each such row
keeps its traceback in ``failures.detail_json`` (key ``traceback``); QA warns on it so a
release builder looks before releasing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from deepcac2.errors import ErrorCode
from deepcac2.qa.result import CheckResult, Severity

INTERNAL = ErrorCode.E_INTERNAL.value


def by_code(failures: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Failure rows grouped by error code (codes sorted, rows by series)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(failures, key=lambda r: (str(r.get("error_code")), str(r.get("SeriesInstanceUID")))):
        groups[str(row.get("error_code"))].append(row)
    return dict(sorted(groups.items()))


def has_traceback(row: dict[str, Any]) -> bool:
    try:
        return "traceback" in json.loads(row.get("detail_json") or "{}")
    except ValueError:
        return False


def check_failures(failures: list[dict[str, Any]]) -> list[CheckResult]:
    """``failures.by_code`` (info, one per code) and ``failures.internal`` (warning, one per E_INTERNAL series)."""
    out = []
    for code, rows in by_code(failures).items():
        series = sorted({str(r["SeriesInstanceUID"]) for r in rows})
        stages = ", ".join(sorted({str(r.get("stage")) for r in rows}))
        out.append(
            CheckResult(
                "failures.by_code", code, True, Severity.INFO,
                f"{len(series)} series failed with {code} (stage {stages})", float(len(series)),
            )
        )  # fmt: skip
    for row in by_code(failures).get(INTERNAL, []):
        where = "traceback in failures.detail_json" if has_traceback(row) else "no traceback recorded"
        out.append(
            CheckResult(
                "failures.internal", str(row["SeriesInstanceUID"]), False, Severity.WARNING,
                f"E_INTERNAL at stage {row.get('stage')}: {row.get('message')} ({where}); a bug, not bad input",
            )
        )  # fmt: skip
    return out
