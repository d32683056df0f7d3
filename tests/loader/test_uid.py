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
