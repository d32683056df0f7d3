"""Named scoring conventions: every way tools differ is a field here, never an ``if`` elsewhere.

A result always records ``Convention.name`` and ``Convention.params()``. See
``docs/conventions.md`` for the sources of each convention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from deepcac2.errors import DeepCACError, ErrorCode

#: Gräni et al. 2018 kVp-specific thresholds: kVp -> (detection, w2, w3, w4) lower bounds in HU.
#: 120 kVp is the classic 130/200/300/400 scale written as the upper ends 199/299/399 of the
#: lower bands; the detection threshold and band starts used are (130, 200, 300, 400).
GRANI_KVP_TABLE: dict[int, tuple[float, float, float, float]] = {
    70: (207, 318, 477, 636),
    80: (177, 271, 408, 544),
    100: (145, 222, 334, 446),
    120: (130, 199, 299, 399),
    135: (119, 183, 274, 364),
}

#: Classic Agatston band starts: detection threshold, then the HU where weight 2, 3 and 4 begin.
CLASSIC_BANDS: tuple[float, float, float, float] = (130.0, 200.0, 300.0, 400.0)


@dataclass(frozen=True)
class Convention:
    """How lesions are delimited and weighted.

    dims: 2 = components per axial slice; 3 = components in the volume.
    connectivity: 4 or 8 in 2-D; 6, 18 or 26 in 3-D.
    inclusive: lesion voxels are ``HU >= threshold`` (True) or ``HU > threshold`` (False).
    min_pixels: a 2-D component needs at least this many pixels (None: no rule).
    min_area_mm2: a 2-D component needs an area strictly greater than this (None: no rule).
    min_volume_mm3: a 3-D lesion needs at least this volume (None: no rule).
    slice_factor: multiply the summed slice scores by (spacing / 3) for "increment",
        (SliceThickness / 3) for "thickness".
    kvp_adjusted: use the Gräni table for the series kVp instead of 130/200/300/400.
    resample_z_mm: resample CT (linear) and mask (nearest) to this slice spacing first.
    mask_threshold: lesion voxels are mask AND over the threshold (True), or every mask
        voxel (False: the DeepCAC code scores the predicted mask as it is).
    round_decimals: round the per-pixel area x slice factor, and each component's score,
        to this many decimals (the DeepCAC code rounds both to 3); None: no rounding.
    mapped_mask: first replace the mask by the components, in each axial slice and with the
        convention's 2-D connectivity, of the voxels over the detection threshold that touch
        it (DeepCAC2's "mapped" variant, ``src/cacmapping.py``); then score as above.

    The threshold direction applies to detection only; weight bands always start at their
    lower bound (200-299 HU -> 2). A lesion whose peak lies under the second band gets
    weight 1, also when an unthresholded mask lets its peak fall under the detection threshold.
    """

    name: str
    description: str
    dims: Literal[2, 3] = 2
    connectivity: int = 8
    inclusive: bool = True
    min_pixels: int | None = None
    min_area_mm2: float | None = None
    min_volume_mm3: float | None = None
    slice_factor: Literal["increment", "thickness"] = "increment"
    kvp_adjusted: bool = False
    resample_z_mm: float | None = None
    mask_threshold: bool = True
    round_decimals: int | None = None
    mapped_mask: bool = False

    def __post_init__(self) -> None:
        allowed = {2: (4, 8), 3: (6, 18, 26)}[self.dims]
        if self.connectivity not in allowed:
            raise ValueError(f"{self.name}: connectivity {self.connectivity} is not valid in {self.dims}-D")
        if self.mapped_mask and self.dims != 2:
            raise ValueError(f"{self.name}: the mapped mask is built per slice; it needs a 2-D convention")

    def params(self) -> dict[str, Any]:
        """The parameters as plain JSON-able values (what results record)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "description"}

    def with_options(self, **changes: Any) -> Convention:
        """A variant, renamed so results never pass it off as the named original."""
        if not changes:
            return self
        suffix = ",".join(f"{k}={v}" for k, v in sorted(changes.items()))
        return replace(self, name=f"{self.name}[{suffix}]", **changes)


_DEEPCAC = Convention(
    name="deepcac",
    description="DeepCAC/DeepCAC2 code: the mask as given (no HU threshold), 2-D per slice, "
    "8-connected, more than 3 pixels, x spacing/3 on the CT grid, scores rounded to 3 decimals.",
    dims=2,
    connectivity=8,
    min_pixels=4,
    slice_factor="increment",
    mask_threshold=False,
    round_decimals=3,
)

CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        _DEEPCAC,
        replace(  # scored as 'deepcac' by construction: one set of parameters, not two kept in step
            _DEEPCAC,
            name="deepcac_mapped",
            description="DeepCAC2's 'mapped' variant (MHub all_pid_nrrd): the predicted mask replaced by the "
            "8-connected components of HU >= 130 in each slice that touch it, then scored as 'deepcac'.",
            mapped_mask=True,
        ),
        Convention(
            name="literature",
            description="Agatston 1990 as in the FQM tool: 2-D, 4-connected, area > 1 mm2, x increment/3.",
            dims=2,
            connectivity=4,
            min_area_mm2=1.0,
            slice_factor="increment",
        ),
        Convention(
            name="canon",
            description="Vendor rule set (Canon, as in the FQM tool): 2-D, 8-connected, at least 3 pixels, "
            "x SliceThickness/3.",
            dims=2,
            connectivity=8,
            min_pixels=3,
            slice_factor="thickness",
        ),
        Convention(
            name="lessmann3d",
            description="Lessmann / van Velzen chest-CT scoring: 3-D 26-connected lesions of at least "
            "1.5 mm3; each slice of a lesion weighted by its maximum HU in that slice; x spacing/3.",
            dims=3,
            connectivity=26,
            min_volume_mm3=1.5,
            slice_factor="increment",
        ),
    )
}

#: the convention of a single score (``deepcac2 score``, QA, the release's primary columns)
DEFAULT_CONVENTION = "deepcac"
#: the conventions a run computes when none are named (``deepcac2 run``, ``process``): stated here only
DEFAULT_CONVENTIONS: tuple[str, ...] = ("deepcac", "literature", "canon", "lessmann3d")


def get_convention(name: str | Convention) -> Convention:
    """A convention by name; a Convention object is returned as it is."""
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise DeepCACError(
            ErrorCode.E_CONVENTION_UNKNOWN, f"unknown scoring convention {name!r}; known: {', '.join(CONVENTIONS)}"
        ) from None


def kvp_bands(kvp: float | None, adjusted: bool) -> tuple[float, float, float, float]:
    """Detection threshold and weight band starts for a series.

    With ``adjusted``, the Gräni row of the nearest tabulated kVp is used (NLST's
    140 kVp scans take the 135 kV row). Its 120 kV row equals the classic scale.
    """
    if not adjusted or kvp is None:
        return CLASSIC_BANDS
    nearest = min(GRANI_KVP_TABLE, key=lambda k: (abs(k - kvp), k))
    if nearest == 120:
        return CLASSIC_BANDS
    return GRANI_KVP_TABLE[nearest]
