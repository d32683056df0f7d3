"""The heart-source comparison: the truth heart is its own reference, the other sources move the crop."""

from __future__ import annotations

import pytest

from deepcac2.pipeline.dev import unet_heart_sources as hs


@pytest.mark.slow
def test_heart_sources_on_one_chest(tmp_path):
    rows = hs.compare(101)
    by = {r.source: r for r in rows}
    assert set(by) == set(hs.SOURCES)
    assert by["truth"].crop_shift_mm == 0.0
    assert by["classical"].crop_shift_mm > 0.0  # a different heart puts the box elsewhere
    for r in rows:
        assert r.windows > 0 and 0 <= r.perfect_agatston <= r.truth_agatston + 1e-9
        assert 0 <= r.distractor_agatston <= r.distractor_total_agatston + 1e-9
    # the truth heart's windows hold every planted plaque of this chest
    assert by["truth"].perfect_agatston == pytest.approx(by["truth"].truth_agatston)
    assert by["totalseg-like"].heart_ml < by["truth"].heart_ml  # chambers and myocardium only
    table = hs.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| 101 | classical |" in table
