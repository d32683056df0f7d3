"""Choose the series to process: the offline IDC index or a local folder, into one cohort table."""

from deepcac2.pipeline.cohort.nlst import parse_series_description
from deepcac2.pipeline.cohort.rules import CohortFilters
from deepcac2.pipeline.cohort.select import (
    explain,
    index_local,
    index_local_and_explain,
    select_and_explain,
    select_cohort,
)
from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort, write_cohort

__all__ = [
    "CohortFilters",
    "cohort_to_refs",
    "explain",
    "index_local",
    "index_local_and_explain",
    "parse_series_description",
    "read_cohort",
    "select_and_explain",
    "select_cohort",
    "write_cohort",
]
