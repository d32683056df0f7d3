"""--from-dir over a messy folder, the cohort file round trip, and SeriesRef conversion."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cohort_dicom import write_ct
from pydicom.uid import generate_uid

from deepcac2.cli import main as cli_main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort import table as table_module
from deepcac2.pipeline.cohort.localdir import index_folder
from deepcac2.pipeline.cohort.rules import CohortFilters
from deepcac2.pipeline.cohort.select import index_local
from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort, write_cohort
from deepcac2.schemas.cohort import TABLE


@pytest.fixture()
def messy(tmp_path):
    """Three series: A split over two nested folders, B sharing a folder with A, L a localizer;
    plus a text file, a truncated file and a file with an empty series UID."""
    root = tmp_path / "dump"
    study = generate_uid()
    uids = {"A": generate_uid(), "B": generate_uid(), "L": generate_uid()}
    files: dict[str, list] = {k: [] for k in uids}
    for i in range(55):
        sub = root / "x" / ("deep" if i % 2 else "") / "a"
        files["A"].append(write_ct(sub / f"IMG{i:04d}", series=uids["A"], study=study, z=i * 2.5))
    for i in range(7):
        files["B"].append(
            write_ct(root / "x" / "a" / f"b{i}.dcm", series=uids["B"], study=study, kernel="B50f", thickness=1.0)
        )
    files["L"].append(
        write_ct(
            root / "scout.dcm", series=uids["L"], study=study, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
            description="Topogram",
        )
    )  # fmt: skip
    (root / "notes.txt").write_text("not dicom")
    (root / "x" / "trunc.dcm").write_bytes(b"\x00" * 10)
    empty = write_ct(root / "empty_uid.dcm", series="", study=study)
    return root, uids, files, empty


def test_index_local_finds_each_series_with_its_files_and_sizes(messy):
    root, uids, files, empty = messy
    table, skipped = index_local(root)
    assert table.schema.equals(TABLE.arrow, check_metadata=False)
    kept = {r["SeriesInstanceUID"]: r for r in table.to_pylist()}
    # a localizer is excluded even without a policy (an exclusion, never a run failure)
    assert set(kept) == {uids["A"], uids["B"]}
    rows = {r["SeriesInstanceUID"]: r for r in index_folder(root).frame.to_dict("records")}
    assert set(rows) == set(uids.values())
    for key, uid in uids.items():
        assert rows[uid]["instanceCount"] == len(files[key])
        assert rows[uid]["series_size_bytes"] == sum(os.path.getsize(p) for p in files[key])
        assert rows[uid]["series_aws_url"] is None and rows[uid]["collection_id"] is None
    assert rows[uids["A"]]["location"] == str(root / "x")  # the folder holding both halves
    assert rows[uids["B"]]["location"] == str(root / "x" / "a")
    assert rows[uids["B"]]["kernel"] == "B50f" and rows[uids["B"]]["slice_thickness_mm"] == 1.0
    assert rows[uids["A"]]["image_type"] == "OPA" and rows[uids["L"]]["image_type"] == "OPL"
    assert kept[uids["A"]]["kvp"] == 120.0 and kept[uids["A"]]["scanner_manufacturer"] == "SIEMENS"
    assert {os.path.basename(p) for p, _ in skipped} == {"notes.txt", "trunc.dcm", os.path.basename(empty)}
    assert any("E_UID_INVALID" in why for _, why in skipped)


def test_index_local_with_policy_applies_the_eligibility_rules(messy):
    root, uids, _, _ = messy
    table, _ = index_local(root, policy="all")
    # B has 7 instances (< 50), L is a localizer: only A is eligible
    assert table.column("SeriesInstanceUID").to_pylist() == [uids["A"]]
    table, _ = index_local(root, filters=CohortFilters(kernels=("B50F",)))
    assert table.column("SeriesInstanceUID").to_pylist() == [uids["B"]]


def test_cli_from_dir_explain_counts_each_rule(messy, capsys):
    root, *_ = messy
    assert cli_main(["cohort", "--from-dir", str(root), "--policy", "deepcac", "--explain"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # 3 series found: L is a localizer, B has 7 < 50 instances, A is kept
    assert lines["not_localizer"][1] == "1" and lines["min_instances_50"][1] == "1"
    assert lines["deepcac_one_per_study"][1] == "0"
    assert "selected: 1 series, 1 studies, 1 patients" in out


def test_index_local_of_a_missing_folder_is_a_cohort_error(tmp_path):
    with pytest.raises(DeepCACError) as e:
        index_local(tmp_path / "nope")
    assert e.value.code is ErrorCode.E_COHORT_INVALID


def test_cli_from_dir_writes_a_readable_cohort_and_refs(messy, tmp_path, monkeypatch):
    root, uids, files, _ = messy
    out = tmp_path / "cohort.parquet"
    assert cli_main(["cohort", "--from-dir", str(root), "-o", str(out)]) == 0
    table = read_cohort(out)
    refs = cohort_to_refs(table)
    assert [r.series_uid for r in refs] == table.column("SeriesInstanceUID").to_pylist()
    a = next(r for r in refs if r.series_uid == uids["A"])
    assert a.location == str(root / "x") and a.instance_count == 55
    assert a.params["kernel"] == "B30f" and a.params["slice_thickness_mm"] == 2.5
    monkeypatch.setattr(table_module, "REF_BATCH_ROWS", 1)  # rows turned into dicts a batch at a time: same refs
    assert [(r, r.params) for r in cohort_to_refs(table)] == [(r, r.params) for r in refs]


def test_cli_explain_on_the_index(capsys):
    assert cli_main(["cohort", "--explain", "--patients", "100002", "--seconds-per-series", "60"]) == 0
    out = capsys.readouterr().out
    assert "patients" in out and "run time" in out and "60 s/series" in out


def test_cli_needs_an_output_or_explain(capsys):
    assert cli_main(["cohort", "--limit", "1"]) == 3
    assert "E_COHORT_INVALID" in capsys.readouterr().err


def test_read_cohort_rejects_missing_columns_wrong_types_and_null_keys(tmp_path, messy):
    root, *_ = messy
    table, _ = index_local(root)
    good = write_cohort(table, tmp_path / "good.parquet")
    assert read_cohort(good).equals(table.select(TABLE.arrow.names))
    cases = {
        "missing": table.drop_columns(["crdc_series_uuid"]),
        "type": table.set_column(
            table.schema.get_field_index("instanceCount"),
            "instanceCount",
            table.column("instanceCount").cast(pa.string()),  # text for a count (int64 is read: pandas writes it)
        ),
        "nullkey": table.set_column(
            table.schema.get_field_index("PatientID"), "PatientID", pa.nulls(table.num_rows, pa.string())
        ),
    }
    for name, bad in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(bad, path)
        with pytest.raises(DeepCACError) as e:
            read_cohort(path)
        assert e.value.code is ErrorCode.E_COHORT_INVALID, name
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(DeepCACError):
        read_cohort(tmp_path / "junk.parquet")


@pytest.mark.shared_data
def test_index_local_on_the_real_ct_folder(shared_data):
    """The real CT (see its README): 2 + 2 Lung-PET-CT-Dx series, the NSCLC-Radiomics chest, the GE
    gantry-tilt and the Philips private-tag series; the JPEG 2000 files with EMPTY UIDs cannot be
    tracked as a series and are reported."""
    table, skipped = index_local(shared_data)
    locations = sorted(os.path.relpath(r["location"], shared_data).split(os.sep)[0] for r in table.to_pylist())
    assert locations == ["ge-gantry-tilt"] + ["lung-pet-ct-dx"] * 4 + ["nsclc-radiomics", "philips-private-tags"]
    by_patient: dict[str, list[int]] = {}
    for r in table.to_pylist():
        by_patient.setdefault(r["PatientID"], []).append(r["instanceCount"])
    assert sorted(by_patient.pop("Lung_Dx-A0001")) == [64, 64]
    assert sorted(by_patient.pop("Lung_Dx-A0002")) == [30, 30]
    assert by_patient.pop("LUNG1-001") == [134]
    assert sorted(by_patient.values()) == [[28], [28]]
    jpeg = sorted(p for p, why in skipped if "jpeg2000-empty-uids" in p)
    files = sorted(
        str(p) for p in (shared_data / "jpeg2000-empty-uids").rglob("*") if p.is_file() and p.suffix != ".md"
    )
    assert jpeg == files and len(jpeg) == 20
    assert all("E_UID_INVALID" in why for p, why in skipped if p in jpeg)


def test_damaged_files_are_skipped_with_a_reason_never_a_crash(tmp_path):
    """Truncated and byte-flipped copies of a valid file: every file ends up in a series or in
    the skipped list, whatever pydicom raises on it."""
    import random

    good = write_ct(tmp_path / "src" / "good.dcm", series=generate_uid(), study=generate_uid()).read_bytes()
    rng = random.Random(1)
    folder = tmp_path / "damaged"
    folder.mkdir()
    for i in range(150):
        data = bytearray(good)
        if i % 2:
            data = data[: rng.randrange(0, len(data))]
        else:
            for _ in range(rng.randrange(1, 12)):
                data[rng.randrange(128, len(data))] = rng.randrange(256)
        (folder / f"f{i:03d}.dcm").write_bytes(bytes(data))
    table, skipped = index_local(folder)
    assert sum(table.column("instanceCount").to_pylist()) + len(skipped) == 150
    assert skipped and all(why for _, why in skipped)


def test_cli_summarises_skipped_files_unless_asked_for_all(messy, tmp_path, capsys):
    root, _, _, _ = messy
    for i in range(5):
        (root / f"truth{i}.json").write_text("{}")  # e.g. synth's truth files next to the DICOM
    assert cli_main(["cohort", "--from-dir", str(root), "-o", str(tmp_path / "c.parquet")]) == 0
    summary = capsys.readouterr().err
    lines = [line for line in summary.splitlines() if line.startswith("skipped")]
    assert len(lines) == 3, summary  # one line per reason, not one per file
    assert any("skipped 6 file(s): not a DICOM file" in line for line in lines), summary  # 5 json + txt
    # a .dcm file claims to be DICOM: damaged, as the loader says, not stray
    assert any("skipped 1 file(s): E_UNREADABLE_FILE (e.g. " in line and "trunc.dcm" in line for line in lines)
    assert any("skipped 1 file(s): E_UID_INVALID" in line for line in lines), summary
    assert "--list-skipped" in summary and summary.count("truth") <= 1
    assert cli_main(["cohort", "--from-dir", str(root), "-o", str(tmp_path / "d.parquet"), "--list-skipped"]) == 0
    every = capsys.readouterr().err
    assert all(f"truth{i}.json" in every for i in range(5))
