"""convert_series end to end, row builders and the deterministic Parquet writer."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.parquet_tables import read_table, write_table
from deepcac2.pipeline.convert.series import write_series_tables
from deepcac2.pipeline.orchestrate.records import failure_row, run_record, write_runs_table
from deepcac2.pipeline.orchestrate.run import RunConfig, RunSummary
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.orchestrate.tasks import Failure, _failure
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.schemas.registry import get_table

from . import synthetic

CONVENTIONS = ("deepcac", "literature", "canon")


def _run(ct, out: Path, **kw):
    pred = synthetic.prediction(ct.shape)
    scores = {c: synthetic.scores(c) for c in CONVENTIONS}
    converted = convert_series(ct, pred, scores, out / "dicom", **kw)
    return converted, write_series_tables([converted], out / "tables")


def test_rerun_is_byte_identical(ct, tmp_path: Path) -> None:
    ref = SeriesRef(ct.series_uid, collection_id="nlst", params={"study_year": 1, "kernel": "B30f"})
    a, ta = _run(ct, tmp_path / "a", series_ref=ref)
    b, tb = _run(synthetic.ct_volume(synthetic.ct_datasets()), tmp_path / "b", series_ref=ref)
    assert a.refs == b.refs
    assert filecmp.cmp(a.seg_path, b.seg_path, shallow=False)
    assert filecmp.cmp(a.sr_path, b.sr_path, shallow=False)
    assert set(ta) == {"cac_series", "cac_lesions", "measurements"}
    for name in ta:
        assert filecmp.cmp(ta[name], tb[name], shallow=False), name


def test_row_order_does_not_change_the_bytes(ct, tmp_path: Path) -> None:
    converted, _ = _run(ct, tmp_path)
    rows = converted.rows["measurements"]
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    table = get_table("measurements")
    a = write_table(table, rows, tmp_path / "a.parquet")
    b = write_table(table, shuffled, tmp_path / "b.parquet")
    assert filecmp.cmp(a, b, shallow=False)


def test_parquet_has_schema_metadata_and_no_pandas(ct, tmp_path: Path) -> None:
    _, tables = _run(ct, tmp_path)
    meta = pq.read_schema(tables["cac_series"]).metadata
    assert meta[b"table"] == b"cac_series" and meta[b"schema_version"] == get_table("cac_series").version.encode()
    assert b"pandas" not in meta
    assert pq.ParquetFile(tables["cac_series"]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert not list(tables["cac_series"].parent.glob(".*tmp"))  # atomic writes leave nothing behind


def test_series_row_values(ct, tmp_path: Path) -> None:
    ref = SeriesRef(
        ct.series_uid,
        collection_id="nlst",
        crdc_series_uuid="abc-123",
        params={"study_year": "2", "scanner_model": "na", "kernel": "B30f", "ma": 80, "kvp": 120},
    )
    converted, tables = _run(ct, tmp_path, series_ref=ref, qa_flags=("reviewed",))
    row = read_table(get_table("cac_series"), tables["cac_series"]).to_pylist()[0]
    pred = synthetic.prediction(ct.shape)
    assert row["heart_volume_ml"] == pytest.approx(pred.heart.sum() * 0.7 * 0.7 * 2.5 / 1000)
    assert row["study_year"] == 2 and row["tube_current_ma"] == 80.0 and row["kvp"] == 120.0
    assert row["scanner_model"] == "Sensation 16"  # 'na' in the cohort params: the header's value
    assert row["kernel"] == "B30f" and row["scanner_manufacturer"] == "SIEMENS"
    assert (row["rows"], row["columns"], row["num_slices"]) == (64, 64, 12)
    assert row["slice_spacing_mm"] == 2.5 and row["pixel_spacing_mm"] == 0.7
    assert row["qa_flags"] == ["mass_unknown", "reviewed"]
    assert row["model_weights_sha256"] == synthetic.CARD.weights_sha256
    assert row["lesion_count_canon"] == 2 and row["agatston_lessmann3d"] is None  # not run: null, not 0
    assert row["sr_sop_instance_uid"] == converted.refs.sr_sop_instance_uid
    lesions = converted.rows["cac_lesions"]
    assert len(lesions) == 2 * len(CONVENTIONS)
    # vessel lesions live in the vessel SEG (LAD = 2, RCA = 4 there)
    assert {(r["vessel"], r["segment_number"]) for r in lesions} == {("LAD", 2), ("RCA", 4)}
    assert {r["seg_sop_instance_uid"] for r in lesions} == {converted.refs.vessel_seg_sop_instance_uid}
    assert row["vessel_seg_sop_instance_uid"] == converted.refs.vessel_seg_sop_instance_uid is not None
    assert row["heart_seg_sop_instance_uid"] == converted.refs.heart_seg_sop_instance_uid is not None
    assert row["cac_segment_number"] == 1 and row["tac_segment_number"] is None
    assert row["tac_agatston_deepcac"] is None  # no aortic mask: null, not 0
    assert sorted(p.name for p in converted.seg_paths.values()) == ["seg.dcm", "seg_heart.dcm", "seg_vessels.dcm"]


def test_bad_acquisition_value_is_an_error(ct, tmp_path: Path) -> None:
    ref = SeriesRef(ct.series_uid, params={"kvp": "one hundred"})
    with pytest.raises(DeepCACError) as e:
        _run(ct, tmp_path, series_ref=ref)
    assert e.value.code is ErrorCode.E_TABLE_WRITE


def test_convention_variant_has_no_wide_columns(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    name = "deepcac[kvp_adjusted=True]"
    with pytest.raises(DeepCACError) as e:
        convert_series(ct, pred, {name: synthetic.scores(name)}, tmp_path)
    assert e.value.code is ErrorCode.E_CONVENTION_UNKNOWN


def test_unsafe_series_uid_is_refused(ct, tmp_path: Path) -> None:
    ct.series_uid = "../../etc"
    with pytest.raises(DeepCACError) as e:
        convert_series(ct, synthetic.prediction(ct.shape), {"deepcac": synthetic.scores()}, tmp_path)
    assert e.value.code is ErrorCode.E_UID_INVALID


def test_mask_shape_mismatch_is_refused(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction((12, 32, 32))
    with pytest.raises(DeepCACError) as e:
        convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path)
    assert e.value.code is ErrorCode.E_MASK_GEOMETRY


@pytest.mark.parametrize(
    "row, why",
    [
        (
            {
                "SeriesInstanceUID": "1.2",
                "stage": "load",
                "error_code": "E_X",
                "message": "m",
                "attempts": 1,
                "bogus": 1,
            },
            "unknown",
        ),
        (
            {"SeriesInstanceUID": "1.2", "stage": "load", "error_code": "E_X", "message": "m", "attempts": None},
            "required",
        ),
        ({"SeriesInstanceUID": "1.2", "stage": "load", "error_code": "E_X", "message": "m", "attempts": "x"}, "fit"),
    ],
)
def test_writer_refuses_bad_rows(tmp_path: Path, row: dict, why: str) -> None:
    row = {"transient": False, "toolkit_version": "0", **row}
    with pytest.raises(DeepCACError) as e:
        write_table(get_table("failures"), [row], tmp_path / "f.parquet")
    assert e.value.code is ErrorCode.E_TABLE_WRITE and why in e.value.message
    assert not (tmp_path / "f.parquet").exists()


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    row = failure_row(Failure("1.2", "load", ErrorCode.E_NO_IMAGES.value, "none"))
    with pytest.raises(DeepCACError) as e:
        write_table(get_table("failures"), [row, dict(row)], tmp_path / "f.parquet")
    assert e.value.code is ErrorCode.E_TABLE_WRITE


def test_failure_rows_are_deterministic(tmp_path: Path) -> None:
    # the rows as a run records them: the task's Failure of an exception, then its failures row
    rows = [
        failure_row(
            _failure(SeriesRef("1.2.3"), "load", DeepCACError(ErrorCode.E_GEOMETRY_TILT, "tilted", degrees=18.5), 1)
        ),
        failure_row(_failure(SeriesRef("1.2.4"), "infer", RuntimeError("boom"), 3)),
    ]
    assert rows[0]["error_code"] == "E_GEOMETRY_TILT" and rows[0]["detail_json"] == '{"degrees": "18.5"}'
    assert rows[1]["error_code"] == "E_INTERNAL" and rows[1]["message"] == "RuntimeError: boom"
    assert rows[1]["attempts"] == 3 and json.loads(rows[1]["detail_json"])["exception"] == "RuntimeError"
    a = write_table(get_table("failures"), rows, tmp_path / "a.parquet")
    b = write_table(get_table("failures"), rows[::-1], tmp_path / "b.parquet")
    assert filecmp.cmp(a, b, shallow=False)


def test_run_row_and_read_guard(tmp_path: Path) -> None:

    # the runs row as a run records it (records.run_record), written as a run writes it
    summary = RunSummary("r1", tmp_path, total=3, done=2, failed=1, elapsed_s=90.0)
    with OutputStore(tmp_path) as store:
        store.commit_run("r1", run_record(summary, RunConfig(retries=5), {"cohort_sha256": "ab"}, 1.7e9))
        path = write_runs_table(store)
    got = read_table(get_table("runs"), path).to_pylist()[0]
    config = json.loads(got["config_json"])
    assert got["wall_s"] == 90.0 and config["retries"] == 5 and config["identity"] == {"cohort_sha256": "ab"}
    assert (got["n_series"], got["n_succeeded"], got["n_failed"]) == (3, 2, 1) and got["outcome"] == "ended"
    assert (got["finished_at"] - got["started_at"]).total_seconds() == 90.0
    with pytest.raises(DeepCACError) as e:
        read_table(get_table("failures"), path)
    assert e.value.code is ErrorCode.E_TABLE_SCHEMA
    # a file without the toolkit's marks (edited with pandas): refused, unless the caller takes it
    plain = tmp_path / "plain.parquet"
    pq.write_table(pq.read_table(path).replace_schema_metadata(None), plain)
    assert read_table(get_table("runs"), plain, unmarked_ok=True).num_rows == 1
    with pytest.raises(DeepCACError):
        read_table(get_table("runs"), plain)
    # the release reads a run's tables with the same reader: a runs file where failures belongs is refused
    from deepcac2.release.run_tables import table_frame

    (tmp_path / "run" / "tables").mkdir(parents=True)
    (tmp_path / "run" / "tables" / "failures.parquet").write_bytes(path.read_bytes())
    with pytest.raises(DeepCACError) as e:
        table_frame(tmp_path / "run", "failures")
    assert e.value.code is ErrorCode.E_TABLE_SCHEMA


def test_binary_and_labelmap_get_different_uids(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    sc = {"deepcac": synthetic.scores()}
    a = convert_series(ct, pred, sc, tmp_path / "a")
    b = convert_series(ct, pred, sc, tmp_path / "b", seg_encoding="labelmap")
    assert a.refs.seg_sop_instance_uid != b.refs.seg_sop_instance_uid
    assert a.refs.sr_sop_instance_uid != b.refs.sr_sop_instance_uid
    assert b.rows["cac_series"][0]["seg_encoding"] == "labelmap"


def test_different_conventions_give_a_different_sr_uid(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    a = convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path / "a")
    b = convert_series(ct, pred, {c: synthetic.scores(c) for c in CONVENTIONS}, tmp_path / "b")
    assert a.refs.seg_sop_instance_uid == b.refs.seg_sop_instance_uid
    assert a.refs.sr_sop_instance_uid != b.refs.sr_sop_instance_uid


def test_zero_calcium_end_to_end(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape, calcium=False)
    converted = convert_series(ct, pred, {"deepcac": synthetic.scores(calcium=False)}, tmp_path)
    row = converted.rows["cac_series"][0]
    assert row["agatston_deepcac"] == 0.0 and row["lesion_count_deepcac"] == 0 and row["cac_segment_number"] == 1
    assert converted.rows["cac_lesions"] == []
    assert not np.any(pred.cac)


def test_rows_are_unchanged_by_a_dataclass_copy(ct, tmp_path: Path) -> None:
    # row builders are pure: the same inputs through a copied ModelCard give equal rows
    pred = synthetic.prediction(ct.shape)
    a = convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path / "a")
    pred.card = dataclasses.replace(pred.card)
    b = convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path / "b")
    assert a.rows == b.rows


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    from deepcac2.writable import write_atomic

    def boom(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "x.parquet", boom)
    assert list(tmp_path.iterdir()) == []


_CHILD = """
import sys
from pathlib import Path
from tests.convert import synthetic
from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.series import write_series_tables
ct = synthetic.ct_volume(synthetic.ct_datasets())
scores = {c: synthetic.scores(c) for c in ("deepcac", "canon")}
out = Path(sys.argv[1])
write_series_tables([convert_series(ct, synthetic.prediction(ct.shape), scores, out / "dicom")], out / "tables")
"""


@pytest.mark.slow
def test_separate_processes_write_the_same_bytes(tmp_path: Path) -> None:
    """Reruns are new processes: different hash seeds must not change a byte."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    for seed in ("1", "2"):
        # tests/ on the path, as under pytest: the synthetic series use tests/dicom_factory.py
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join([str(repo / "tests"), str(repo)])}
        subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / seed)], cwd=repo, env=env, check=True, timeout=120)
    a = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*") if p.is_file())
    b = sorted(p.relative_to(tmp_path / "2") for p in (tmp_path / "2").rglob("*") if p.is_file())
    assert a == b and len(a) == 7  # three SEGs (calcium, by vessel, heart), the SR and three tables
    for rel in a:
        assert filecmp.cmp(tmp_path / "1" / rel, tmp_path / "2" / rel, shallow=False), rel


