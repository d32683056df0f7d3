"""The documented example queries (read from docs/release.md) and the query API and CLI."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import duckdb
import idc_index_data
import pandas as pd
import pyarrow.parquet as pq
import pytest

import deepcac2
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release import query_cli
from deepcac2.release.build import build_release
from tests.conftest import REPO
from tests.release.runfactory import make_run, random_scores, series_rows

DOC = REPO / "docs" / "release.md"


def documented_queries() -> dict[str, str]:
    """``<!-- query: NAME -->`` followed by a fenced sql block, from docs/release.md."""
    text = DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- query: (\w+) -->\s*```sql\n(.*?)```", text, flags=re.DOTALL))


@pytest.fixture(scope="module")
def nlst_uids() -> list[str]:
    """Real NLST CT SeriesInstanceUIDs from the offline IDC index, so the join finds rows."""
    sql = (
        "SELECT SeriesInstanceUID FROM read_parquet(?) WHERE collection_id = 'nlst' AND Modality = 'CT' "
        "ORDER BY SeriesInstanceUID LIMIT 5"
    )
    return [r[0] for r in duckdb.execute(sql, [str(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)]).fetchall()]


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory, nlst_uids: list[str]) -> Path:
    tmp = tmp_path_factory.mktemp("query")
    rows = series_rows(5, random_scores(15, seed=3), series_uids=nlst_uids)
    rows = [r for r in rows if not (r["PatientID"] == "100004" and r["study_year"] == 2)]  # no T2 for one patient
    # patient 100000's T0 has a second reconstruction (LUNG kernel, a higher score): not the primary one
    rows[0] |= {"kernel": "B30f", "slice_thickness_mm": 2.5}
    rows.append(rows[0] | {"SeriesInstanceUID": rows[0]["SeriesInstanceUID"] + ".9", "kernel": "LUNG",
                           "agatston_deepcac": 5000.0})  # fmt: skip
    return build_release(make_run(tmp / "run", rows=rows, images=False), "1.0.0", tmp / "rel")


def test_docs_list_the_three_queries() -> None:
    assert set(documented_queries()) == {"mean_by_year", "progression", "idc_join"}


def test_mean_by_year(rel: Path) -> None:
    series = pd.read_parquet(rel / "tables" / "cac_series.parquet")
    want = series.groupby("study_year")["agatston_deepcac"].agg(["count", "mean"])
    got = deepcac2.open_release(rel).sql(documented_queries()["mean_by_year"]).df().set_index("study_year")
    assert list(got.index) == list(want.index)
    assert list(got["series"]) == list(want["count"])
    assert got["mean_agatston"].to_numpy() == pytest.approx(want["mean"].to_numpy())


def test_progression(rel: Path) -> None:
    series = pd.read_parquet(rel / "tables" / "cac_series.parquet")
    assert series.groupby(["PatientID", "study_year"])["is_primary"].sum().eq(1).all()
    assert not series.loc[series["agatston_deepcac"] == 5000.0, "is_primary"].any()
    series = series[series["is_primary"]]
    wide = series.pivot_table(index="PatientID", columns="study_year", values="agatston_deepcac")
    wide = wide.dropna(subset=[0, 2])
    got = deepcac2.open_release(rel).sql(documented_queries()["progression"]).df().set_index("PatientID")
    assert list(got.index) == list(wide.index)
    assert "100004" not in got.index
    assert got["change"].to_numpy() == pytest.approx((wide[2] - wide[0]).to_numpy())


def test_idc_join(rel: Path, nlst_uids: list[str]) -> None:
    got = deepcac2.open_release(rel).sql(documented_queries()["idc_join"]).df()
    assert sorted(got["SeriesInstanceUID"]) == sorted(nlst_uids)
    assert got["series_aws_url"].str.startswith("s3://").all()
    assert got["SeriesDescription"].notna().all()


def test_open_release_api(rel: Path) -> None:
    with deepcac2.open_release(rel) as r:
        assert {"cac_series", "cac_lesions", "failures", "runs"} <= set(r.tables)
        df = r.df("cac_series").sort_values("SeriesInstanceUID", ignore_index=True)
        want = pq.read_table(rel / "tables" / "cac_series.parquet").to_pandas().sort_values("SeriesInstanceUID")
        assert list(df.columns) == list(want.columns)
        assert list(df["SeriesInstanceUID"]) == list(want["SeriesInstanceUID"])
        assert df["agatston_deepcac"].to_numpy() == pytest.approx(want["agatston_deepcac"].to_numpy())
        assert r.table("failures").aggregate("count(*)").fetchone()[0] == 1
        with pytest.raises(DeepCACError):
            r.table("nope")
        with pytest.raises(DeepCACError):
            r.sql("SELECT no_such_column FROM cac_series")


def test_query_cli(rel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    query_cli.build_parser(parser)
    sql = "SELECT count(DISTINCT PatientID) AS n FROM cac_series"
    assert query_cli.main(parser.parse_args([sql, "--release", str(rel), "--format", "csv"])) == 0
    assert capsys.readouterr().out.split() == ["n", "5"]
    out = tmp_path / "r.parquet"
    assert query_cli.main(parser.parse_args([sql, "--release", str(rel), "--out", str(out)])) == 0
    assert pd.read_parquet(out)["n"].item() == 5


def _cli(rel: Path, *args: str) -> int:
    parser = argparse.ArgumentParser()
    query_cli.build_parser(parser)
    return query_cli.main(parser.parse_args([*args, "--release", str(rel)]))


def test_csv_and_json_round_trip_lists_and_time_zones(rel: Path, tmp_path: Path, capsys) -> None:
    import csv
    import datetime as dt
    import io
    import json

    sql = "SELECT SeriesInstanceUID, qa_flags FROM cac_series ORDER BY SeriesInstanceUID"
    want = deepcac2.open_release(rel).sql(sql).fetchall()
    assert _cli(rel, sql, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["SeriesInstanceUID"], json.loads(r["qa_flags"])) for r in rows] == [(u, list(f)) for u, f in want]
    # a time-zoned column: fetchall needs pytz (a dependency), JSON keeps the offset
    stamp = "SELECT TIMESTAMPTZ '2026-03-04 10:15:00+00' AS started_at"  # as runs.started_at is typed
    (started,) = deepcac2.open_release(rel).sql(stamp).fetchone()
    assert started.utcoffset() is not None
    out = tmp_path / "runs.json"
    assert _cli(rel, stamp, "--out", str(out)) == 0
    text = json.loads(out.read_text())[0]["started_at"]
    assert dt.datetime.fromisoformat(text) == started and dt.datetime.fromisoformat(text).utcoffset() is not None


def test_unknown_output_suffix_is_refused(rel: Path, tmp_path: Path) -> None:
    with pytest.raises(DeepCACError) as e:
        _cli(rel, "SELECT 1", "--out", str(tmp_path / "x.txt"))
    assert e.value.code is ErrorCode.E_QUERY_OUTPUT and not (tmp_path / "x.txt").exists()


def test_open_release_reads_a_flat_folder(rel: Path, tmp_path: Path) -> None:
    """A Zenodo download: the Parquet files side by side, no tables/ folder."""
    import shutil

    for table in (rel / "tables").glob("*.parquet"):
        shutil.copy(table, tmp_path / table.name)
    with deepcac2.open_release(tmp_path) as r:
        assert "cac_series" in r.tables
        assert r.sql("SELECT count(*) FROM cac_series").fetchone()[0] == 15
    with pytest.raises(DeepCACError):
        deepcac2.open_release(tmp_path / "empty")


def _query(*args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "deepcac2", "query", *args], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_statements_without_a_result_and_empty_sql_are_not_tracebacks(rel: Path, tmp_path: Path) -> None:
    target = tmp_path / "copied.csv"
    code, _, err = _query(
        f"COPY (SELECT SeriesInstanceUID FROM cac_series) TO '{target}' (HEADER)", "--release", str(rel)
    )
    assert code == 0 and "returns no rows" in err, err
    # COPY wrote the user's file: SQL is not sandboxed, on purpose
    assert len(pd.read_csv(target)) == pq.read_table(rel / "tables" / "cac_series.parquet").num_rows
    for empty in ("", "  ;  "):
        code, _, err = _query(empty, "--release", str(rel))
        assert code == 3 and "E_RELEASE_INPUT: the SQL is empty" in err and "Traceback" not in err, err
    code, _, err = _query("CREATE TABLE t AS SELECT 1", "--release", str(rel), "--out", str(tmp_path / "t.csv"))
    assert code == 3 and "returns no rows: nothing to write" in err and "Traceback" not in err, err


def test_sql_may_join_the_users_own_files(rel: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    uids = pq.read_table(rel / "tables" / "cac_series.parquet").column("SeriesInstanceUID").to_pylist()[:3]
    pd.DataFrame({"SeriesInstanceUID": uids, "label": ["a", "b", "c"]}).to_csv(mine, index=False)
    sql = f"SELECT count(*) AS n FROM cac_series JOIN read_csv('{mine}') USING (SeriesInstanceUID)"
    code, out, err = _query(sql, "--release", str(rel), "--format", "csv")
    assert code == 0 and out.split() == ["n", "3"], err


def test_an_unwritable_out_is_a_coded_error(rel: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    code, _, err = _query("SELECT 1 AS one", "--release", str(rel), "--out", str(blocker / "r.csv"))
    assert code == 3 and "E_OUTPUT_UNWRITABLE: cannot write the query result (--out)" in err, err
    assert "Traceback" not in err
