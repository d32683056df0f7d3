"""Statistics without labels: distributions by acquisition, zero fraction, outliers, drift.

Distributions are INFO results (the report plots them); outliers and drift are
warnings, for a person to look at, never a reason to block a release on their own.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass
class Summary:
    """What the statistics read of ``cac_series``, a batch at a time: per-series values as packed doubles.

    ``scores``: every non-null Agatston score, in row order; ``groups``: per grouping, the group
    (``str`` of the row's value) -> its scores; ``labels``: per risk scheme, its non-null labels counted.
    """

    scores: array = field(default_factory=lambda: array("d"))
    groups: dict[str, dict[str, array]] = field(default_factory=lambda: {g: {} for g in GROUPINGS})
    labels: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in SCHEME_NAMES})

    def add(self, rows: Iterable[Mapping[str, Any]], convention: str) -> Summary:
        column = f"agatston_{convention}"
        for r in rows:
            for scheme in SCHEME_NAMES:
                label = r.get(f"risk_{scheme}_{convention}")
                if label is not None:
                    self.labels[scheme][label] += 1
            value = r.get(column)
            if value is None:
                continue
            self.scores.append(value)
            for group in GROUPINGS:
                self.groups[group].setdefault(str(r.get(group)), array("d")).append(value)
        return self


def columns_read(convention: str) -> list[str]:
    """The ``cac_series`` columns a :class:`Summary` reads."""
    risks = [f"risk_{scheme}_{convention}" for scheme in SCHEME_NAMES]
    return ["SeriesInstanceUID", f"agatston_{convention}", *GROUPINGS, *risks]


def summarize(batches: Iterable[Iterable[Mapping[str, Any]]], convention: str) -> Summary:
    summary = Summary()
    for rows in batches:
        summary.add(rows, convention)
    return summary


def distributions(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Median score and zero fraction overall and per acquisition group."""
    return distributions_of(summarize([rows], convention), convention)


def distributions_of(summary: Summary, convention: str) -> list[CheckResult]:
    """:func:`distributions` of the rows ``summary`` read."""
    out = []
    scores = np.asarray(summary.scores, float)
    if scores.size:
        zero = float((scores == 0).mean())
        out.append(
            CheckResult(
                "stats.zero_fraction", "all", True, INFO,
                f"{zero:.1%} of {scores.size} series score 0 ({convention})", zero,
            )
        )  # fmt: skip
    for column in GROUPINGS:
        groups = summary.groups[column]
        for key in sorted(groups):
            g = np.asarray(groups[key], float)
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
    return outliers_of(summarize([rows], convention), [rows], convention)


def outliers_of(summary: Summary, batches: Iterable[Iterable[Mapping[str, Any]]], convention: str) -> list[CheckResult]:
    """:func:`outliers` of the rows ``summary`` read; ``batches``: the same rows again (their series UIDs)."""
    if len(summary.scores) < 5:
        return []
    logs = np.log1p(np.asarray(summary.scores, float))
    med = np.median(logs)
    mad = stats.median_abs_deviation(logs, scale="normal") or 1.0
    candidates = set(np.flatnonzero((logs - med) / mad > OUTLIER_Z).tolist())  # the same z, element by element
    out = []
    column, i = f"agatston_{convention}", -1
    for rows in batches if candidates else ():
        for r in rows:
            if r.get(column) is None:
                continue
            i += 1
            if i not in candidates:
                continue
            v = logs[i]
            z = (v - med) / mad
            score = float(np.expm1(v))
            if z > OUTLIER_Z and score > OUTLIER_MIN:
                out.append(
                    CheckResult(
                        "stats.outlier", r["SeriesInstanceUID"], False, W, f"Agatston {score:.0f}, robust z {z:.1f}", z
                    )
                )
    return out


def _shares(labels_seen: Counter[str], scheme: str) -> dict[str, float]:
    n = sum(labels_seen.values())
    return {label: (labels_seen[label] / n if n else 0.0) for label in labels(scheme)}


def drift(rows: list[dict[str, Any]], reference: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Compare this run with a reference release: category shares and the score distribution."""
    return drift_of(summarize([rows], convention), summarize([reference], convention), convention)


def drift_of(now_summary: Summary, ref_summary: Summary, convention: str) -> list[CheckResult]:
    """:func:`drift` of the rows two summaries read (this run's, the reference's)."""
    out = []
    for scheme in SCHEME_NAMES:
        now, ref = _shares(now_summary.labels[scheme], scheme), _shares(ref_summary.labels[scheme], scheme)
        moved = {k: now[k] - ref[k] for k in now}
        worst = max(moved, key=lambda k: abs(moved[k]))
        out.append(
            CheckResult(
                "stats.drift.categories", scheme, abs(moved[worst]) <= DRIFT_SHARE, W,
                f"largest change: {worst} {ref[worst]:.1%} -> {now[worst]:.1%}", moved[worst],
            )
        )  # fmt: skip
    a, b = np.asarray(now_summary.scores, float), np.asarray(ref_summary.scores, float)
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