def test_scores_without_a_mask_are_refused(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape, calcium=False)
    with pytest.raises(DeepCACError) as e:
        convert_series(ct, pred, {"deepcac": synthetic.scores()}, tmp_path)
    assert e.value.code is ErrorCode.E_SR_WRITE
    assert not list(tmp_path.rglob("*.dcm"))


def test_cac_series_records_the_anatomy_provenance_and_notes(ct, tmp_path: Path) -> None:
    from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance

    pred = synthetic.prediction(ct.shape)
    empty = np.zeros(ct.shape, dtype=bool)
    prov = AnatomyProvenance(
        "idc-totalsegmentator", "TotalSegmentator v1.5.6", "1.2.3.4", "1.2.3.4.1", "1.2.840.10008.5.1.4.1.1.66.4"
    )
    note = "anatomy: idc-totalsegmentator candidate 1.2.3.9 references another series; used 1.2.3.4"
    pred.anatomy = Anatomy(pred.heart, empty, empty, prov, notes=(note,))
    scores = {c: synthetic.scores(c) for c in CONVENTIONS}
    row = convert_series(ct, pred, scores, tmp_path / "dicom").rows["cac_series"][0]
    assert (row["anatomy_provider"], row["anatomy_version"], row["anatomy_seg_uid"]) == (
        "idc-totalsegmentator",
        "TotalSegmentator v1.5.6",
        "1.2.3.4",
    )
    assert row["loader_notes"][-1] == note
    # a prediction without an anatomy (an older model) leaves the columns null
    row = _run(ct, tmp_path / "b")[0].rows["cac_series"][0]
    assert row["anatomy_provider"] is None and row["anatomy_seg_uid"] is None


