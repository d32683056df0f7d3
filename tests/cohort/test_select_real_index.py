"""Cohort selection on the real NLST rows of the offline IDC index.

Expected values come from our own SQL over the same Parquet file, and from the
published counts in FACTS.md section 4.
"""

from __future__ import annotations

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.nlst import DEEPCAC_KERNEL_ORDER
from deepcac2.pipeline.cohort.rules import CohortFilters
from deepcac2.pipeline.cohort.select import explain, run_rules, select_and_explain
from deepcac2.pipeline.cohort.table import frame_to_table
from deepcac2.schemas.cohort import TABLE

# Independent SQL of the `all` policy: CT, NLST image type OPA (which excludes localizers),
# >= 50 instances, and no lossy JPEG (baseline .50 / extended .51) file in the series.
ELIGIBLE_SQL = """
    Modality = 'CT' AND split_part(SeriesDescription, ',', 2) = 'OPA' AND instanceCount >= 50
    AND TransferSyntaxUID NOT LIKE '%1.2.840.10008.1.2.4.50%' AND TransferSyntaxUID NOT LIKE '%1.2.840.10008.1.2.4.51%'
"""


def sql_uids(con, where: str) -> set[str]:
    return {r[0] for r in con.execute(f"SELECT SeriesInstanceUID FROM nl WHERE {where}").fetchall()}


def run(frame, policy="all", **filters):
    df, start, steps = run_rules(frame.copy(), policy, CohortFilters(**filters))
    return df, start, steps


def test_index_matches_published_nlst_counts(nlst_sql):
    ct = nlst_sql.execute(
        "SELECT count(*), count(DISTINCT StudyInstanceUID), count(DISTINCT PatientID) FROM nl WHERE Modality='CT'"
    ).fetchone()
    assert ct == (203_111, 73_113, 26_254)
    opa = nlst_sql.execute(
        "SELECT count(*), count(DISTINCT StudyInstanceUID), count(DISTINCT PatientID) FROM nl "
        "WHERE Modality='CT' AND split_part(SeriesDescription, ',', 2) = 'OPA' AND instanceCount >= 50"
    ).fetchone()
    assert opa == (129_148, 72_543, 26_234)


@pytest.fixture(scope="module")
def all_and_explanation():
    return select_and_explain("all")


def test_all_policy_is_exactly_the_independent_sql(all_and_explanation, nlst_sql):
    table, _ = all_and_explanation
    assert table.schema.equals(TABLE.arrow, check_metadata=False)
    assert set(table.column("SeriesInstanceUID").to_pylist()) == sql_uids(nlst_sql, ELIGIBLE_SQL)
    # one lossy JPEG Extended series is the only difference from the published OPA >= 50 count
    assert table.num_rows == 129_148 - 1
    assert set(table.column("Modality").to_pylist()) == {"CT"}
    assert set(table.column("image_type").to_pylist()) == {"OPA"}
    assert min(table.column("instanceCount").to_pylist()) >= 50


