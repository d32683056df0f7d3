"""Expected scores "in the image": what a reader scores on the series as it was written.

The analytic truth (``truth.py``) scores each plaque at its painted HU. Once noise and
partial-volume blur are applied, a small or faint plaque can fall below 130 HU and a
dense one spreads over its neighbours, so no reader, and no model, can reproduce the
nominal score of a degraded series: on the demo cohort the nominal truth sits up to 10x
above what the image shows (a 16-voxel 180 HU plaque blurs below the threshold).

The in-image truth is the reference a reader makes: the reader knows where the coronary
plaques are (the painted plaques grown by one voxel, so the blur halo is included) and
the scoring software takes the voxels at or above the convention's threshold there. It
is scored by the scoring engine under each convention. Non-coronary calcium is never in
that region (synth keeps plaques apart from it), so a model that counts aortic, valvular
or bony calcium is still wrong against it. For a noise- and blur-free phantom it equals
the analytic truth (a test checks this).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from deepcac2.pipeline.synth.phantom import Phantom
from deepcac2.pipeline.synth.truth import ExpectedScores, VesselExpected, categories


def reader_region(phantom: Phantom) -> np.ndarray:
    """Vessel labels of the painted coronary plaques grown by one voxel (26-neighbourhood); 0 elsewhere."""
    return ndi.grey_dilation(phantom.cac_vessels, size=(3, 3, 3))


def image_expected(phantom: Phantom, conventions: Mapping[str, Any] | None = None) -> dict[str, ExpectedScores]:
    """Per convention, the scoring engine's result on the reader's mask of the written image."""
    from deepcac2.pipeline.conventions import CONVENTIONS, get_convention, kvp_bands
    from deepcac2.pipeline.scoring.engine import over_threshold, score_series

    region = reader_region(phantom)
    out = {}
    for name in conventions or CONVENTIONS:
        conv = get_convention(name)
        # a convention that scores its mask as it is (deepcac) gets the reader's threshold applied here
        mask = (region > 0) & over_threshold(phantom.hu, kvp_bands(phantom.kvp, conv.kvp_adjusted)[0], conv.inclusive)
        s = score_series(
            phantom.hu,
            phantom.geometry,
            mask,
            convention=conv,
            kvp=phantom.kvp,
            slice_thickness=phantom.slice_thickness_mm,
            vessels=np.where(mask, region, 0).astype(np.uint8),
            mass_factor=phantom.mass_factor,
        )
        out[name] = ExpectedScores(
            convention=name,
            agatston=s.agatston,
            volume_mm3=s.volume_mm3,
            mass_mg=s.mass_mg,
            lesion_count=s.lesion_count,
            exact=phantom.exact,
            per_vessel={
                v: VesselExpected(p.agatston, p.volume_mm3, p.mass_mg, p.lesion_count)
                for v, p in sorted(s.per_vessel.items())
                if p.lesion_count  # the engine lists every vessel; the truth lists those with calcium
            },
            categories=categories(s.agatston),
        )
    return out
