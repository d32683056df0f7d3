"""The ``local`` source: series already on disk, in any layout (``cohort --from-dir``).

Input identity: ``cohort --from-dir`` records, per series, a fingerprint of the files
under its ``location`` (:func:`~deepcac2.pipeline.loader.read.folder_fingerprint`); the run compares it before loading
(:func:`check_unchanged`), so slices deleted or replaced after the cohort was made are
``E_INPUT_CHANGED`` instead of a series scored on what is left.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.identifiers import validate_uid
from deepcac2.pipeline.loader.read import folder_fingerprint
from deepcac2.pipeline.stage_values import SeriesRef

#: the SeriesRef.params key (a cohort column) that carries the fingerprint to the run
FINGERPRINT = "source_fingerprint"


def check_unchanged(ref: SeriesRef, folder: Path) -> None:
    """E_INPUT_CHANGED when the series' folder no longer matches the cohort's fingerprint (none recorded: no check)."""
    recorded = (ref.params or {}).get(FINGERPRINT)
    if not recorded:
        return
    now = folder_fingerprint(folder)
    if now == recorded:
        return
    then_n, now_n = str(recorded).split(":", 1)[0], now.split(":", 1)[0]
    change = (
        f"{now_n} files now, {then_n} when the cohort was made" if then_n != now_n else "file names, sizes or times"
    )
    raise DeepCACError(
        ErrorCode.E_INPUT_CHANGED,
        f"the files of series {ref.series_uid} in {folder} changed since the cohort was made ({change}); "
        "make the cohort again, or pass --rescan to load them as they are",
        series=ref.series_uid,
        recorded=recorded,
        found=now,
    )


class LocalSource:
    """Stages a series from its ``location`` folder by hard link (copy across file systems).

    A folder may hold several series, so only files whose SeriesInstanceUID matches are
    staged. With ``root`` set, every location must lie inside it (relative ones are taken
    from it), so a cohort file cannot point the pipeline anywhere else on the machine.
    """

    name = "local"

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else None

    def _folder(self, ref: SeriesRef) -> Path:
        if not ref.location:
            raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"series {ref.series_uid} has no local location")
        folder = Path(ref.location)
        if self.root is not None:
            folder = (self.root / folder).resolve()
            if not folder.is_relative_to(self.root):
                raise DeepCACError(
                    ErrorCode.E_FETCH_FAILED, f"location {ref.location} is outside the source root {self.root}"
                )
        if not folder.is_dir():
            raise DeepCACError(
                ErrorCode.E_FETCH_FAILED, f"location {folder} of series {ref.series_uid} is not a folder"
            )
        return folder

    def series_files(self, ref: SeriesRef) -> list[Path]:
        """Files under the series' location whose header names this series, sorted.

        The folder is listed as the cohort and the loader list it (``loader.read.walk_files``).
        """
        from deepcac2.pipeline.loader.read import walk_files

        uid = validate_uid(ref.series_uid, "SeriesInstanceUID")
        found = []
        for path in walk_files(self._folder(ref)):
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            except Exception:  # noqa: BLE001 - not DICOM or damaged: not a file of this series
                continue
            if str(ds.get("SeriesInstanceUID", "")).strip() == uid:
                found.append(path)
        return found

    def size(self, ref: SeriesRef) -> int | None:
        if ref.size_bytes is not None:
            return ref.size_bytes
        return sum(p.stat().st_size for p in self.series_files(ref))

    def fetch(self, ref: SeriesRef, dest: Path) -> None:
        files = self.series_files(ref)
        if not files:
            raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"no files of series {ref.series_uid} under {ref.location}")
        base = self._folder(ref)
        for path in files:
            # flatten the relative path: two sub-folders may both hold an IMG0001
            target = dest / str(path.relative_to(base)).replace(os.sep, "__")
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
