"""Reading a run's tables, and the few columns the release step relies on.

The release copies the tables byte for byte; it only reads them to count, plot and
diff. The column names it relies on are listed here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import TABLES_DIR
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.risk_categories import SCHEME_NAMES, category

SERIES_KEY = "SeriesInstanceUID"
STUDY_KEY = "StudyInstanceUID"
PATIENT_KEY = "PatientID"
STUDY_YEAR = "study_year"
#: the failures table's error code column
ERROR_CODE = "error_code"
#: metrics of cac_series, one wide column per convention: ``<metric>_<convention>``
SCORE = "agatston"
METRICS = (SCORE, "volume_mm3", "mass_mg", "lesion_count")


def category_column(scheme: str) -> str:
    """A scheme's risk category in the one-convention frame of :func:`primary_scores`."""
    return f"category_{scheme}"


def risk_column(scheme: str, convention: str) -> str:
    """The cac_series column of a scheme's category under a convention, e.g. ``risk_deepcac_deepcac``."""
    return f"risk_{scheme}_{convention}"


def table_path(root: Path, name: str) -> Path:
    return root / TABLES_DIR / f"{name}.parquet"


def table_frame(root: Path, name: str, required: bool = False) -> pd.DataFrame | None:
    """A table of a run or release folder as pandas, None when absent and not required.

    Read by ``pipeline.convert.parquet_tables.read_table``: a file of another table or schema major
    version is refused (E_TABLE_SCHEMA).
    """
    from deepcac2.pipeline.convert.parquet_tables import read_table

    return _readable(root, name, required, lambda schema, path: read_table(schema, path, unmarked_ok=True).to_pandas())


def checked_table(root: Path, name: str, required: bool = False) -> Path | None:
    """The path of a table :func:`table_frame` would read (its footer checked the same way), for readers
    that take a batch at a time; None when absent and not required."""
    from deepcac2.pipeline.convert.parquet_tables import check_marks

    def check(schema: Any, path: Path) -> Path:
        check_marks(schema, path, unmarked_ok=True)
        return path

    return _readable(root, name, required, check)


def _readable(root: Path, name: str, required: bool, read: Callable[[Any, Path], Any]) -> Any:
    """``read(schema, path)`` of the table ``name``; None when absent and not required; E_RELEASE_INPUT when it
    is missing but required, or not a readable Parquet file."""
    from deepcac2.schemas.registry import get_table

    path = table_path(root, name)
    if not path.exists():
        if required:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path} is missing: a release needs the {name} table")
        return None
    try:
        return read(get_table(name), path)
    except DeepCACError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path}: not a readable Parquet table ({exc})") from exc


def conventions_in(cac_series: pd.DataFrame) -> list[str]:
    """Conventions with an Agatston column that holds at least one value."""
    prefix = f"{SCORE}_"
    return sorted(
        c.removeprefix(prefix) for c in cac_series.columns if c.startswith(prefix) and cac_series[c].notna().any()
    )


def primary_scores(
    cac_series: pd.DataFrame, convention: str = DEFAULT_CONVENTION, extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One convention's view of cac_series: ids, ``study_year``, the plain metric names and
    ``category_<scheme>`` per risk scheme, one row per series, sorted by series; ``extra``
    cac_series columns (e.g. ``qa_flags``) come along where the table has them.

    Categories come from the table's ``risk_<scheme>_<convention>`` columns; where those
    are absent or null they are derived from the Agatston score with the project's
    banding (``pipeline.risk_categories``). A series without a score under the convention
    (a failed or unscored series) is left out.
    """
    score_col = f"{SCORE}_{convention}"
    for col in (SERIES_KEY, score_col):
        if col not in cac_series.columns:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cac_series has no {col!r} column")
    if cac_series[SERIES_KEY].duplicated().any():
        dup = cac_series.loc[cac_series[SERIES_KEY].duplicated(), SERIES_KEY].iloc[0]
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cac_series lists series {dup} more than once")
    src = cac_series[cac_series[score_col].notna()]
    ids = [c for c in (PATIENT_KEY, STUDY_KEY, SERIES_KEY, STUDY_YEAR, *extra) if c in src.columns]
    df = src[ids].copy()
    for metric in METRICS:
        col = f"{metric}_{convention}"
        df[metric] = src[col] if col in src.columns else None
    for scheme in SCHEME_NAMES:
        given = src[risk_column(scheme, convention)] if risk_column(scheme, convention) in src.columns else None
        derived = [category(scheme, float(s)) for s in src[score_col]]
        df[category_column(scheme)] = derived if given is None else given.where(given.notna(), derived)
    return df.sort_values(SERIES_KEY).reset_index(drop=True)
