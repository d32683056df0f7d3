"""Compatibility between two versions of a table schema, and the version bump it needs.

Rules (semver on ``TableSchema.version``):

* **major** (breaking): a column removed, retyped, its unit changed, its required-ness
  changed either way, a *required* column added, or the key changed. Old readers or
  old files no longer fit.
* **minor**: a nullable column added. Old readers ignore it; old files read as null.
* **patch**: only docs or column order changed.

``python -m deepcac2.schemas.compat --freeze schemas/released.json [--table NAME ...]``
records the current schemas (all, or the named ones) as released; ``--check
schemas/released.json`` lists released tables whose changes are not matched by a large
enough version bump (exit 1). A table joins the snapshot when it is first released;
until then its owner may change it freely.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepcac2.schemas.base import TableSchema

LEVELS = ("none", "patch", "minor", "major")


@dataclass(frozen=True)
class Change:
    column: str | None
    what: str
    level: str

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        return f"{self.level}: {where} {self.what}"


def snapshot(table: TableSchema) -> dict[str, Any]:
    """A JSON-able description of a schema (types as pyarrow's type strings)."""
    return {
        "name": table.name,
        "version": table.version,
        "doc": table.doc,
        "key": list(table.key),
        "columns": [
            {"name": c.name, "type": str(c.type), "required": c.required, "unit": c.unit, "doc": c.doc}
            for c in table.columns
        ],
    }


def _as_snapshot(t: TableSchema | dict[str, Any]) -> dict[str, Any]:
    return snapshot(t) if isinstance(t, TableSchema) else t


def diff(old: TableSchema | dict[str, Any], new: TableSchema | dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``, each with the bump level it needs."""
    o, n = _as_snapshot(old), _as_snapshot(new)
    oc = {c["name"]: c for c in o["columns"]}
    nc = {c["name"]: c for c in n["columns"]}
    changes: list[Change] = []
    for name, c in oc.items():
        if name not in nc:
            changes.append(Change(name, "removed", "major"))
            continue
        d = nc[name]
        if c["type"] != d["type"]:
            changes.append(Change(name, f"retyped {c['type']} -> {d['type']}", "major"))
        if c["required"] != d["required"]:
            changes.append(Change(name, f"required {c['required']} -> {d['required']}", "major"))
        if c.get("unit") != d.get("unit"):
            changes.append(Change(name, f"unit {c.get('unit')} -> {d.get('unit')}", "major"))
        if c.get("doc") != d.get("doc"):
            changes.append(Change(name, "doc changed", "patch"))
    for name, d in nc.items():
        if name not in oc:
            level = "major" if d["required"] else "minor"
            changes.append(Change(name, f"added ({'required' if d['required'] else 'nullable'})", level))
    if list(o["key"]) != list(n["key"]):
        changes.append(Change(None, f"key {o['key']} -> {n['key']}", "major"))
    if o.get("doc") != n.get("doc"):
        changes.append(Change(None, "doc changed", "patch"))
    if [c for c in oc if c in nc] != [c for c in nc if c in oc]:
        changes.append(Change(None, "column order changed", "patch"))
    return changes


def needed_bump(changes: list[Change]) -> str:
    return max((c.level for c in changes), key=LEVELS.index, default="none")


def _parse(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"schema version {version!r} is not MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def bump_problems(old: TableSchema | dict[str, Any], new: TableSchema | dict[str, Any]) -> list[str]:
    """Why ``new``'s version does not match its changes from ``old`` (empty when it does)."""
    o, n = _as_snapshot(old), _as_snapshot(new)
    changes = diff(o, n)
    level = needed_bump(changes)
    ov, nv = _parse(o["version"]), _parse(n["version"])
    ok = {
        "none": nv >= ov,
        "patch": nv > ov,
        "minor": nv[0] > ov[0] or (nv[0] == ov[0] and nv[1] > ov[1]),
        "major": nv[0] > ov[0],
    }[level]
    if ok:
        return []
    listed = "; ".join(str(c) for c in changes) or "no changes"
    return [f"{n['name']}: {o['version']} -> {n['version']} but the changes need a {level} bump ({listed})"]


def check_released(released: dict[str, dict[str, Any]], current: dict[str, TableSchema]) -> list[str]:
    """Problems of every current table against its released snapshot; a table removed is a problem too."""
    problems: list[str] = []
    for name, snap in sorted(released.items()):
        if name not in current:
            problems.append(f"{name}: released table is gone")
            continue
        problems += bump_problems(snap, current[name])
    return problems


def main(argv: list[str] | None = None) -> int:
    from deepcac2.schemas.registry import TABLES

    p = argparse.ArgumentParser(prog="python -m deepcac2.schemas.compat", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--freeze", type=Path, help="write the current schemas as the released snapshot")
    g.add_argument("--check", type=Path, help="check the current schemas against a released snapshot")
    p.add_argument("--table", action="append", help="with --freeze: only these tables (default all)")
    args = p.parse_args(argv)
    if args.freeze:
        names = args.table or sorted(TABLES)
        data = {name: snapshot(TABLES[name]) for name in sorted(names)}
        args.freeze.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return 0
    problems = check_released(json.loads(args.check.read_text()), TABLES)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
