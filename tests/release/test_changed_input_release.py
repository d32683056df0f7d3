"""Done-when of issue #22: a second release built with one changed input shares no UID with the first for
the objects that changed, ``release diff`` finds no object changed under its UID, and IDC's views, replayed,
keep every value of the SRs."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pydicom
import pytest

from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.convert.series import convert_series, write_series_tables
from deepcac2.qa.idc_views import values_dropped
from deepcac2.release.build import build_release
from deepcac2.release.diff import diff_releases
from tests.convert import synthetic

pytestmark = pytest.mark.slow  # two releases from real SEG/SR writing: about 15 s here

TS = AnatomyProvenance(
    "idc-totalsegmentator", "TotalSegmentator v1.5.6", "1.2.3.44", "1.2.3.44.1", "1.2.840.10008.5.1.4.1.1.66.4"
)


def _release(tmp: Path, provenance: AnatomyProvenance, version: str) -> Path:
    ct = synthetic.ct_volume(synthetic.ct_datasets())
    pred = synthetic.prediction(ct.shape)
    empty = np.zeros(ct.shape, dtype=bool)
    pred = dataclasses.replace(pred, anatomy=Anatomy(pred.heart, empty, empty, provenance))
    run = tmp / f"run-{version}"
    converted = convert_series(ct, pred, {c: synthetic.scores(c) for c in ("deepcac", "literature")}, run / "dicom")
    write_series_tables([converted], run / "tables")
    return build_release(run, version, tmp / f"rel-{version}", allow_no_qa=True, dashboard_patients=1)


def _sops(rel: Path) -> dict[str, str]:
    with open(rel / "idc_manifest.csv", newline="") as f:
        return {r["SOPInstanceUID"]: r["path"].split("/")[-2].split("_")[0] for r in csv.DictReader(f)}


def test_a_changed_anatomy_gives_a_release_with_new_uids(tmp_path: Path) -> None:
    # (the same inputs giving the same UIDs is tests/convert/test_content_uids.py)
    first = _release(tmp_path, TS, "1.0.0")
    second = _release(tmp_path, dataclasses.replace(TS, provider="classical", version="0.1.0"), "1.0.1")
    a, b = _sops(first), _sops(second)
    assert sorted(a.values()) == ["SEG", "SEG", "SR"]  # calcium and vessel SEGs, the SR
    assert sorted(b.values()) == ["SEG", "SEG", "SEG", "SR"]  # and the heart, made here when not IDC's
    assert not set(a) & set(b)  # every object depends on the anatomy: none keeps its UID
    series = lambda rel: {str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID)  # noqa: E731
                          for p in (rel / "dicom").rglob("*.dcm")}  # fmt: skip
    assert not series(first) & series(second)
    assert diff_releases(first, second, tmp_path / "diff").uid_conflicts == []
    for rel in (first, second):
        for path in (rel / "dicom").rglob("*.dcm"):
            ds = pydicom.dcmread(path)
            if ds.Modality == "SR":
                assert values_dropped(ds) == []
