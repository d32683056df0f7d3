"""Issue 25, item 7: ``release verify`` covers every file and checks tables against the objects.

A forged toolkit version, licence or creator in ``provenance.json`` / ``zenodo.json`` passed
verify (those files were outside the manifest); verify never compared tables with DICOM objects.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepcac2.cli import main
from deepcac2.release import manifest
from deepcac2.release.build import build_release
from deepcac2.release.verify import verify_release
from tests.release.runfactory import make_run


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("seal")
    return build_release(
        make_run(base / "RUN", n_patients=2, images=False), "1.0.0", base / "REL", dashboard_patients=1
    )


def _copy(release: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(release, tmp_path / "copy"))


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _rehash(rel: Path, also_card: bool = False) -> None:
    """What a careful forger does next: rewrite MANIFEST.csv (and the card's root hash) to match."""
    old = manifest.manifest_sha256(rel)
    entries = [manifest.hash_file(rel, p) for p in manifest.list_files(rel)]
    manifest.write_manifest(rel, entries)
    if also_card:
        card = rel / manifest.CARD_NAME
        card.write_text(card.read_text().replace(old, manifest.manifest_sha256(rel)))


FORGERIES = {
    "toolkit version": ("provenance.json", lambda d: d["toolkit"].update(version="9.9.9")),
    "licence": ("zenodo.json", lambda d: d["metadata"].update(license="cc-by-nc-4.0")),
    "creator": ("zenodo.json", lambda d: d["metadata"].update(creators=[{"name": "Mallory"}])),
}


def test_verify_passes_and_prints_the_root_hash(release: Path, capsys) -> None:
    assert main(["release", "verify", str(release)]) == 0
    root = hashlib.sha256((release / manifest.MANIFEST_NAME).read_bytes()).hexdigest()
    assert f"root hash (SHA-256 of MANIFEST.csv): {root}" in capsys.readouterr().out
    assert f"`{root}`" in (release / manifest.CARD_NAME).read_text()


@pytest.mark.parametrize("what", sorted(FORGERIES))
def test_a_forged_statement_fails_verify(release: Path, tmp_path: Path, what: str) -> None:
    name, edit = FORGERIES[what]
    rel = _copy(release, tmp_path)
    _edit_json(rel / name, edit)
    report = verify_release(rel)
    assert not report.ok and any(m.startswith(f"{name}:") for m in report.modified), report.lines()
    _rehash(rel)  # the manifest rewritten: the card no longer shows the root hash
    report = verify_release(rel)
    assert not report.ok and any(m.startswith("DATASET_CARD.md:") for m in report.modified)


@pytest.mark.parametrize("what", ["toolkit version", "licence"])
def test_a_forgery_rehashed_throughout_still_fails_on_its_statements(release: Path, tmp_path: Path, what: str) -> None:
    name, edit = FORGERIES[what]
    rel = _copy(release, tmp_path)
    _edit_json(rel / name, edit)
    _rehash(rel, also_card=True)
    report = verify_release(rel)
    assert report.root_hash != verify_release(release).root_hash  # and the root hash is not the published one
    assert not report.ok and any(m.startswith("statements:") for m in report.modified), report.lines()


def test_a_card_edit_breaks_its_seal(release: Path, tmp_path: Path) -> None:
    rel = _copy(release, tmp_path)
    card = rel / manifest.CARD_NAME
    card.write_text(card.read_text().replace("deepcac2 maintainers", "Mallory") + "\nExtra claim.\n")
    report = verify_release(rel)
    assert [m for m in report.modified if "seals" in m], report.lines()


def _set_column(path: Path, column: str, index: int, value: str) -> None:
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[index] = value
    i = table.schema.get_field_index(column)
    pq.write_table(table.set_column(i, table.schema.field(i), [values]), path)


def test_tables_are_checked_against_the_dicom_objects(release: Path, tmp_path: Path) -> None:
    rel = _copy(release, tmp_path)
    series = rel / "tables" / "cac_series.parquet"
    _set_column(series, "sr_sop_instance_uid", 0, "1.2.999")
    _set_column(series, "seg_series_uid", 1, "1.2.998")
    _rehash(rel)  # even with the manifest rewritten to match, QA's recorded SHA-256 does not
    report = verify_release(rel)
    text = " | ".join(report.objects)
    assert "cac_series.sr_sop_instance_uid 1.2.999: no such object" in text
    assert "cac_series.seg_series_uid 1.2.998" in text
    assert "no cac_series row names it" in text  # the SR the row named before
    assert "tables/cac_series.parquet: not the table QA checked" in text


def test_an_object_out_of_place_or_unrecorded_fails(release: Path, tmp_path: Path) -> None:
    rel = _copy(release, tmp_path)
    with open(rel / manifest.IDC_MANIFEST_NAME, newline="") as f:
        first = next(csv.DictReader(f))
    src = rel / first["path"]
    moved = src.with_name("moved.dcm")
    src.rename(moved)
    report = verify_release(rel)
    text = " | ".join(report.objects)
    assert f"{moved.relative_to(rel).as_posix()}: its header places it at {first['path']}" in text
    assert f"{moved.relative_to(rel).as_posix()}: idc_manifest.csv does not name it" in text

    moved.rename(src)
    checks = pq.read_table(rel / "qa" / "checks.parquet").to_pandas()
    kept = checks[checks["subject"] != first["SOPInstanceUID"]]  # QA never saw this object
    kept.to_parquet(rel / "qa" / "checks.parquet", index=False)
    report = verify_release(rel)
    assert f"{first['path']}: not the object QA checked" in " | ".join(report.objects), report.lines()
