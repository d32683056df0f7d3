"""QA of the coronary calcium against the anatomy: computed at run time on the row, judged by ``deepcac2 qa``."""

from __future__ import annotations

import json

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.convert.table_rows import anatomy_counts, qa_flags
from deepcac2.qa.result import Severity
from deepcac2.qa.series_checks import check_flags

CARD = stage_values.ModelCard(
    name="m", version="1", weights_sha256=None, license="MIT", training_data="", family="", description=""
)


def _case(cac_in_aorta: bool, aortic_reported: bool, wall: bool):
    shape = (10, 40, 40)
    hu = np.full(shape, 40, dtype=np.int16)
    heart = np.zeros(shape, bool)
    heart[2:8, 5:25, 5:25] = True
    aorta = np.zeros(shape, bool)
    aorta[:, 28:36, 28:36] = True
    cac = np.zeros(shape, bool)
    cac[4, 10:12, 10:12] = True
    if cac_in_aorta:
        cac[4, 30:32, 30:32] = True
    if wall:
        hu[5:7, 28:31, 28:31] = 400  # 18 voxels of calcified aortic wall
    hu[cac] = 300
    aortic = np.zeros(shape, bool)
    if aortic_reported and wall:
        aortic = (hu >= 130) & aorta & ~cac
    anatomy = Anatomy(heart, aorta, np.zeros(shape, bool), AnatomyProvenance("test", "0"))
    ct = stage_values.CTVolume(
        hu=hu, geometry=stage_values.Geometry((0, 0, 0), (1, 1, 2)), series_uid="1.2.3", mass_factor=1.0
    )
    pred = stage_values.Prediction(
        heart=heart, cac=cac, card=CARD, aortic=aortic, anatomy=anatomy, rejected={"aortic": 18}
    )
    return ct, pred


def test_counts_and_flags_on_the_row():
    ct, pred = _case(cac_in_aorta=True, aortic_reported=False, wall=True)
    counts = anatomy_counts(ct, pred)
    assert counts["cac_in_aorta_voxels"] == 4
    assert counts["aorta_wall_calcium_voxels"] == 18 + 4  # the coronary voxels in the aorta are bright too
    assert counts["aortic_calcium_voxels"] == 0
    assert json.loads(counts["candidate_rules_json"]) == {"aortic": 18}
    assert {"cac_in_aorta", "aortic_calcium_missed"} <= set(qa_flags(ct, pred, {}))
    ct, pred = _case(cac_in_aorta=False, aortic_reported=True, wall=True)
    flags = qa_flags(ct, pred, {})
    assert "cac_in_aorta" not in flags and "aortic_calcium_missed" not in flags
    assert anatomy_counts(ct, pred)["aortic_calcium_voxels"] == 18
    ct, pred = _case(cac_in_aorta=False, aortic_reported=False, wall=False)  # nothing calcified: nothing missed
    assert "aortic_calcium_missed" not in qa_flags(ct, pred, {})


def test_qa_blocks_coronary_calcium_in_the_aorta_and_warns_on_missed_aortic_calcium():
    rows = [
        {"SeriesInstanceUID": "a", "qa_flags": ["cac_in_aorta"], "cac_in_aorta_voxels": 4},
        {"SeriesInstanceUID": "b", "qa_flags": ["aortic_calcium_missed"], "cac_in_aorta_voxels": 0},
        {"SeriesInstanceUID": "c", "qa_flags": [], "cac_in_aorta_voxels": 0},
    ]
    results = check_flags(rows)
    blocking = {r.subject for r in results if r.severity is Severity.BLOCKING and not r.passed}
    warned = {r.subject for r in results if r.severity is Severity.WARNING and not r.passed}
    assert blocking == {"a"}
    assert warned == {"b"}
    assert any(r.check == "series.cac_in_aorta" and r.subject == "a" and r.value == 4 for r in results)
