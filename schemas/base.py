"""How a table schema is declared: once, with a doc string per column and a version.

Every table module in this package defines ``TABLE = TableSchema(...)``. Writers,
readers, QA and the generated docs all take the pyarrow schema from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    required: bool = False
    unit: str | None = None
    #: inclusive value range checked by QA (None: unbounded)
    minimum: float | None = None
    maximum: float | None = None
    #: the only values allowed (categorical columns), checked by QA
    allowed: tuple[str, ...] | None = None

    @property
    def finite(self) -> bool:
        """Every floating-point column holds finite numbers (or null): NaN and inf are never a measurement.

        The writer refuses them, and QA and ``release verify`` count them as out of range.
        """
        return pa.types.is_floating(self.type)

    @property
    def checked(self) -> bool:
        """Whether QA has a value rule for this column: a range, an allowed set, or finiteness."""
        return self.finite or self.minimum is not None or self.maximum is not None or bool(self.allowed)

    def rule(self) -> str:
        """The declared value rule in words, as QA's messages and docs/tables.md say it."""
        if self.allowed:
            return f"in {list(self.allowed)}"
        parts = []
        if self.minimum is not None or self.maximum is not None:
            parts.append(f"[{self.minimum}, {self.maximum}]")
        if self.finite:
            parts.append("(finite)")
        return " ".join(parts)

    def to_field(self) -> pa.Field:
        meta = {b"doc": self.doc.encode()}
        if self.unit:
            meta[b"unit"] = self.unit.encode()
        return pa.field(self.name, self.type, nullable=not self.required, metadata=meta)


@dataclass(frozen=True)
class TableSchema:
    """A named, versioned table. ``version`` is semver: a major bump breaks readers."""

    name: str
    version: str
    doc: str
    columns: tuple[Column, ...]
    #: columns that together identify a row; ``"Quantity.CodeValue"`` names a field of a struct column
    key: tuple[str, ...] = ()

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema(
            [c.to_field() for c in self.columns],
            metadata={b"table": self.name.encode(), b"schema_version": self.version.encode()},
        )

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def key_value(row: dict, key: str) -> object:
    """The value of a key part in a row dict: ``"a.b"`` is field ``b`` of struct column ``a``."""
    value: object = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
