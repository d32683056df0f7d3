"""Provider ``classical``: heart, aorta tracked through the scan and pulmonary trunk, on real chest CT."""

from __future__ import annotations

import pytest

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.registry import load_provider, resolve_anatomy

synth = pytest.importorskip("deepcac2.pipeline.synth.phantom")


@pytest.fixture(scope="module")
def chest():
    ph = synth.build_chest(
        synth.ChestSpec(seed=1, rows=256, cols=256, pixel_spacing_mm=1.4, n_slices=48, slice_increment_mm=3.0)
    )
    return ph, stage_values.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid="1.2.826.0.1.3")


def test_classical_covers_every_series_and_is_the_auto_fallback(chest):
    _, ct = chest
    ref = stage_values.SeriesRef(ct.series_uid)
    assert load_provider("classical").covers(ref)
    a = resolve_anatomy(ref, ct)
    assert a.provenance.provider == "classical" and a.provenance.seg_series_uid is None
    assert all(m.shape == ct.shape and m.dtype == bool for m in a.masks().values())
    assert a.heart.any() and not (a.heart & a.aorta).any() and not (a.heart & a.pulmonary_artery).any()
    assert any("pericardial fat" in n for n in a.notes)
