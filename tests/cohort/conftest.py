"""Fixtures for cohort tests: the real NLST rows of the offline IDC index."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


@pytest.fixture(scope="session")
def index_parquet() -> Path:
    import idc_index_data

    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)


@pytest.fixture(scope="session")
def nlst_sql(index_parquet):
    """A duckdb connection with a view ``nl`` of the NLST rows, for independent SQL counts."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW nl AS SELECT * FROM read_parquet('{index_parquet}') WHERE collection_id = 'nlst'")
    yield con
    con.close()


@pytest.fixture(scope="session")
def nlst_frame():
    """The parsed NLST frame, built once (tests pass copies to run_rules)."""
    from deepcac2.pipeline.cohort.select import parsed_frame

    return parsed_frame("nlst")
