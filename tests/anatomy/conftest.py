"""A small great-vessel chest written by synth, with the TotalSegmentator SEG synth writes beside it (dcmqi)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deepcac2.pipeline import stage_values


@dataclass
class SegCase:
    root: Path
    ct_folder: Path
    seg: Path
    ct: stage_values.CTVolume
    #: the label map synth gave dcmqi (TotalSegmentator v1 IDs, boundary errors included)
    labels: np.ndarray
    phantom: object

    def ref(self, *candidates: dict) -> stage_values.SeriesRef:
        cands = list(candidates) or [{"SeriesInstanceUID": "x", "location": str(self.seg)}]
        return stage_values.SeriesRef(self.ct.series_uid, params={"totalseg": cands})


@pytest.fixture(scope="session")
def seg_case(tmp_path_factory) -> SegCase:
    import pyarrow.parquet as pq

    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.synth.named_cohorts import write_cohort
    from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest
    from deepcac2.pipeline.synth.totalseg_writer import label_map, with_boundary_errors

    root = tmp_path_factory.mktemp("totalseg")
    write_cohort("chest", root, seed=6, rows=96, pixel_spacing_mm=3.6, plaques=2, noise=0, great_vessels=True)
    row = pq.read_table(root / "manifest.parquet").to_pylist()[0]
    ct_folder = root / row["folder"]
    seg = next(p for p in root.rglob("seg.dcm"))
    ct = load_series(ct_folder)
    # the same phantom the cohort built (the chest cohort's spec), for the expected label map
    from deepcac2.pipeline.synth.named_cohorts import GREAT_VESSEL_Z_CENTER_MM, GREAT_VESSEL_Z_MM
    from deepcac2.pipeline.synth.phantom import random_plaques

    spec = ChestSpec(seed=6, rows=96, cols=96, n_slices=int(round(GREAT_VESSEL_Z_MM / 2.5)), noise_sd_hu=0.0,
                     blur_sigma_mm=0.0, plaques=random_plaques(np.random.default_rng([6, 7]), 2),
                     pixel_spacing_mm=3.6, great_vessels=True, z_center_mm=GREAT_VESSEL_Z_CENTER_MM)  # fmt: skip
    phantom = build_chest(spec)
    assert np.array_equal(phantom.hu, ct.hu), "the fixture must rebuild the cohort's phantom"
    labels = with_boundary_errors(label_map(phantom), phantom.geometry.spacing, phantom.seed)
    return SegCase(root, ct_folder, seg, ct, labels, phantom)


@pytest.fixture
def seg_copy(seg_case, tmp_path) -> Path:
    """A copy of the SEG to damage."""
    return Path(shutil.copy(seg_case.seg, tmp_path / "seg.dcm"))
