"""What every data source provides: put one series' files into an empty local folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from deepcac2.pipeline.stage_values import SeriesRef


@runtime_checkable
class Source(Protocol):
    """A place series come from (a local folder tree, an S3 bucket).

    ``fetch`` writes the files of ``ref`` into ``dest`` (an existing, empty folder) and
    raises ``DeepCACError``: E_FETCH_TRANSIENT when a retry may help, E_FETCH_FAILED
    when it will not, E_UID_INVALID for an identifier unsafe to use in a path.
    """

    name: str

    def fetch(self, ref: SeriesRef, dest: Path) -> None: ...

    def size(self, ref: SeriesRef) -> int | None:
        """Bytes the series will take once fetched (the cohort's size when it has one)."""
        ...


def folder_stats(folder: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``folder``."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)
