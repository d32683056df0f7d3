"""Statistics without labels: distributions by acquisition, zero fraction, outliers, drift.

Distributions are INFO results (the report plots them); outliers and drift are
warnings, for a person to look at, never a reason to block a release on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from deepcac2.pipeline.risk_categories import SCHEME_NAMES, labels
from deepcac2.qa.result import CheckResult, Severity

INFO, W = Severity.INFO, Severity.WARNING
GROUPINGS = ("study_year", "scanner_manufacturer", "kernel", "slice_thickness_mm")
#: an outlier: robust z of log(1 + Agatston) above this, and a score above OUTLIER_MIN
OUTLIER_Z = 4.0
OUTLIER_MIN = 1000.0
#: drift: a category's share moving by more than this, or a KS statistic above DRIFT_KS
DRIFT_SHARE = 0.10
DRIFT_KS = 0.15


def _scores(rows: list[dict[str, Any]], convention: str) -> np.ndarray:
    return np.array([r[f"agatston_{convention}"] for r in rows if r.get(f"agatston_{convention}") is not None], float)


def distributions(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Median score and zero fraction overall and per acquisition group."""
    out = []
    scores = _scores(rows, convention)
    if scores.size:
        zero = float((scores == 0).mean())
        out.append(
            CheckResult(
                "stats.zero_fraction", "all", True, INFO,
                f"{zero:.1%} of {scores.size} series score 0 ({convention})", zero,
            )
        )  # fmt: skip
    for column in GROUPINGS:
        groups: dict[str, list[float]] = {}
        for r in rows:
            value = r.get(f"agatston_{convention}")
            if value is not None:
                groups.setdefault(str(r.get(column)), []).append(value)
        for key in sorted(groups):
            g = np.asarray(groups[key])
            out.append(
                CheckResult(
                    f"stats.by_{column}", key, True, INFO,
                    f"n={g.size} median={np.median(g):.1f} zero={np.mean(g == 0):.0%} p90={np.percentile(g, 90):.1f}",
                    float(np.median(g)),
                )
            )  # fmt: skip
    return out


def outliers(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Series whose score is far above the rest (robust z on log scale)."""
    usable = [r for r in rows if r.get(f"agatston_{convention}") is not None]
    if len(usable) < 5:
        return []
    logs = np.log1p(np.array([r[f"agatston_{convention}"] for r in usable], float))
    med = np.median(logs)
    mad = stats.median_abs_deviation(logs, scale="normal") or 1.0
    out = []
    for r, v in zip(usable, logs, strict=True):
        z = (v - med) / mad
        score = float(np.expm1(v))
        if z > OUTLIER_Z and score > OUTLIER_MIN:
            out.append(
                CheckResult(
                    "stats.outlier", r["SeriesInstanceUID"], False, W, f"Agatston {score:.0f}, robust z {z:.1f}", z
                )
            )
    return out


def _shares(rows: list[dict[str, Any]], scheme: str, convention: str) -> dict[str, float]:
    values = [r.get(f"risk_{scheme}_{convention}") for r in rows]
    values = [v for v in values if v is not None]
    return {label: (values.count(label) / len(values) if values else 0.0) for label in labels(scheme)}


def drift(rows: list[dict[str, Any]], reference: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Compare this run with a reference release: category shares and the score distribution."""
    out = []
    for scheme in SCHEME_NAMES:
        now, ref = _shares(rows, scheme, convention), _shares(reference, scheme, convention)
        moved = {k: now[k] - ref[k] for k in now}
        worst = max(moved, key=lambda k: abs(moved[k]))
        out.append(
            CheckResult(
                "stats.drift.categories", scheme, abs(moved[worst]) <= DRIFT_SHARE, W,
                f"largest change: {worst} {ref[worst]:.1%} -> {now[worst]:.1%}", moved[worst],
            )
        )  # fmt: skip
    a, b = _scores(rows, convention), _scores(reference, convention)
    if a.size and b.size:
        ks = stats.ks_2samp(a, b)
        out.append(
            CheckResult(
                "stats.drift.scores", convention, ks.statistic <= DRIFT_KS, W,
                f"KS statistic {ks.statistic:.3f} (p={ks.pvalue:.2g}) vs reference, n={a.size}/{b.size}",
                float(ks.statistic),
            )
        )  # fmt: skip
    return out
