"""Risk categories: band edges of all three schemes and the integer-rounding rule."""

from __future__ import annotations

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.risk_categories import categorize, category_index, labels


@pytest.mark.parametrize(
    ("score", "deepcac", "classic", "cac_drs"),
    [
        (0, "very low", "0", "0"),
        (0.4, "very low", "0", "0"),  # rounds to 0
        (0.6, "low", "1-10", "1-99"),
        (1, "low", "1-10", "1-99"),
        (10, "low", "1-10", "1-99"),
        (10.4, "low", "1-10", "1-99"),
        (11, "low", "11-100", "1-99"),
        (99, "low", "11-100", "1-99"),
        (99.6, "low", "11-100", "100-299"),
        (100, "low", "11-100", "100-299"),
        (100.4, "low", "11-100", "100-299"),
        (100.5, "low", "11-100", "100-299"),  # tie to even: 100
        (101, "moderate", "101-400", "100-299"),
        (299, "moderate", "101-400", "100-299"),
        (300, "moderate", "101-400", ">=300"),
        (300.6, "high", "101-400", ">=300"),
        (301, "high", "101-400", ">=300"),
        (400, "high", "101-400", ">=300"),
        (401, "high", ">400", ">=300"),
        (5000.0, "high", ">400", ">=300"),
    ],
)
def test_band_edges(score, deepcac, classic, cac_drs):
    assert categorize(score) == {"deepcac": deepcac, "classic": classic, "cac_drs": cac_drs}


def test_labels_in_order_and_index():
    assert labels("deepcac") == ("very low", "low", "moderate", "high")
    assert labels("classic") == ("0", "1-10", "11-100", "101-400", ">400")
    assert labels("cac_drs") == ("0", "1-99", "100-299", ">=300")
    assert [category_index("classic", lab) for lab in labels("classic")] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_scores_are_errors(bad):
    with pytest.raises(DeepCACError) as e:
        categorize(bad)
    assert e.value.code is ErrorCode.E_SCORING


def test_unknown_scheme_and_label():
    with pytest.raises(DeepCACError) as e:
        category_index("nope", "low")
    assert e.value.code is ErrorCode.E_CONVENTION_UNKNOWN
    with pytest.raises(DeepCACError):
        category_index("deepcac", "medium")
