"""IDC's views of our SRs, replayed: the rules pinned to etl_flow's SQL, and every value kept (issue #22)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydicom
import pytest

from deepcac2.pipeline.convert.series import convert_series
from deepcac2.qa import idc_views
from deepcac2.qa.integrity import check_idc_views
from tests.convert import synthetic

RULES = json.loads((Path(idc_views.__file__).with_name("idc_views_rules.json")).read_text())


def _as_sets(rules: dict) -> dict:
    return {k: sorted(map(tuple, v)) if isinstance(v, list) else v for k, v in rules.items()}


def test_this_module_applies_the_pinned_rules() -> None:
    ours = idc_views.rules_of_this_module()
    assert set(ours) == set(RULES["files"])
    for name, facts in RULES["files"].items():
        pinned = _as_sets({k: v for k, v in facts.items() if k != "commit"})
        assert _as_sets(ours[name]) == pinned, name
        assert len(facts["commit"]) == 40


@pytest.mark.skipif(not os.environ.get("DEEPCAC2_ETL_FLOW_SQL"), reason="DEEPCAC2_ETL_FLOW_SQL: etl_flow's SQL folder")
def test_pinned_rules_are_read_from_the_sql_text() -> None:
    folder = Path(os.environ["DEEPCAC2_ETL_FLOW_SQL"])
    for name, facts in RULES["files"].items():
        read = idc_views.rules_from_sql(name, (folder / name).read_text())
        assert _as_sets(read) == _as_sets({k: v for k, v in facts.items() if k != "commit"}), name


def test_rules_are_read_from_sql_as_written() -> None:
    # the extraction reads the predicates, not comments: a commented-out site is no rule
    text = (
        'WHERE ConceptNameCodeSequence.CodeValue = "G-C0E3"\n AND ConceptNameCodeSequence.CodingSchemeDesignator = "SRT"\n'
        '# AND ConceptNameCodeSequence.CodeValue = "363698007" AND x.CodingSchemeDesignator = "SCT"\n'
        '( ConceptNameCodeSequence.CodeMeaning <> "121071"\n AND ConceptNameCodeSequence.CodingSchemeDesignator <> "DCM" )'
    )
    rules = idc_views.rules_from_sql("qualitative_measurements.sql", text)
    assert rules["finding_sites"] == [["G-C0E3", "SRT"]] and rules["excluded"] == [["121071", "DCM"]]


def test_bigquery_numeric_cast() -> None:
    assert idc_views.bigquery_numeric("1195.0") == 1195.0
    assert idc_views.bigquery_numeric("0.1234567895") == 0.12345679  # 9 places, half away from zero
    assert idc_views.bigquery_numeric("-0.0000000005") == -0.000000001
    assert idc_views.bigquery_numeric("NaN") is None and idc_views.bigquery_numeric("abc") is None
    assert idc_views.bigquery_numeric("1e30") is None  # beyond NUMERIC's 29 integer digits


@pytest.fixture()
def sr_path(tmp_path: Path) -> Path:
    ct = synthetic.ct_volume(synthetic.ct_datasets())
    scores = {c: synthetic.scores(c) for c in ("deepcac", "literature")}
    return convert_series(ct, synthetic.prediction(ct.shape), scores, tmp_path).sr_path


def test_both_views_keep_every_value_of_our_sr(sr_path: Path) -> None:
    sr = pydicom.dcmread(sr_path)
    numbers, codes = idc_views.sr_values(sr)
    assert numbers and len(codes) == 2 * 3  # three risk schemes in each all-coronary group
    assert idc_views.values_dropped(sr) == []
    assert len(idc_views.quantitative_measurements(sr)) == len(numbers)
    assert len(idc_views.qualitative_measurements(sr)) == len(codes)
    assert all(c.passed for c in check_idc_views("1.2.3", sr_path))


def _set_sites(items, value: tuple[str, str, str]) -> None:
    for item in items or []:
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue in ("G-C0E3", "363698007"):
            name[0].CodeValue, name[0].CodingSchemeDesignator, name[0].CodeMeaning = value
        _set_sites(item.get("ContentSequence"), value)


def test_an_sct_finding_site_loses_the_categories_and_qa_fails(sr_path: Path, tmp_path: Path) -> None:
    sr = pydicom.dcmread(sr_path)
    _set_sites(sr.ContentSequence, ("363698007", "SCT", "Finding Site"))
    lost = idc_views.values_dropped(sr)
    _, codes = idc_views.sr_values(sr)
    assert len(lost) == len(codes) and all(x.startswith("qualitative") for x in lost)
    path = tmp_path / "sct.dcm"
    sr.save_as(path)
    result = {c.check: c for c in check_idc_views("1.2.3", path)}["sr.idc_views_keep_values"]
    assert result.blocking_failure


def test_a_dcm_coded_evaluation_would_be_dropped(sr_path: Path) -> None:
    sr = pydicom.dcmread(sr_path)
    container = next(c for c in sr.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "126010")
    group = container.ContentSequence[0]
    code = next(i for i in group.ContentSequence if i.ValueType == "CODE" and "99DEEPCAC" in str(i))
    code.ConceptNameCodeSequence[0].CodingSchemeDesignator = "DCM"  # the view's WHERE drops any DCM concept
    assert any(x.startswith("qualitative: group 0") for x in idc_views.values_dropped(sr))
