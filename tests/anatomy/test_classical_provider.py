"""Provider ``classical``: the classical heart localiser (and its aortic sections) as an Anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.pipeline import types
from deepcac2.pipeline.anatomy.registry import load_provider, resolve_anatomy

synth = pytest.importorskip("deepcac2.pipeline.synth.phantom")


@pytest.fixture(scope="module")
def chest():
    ph = synth.build_chest(
        synth.ChestSpec(seed=1, rows=256, cols=256, pixel_spacing_mm=1.4, n_slices=48, slice_increment_mm=3.0)
    )
    return ph, types.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid="1.2.826.0.1.3")


def test_classical_covers_every_series_and_is_the_auto_fallback(chest):
    _, ct = chest
    ref = types.SeriesRef(ct.series_uid)
    assert load_provider("classical").covers(ref)
    a = resolve_anatomy(ref, ct)
    assert a.provenance.provider == "classical" and a.provenance.seg_series_uid is None


def test_classical_anatomy_is_the_localiser_heart_with_a_rough_aorta(chest):
    from deepcac2.pipeline.models.classical.heart import localise_heart

    ph, ct = chest
    a = load_provider("classical").anatomy(types.SeriesRef(ct.series_uid), ct)
    np.testing.assert_array_equal(a.heart, localise_heart(ct.hu, ct.geometry))
    assert all(m.shape == ct.shape and m.dtype == bool for m in a.masks().values())
    # the tube is mostly the phantom's aorta, and never the heart
    assert a.aorta.any() and not (a.aorta & a.heart).any()
    from deepcac2.pipeline.synth.labels import Tissue

    truth = ph.anatomy == Tissue.AORTA
    assert (a.aorta & truth).sum() >= 0.5 * a.aorta.sum()
    assert not a.pulmonary_artery.any()
    assert any("no pulmonary artery" in n for n in a.notes)
