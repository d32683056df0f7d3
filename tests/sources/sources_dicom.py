"""Small DICOM files for the source tests (module name unique across test folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dicom_factory import ct_slice, to_bytes


def ct_bytes(series: str, study: str, index: int, side: int = 8) -> bytes:
    """One CT image file (``side`` x ``side`` pixels, all equal to ``index``) as bytes."""
    pixels = np.full((side, side), index, dtype=np.int16)
    return to_bytes(
        ct_slice(pixels, series_uid=series, study_uid=study, position=(0, 0, 2.5 * index), InstanceNumber=index + 1)
    )


def write_series(folder: Path, series: str, study: str, n: int, names: str = "{i}.dcm") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / names.format(i=i)
        path.write_bytes(ct_bytes(series, study, i))
        out.append(path)
    return out
