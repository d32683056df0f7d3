"""Derived UIDs: valid 2.25 UUID form, stable, and different whenever an input differs."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from pydicom.uid import UID

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.uids import NAMESPACE, derive_uid, output_uid

from .synthetic import CARD


def test_derived_uid_is_the_documented_uuid5() -> None:
    # docs/outputs.md: 2.25.<int of uuid5(NAMESPACE, JSON list of the parts)>
    expected = uuid.uuid5(NAMESPACE, json.dumps(["a", "b"], separators=(",", ":"))).int
    assert derive_uid("a", "b") == f"2.25.{expected}"
    assert NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/deepcac2/deepcac2/uids")


def test_uid_is_valid_and_stable() -> None:
    uid = output_uid("seg-sop", "1.2.3", CARD)
    assert UID(uid).is_valid and len(uid) <= 64
    assert int(uid.split(".")[2]) < 2**128
    assert output_uid("seg-sop", "1.2.3", CARD) == uid


def test_no_collision_from_joining() -> None:
    assert derive_uid("ab", "c") != derive_uid("a", "bc")


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "sr-sop"},
        {"series": "1.2.4"},
        {"card": dataclasses.replace(CARD, version="9")},
        {"card": dataclasses.replace(CARD, weights_sha256="cd" * 32)},
        {"card": dataclasses.replace(CARD, name="other")},
        {"toolkit": "9.9.9"},
    ],
)
def test_every_input_changes_the_uid(change: dict) -> None:
    base = {"kind": "seg-sop", "series": "1.2.3", "card": CARD, "toolkit": "0.1.0"}
    a = output_uid(base["kind"], base["series"], base["card"], toolkit_version=base["toolkit"])
    base.update(change)
    b = output_uid(base["kind"], base["series"], base["card"], toolkit_version=base["toolkit"])
    assert a != b


def test_empty_part_is_refused() -> None:
    with pytest.raises(DeepCACError) as e:
        derive_uid("seg", "")
    assert e.value.code is ErrorCode.E_UID_INVALID
