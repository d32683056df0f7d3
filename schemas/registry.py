"""All tables by name: every module of this package that defines ``TABLE = TableSchema(...)``.

Discovered, not listed, so a stage that adds ``schemas/<table>.py`` is registered (and
documented, and compatibility-checked) without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import deepcac2.schemas as _package
from deepcac2.schemas.base import TableSchema

#: modules of the package that are machinery, not tables
_NOT_TABLES = {"base", "registry", "docs", "compat", "dictionary"}


def _load() -> dict[str, TableSchema]:
    tables: dict[str, TableSchema] = {}
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        if info.name in _NOT_TABLES or info.name.startswith("_"):
            continue
        table = getattr(importlib.import_module(f"{_package.__name__}.{info.name}"), "TABLE", None)
        if isinstance(table, TableSchema):
            if table.name in tables:
                raise RuntimeError(f"two schema modules define table {table.name!r}")
            tables[table.name] = table
    return tables


TABLES: dict[str, TableSchema] = _load()


def get_table(name: str) -> TableSchema:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
