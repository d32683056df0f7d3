"""The data dictionary of a release, generated from the schemas: Markdown and CSV.

Column docs also live in each Parquet file's ``ARROW:schema``, which DuckDB and most
readers do not show; the dictionary puts them next to the tables as plain files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from deepcac2.schemas import docs
from deepcac2.schemas.base import TableSchema
from deepcac2.schemas.registry import TABLES

FIELDS = ("table", "schema_version", "column", "type", "required", "key", "unit", "minimum", "maximum",
          "allowed", "description")  # fmt: skip


def rows(tables: dict[str, TableSchema] | None = None) -> list[dict[str, str]]:
    """One row per column of every table, in table then column order."""
    out = []
    for name, table in sorted((tables or TABLES).items()):
        key_columns = {k.split(".")[0] for k in table.key}
        for c in table.columns:
            out.append(
                {
                    "table": name,
                    "schema_version": table.version,
                    "column": c.name,
                    "type": str(c.type),
                    "required": "yes" if c.required else "no",
                    "key": "yes" if c.name in key_columns else "no",
                    "unit": c.unit or "",
                    "minimum": "" if c.minimum is None else f"{c.minimum:g}",
                    "maximum": "" if c.maximum is None else f"{c.maximum:g}",
                    "allowed": "|".join(c.allowed or ()),
                    "description": c.doc,
                }
            )
    return out


def csv_text(tables: dict[str, TableSchema] | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(tables))
    return buf.getvalue()


def markdown_text(tables: dict[str, TableSchema] | None = None) -> str:
    """The same as docs/tables.md: the naming rule, then every table's columns."""
    return docs.render(tables).replace("# Output tables", "# Data dictionary", 1)


def write(out_dir: Path, tables: dict[str, TableSchema] | None = None) -> tuple[Path, Path]:
    """``DATA_DICTIONARY.md`` and ``data_dictionary.csv`` in ``out_dir``."""
    md, table = out_dir / "DATA_DICTIONARY.md", out_dir / "data_dictionary.csv"
    md.write_text(markdown_text(tables), encoding="utf-8")
    table.write_text(csv_text(tables), encoding="utf-8")
    return md, table
