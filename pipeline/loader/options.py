"""How strict the loader is. The defaults fail rather than guess."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LoadOptions:
    """Choices for problem cases; every relaxation from the default is an explicit opt-in.

    Spacing rules are fractions of the series' median slice distance (measured along
    the slice normal), so they hold for 0.625 mm and 10 mm series alike.
    """

    #: missing slices or uneven spacing: raise E_GEOMETRY_GAP/E_GEOMETRY_UNEVEN, or resample linearly
    #: along the normal onto a regular grid at the median spacing
    gap_policy: Literal["fail", "resample"] = "fail"
    #: a slice distance within this fraction of the median counts as regular
    spacing_tolerance: float = 0.05
    #: with gap_policy="resample": the largest slice distance resampling may bridge, as a multiple
    #: of the median (2.0 = one missing slice); larger gaps still raise
    max_resample_gap: float = 2.0
    #: gantry tilt (positions sheared against the slice normal): raise E_GEOMETRY_TILT, or shift
    #: each slice in-plane onto an orthogonal grid
    tilt_policy: Literal["fail", "correct"] = "fail"
    #: largest in-plane drift of slice positions (mm) that is not called a shear
    tilt_tolerance_mm: float = 0.05
    #: two slices closer than this (mm, full 3-D position) are at the same position
    duplicate_tolerance_mm: float = 0.01
    #: largest difference between direction cosines that still counts as the same orientation
    orientation_tolerance: float = 1e-4
    min_slices: int = 5
    max_slices: int = 2000
    max_rows: int = 2048
    max_cols: int = 2048
    modalities: tuple[str, ...] = ("CT",)
    #: drop images whose ImageType contains LOCALIZER (scouts, topograms) with a note
    exclude_localizers: bool = True
    #: empty SeriesInstanceUID/SOPInstanceUID: "allow" keys slices by file path and notes that the
    #: series cannot be referenced by a SEG; "fail" raises E_UID_INVALID
    empty_uids: Literal["allow", "fail"] = "allow"
    #: unreadable files in the input: raise E_UNREADABLE_FILE, or skip them with a note
    skip_unreadable: bool = False
    #: HU given to voxels that tilt correction brings in from outside the scanned field
    fill_hu: float = -1024.0

    def __post_init__(self) -> None:
        if self.gap_policy not in ("fail", "resample"):
            raise ValueError(f"gap_policy must be 'fail' or 'resample', got {self.gap_policy!r}")
        if self.tilt_policy not in ("fail", "correct"):
            raise ValueError(f"tilt_policy must be 'fail' or 'correct', got {self.tilt_policy!r}")
        if self.empty_uids not in ("allow", "fail"):
            raise ValueError(f"empty_uids must be 'allow' or 'fail', got {self.empty_uids!r}")
        if not 0 < self.spacing_tolerance < 0.5:
            raise ValueError("spacing_tolerance must be a fraction in (0, 0.5)")
        if self.max_resample_gap < 1:
            raise ValueError("max_resample_gap is a multiple of the median spacing and must be >= 1")
        if self.min_slices < 2 or self.max_slices < self.min_slices:
            raise ValueError("need 2 <= min_slices <= max_slices")
        if self.max_rows < 1 or self.max_cols < 1:
            raise ValueError("max_rows and max_cols must be positive")
