"""The in-image truth: what a reader scores on the written image (``synth/image_truth.py``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deepcac2.pipeline.synth.image_truth import image_expected, reader_region
from deepcac2.pipeline.synth.phantom import PlaqueSpec, build_chest
from deepcac2.pipeline.synth.truth import phantom_expected
from tests.synth.phantoms import great_spec, small_spec


def test_on_an_exact_phantom_the_image_truth_is_the_analytic_truth():
    ph = build_chest(small_spec())
    nominal, in_image = phantom_expected(ph), image_expected(ph)
    assert set(in_image) == set(nominal)
    compared = 0
    for name, e in nominal.items():
        if e.agatston is None:  # a convention that resamples z has no analytic answer; the image one has
            assert in_image[name].agatston is not None
            continue
        got = in_image[name]
        assert got.agatston == pytest.approx(e.agatston, abs=1e-9), name
        assert got.volume_mm3 == pytest.approx(e.volume_mm3), name
        assert got.lesion_count == e.lesion_count, name
        assert got.mass_mg == pytest.approx(e.mass_mg), name
        assert {v: p.agatston for v, p in got.per_vessel.items()} == pytest.approx(
            {v: p.agatston for v, p in e.per_vessel.items()}
        ), name
        compared += 1
    assert compared >= 3


def test_blur_takes_a_faint_small_plaque_below_the_threshold_and_the_image_truth_follows():
    """A 2 mm plaque at 160 HU blurs away; a large dense one stays. Nominal counts both, the image only one."""
    plaques = (PlaqueSpec("LAD", (2.0, 2.0, 2.5), 160, 0.3), PlaqueSpec("RCA", (6.0, 6.0, 7.5), 600, 0.4))
    ph = build_chest(small_spec(plaques=plaques, blur_sigma_mm=1.2))
    assert not ph.exact
    nominal, in_image = phantom_expected(ph)["literature"], image_expected(ph)["literature"]
    assert nominal.lesion_count == 2 and set(nominal.per_vessel) == {"LAD", "RCA"}
    assert set(in_image.per_vessel) == {"RCA"}  # the LAD plaque is no longer visible at 130 HU
    assert in_image.lesion_count == 1
    # what the image holds at >= 130 HU in the reader's region, counted directly
    region = reader_region(ph) > 0
    vox = ((ph.hu >= 130) & region).sum() * float(np.prod(ph.geometry.spacing))
    assert in_image.volume_mm3 == pytest.approx(vox)


def test_the_reader_region_holds_no_non_coronary_calcium():
    ph = build_chest(great_spec(noise_sd_hu=20.0, blur_sigma_mm=0.6))
    region = reader_region(ph) > 0
    assert region.any() and ph.distractors.any()
    assert not (region & (ph.distractors > 0)).any()
    # and grows the painted plaques by exactly one voxel
    assert region.sum() > (ph.cac_vessels > 0).sum()
    assert (region[ph.cac_vessels > 0]).all()


def test_the_truth_table_carries_both_references(tmp_path):
    from deepcac2.pipeline.synth.truth_tables import TRUTH, truth_rows

    ph = build_chest(small_spec(noise_sd_hu=20.0))
    row = {"PatientID": "p", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3", "folder": "f", "kind": "chest"}
    rows = truth_rows(ph, row, phantom_expected(ph), image_expected(ph))
    names = {c.name for c in TRUTH.columns}
    assert {"agatston_in_image", "category_deepcac_in_image"} <= names
    by = {r["convention"]: r for r in rows}
    assert by["literature"]["agatston_in_image"] == image_expected(ph)["literature"].agatston
    assert by["literature"]["agatston"] == phantom_expected(ph)["literature"].agatston
    assert dataclasses.is_dataclass(image_expected(ph)["deepcac"])
