"""Where series come from (a local folder, IDC's buckets) and the bounded cache that stages them."""

from deepcac2.pipeline.sources.base import Source
from deepcac2.pipeline.sources.cache import RetryPolicy, SeriesCache, Staged, fetch_verified
from deepcac2.pipeline.sources.idc import IDCSource
from deepcac2.pipeline.sources.local import LocalSource

__all__ = ["IDCSource", "LocalSource", "RetryPolicy", "SeriesCache", "Source", "Staged", "fetch_verified"]