def test_rows_are_sorted_and_sizes_are_the_index_bytes(all_and_explanation, nlst_sql):
    table, _ = all_and_explanation
    cols = [table.column(c).to_pylist() for c in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")]
    keys = list(zip(*cols, strict=True))
    assert keys == sorted(keys)
    mb = nlst_sql.execute(f"SELECT sum(series_size_MB) FROM nl WHERE {ELIGIBLE_SQL}").fetchone()[0]
    assert sum(table.column("series_size_bytes").to_pylist()) == pytest.approx(mb * 1e6, rel=1e-9)
    urls, uuids = table.column("series_aws_url").to_pylist(), table.column("crdc_series_uuid").to_pylist()
    assert all(u == f"s3://idc-open-data/{c}/*" for u, c in zip(urls[:1000], uuids[:1000], strict=True))


def test_explain_totals_add_up(all_and_explanation, nlst_sql):
    table, exp = all_and_explanation
    start = nlst_sql.execute(
        "SELECT count(*), count(DISTINCT StudyInstanceUID), count(DISTINCT PatientID), sum(series_size_MB) FROM nl"
    ).fetchone()
    assert (exp.start.series, exp.start.studies, exp.start.patients) == start[:3]
    assert exp.start.bytes == pytest.approx(start[3] * 1e6, rel=1e-9)
    for field in ("series", "studies", "patients", "bytes"):
        removed = sum(getattr(s.removed, field) for s in exp.steps)
        assert getattr(exp.start, field) - removed == getattr(exp.final, field), field
    assert exp.final.series == table.num_rows
    by_rule = {s.rule: s.removed.series for s in exp.steps}
    assert by_rule["ct"] == start[0] - 203_111
    assert by_rule["transfer_syntax"] == 1
    assert exp.storage_tb == pytest.approx(exp.final.bytes / 1e12)
    assert exp.run_hours == pytest.approx(table.num_rows * 30.0 / 3600)
    rows = exp.rows()
    assert [r["rule"] for r in rows] == [s.rule for s in exp.steps]
    assert sum(r["tb_removed"] for r in rows) == pytest.approx((exp.start.bytes - exp.final.bytes) / 1e12)
    text = exp.format_table()
    assert "min_instances_50" in text and f"{table.num_rows:,}" in text


def test_deepcac_policy_is_one_series_per_study_by_spacing_then_kernel(nlst_frame, nlst_sql):
    df, _, _ = run(nlst_frame, "deepcac")
    assert df["StudyInstanceUID"].is_unique
    # Independent choice in SQL: listed spacing, distance to 2.5, kernel order, more slices, smaller UID.
    kernels = "[" + ", ".join(f"'{k.upper()}'" for k in DEEPCAC_KERNEL_ORDER) + "]"
    chosen = nlst_sql.execute(f"""
        WITH e AS (
            SELECT *, try_cast(split_part(SeriesDescription, ',', 7) AS DOUBLE) AS t,
                   upper(split_part(SeriesDescription, ',', 5)) AS k
            FROM nl WHERE {ELIGIBLE_SQL}),
        r AS (
            SELECT *, CASE WHEN t BETWEEN 0.1 AND 20 THEN t END AS th FROM e),
        ranked AS (
            SELECT SeriesInstanceUID, row_number() OVER (PARTITION BY StudyInstanceUID ORDER BY
                CASE WHEN list_bool_or([abs(th - s) <= 0.051 FOR s IN [2.5, 2.0, 1.75, 1.25, 1.0]]) THEN 0 ELSE 1 END,
                coalesce(abs(th - 2.5), 1e9),
                coalesce(list_position({kernels}, k), 1000),
                instanceCount DESC, SeriesInstanceUID) AS n
            FROM r)
        SELECT SeriesInstanceUID FROM ranked WHERE n = 1""").fetchall()
    assert set(df["SeriesInstanceUID"]) == {c[0] for c in chosen}
    assert len(df) == 72_543  # every eligible study keeps exactly one series
    assert df["selection_reason"].str.contains("deepcac: best of").all()


def test_study_year_kernel_thickness_manufacturer_filters(nlst_frame, nlst_sql):
    df, _, _ = run(nlst_frame, study_years=(0,), kernels=("b30f",), thickness_mm=(2.0, 2.5), manufacturers=("SIEMENS",))
    expected = sql_uids(
        nlst_sql,
        ELIGIBLE_SQL + " AND split_part(SeriesDescription, ',', 1) = '0' AND split_part(SeriesDescription, ',', 5) = "
        "'B30f' AND try_cast(split_part(SeriesDescription, ',', 7) AS DOUBLE) BETWEEN 2.0 AND 2.5 "
        "AND Manufacturer = 'SIEMENS'",
    )
    assert expected and set(df["SeriesInstanceUID"]) == expected


def test_manufacturer_filter_accepts_nlst_codes(nlst_frame, nlst_sql):
    df, _, _ = run(nlst_frame, manufacturers=("TO",))
    assert set(df["SeriesInstanceUID"]) == sql_uids(nlst_sql, ELIGIBLE_SQL + " AND Manufacturer = 'TOSHIBA'")


def test_patient_list_filter(nlst_frame, nlst_sql):
    patients = [
        r[0] for r in nlst_sql.execute("SELECT DISTINCT PatientID FROM nl ORDER BY PatientID LIMIT 3").fetchall()
    ]
    df, _, steps = run(nlst_frame, patients=tuple(patients))
    where = ELIGIBLE_SQL + " AND PatientID IN (" + ", ".join(f"'{p}'" for p in patients) + ")"
    assert set(df["SeriesInstanceUID"]) == sql_uids(nlst_sql, where)
    assert steps[-1].rule == "patients"


def test_limit_keeps_the_first_rows_in_order(nlst_frame):
    full, _, _ = run(nlst_frame, patients=("100002", "100004", "100005"))
    limited, _, steps = run(nlst_frame, patients=("100002", "100004", "100005"), limit=4)
    assert list(limited["SeriesInstanceUID"]) == list(full["SeriesInstanceUID"])[:4]
    assert steps[-1].rule == "limit" and steps[-1].removed.series == len(full) - 4


def test_random_sample_is_reproducible_with_its_seed(nlst_frame):
    a, _, _ = run(nlst_frame, study_years=(2,), sample=50, seed=7)
    b, _, _ = run(nlst_frame, study_years=(2,), sample=50, seed=7)
    c, _, _ = run(nlst_frame, study_years=(2,), sample=50, seed=8)
    assert len(a) == 50 and list(a["SeriesInstanceUID"]) == list(b["SeriesInstanceUID"])
    assert set(a["SeriesInstanceUID"]) != set(c["SeriesInstanceUID"])
    assert (a["study_year"] == 2).all()
    keys = list(zip(a["PatientID"], a["StudyInstanceUID"], a["SeriesInstanceUID"], strict=True))
    assert keys == sorted(keys)
    table = frame_to_table(a)
    assert table.num_rows == 50


def test_bad_arguments_give_cohort_errors(tmp_path):
    with pytest.raises(DeepCACError) as e:
        explain("newest")
    assert e.value.code is ErrorCode.E_COHORT_INVALID
    with pytest.raises(DeepCACError) as e:
        select_and_explain("all", collection="no_such_collection")
    assert e.value.code is ErrorCode.E_COHORT_INVALID
    with pytest.raises(DeepCACError) as e:
        select_and_explain("all", collection="nlst'; DROP")
    assert e.value.code is ErrorCode.E_COHORT_INVALID
    with pytest.raises(DeepCACError) as e:
        CohortFilters(thickness_mm=(3.0, 1.0))
    assert e.value.code is ErrorCode.E_COHORT_INVALID
    with pytest.raises(DeepCACError):
        select_and_explain("all", index_path=tmp_path / "missing.parquet")


def test_another_collection_without_the_nlst_form(index_parquet):
    """LIDC-IDRI: no NLST descriptions, so image type is unknown and DICOM maker/model fill in."""
    import duckdb

    table, exp = select_and_explain("all", collection="lidc_idri")
    expected = duckdb.execute(
        "SELECT SeriesInstanceUID FROM read_parquet(?) WHERE collection_id = 'lidc_idri' AND Modality = 'CT' "
        "AND instanceCount >= 50 AND NOT regexp_matches(lower(coalesce(SeriesDescription, '')), "
        "'localizer|localiser|scout|topogram|surview') "
        "AND TransferSyntaxUID IN ('1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.4.70', "
        "'1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.5')",
        [str(index_parquet)],
    ).fetchall()
    assert set(table.column("SeriesInstanceUID").to_pylist()) == {r[0] for r in expected}
    assert table.num_rows > 0 and exp.final.series == table.num_rows
    rows = table.slice(0, 5).to_pylist()
    assert all(r["study_year"] is None and r["image_type"] is None for r in rows)
    assert all(r["scanner_manufacturer"] for r in rows)  # from the DICOM Manufacturer column


def test_totalseg_candidates_match_an_independent_join(all_and_explanation, nlst_sql):
    """FACTS §6: same study, 'Segmentation of Series N' with N the CT's SeriesNumber; >= 97% of the selection covered."""
    table, explanation = all_and_explanation
    nlst_sql.register("chosen", table.select(["SeriesInstanceUID", "totalseg_candidates"]).to_pandas())
    rows = nlst_sql.execute(
        """
        WITH seg AS (SELECT StudyInstanceUID, SeriesInstanceUID, SeriesDescription FROM nl
                     WHERE Modality = 'SEG' AND analysis_result_id = 'totalsegmentator_ct_segmentations'),
        ct AS (SELECT nl.StudyInstanceUID, nl.SeriesInstanceUID, nl.SeriesNumber, chosen.totalseg_candidates AS ours
               FROM nl JOIN chosen USING (SeriesInstanceUID))
        SELECT ct.SeriesInstanceUID, any_value(ct.ours), count(seg.SeriesInstanceUID) FROM ct
        LEFT JOIN seg ON seg.StudyInstanceUID = ct.StudyInstanceUID
             AND seg.SeriesDescription = 'TotalSegmentator(v1.5.6) Segmentation of Series ' || ct.SeriesNumber
        GROUP BY 1
        """
    ).fetchall()
    assert len(rows) == table.num_rows
    assert all(ours == theirs for _, ours, theirs in rows)
    one, several, none = explanation.totalseg
    assert (one, several, none) == (
        sum(n == 1 for *_, n in rows),
        sum(n > 1 for *_, n in rows),
        sum(n == 0 for *_, n in rows),
    )
    assert (one + several) / table.num_rows >= 0.97
    assert "TotalSegmentator SEG candidates" in explanation.format_table()
    first = table.column("totalseg_series_uid").to_pylist()
    listed = table.column("totalseg_candidate_series").to_pylist()
    assert all(
        (f is None) == (not c) and (not c or f == c[0]["SeriesInstanceUID"]) for f, c in zip(first, listed, strict=True)
    )
