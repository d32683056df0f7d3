"""The NLST ``SeriesDescription`` form and DeepCAC's series preferences.

NLST CT series carry an 11-field comma list, e.g. ``2,OPA,GE,LSPLUS,LUNG,360,2.5,120,80,0.1,1.5``:
study year, image type, manufacturer, scanner model, kernel, field of view, slice thickness,
kVp, mA and two further acquisition values. Unknowns are written ``na``, ``null``, ``unkn``
(and ``UNK``); they become None.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: field name -> type, in the order of the description
NLST_FIELDS: tuple[tuple[str, type], ...] = (
    ("study_year", int),
    ("image_type", str),
    ("scanner_manufacturer", str),
    ("scanner_model", str),
    ("kernel", str),
    ("fov_mm", float),
    ("slice_thickness_mm", float),
    ("kvp", float),
    ("ma", float),
    ("nlst_field10", float),
    ("nlst_field11", float),
)

UNKNOWN_TOKENS = frozenset({"", "na", "n/a", "null", "none", "unkn", "unk", "unknown"})

#: Values outside these ranges are sentinels or other quantities, never the named one:
#: NLST writes 999 for an unknown thickness, GE localizers put the scan length (350.2)
#: in the thickness field and a tube current of 0 means "not recorded".
#: Nulling them is better than a silently wrong number.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "study_year": (0, 2),
    "fov_mm": (1.0, 2000.0),
    "slice_thickness_mm": (0.1, 20.0),
    "kvp": (40.0, 160.0),
    "ma": (1.0, 2000.0),
}

#: DeepCAC (2021) NLST choice: these slice spacings, closest to 2.5 mm first.
DEEPCAC_SPACINGS_MM: tuple[float, ...] = (2.5, 2.0, 1.75, 1.25, 1.0)
DEEPCAC_TARGET_SPACING_MM = 2.5
#: NLST descriptions keep one decimal: 1.25 mm is written 1.2 or 1.3 (and 1.75 as 1.7 or 1.8),
#: so a thickness counts as a listed spacing within this tolerance.
SPACING_TOLERANCE_MM = 0.051
#: DeepCAC kernel preference, soft to hard (FACTS.md section 1).
DEEPCAC_KERNEL_ORDER: tuple[str, ...] = (
    "B31f", "B30f", "B20f", "C", "FC10", "FC11", "FC02", "STANDARD", "BODY",
    "B50f", "B60f", "B70f", "B80f", "D", "FC51", "FC53", "BONE", "LUNG",
)  # fmt: skip

_KERNEL_RANK = {k.upper(): i for i, k in enumerate(DEEPCAC_KERNEL_ORDER)}

# A FOV written with a thousands separator ("1,024") splits into two fields.
_THOUSANDS = re.compile(r"\d{1,3}")
_THREE_DIGITS = re.compile(r"\d{3}")


def _split(text: str) -> list[str] | None:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == len(NLST_FIELDS) + 1 and _THOUSANDS.fullmatch(parts[5]) and _THREE_DIGITS.fullmatch(parts[6]):
        parts[5:7] = [parts[5] + parts[6]]
    return parts if len(parts) == len(NLST_FIELDS) else None


def _value(name: str, kind: type, raw: str) -> Any:
    if raw.lower() in UNKNOWN_TOKENS:
        return None
    if kind is str:
        return raw
    try:
        number = float(raw)
    except ValueError:
        return None
    lo_hi = PLAUSIBLE.get(name)
    if lo_hi is not None and not lo_hi[0] <= number <= lo_hi[1]:
        return None
    if kind is int:
        return int(number) if number.is_integer() else None
    return number


def parse_series_description(text: str | None) -> dict[str, Any]:
    """Parse one NLST description into typed fields; all None when it is not the NLST form.

    The study year must be 0, 1 or 2 and the form must have 11 fields; anything else
    (another collection's free text) gives all-None fields rather than a guess.
    """
    empty: dict[str, Any] = {name: None for name, _ in NLST_FIELDS}
    if not text:
        return empty
    parts = _split(text)
    if parts is None or parts[0] not in ("0", "1", "2"):
        return empty
    return {name: _value(name, kind, raw) for (name, kind), raw in zip(NLST_FIELDS, parts, strict=True)}


def is_localizer(image_type: str | None, description: str | None) -> bool:
    """NLST image types end in L for localizers (OPL, DPL, OSL, DSL); other collections say so in text."""
    if image_type:
        return len(image_type) == 3 and image_type.endswith("L")
    text = (description or "").lower()
    return any(word in text for word in ("localizer", "localiser", "scout", "topogram", "surview"))


def deepcac_rank(thickness_mm: float | None, kernel: str | None) -> tuple[int, float, int]:
    """Sort key of DeepCAC's preference: a listed spacing first, then closest to 2.5 mm, then kernel order.

    The index has slice thickness, not spacing; NLST reconstructions are contiguous, so
    thickness stands in for spacing here (the loader measures the real spacing).
    """
    known = thickness_mm is not None and not math.isnan(thickness_mm)
    listed = 0 if known and any(abs(thickness_mm - s) <= SPACING_TOLERANCE_MM for s in DEEPCAC_SPACINGS_MM) else 1
    distance = abs(thickness_mm - DEEPCAC_TARGET_SPACING_MM) if known else math.inf
    kernel_rank = _KERNEL_RANK.get(kernel.upper() if isinstance(kernel, str) else "", len(DEEPCAC_KERNEL_ORDER))
    return listed, distance, kernel_rank
