"""Turn one scored series into DICOM SEG, DICOM SR, table rows and its review picture (``review_picture``).

Public API: :func:`convert_series` and :class:`ConvertedSeries` (from ``series``),
``parquet_tables.write_table``, and the row builders in ``rows``. They are loaded lazily so
that ``seg`` and ``sr`` can use ``reproducible`` without an import cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConvertedSeries", "convert_series"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from deepcac2.pipeline.convert import series

        return getattr(series, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
