"""Fixtures for loader tests (the series writer itself lives in factory.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .factory import Mutate, Spec, write_series


@pytest.fixture
def series(tmp_path: Path) -> Callable[..., tuple[Path, Spec]]:
    """``series(mutate=None, name="s", **spec_fields) -> (folder, spec)``."""

    def build(mutate: Mutate | None = None, name: str = "s", **fields: object) -> tuple[Path, Spec]:
        spec = Spec(**fields)  # type: ignore[arg-type]
        folder = tmp_path / name
        write_series(folder, spec, mutate)
        return folder, spec

    return build
