"""Build a release from a synthetic run, verify it, damage it, and rebuild it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pydicom
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release import cli as release_cli
from deepcac2.release.build import build_release
from deepcac2.release.manifest import IDC_MANIFEST_NAME, MANIFEST_NAME, QUOTES_MANIFEST
from deepcac2.release.verify import verify_release
from tests.release.runfactory import make_run, write_checks


def _copy(rel: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rel, tmp_path / "copy"))


def test_build_then_verify_passes(release_dir: Path) -> None:
    report = verify_release(release_dir)
    assert report.ok, report.lines()
    listed = pd.read_csv(release_dir / MANIFEST_NAME)
    on_disk = sorted(p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file())
    # every file but the manifest and the three that quote its SHA-256
    assert sorted(listed["path"]) == [p for p in on_disk if p not in (MANIFEST_NAME, *QUOTES_MANIFEST)]
    assert report.checked == len(listed)
    # the tables have registered schemas, so they were validated, not skipped
    assert not [n for n in report.notes if n.startswith("cac_series")]


def test_manifest_hashes_match_hashlib(release_dir: Path) -> None:
    listed = pd.read_csv(release_dir / MANIFEST_NAME).set_index("path")
    license_ = (release_dir / "LICENSE").read_bytes()
    row = listed.loc["LICENSE"]
    assert row["size_bytes"] == len(license_)
    assert row["md5"] == hashlib.md5(license_).hexdigest()
    assert row["sha256"] == hashlib.sha256(license_).hexdigest()


def test_the_root_hash_is_shown_in_the_card_which_provenance_seals(release_dir: Path) -> None:
    root = hashlib.sha256((release_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    card = (release_dir / "DATASET_CARD.md").read_text()
    assert f"Root hash (SHA-256 of MANIFEST.csv): `{root}`" in card
    sealed = hashlib.sha256(card.replace(root, "0" * 64).encode()).hexdigest()
    assert json.loads((release_dir / "provenance.json").read_text())["card_sha256"] == sealed
    listed = set(pd.read_csv(release_dir / MANIFEST_NAME)["path"])
    assert {"provenance.json", "zenodo.json"} <= listed and "DATASET_CARD.md" not in listed
    assert "root hash" in json.loads((release_dir / "zenodo.json").read_text())["metadata"]["notes"]
    assert f"root hash (SHA-256 of MANIFEST.csv): {root}" in "\n".join(verify_release(release_dir).lines())


@pytest.mark.parametrize("target", ["MANIFEST.csv", "provenance.json", "DATASET_CARD.md", "zenodo.json"])
def test_verify_checks_the_root_hash_and_the_card_seal(release_dir: Path, tmp_path: Path, target: str) -> None:
    rel = _copy(release_dir, tmp_path)
    path = rel / target
    if target == MANIFEST_NAME:  # a blank line: another root hash, yet every listed file still matches it
        path.write_text(path.read_text() + "\n")
    elif target == "DATASET_CARD.md":  # a word changed, the root hash kept: the seal catches it
        path.write_text(path.read_text().replace("CC BY 4.0", "CC BY-NC 4.0"))
    else:
        path.write_text(path.read_text().replace("deepcac2", "deepcac3"))
    report = verify_release(rel)
    assert not report.ok
    expected = "DATASET_CARD.md" if target == MANIFEST_NAME else target  # the card shows the root hash
    assert [m.split(":")[0] for m in report.modified if not m.startswith("statements")] == [expected], report.lines()


def test_verify_treats_a_symlink_as_an_error(release_dir: Path, tmp_path: Path) -> None:
    rel = _copy(release_dir, tmp_path)
    extra = tmp_path / "mine.parquet"
    extra.write_bytes((rel / "tables" / "cac_series.parquet").read_bytes())
    (rel / "tables" / "extra.parquet").symlink_to(extra)
    (rel / "figures" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    report = verify_release(rel)
    assert not report.ok
    assert report.links == ["figures/elsewhere", "tables/extra.parquet"]
    assert "  symlink: tables/extra.parquet" in report.lines()


def test_release_copies_only_objects_cac_series_names(run_dir: Path, tmp_path: Path) -> None:
    """A SEG left by an earlier run of a series that now fails must not ship (nor be listed for IDC)."""
    from tests.release.runfactory import uid, write_dicom

    run = Path(shutil.copytree(run_dir, tmp_path / "RUN"))
    stale = run / "dicom" / "stale.dcm"
    write_dicom(stale, "P9", uid("s9"), uid("seg9"), uid("sop9"), "SEG")
    rel = build_release(run, "1.0.0", tmp_path / "REL", dashboard_patients=4)
    idc = pd.read_csv(rel / IDC_MANIFEST_NAME)
    assert uid("sop9") not in set(idc["SOPInstanceUID"])
    assert not list(rel.rglob(f"{uid('sop9')}.dcm"))
    assert len(idc) == len(list((run_dir / "dicom").glob("*.dcm")))


def test_an_empty_run_is_not_released(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=2, images=False)
    series = pq.read_table(run / "tables" / "cac_series.parquet")
    pq.write_table(series.slice(0, 0), run / "tables" / "cac_series.parquet")
    with pytest.raises(DeepCACError) as err:
        build_release(run, "1.0.0", tmp_path / "REL")
    assert err.value.code is ErrorCode.E_RELEASE_INPUT and "no scored series" in err.value.message
    assert not (tmp_path / "REL").exists()


def test_dicom_layout_follows_each_header(run_dir: Path, release_dir: Path) -> None:
    sources = sorted((run_dir / "dicom").glob("*.dcm"))
    idc = pd.read_csv(release_dir / IDC_MANIFEST_NAME).set_index("SOPInstanceUID")
    assert len(idc) == len(sources)
    for src in sources:
        ds = pydicom.dcmread(src)
        want = (
            f"dicom/{ds.PatientID}/{ds.StudyInstanceUID}/{ds.Modality}_{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        )
        assert idc.loc[ds.SOPInstanceUID, "path"] == want
        assert (release_dir / want).read_bytes() == src.read_bytes()
        assert idc.loc[ds.SOPInstanceUID, "md5"] == hashlib.md5(src.read_bytes()).hexdigest()


def test_one_changed_byte_fails_verify(release_dir: Path, tmp_path: Path) -> None:
    rel = _copy(release_dir, tmp_path)
    target = rel / "tables" / "cac_series.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify_release(rel)
    assert not report.ok
    assert [m.split(":")[0] for m in report.modified] == ["tables/cac_series.parquet"]
    assert "md5" in report.modified[0] and "sha256" in report.modified[0]
    assert not report.missing and not report.extra


def test_missing_and_extra_files_are_reported(release_dir: Path, tmp_path: Path) -> None:
    rel = _copy(release_dir, tmp_path)
    (rel / "LICENSE").unlink()
    (rel / "figures" / "stray.txt").write_text("not in the manifest")
    report = verify_release(rel)
    assert report.missing == ["LICENSE"]
    assert report.extra == ["figures/stray.txt"]
    assert not report.ok


def test_verify_cli_exit_codes(release_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = __import__("argparse").ArgumentParser()
    release_cli.build_parser(parser)
    assert release_cli.main(parser.parse_args(["verify", str(release_dir)])) == 0
    rel = _copy(release_dir, tmp_path)
    (rel / "CITATION.cff").write_text("changed\n")
    assert release_cli.main(parser.parse_args(["verify", str(rel)])) == 1
    assert "modified: CITATION.cff" in capsys.readouterr().out


def test_build_is_deterministic(run_dir: Path, release_dir: Path, tmp_path: Path) -> None:
    # a second run written to another place, later (other mtimes), gives the same manifest
    other_run = make_run(tmp_path / "elsewhere" / "RUN")
    again = build_release(other_run, "1.0.0", tmp_path / "REL2", dashboard_patients=4)
    assert (again / MANIFEST_NAME).read_bytes() == (release_dir / MANIFEST_NAME).read_bytes()


def test_build_refuses_a_blocking_qa_failure(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=2, blocking_failure=True, images=False)
    with pytest.raises(DeepCACError) as exc:
        build_release(run, "1.0.0", tmp_path / "REL")
    assert exc.value.code is ErrorCode.E_RELEASE_QA_BLOCKED
    assert "dicom.dciodvfy" in exc.value.message
    assert not (tmp_path / "REL").exists()


def test_build_refuses_missing_qa_unless_allowed(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=2, qa=False, images=False)
    with pytest.raises(DeepCACError) as exc:
        build_release(run, "1.0.0", tmp_path / "REL")
    assert exc.value.code is ErrorCode.E_RELEASE_QA_MISSING
    rel = build_release(run, "0.1.0-draft", tmp_path / "REL", allow_no_qa=True)
    assert verify_release(rel).ok
    assert "no QA was run" in (rel / "DATASET_CARD.md").read_text()


def test_build_refuses_a_non_empty_output(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "REL").mkdir()
    (tmp_path / "REL" / "old.txt").write_text("x")
    with pytest.raises(DeepCACError) as exc:
        build_release(run_dir, "1.0.0", tmp_path / "REL")
    assert exc.value.code is ErrorCode.E_OUTPUT_LOCKED


def test_build_refuses_a_run_without_series_table(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    (run / "tables" / "cac_series.parquet").unlink()
    with pytest.raises(DeepCACError) as exc:
        build_release(run, "1.0.0", tmp_path / "REL")
    assert exc.value.code is ErrorCode.E_RELEASE_INPUT


def test_console_dispatcher_runs_release_and_query(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepcac2.cli import main

    rel = tmp_path / "REL"
    assert main(["release", "build", str(run_dir), "--version", "1.2.3", "--out", str(rel), "--doi", "10.5281/x"]) == 0
    assert "dashboard/index.html" in capsys.readouterr().out
    assert "DOI: 10.5281/x" in (rel / "DATASET_CARD.md").read_text()
    assert main(["release", "verify", str(rel)]) == 0
    assert main(["query", "SELECT count(*) AS n FROM failures", "--release", str(rel), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split()[-2:] == ["n", "1"]
    # a refusal is a DeepCACError: exit 3 with its code on stderr
    assert main(["release", "build", str(run_dir), "--version", "1.2.3", "--out", str(rel)]) == 3
    assert "E_OUTPUT_LOCKED" in capsys.readouterr().err


def test_verify_validates_table_schemas(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    failures = pd.read_parquet(run / "tables" / "failures.parquet").drop(columns=["stage"])
    failures.to_parquet(run / "tables" / "failures.parquet", index=False)
    (run / "tables" / "extra_table.parquet").write_bytes((run / "tables" / "runs.parquet").read_bytes())
    write_checks(run, blocking_failure=False)  # QA bound to the edited tables (a release refuses stale QA)
    report = verify_release(build_release(run, "1.0.0", tmp_path / "REL"))
    assert not report.ok and not report.modified and not report.missing and not report.extra
    assert any(p.startswith("failures:") and "missing column stage" in p for p in report.schema_problems)
    assert report.notes == ["extra_table: no registered schema, not validated"]


def test_verify_checks_tables_a_batch_at_a_time(
    release_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An NLST release's measurements hold millions of rows: verify never reads a table whole."""
    from deepcac2.qa import table_checks

    def whole(*_a: object, **_k: object) -> None:
        raise AssertionError("a table checked whole")

    monkeypatch.setattr(table_checks, "check_table", whole)
    monkeypatch.setattr(table_checks, "BATCH_ROWS", 2)  # many batches even for the small run's tables
    assert verify_release(release_dir).ok
    rel = _copy(release_dir, tmp_path)
    (rel / "tables" / "cac_lesions.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    report = verify_release(rel)
    assert any(p.startswith("cac_lesions: not readable as Parquet") for p in report.schema_problems)
