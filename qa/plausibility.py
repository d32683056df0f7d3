"""Warnings (never blocking) on results that are possible but implausible: a reader should look.

* ``study.category_disagreement``: two reconstructions of one study (same StudyInstanceUID)
  whose DeepCAC categories differ by two or more bands. Calcium does not change between
  reconstructions of one acquisition; two bands apart means one of them is wrong.
* ``series.heart_volume``: a heart volume (``cac_series.heart_volume_ml``) outside a plausible
  adult range: a heart that lost half its volume (the anterior half missed) or took in the
  great vessels or the liver.
* ``study.sharp_kernel_excess``: coronary calcium on a sharp-kernel series far above that on a
  soft-kernel series of the same study. Sharp kernels raise noise and blooming, and noise
  above 130 HU is counted as calcium; DeepCAC prefers soft kernels for that reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from deepcac2.pipeline.cohort.nlst import DEEPCAC_KERNEL_ORDER
from deepcac2.pipeline.risk_categories import SCHEMES
from deepcac2.qa.result import CheckResult, Severity

W = Severity.WARNING
#: plausible adult heart volume in mL when the mask holds the pericardial sac (heart and its fat, as
#: the ``classical`` anatomy's does), shared with the SEG check (``dicom_checks``). CT of adults gives
#: about 500-1100 mL for it; a heart of 360 mL is one that lost its front half (issue 21, LUNG1-001)
HEART_ML_RANGE = (400.0, 1500.0)
#: ... and when it holds the chambers and the myocardium alone (IDC's TotalSegmentator heart, the
#: platipy model's): no epicardial fat, so small adult hearts lie at 300-400 mL (the demo's synthetic
#: TotalSegmentator hearts hold 330-1270 mL)
HEART_ML_RANGE_CHAMBERS = (250.0, 1300.0)
#: anatomy providers whose heart mask holds the pericardial fat
HEART_WITH_FAT = frozenset({"classical"})


def heart_range(provider: object) -> tuple[float, float]:
    """The plausible range for a heart from ``provider`` (the sac's when the provider is not recorded)."""
    if isinstance(provider, str) and provider and provider not in HEART_WITH_FAT:
        return HEART_ML_RANGE_CHAMBERS
    return HEART_ML_RANGE


#: categories two or more bands apart disagree (DeepCAC's four bands)
CATEGORY_GAP = 2
#: sharp Agatston above ``SHARP_RATIO`` x soft + ``SHARP_MARGIN`` is "far above"
SHARP_RATIO = 2.0
SHARP_MARGIN = 50.0

_LISTED_SHARP = {k.upper() for k in DEEPCAC_KERNEL_ORDER[DEEPCAC_KERNEL_ORDER.index("B50f") :]}
_LISTED_SOFT = {k.upper() for k in DEEPCAC_KERNEL_ORDER[: DEEPCAC_KERNEL_ORDER.index("B50f")]}
_NAMED_SHARP = {"BONE", "BONEPLUS", "LUNG", "EDGE", "DETAIL", "SHARP", "D", "E", "L", "YC", "YD", "YE"}
_NAMED_SOFT = {"STANDARD", "SOFT", "BODY", "A", "B", "C", "UB", "YA", "YB"}
_NUMBERED = re.compile(r"^(?:[BIJ]|BR|FC)(\d{2})")  # Siemens B30f/I31f/Br40, Toshiba/Canon FC10


def kernel_sharpness(kernel: object) -> str | None:
    """ "sharp", "soft", or None when the kernel is unknown or in between (Siemens B45-B49, FC45-FC49)."""
    if not isinstance(kernel, str) or not kernel.strip():
        return None
    k = kernel.strip().upper()
    if k in _LISTED_SHARP or k in _NAMED_SHARP:
        return "sharp"
    if k in _LISTED_SOFT or k in _NAMED_SOFT:
        return "soft"
    m = _NUMBERED.match(k)
    if m:
        n = int(m.group(1))
        return "sharp" if n >= 50 else "soft" if n < 45 else None
    return None


def _by_study(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    studies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("StudyInstanceUID"):
            studies[str(r["StudyInstanceUID"])].append(r)
    return {s: sorted(rs, key=lambda r: str(r["SeriesInstanceUID"])) for s, rs in sorted(studies.items())}


def category_disagreement(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    labels = SCHEMES["deepcac"].labels
    out = []
    for study, series in _by_study(rows).items():
        ranked = [(labels.index(r[f"risk_deepcac_{convention}"]), r) for r in series
                  if r.get(f"risk_deepcac_{convention}") in labels]  # fmt: skip
        if len(ranked) < 2:
            continue
        lo, hi = min(ranked, key=lambda t: t[0]), max(ranked, key=lambda t: t[0])
        gap = hi[0] - lo[0]
        message = (
            f"{len(ranked)} reconstructions: DeepCAC categories from {labels[lo[0]]!r} "
            f"({lo[1]['SeriesInstanceUID']}, Agatston {lo[1].get(f'agatston_{convention}')}) to {labels[hi[0]]!r} "
            f"({hi[1]['SeriesInstanceUID']}, Agatston {hi[1].get(f'agatston_{convention}')})"
        )
        out.append(CheckResult("study.category_disagreement", study, gap < CATEGORY_GAP, W, message, float(gap)))
    return out


def heart_volume(rows: list[dict[str, Any]]) -> list[CheckResult]:
    out = []
    for r in sorted(rows, key=lambda r: str(r["SeriesInstanceUID"])):
        ml = r.get("heart_volume_ml")
        if ml is None or ml <= 0:  # no heart at all: the heart_empty flag says so
            continue
        provider = r.get("anatomy_provider")
        lo, hi = heart_range(provider)
        ok = lo <= ml <= hi
        message = f"heart {ml:.0f} mL ({provider or 'provider not recorded'})" + (
            "" if ok else f", outside the plausible adult {lo:.0f}-{hi:.0f} mL"
        )
        out.append(CheckResult("series.heart_volume", str(r["SeriesInstanceUID"]), ok, W, message, float(ml)))
    return out


def sharp_kernel_excess(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    column = f"agatston_{convention}"
    out = []
    for study, series in _by_study(rows).items():
        scored = [r for r in series if r.get(column) is not None]
        sharp = [r for r in scored if kernel_sharpness(r.get("kernel")) == "sharp"]
        soft = [r for r in scored if kernel_sharpness(r.get("kernel")) == "soft"]
        if not sharp or not soft:
            continue
        s_max = max(sharp, key=lambda r: r[column])
        f_max = max(soft, key=lambda r: r[column])
        limit = SHARP_RATIO * f_max[column] + SHARP_MARGIN
        ok = s_max[column] <= limit
        message = (
            f"sharp {s_max.get('kernel')} Agatston {s_max[column]:.0f} ({s_max['SeriesInstanceUID']}) against soft "
            f"{f_max.get('kernel')} {f_max[column]:.0f} ({f_max['SeriesInstanceUID']}); limit {limit:.0f}"
        )
        out.append(CheckResult("study.sharp_kernel_excess", study, ok, W, message, float(s_max[column])))
    return out


def check_plausibility(rows: list[dict[str, Any]], convention: str) -> list[CheckResult]:
    """Every plausibility warning over the ``cac_series`` rows, scored under ``convention``."""
    return [*category_disagreement(rows, convention), *heart_volume(rows), *sharp_kernel_excess(rows, convention)]
