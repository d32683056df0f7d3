"""The NLST SeriesDescription form (FACTS.md section 4)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from deepcac2.pipeline.cohort.nlst import deepcac_rank, is_localizer, parse_series_description


def test_facts_example_parses_into_typed_fields():
    got = parse_series_description("2,OPA,GE,LSPLUS,LUNG,360,2.5,120,80,0.1,1.5")
    assert got["study_year"] == 2 and isinstance(got["study_year"], int)
    assert (got["image_type"], got["scanner_manufacturer"], got["scanner_model"], got["kernel"]) == (
        "OPA",
        "GE",
        "LSPLUS",
        "LUNG",
    )
    assert (got["fov_mm"], got["slice_thickness_mm"], got["kvp"], got["ma"]) == (360.0, 2.5, 120.0, 80.0)
    assert math.isclose(got["nlst_field10"], 0.1) and got["nlst_field11"] == 1.5


def test_unknown_tokens_become_none():
    got = parse_series_description("0,OPA,SE,SEN16,unkn,null,na,120,na,na,UNK")
    assert got["kernel"] is None and got["fov_mm"] is None and got["slice_thickness_mm"] is None
    assert got["ma"] is None and got["nlst_field11"] is None
    assert got["kvp"] == 120.0 and got["scanner_manufacturer"] == "SE"


def test_sentinels_and_misplaced_values_are_not_reported_as_thickness():
    # 999 = unknown thickness; GE localizers write the scan length (350.2) in the thickness field.
    assert parse_series_description("1,OPA,SE,SEN16,UNK,300,999,120,na,na,na")["slice_thickness_mm"] is None
    assert parse_series_description("1,OPL,GE,LSPR16,STANDARD,0,350.2,120,0,na,na")["slice_thickness_mm"] is None


def test_thousands_separator_in_fov_is_rejoined():
    # 12 comma fields in the index: "1,024" is one FOV value.
    got = parse_series_description("1,OPL,SE,SEN16,T20s,1,024,na,80,223.7,223,na")
    assert got["fov_mm"] == 1024.0
    assert got["slice_thickness_mm"] is None and got["kvp"] == 80.0 and got["ma"] == 223.7


def test_text_that_is_not_the_nlst_form_gives_all_none():
    for text in (None, "", "CHEST 1.25mm", "5,OPA,GE,LSPLUS,LUNG,360,2.5,120,80,0.1,1.5", "1,OPA,GE"):
        assert all(v is None for v in parse_series_description(text).values()), text


@given(
    year=st.sampled_from([0, 1, 2]),
    itype=st.sampled_from(["OPA", "OPL", "DSA"]),
    kernel=st.sampled_from(["B30f", "STANDARD", "FC51"]),
    thickness=st.sampled_from([1.0, 1.25, 2.0, 2.5, 3.2, 5.0]),
    kvp=st.sampled_from([80, 120, 140]),
    ma=st.integers(min_value=10, max_value=400),
)
def test_round_trip_of_generated_descriptions(year, itype, kernel, thickness, kvp, ma):
    text = f"{year},{itype},GE,LS16,{kernel},350,{thickness},{kvp},{ma},na,1.5"
    got = parse_series_description(text)
    assert (got["study_year"], got["image_type"], got["kernel"]) == (year, itype, kernel)
    assert (got["slice_thickness_mm"], got["kvp"], got["ma"]) == (thickness, float(kvp), float(ma))


def test_localizer_detection():
    assert is_localizer("OPL", None) and is_localizer("DSL", None)
    assert not is_localizer("OPA", "scout")  # the NLST code wins over free text
    assert is_localizer(None, "Topogram 0.6 T20s") and not is_localizer(None, "Chest 1.0 B30f")


def test_deepcac_rank_orders_spacing_then_kernel():
    # listed spacing first, even when an unlisted one is closer to 2.5 (3.2 is 0.7 away, 1.25 is 1.25 away)
    assert deepcac_rank(1.25, "BONE") < deepcac_rank(3.2, "B31f")
    assert deepcac_rank(2.5, "LUNG") < deepcac_rank(2.0, "B31f")
    assert deepcac_rank(2.0, "B30f") < deepcac_rank(2.0, "STANDARD") < deepcac_rank(2.0, "LUNG")
    assert deepcac_rank(2.0, "LUNG") < deepcac_rank(2.0, "FC30")  # an unlisted kernel comes last
    assert deepcac_rank(5.0, "B30f") < deepcac_rank(None, "B30f")
    # NLST writes 1.25 mm as 1.2 or 1.3: still a listed spacing, preferred over an unlisted 3.2
    assert deepcac_rank(1.2, "B30f")[0] == deepcac_rank(1.3, "B30f")[0] == 0
    assert deepcac_rank(1.2, "B30f") < deepcac_rank(3.2, "B30f")
    assert deepcac_rank(3.0, "B30f")[0] == 1
