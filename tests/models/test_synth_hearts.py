"""The classical heart on synthetic chests with hard hearts (``ChestSpec.habitus``): against the front
chest wall, wide, obese. The phantom's heart (pericardium and its fat) is exact truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError
from deepcac2.pipeline.anatomy.classical.segment import classical_anatomy
from deepcac2.pipeline.anatomy.classical.thorax import WALL_MM
from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.phantom import ChestSpec, PlaqueSpec, build_chest

evaluate = pytest.importorskip("deepcac2.pipeline.dev.classical_evaluate")

#: on the anterior surface (LM, proximal and mid LAD) and in the right groove (RCA)
PLAQUES = (
    PlaqueSpec("LM", 3.0, 400, 0.5),
    PlaqueSpec("LAD", 3.0, 400, 0.2),
    PlaqueSpec("LAD", 3.0, 300, 0.6),
    PlaqueSpec("RCA", 3.0, 400, 0.3),
)
#: the CAC rules' search region round a heart that holds its fat (pericardial shell), mm
SHELL_MM = 5.0


def _chest(seed: int, habitus: tuple[str, ...]):
    spec = evaluate.chest_spec(seed, 20.0, plaques=PLAQUES)
    # 1.4 mm pixels: the classical anatomy works at 2 mm, and the test stays fast
    return build_chest(replace(spec, rows=256, cols=256, pixel_spacing_mm=1.4, habitus=habitus))


def test_habitus_is_checked():
    with pytest.raises(DeepCACError):
        ChestSpec(great_vessels=True, habitus=("barrel",))
    with pytest.raises(DeepCACError):
        ChestSpec(habitus=("obese",))  # only great-vessel chests


@pytest.mark.slow
def test_classical_heart_holds_the_whole_synthetic_heart_and_the_anterior_coronaries():
    # one chest with every habitus (CI's time): a wide heart against the front wall in an obese chest
    habitus = ("anterior_contact", "wide_heart", "obese")
    ph = _chest(3, habitus)
    sp = ph.geometry.spacing[::-1]  # (z, y, x) mm
    truth = ph.heart
    ks = np.flatnonzero(truth.any(axis=(1, 2)))
    mid = ks[len(ks) // 4 : 3 * len(ks) // 4 + 1]
    if "anterior_contact" in habitus:
        # the generator: no lung between the heart and the front chest wall in the heart's middle
        z = mid[len(mid) // 2]
        cols = np.flatnonzero(truth[z].any(axis=0))
        c = (cols[0] + cols[-1]) // 2
        front = np.flatnonzero(truth[z, :, c])[0]
        assert ph.anatomy[z, front - 1, c] not in (Tissue.LUNG, Tissue.LUNG_VESSEL)
    heart = classical_anatomy(ph.hu, ph.geometry).heart
    # the truth heart is held: all of it but the tips at the diaphragm and under the great vessels
    assert (heart & truth).sum() >= 0.93 * truth.sum(), (heart & truth).sum() / truth.sum()
    # ... and all of its front 8 mm on the slices through its middle (where the LAD runs), but for
    # WALL_MM next to the chest wall: the phantom paints the heart right onto the ribs, where a real
    # chest has the intercostal muscle and the pleura
    wall = np.isin(ph.anatomy, (Tissue.MUSCLE, Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE, Tissue.COSTAL_CARTILAGE))
    off_wall = ndi.distance_transform_edt(~wall, sampling=sp) > WALL_MM + sp[1]
    front = np.zeros_like(truth)
    front[mid] = truth[mid] & (np.cumsum(truth[mid], axis=1) <= int(8 / sp[1])) & off_wall[mid]
    assert (heart & front).sum() >= 0.97 * front.sum(), (heart & front).sum() / front.sum()
    # no lung, and not much more than the heart (the classical mask also holds mediastinal fat)
    assert np.isin(ph.anatomy[heart], (Tissue.LUNG, Tissue.LUNG_VESSEL)).mean() < 0.01
    assert heart.sum() <= 2.0 * truth.sum()
    # every coronary plaque lies in the CAC rules' search region; the LAD and RCA ones in the heart
    dist = ndi.distance_transform_edt(~heart, sampling=sp)
    for k, name in enumerate(("LM", "LAD", "LCX", "RCA"), 1):
        plaque = ph.cac_vessels == k
        if not plaque.any():
            continue
        assert dist[plaque].max() <= SHELL_MM, (name, dist[plaque].max())
        if name in ("LAD", "RCA"):
            assert heart[plaque].all(), name
