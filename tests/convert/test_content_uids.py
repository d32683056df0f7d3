"""UIDs from content (issue #22): the same inputs give the same UIDs; each input on its own gives new ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from deepcac2._version import __version__
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.convert.series import convert_series
from deepcac2.pipeline.dicomout.content_key import content_key

from . import synthetic

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
TS = AnatomyProvenance("idc-totalsegmentator", "TotalSegmentator v1.5.6", "1.2.3.44", "1.2.3.44.1", SEG_CLASS)


def _with_anatomy(pred, provenance: AnatomyProvenance):
    empty = np.zeros(pred.cac.shape, dtype=bool)
    return dataclasses.replace(pred, anatomy=Anatomy(pred.heart, empty, empty, provenance))


def _uids(ct, pred, out: Path, conventions=("deepcac",), toolkit="0.1.0") -> dict[str, str]:
    scores = {c: synthetic.scores(c) for c in conventions}
    refs = convert_series(ct, pred, scores, out, toolkit_version=toolkit).refs
    return {
        "seg-series": refs.seg_series_uid,
        "seg-sop": refs.seg_sop_instance_uid,
        "vessel-sop": refs.vessel_seg_sop_instance_uid,
        "sr-series": refs.sr_series_uid,
        "sr-sop": refs.sr_sop_instance_uid,
    }


def _changed_hu(ct, pred):
    ct.hu[0, 0, 0] += 1  # one voxel of the source: a new input fingerprint
    return ct, pred


def _changed_mask(ct, pred):
    pred.cac[7, 40, 33] = True  # one more calcium voxel, e.g. another mask given to `convert`
    pred.vessels[7, 40, 33] = 4
    return ct, pred


CHANGES = {
    "input fingerprint": _changed_hu,
    "masks": _changed_mask,
    "weights": lambda ct, p: (ct, dataclasses.replace(p, card=dataclasses.replace(p.card, weights_sha256="cd" * 32))),
    "anatomy provider": lambda ct, p: (ct, _with_anatomy(p, dataclasses.replace(TS, provider="classical"))),
    "anatomy version": lambda ct, p: (ct, _with_anatomy(p, dataclasses.replace(TS, version="TotalSegmentator v2"))),
    "anatomy SEG": lambda ct, p: (ct, _with_anatomy(p, dataclasses.replace(TS, seg_sop_instance_uid="1.2.3.44.2"))),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_input_on_its_own_gives_new_uids(ct, tmp_path: Path, change: str) -> None:
    base_pred = _with_anatomy(synthetic.prediction(ct.shape), TS)
    first = _uids(ct, base_pred, tmp_path / "a")
    again = _uids(synthetic.ct_volume(synthetic.ct_datasets()), _with_anatomy(synthetic.prediction(ct.shape), TS),
                  tmp_path / "b")  # fmt: skip
    assert again == first  # same inputs, same UIDs
    fresh = _with_anatomy(synthetic.prediction(ct.shape), TS)  # the change below mutates its inputs
    ct2, pred2 = CHANGES[change](synthetic.ct_volume(synthetic.ct_datasets()), fresh)
    second = _uids(ct2, pred2, tmp_path / "c")
    assert not set(first.values()) & set(second.values()), change


def test_conventions_and_toolkit_change_the_uids(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    first = _uids(ct, pred, tmp_path / "a")
    conventions = _uids(ct, pred, tmp_path / "b", conventions=("deepcac", "literature"))
    # the SEGs encode the same masks: only the SR, which reports the conventions, changes
    assert conventions["seg-sop"] == first["seg-sop"]
    assert {conventions["sr-sop"], conventions["sr-series"]}.isdisjoint(first.values())
    toolkit = _uids(ct, pred, tmp_path / "c", toolkit="9.9.9")
    assert not set(first.values()) & set(toolkit.values())


def test_content_key_is_content_only(ct) -> None:
    pred = synthetic.prediction(ct.shape)
    key = content_key(ct, pred, "0.1.0")
    # a copy of the same series (new arrays, same values) keeps the key; the series UID is part of it
    assert content_key(synthetic.ct_volume(synthetic.ct_datasets()), synthetic.prediction(ct.shape), "0.1.0") == key
    assert dataclasses.replace(key, source_series_uid="1.2.9").digest() != key.digest()
    assert len(key.digest()) == 64 and key.parts()[0] == ct.series_uid


def test_equipment_body_part_and_creation_stamp(ct, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom import dcmread

    pred = synthetic.prediction(ct.shape)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z, the run's creation stamp
    second = convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path / "b")
    for path in (second.seg_path, second.sr_path):
        ds = dcmread(path)
        assert ds.ManufacturerModelName == synthetic.CARD.name and ds.BodyPartExamined == "CHEST"
        assert list(ds.SoftwareVersions) == [
            "deepcac2 " + __version__,
            f"{synthetic.CARD.name} {synthetic.CARD.version}",
        ]
        assert (ds.ContentDate, ds.ContentTime, ds.InstanceCreationDate) == ("20260101", "000000", "20260101")
    # without a stamp the source's study date (reproducible); the stamp never changes a UID
    assert dcmread(first.sr_path).ContentDate == "19990102"
    assert first.refs == second.refs
