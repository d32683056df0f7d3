"""All output tables by name (the ``cohort`` table belongs to the cohort stage and is added when present)."""

from __future__ import annotations

import importlib

from deepcac2.schemas.base import TableSchema

#: table name -> module of this package that defines ``TABLE``
_MODULES = ("cac_series", "cac_lesions", "measurements", "failures", "runs", "cohort")


def _load() -> dict[str, TableSchema]:
    tables: dict[str, TableSchema] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"deepcac2.schemas.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"deepcac2.schemas.{name}":
                raise
            continue  # a table another stage has not written yet
        table = getattr(module, "TABLE", None)
        if isinstance(table, TableSchema):
            tables[table.name] = table
    return tables


TABLES: dict[str, TableSchema] = _load()


def get_table(name: str) -> TableSchema:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
