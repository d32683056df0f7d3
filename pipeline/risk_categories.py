"""Risk categories of an Agatston score: three schemes, kept as data.

Banding rule for non-integer scores (explicit, because bands are written in integers):
the score is first rounded to the nearest integer, ties to even (Python ``round``), as
DeepCAC2's published ``AGSCalculator`` does before it assigns the risk group. So 100.4
is "1-100" (low) and 100.6 is "101-300" (moderate); 0.4 is "0". Each band is then the
closed integer interval ``[low, high]``; the last band has no upper end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deepcac2.errors import DeepCACError, ErrorCode


@dataclass(frozen=True)
class Band:
    label: str
    #: inclusive integer bounds; ``high`` None means open-ended
    low: int
    high: int | None


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    bands: tuple[Band, ...]
    #: the concept name of the SR's evaluation of this scheme (``pipeline/sr/enum.py`` codes it)
    concept: str

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(b.label for b in self.bands)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            "deepcac",
            "DeepCAC / DeepCAC2 risk groups",
            (Band("very low", 0, 0), Band("low", 1, 100), Band("moderate", 101, 300), Band("high", 301, None)),
            "DeepCAC risk category",
        ),
        Scheme(
            "classic",
            "classic five Agatston bands",
            (
                Band("0", 0, 0),
                Band("1-10", 1, 10),
                Band("11-100", 11, 100),
                Band("101-400", 101, 400),
                Band(">400", 401, None),
            ),
            "Classic Agatston risk category",
        ),
        Scheme(
            "cac_drs",
            "CAC-DRS Agatston groups (cut-offs unconfirmed, see docs/conventions.md)",
            (Band("0", 0, 0), Band("1-99", 1, 99), Band("100-299", 100, 299), Band(">=300", 300, None)),
            "CAC-DRS category",
        ),
    )
}

#: schemes in report order
SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)


def rounded_score(agatston: float) -> int:
    """The integer a score is banded by (see the module doc)."""
    if not math.isfinite(agatston) or agatston < 0:
        raise DeepCACError(ErrorCode.E_SCORING, f"an Agatston score must be finite and >= 0, got {agatston!r}")
    return round(agatston)


def _scheme(scheme: str) -> Scheme:
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise DeepCACError(
            ErrorCode.E_CONVENTION_UNKNOWN, f"unknown risk scheme {scheme!r}; known: {', '.join(SCHEMES)}"
        ) from None


def category(scheme: str, agatston: float) -> str:
    """The band label of one scheme."""
    value = rounded_score(agatston)
    for band in _scheme(scheme).bands:
        if value >= band.low and (band.high is None or value <= band.high):
            return band.label
    raise AssertionError("bands cover all non-negative integers")  # pragma: no cover


def categorize(agatston: float) -> dict[str, str]:
    """Band labels of every scheme: ``{"deepcac": ..., "classic": ..., "cac_drs": ...}``."""
    return {name: category(name, agatston) for name in SCHEMES}


def labels(scheme: str) -> tuple[str, ...]:
    """The labels of a scheme, lowest risk first."""
    return _scheme(scheme).labels


def category_index(scheme: str, label: str) -> int:
    """Position of a label in its scheme (0 = lowest risk)."""
    names = labels(scheme)
    try:
        return names.index(label)
    except ValueError:
        raise DeepCACError(ErrorCode.E_SCORING, f"{label!r} is not a {scheme} category; known: {names}") from None