def test_valve_and_annulus_calcium_have_their_own_columns(ct, tmp_path: Path) -> None:
    """Mitral annular and aortic valve calcium (never coronary) are scored in mac_* and avc_* columns under
    the coronary scores' conventions; a model that does not report them leaves the columns null."""
    from deepcac2.pipeline.scoring.engine import score_ct

    pred = synthetic.prediction(ct.shape)
    pred.mitral_annular = np.zeros(ct.shape, dtype=bool)
    pred.mitral_annular[5:8, 30:34, 40:46] = True  # a band in the heart, away from the coronary blobs
    ct.hu[pred.mitral_annular] = 450
    pred.aortic_valve = np.zeros(ct.shape, dtype=bool)
    scores = {c: synthetic.scores(c) for c in CONVENTIONS}
    converted = convert_series(ct, pred, scores, tmp_path / "dicom")
    row = read_table(
        get_table("cac_series"), write_series_tables([converted], tmp_path / "t")["cac_series"]
    ).to_pylist()[0]
    for c in CONVENTIONS:
        want = score_ct(ct, pred.mitral_annular, convention=c)
        assert want.agatston > 0 and row[f"mac_agatston_{c}"] == pytest.approx(want.agatston, rel=1e-6)
        assert row[f"mac_lesion_count_{c}"] == want.lesion_count >= 1
        assert row[f"avc_agatston_{c}"] == 0.0 and row[f"avc_lesion_count_{c}"] == 0
    assert row["agatston_deepcac"] == pytest.approx(synthetic.scores("deepcac").agatston)  # coronary unchanged
    plain, _ = _run(ct, tmp_path / "plain")
    assert plain.rows["cac_series"][0].get("mac_agatston_deepcac") is None
