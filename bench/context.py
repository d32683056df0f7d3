"""What every stage benchmark receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BenchContext:
    work: Path
    quick: bool
    repeats: int
    #: shared inputs built once (e.g. series folders), keyed by name
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    stage: str
    metric: str
    value: float
    unit: str
    #: the target as text (e.g. "<= 1.2") and whether it is met; None when there is no target
    target: str | None = None
    met: bool | None = None
    spread: float | None = None
    detail: str = ""
