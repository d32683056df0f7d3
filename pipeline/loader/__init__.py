"""DICOM series to CT volume: robust loading with typed errors for every bad-input case.

Public API: :func:`load_series`, :class:`LoadOptions`, :func:`scan_headers`,
:class:`HeaderSummary`, :func:`validate_uid`. See ``docs/loader.md``.
"""

from deepcac2.pipeline.loader.options import LoadOptions
from deepcac2.pipeline.loader.scan import HeaderSummary, group_by_series, scan_headers
from deepcac2.pipeline.loader.series_volume import load_series
from deepcac2.pipeline.loader.uid import validate_uid

__all__ = ["HeaderSummary", "LoadOptions", "group_by_series", "load_series", "scan_headers", "validate_uid"]
