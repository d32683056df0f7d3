"""Two model versions on the same synthetic cohort: the diff shows the reclassifications we built in."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr

from deepcac2.release import cli as release_cli
from deepcac2.release.build import build_release
from tests.release.runfactory import make_run, series_rows

# Old and new Agatston scores per series (6 patients x 3 rounds = 18 series). Chosen so that
# several series cross DeepCAC and classic band edges in both directions.
OLD = [0, 0, 50, 50, 150, 500, 250, 5, 12, 0, 99.4, 400, 1000, 3, 0, 80, 301, 20]
NEW = [0, 50, 50, 150, 500, 250, 260, 5, 9, 2, 100.6, 401, 900, 3, 0, 80, 299, 20]
REMOVED = 17  # index of the series only the old release has
ADDED_UID = "1.2.826.0.1.3680043.10.1234.999"


def deepcac_band(score: float) -> str:
    """DeepCAC groups from the domain facts: 0, 1-100, 101-300, >300 (score rounded first)."""
    s = round(score)
    return "very low" if s == 0 else "low" if s <= 100 else "moderate" if s <= 300 else "high"


def classic_band(score: float) -> str:
    s = round(score)
    return "0" if s == 0 else "1-10" if s <= 10 else "11-100" if s <= 100 else "101-400" if s <= 400 else ">400"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    old_rows = series_rows(6, [float(s) for s in OLD], model="1.0")
    new_rows = series_rows(6, [float(s) for s in NEW], model="2.0")
    new_rows.pop(REMOVED)
    extra = dict(new_rows[0], SeriesInstanceUID=ADDED_UID, agatston_deepcac=42.0)
    new_rows.append(extra)
    old = build_release(make_run(tmp / "run1", rows=old_rows, images=False), "1.0.0", tmp / "rel1")
    new = build_release(make_run(tmp / "run2", rows=new_rows, images=False), "2.0.0", tmp / "rel2")
    out = tmp / "diff"
    parser = argparse.ArgumentParser()
    release_cli.build_parser(parser)
    assert release_cli.main(parser.parse_args(["diff", str(old), str(new), "--out", str(out)])) == 0
    return old, new, out


def _common_pairs() -> list[tuple[float, float]]:
    return [(o, n) for i, (o, n) in enumerate(zip(OLD, NEW, strict=True)) if i != REMOVED]


@pytest.mark.parametrize("scheme,band", [("deepcac", deepcac_band), ("classic", classic_band)])
def test_reclassification_counts(releases: tuple[Path, Path, Path], scheme: str, band) -> None:
    _, _, out = releases
    table = pd.read_parquet(out / "reclassification.parquet")
    got = {(r.old_category, r.new_category): r.series for r in table[table["scheme"] == scheme].itertuples()}
    want = Counter((band(o), band(n)) for o, n in _common_pairs())
    assert {k: v for k, v in got.items() if v} == dict(want)


def test_series_changes_and_notes(releases: tuple[Path, Path, Path]) -> None:
    old, new, out = releases
    changes = pd.read_parquet(out / "series_changes.parquet").set_index("SeriesInstanceUID")
    assert changes.loc[ADDED_UID, "status"] == "added"
    removed = pd.read_parquet(old / "tables" / "cac_series.parquet")["SeriesInstanceUID"].iloc[REMOVED]
    assert changes.loc[removed, "status"] == "removed"
    pairs = _common_pairs()
    assert (changes["status"] == "changed").sum() == sum(o != n for o, n in pairs)
    assert (changes["status"] == "unchanged").sum() == sum(o == n for o, n in pairs)
    notes = (out / "RELEASE_NOTES.md").read_text()
    up = sum(
        ["very low", "low", "moderate", "high"].index(deepcac_band(n))
        > ["very low", "low", "moderate", "high"].index(deepcac_band(o))
        for o, n in pairs
    )
    down = sum(deepcac_band(o) != deepcac_band(n) for o, n in pairs) - up
    assert f"reclassified {up + down} of {len(pairs)} ({up} up, {down} down)" in notes
    assert "deepcac2-unet 1.0" in notes and "deepcac2-unet 2.0" in notes
    assert "Release notes: 2.0.0 vs 1.0.0" in notes
    assert (out / "bland_altman.png").read_bytes()[:4] == b"\x89PNG"
    # the agreement bullets are evaluate's (one formatter for reports and notes), new - old
    o, n = zip(*pairs, strict=True)
    assert f"- Spearman rho: {spearmanr(n, o).statistic:.4g} (p = " in notes
    assert "- Bland-Altman (new - old): bias " in notes and "see `bland_altman.png`" in notes
    assert sum(line.startswith("- linearly weighted kappa, `") for line in notes.splitlines()) == 3


def test_agreement_matches_scipy(releases: tuple[Path, Path, Path]) -> None:
    _, _, out = releases
    metrics = pd.read_parquet(out / "agreement.parquet")
    rho = metrics.loc[metrics["metric"] == "spearman_rho", "value"].item()
    o, n = zip(*_common_pairs(), strict=True)
    assert rho == pytest.approx(spearmanr(n, o).statistic)
    kappas = metrics[metrics["metric"] == "weighted_kappa"].set_index("scheme")["value"]
    assert set(kappas.index) == {"deepcac", "classic", "cac_drs"}
    assert all(0 < k < 1 for k in kappas)  # some, not all, series were reclassified


def test_no_object_changed_under_its_uid(releases: tuple[Path, Path, Path]) -> None:
    old, new, out = releases
    assert pd.read_parquet(out / "uid_conflicts.parquet").empty
    assert "changed under an unchanged SOPInstanceUID (0; must be 0)" in (out / "RELEASE_NOTES.md").read_text()


def test_an_object_changed_under_its_uid_is_reported(releases: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import shutil

    import pydicom

    from deepcac2.release.diff import uid_conflicts

    old, _, _ = releases
    changed = tmp_path / "changed"
    shutil.copytree(old, changed)
    victim = sorted((changed / "dicom").rglob("*.dcm"))[0]
    ds = pydicom.dcmread(victim)
    ds.SeriesDescription = "other content, same SOPInstanceUID"
    ds.save_as(victim, enforce_file_format=True)
    (changed / "idc_manifest.csv").unlink()  # read the files themselves, as for a run folder
    stamped = sorted((changed / "dicom").rglob("*.dcm"))[1]
    other = pydicom.dcmread(stamped)
    other.ContentDate, other.ContentTime = "20260101", "000000"  # a new creation stamp alone: same content
    other.save_as(stamped, enforce_file_format=True)
    conflicts = uid_conflicts(old, changed)
    assert conflicts["SOPInstanceUID"].tolist() == [str(ds.SOPInstanceUID)]
    parser = argparse.ArgumentParser()
    release_cli.build_parser(parser)
    assert release_cli.main(parser.parse_args(["diff", str(old), str(changed), "--out", str(tmp_path / "d")])) == 1
