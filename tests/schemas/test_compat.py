"""Schema compatibility rules and the version bump each change needs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pytest

from deepcac2.schemas import compat
from deepcac2.schemas.base import Column, TableSchema
from deepcac2.schemas.registry import TABLES

REPO = Path(__file__).resolve().parents[2]

BASE = TableSchema(
    name="t",
    version="1.2.3",
    doc="a table",
    key=("id",),
    columns=(
        Column("id", pa.string(), "id", required=True),
        Column("x", pa.float64(), "x", unit="mm"),
    ),
)


def _with(*columns: Column, version: str = "1.2.3", **kw) -> TableSchema:
    return dataclasses.replace(BASE, columns=tuple(columns), version=version, **kw)


ID, X = BASE.columns


@pytest.mark.parametrize(
    "new, level",
    [
        (_with(ID, X), "none"),
        (_with(ID, X, Column("y", pa.int32(), "y")), "minor"),
        (_with(ID, X, Column("y", pa.int32(), "y", required=True)), "major"),
        (_with(ID), "major"),
        (_with(ID, dataclasses.replace(X, type=pa.float32())), "major"),
        (_with(ID, dataclasses.replace(X, required=True)), "major"),
        (_with(dataclasses.replace(ID, required=False), X), "major"),
        (_with(ID, dataclasses.replace(X, unit="cm")), "major"),
        (_with(ID, dataclasses.replace(X, doc="better words")), "patch"),
        (_with(X, ID), "patch"),
        (_with(ID, X, key=("id", "x")), "major"),
    ],
)
def test_needed_bump(new: TableSchema, level: str) -> None:
    assert compat.needed_bump(compat.diff(BASE, new)) == level


@pytest.mark.parametrize(
    "version, ok",
    [("1.2.3", False), ("1.2.4", False), ("1.3.0", True), ("2.0.0", True), ("1.1.9", False)],
)
def test_added_nullable_column_needs_a_minor_bump(version: str, ok: bool) -> None:
    new = _with(ID, X, Column("y", pa.int32(), "y"), version=version)
    assert (compat.bump_problems(BASE, new) == []) is ok


@pytest.mark.parametrize("version, ok", [("1.9.0", False), ("2.0.0", True)])
def test_removed_column_needs_a_major_bump(version: str, ok: bool) -> None:
    problems = compat.bump_problems(BASE, _with(ID, version=version))
    assert (problems == []) is ok
    if not ok:
        assert "'x' removed" in problems[0]


def test_unchanged_schema_may_keep_its_version_but_not_go_back() -> None:
    assert compat.bump_problems(BASE, _with(ID, X)) == []
    assert compat.bump_problems(BASE, _with(ID, X, version="1.2.2")) != []


def test_bad_version_string_is_an_error() -> None:
    with pytest.raises(ValueError):
        compat.bump_problems(BASE, _with(ID, X, version="1.3"))


def test_snapshot_round_trips_through_json() -> None:
    snap = json.loads(json.dumps(compat.snapshot(BASE)))
    assert compat.diff(snap, BASE) == []
    assert compat.diff(snap, _with(ID)) == [compat.Change("x", "removed", "major")]


def test_current_schemas_are_compatible_with_the_released_snapshot() -> None:
    released = json.loads((REPO / "schemas" / "released.json").read_text())
    problems = compat.check_released(released, TABLES)
    assert problems == [], (
        "schema changed without a matching version bump; bump TableSchema.version "
        "(then refresh with: python -m deepcac2.schemas.compat --freeze schemas/released.json)"
    )


def test_check_cli(tmp_path: Path) -> None:
    snap = tmp_path / "released.json"
    assert compat.main(["--freeze", str(snap)]) == 0
    assert compat.main(["--check", str(snap)]) == 0
    data = json.loads(snap.read_text())
    data["cac_series"]["columns"].append({"name": "gone", "type": "string", "required": False, "unit": None, "doc": ""})
    snap.write_text(json.dumps(data))
    assert compat.main(["--check", str(snap)]) == 1
