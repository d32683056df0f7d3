"""validate_uid: PS3.5 §9.1 rules, so a valid UID is always safe in a path."""

from __future__ import annotations

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import validate_uid


@pytest.mark.parametrize("uid", ["1.2.840.10008.5.1.4.1.1.2", "0", "1.0.2", "2.25." + "9" * 59])
def test_valid(uid):
    assert validate_uid(uid) == uid
    assert len(uid) <= 64


@pytest.mark.parametrize(
    "uid",
    [
        "",
        None,
        "1.2." + "3" * 61,  # 65 characters
        "1.02.3",  # leading zero in a component
        "1..2",
        "1.2.",
        ".1.2",
        "1.2.3a",
        "1.2/3",
        "../1.2",
        "1.2 .3",
        "1.2.3\n",
    ],
)
def test_invalid(uid):
    with pytest.raises(DeepCACError) as info:
        validate_uid(uid)
    assert info.value.code == ErrorCode.E_UID_INVALID


def test_one_rule_for_loader_sources_cohort_and_writers() -> None:
    """The loader rejected ``1.02.3`` while the sources accepted it: now every path uses one function."""
    from deepcac2.pipeline import identifiers as ids
    from deepcac2.pipeline import uids
    from deepcac2.pipeline.cohort import localdir
    from deepcac2.pipeline.convert import series

    assert validate_uid is uids.validate_uid and ids.validate_uid is uids.validate_uid
    for check in (ids.validate_uid, series._safe_dirname):
        with pytest.raises(DeepCACError) as info:
            check("1.02.3")
        assert info.value.code == ErrorCode.E_UID_INVALID
    assert not uids.is_valid_uid("1.02.3") and uids.is_valid_uid("1.2.3")
    assert "is_valid_uid" in localdir.__dict__  # the cohort's folder scan asks the same rule
