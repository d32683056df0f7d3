"""Contrast-enhanced CT is refused (E_CONTRAST_ENHANCED) before the anatomy; non-contrast chests are not.

Synthetic contrast: a synthetic chest whose blood (chambers, aorta, pulmonary artery, vena cava,
coronaries) is raised by 150-200 HU after the noise, as iodine raises it (non-contrast blood 38 HU).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.contrast import MIN_CORE_ML, blood_pool, refuse_contrast
from deepcac2.pipeline.stage_values import CTVolume
from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest

BLOOD = (
    Tissue.BLOOD, Tissue.CORONARY, Tissue.AORTA, Tissue.PULMONARY_ARTERY, Tissue.LEFT_VENTRICLE,
    Tissue.RIGHT_VENTRICLE, Tissue.LEFT_ATRIUM, Tissue.RIGHT_ATRIUM, Tissue.SUPERIOR_VENA_CAVA, Tissue.ARCH_BRANCH,
)  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "great-vessels"])
def chest(request):
    spec = ChestSpec(seed=5, rows=384, cols=384, pixel_spacing_mm=0.9, n_slices=48, noise_sd_hu=35, blur_sigma_mm=0.6)
    return build_chest(replace(spec, great_vessels=request.param))


def _ct(hu, phantom) -> CTVolume:
    return CTVolume(hu=hu, geometry=phantom.geometry, series_uid="1.2.3")


@pytest.mark.parametrize("raise_hu", [150, 200])
def test_raised_blood_is_refused_as_contrast(chest, raise_hu):
    hu = chest.hu.copy()
    hu[np.isin(chest.anatomy, [int(t) for t in BLOOD])] += raise_hu
    with pytest.raises(DeepCACError) as err:
        refuse_contrast(_ct(hu, chest))
    assert err.value.code is ErrorCode.E_CONTRAST_ENHANCED
    assert float(err.value.detail["blood_pool_median_hu"]) > 150


def test_the_same_chest_without_contrast_passes(chest):
    pool = refuse_contrast(_ct(chest.hu, chest))
    assert pool.core_ml < MIN_CORE_ML / 4  # bone (cancellous 250 HU inside its cortex) is not blood


@pytest.mark.slow
@pytest.mark.shared_data
def test_no_real_chest_is_flagged(shared_data: Path):
    from deepcac2.pipeline.loader import load_series

    folders = sorted({p.parent for p in (shared_data / "lung-pet-ct-dx").rglob("*.dcm")})
    folders.append(shared_data / "nsclc-radiomics" / "LUNG1-001")
    cores = {f.name: blood_pool(load_series(f)).core_ml for f in folders}
    assert len(cores) == 5 and max(cores.values()) < MIN_CORE_ML / 2, cores
