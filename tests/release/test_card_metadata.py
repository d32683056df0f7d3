"""Dataset card rendering and packaging metadata."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.release import card
from tests.conftest import REPO


def test_template_is_the_top_level_card() -> None:
    assert card.TEMPLATE_PATH.resolve() == (REPO / "DATASET_CARD.md").resolve()
    assert card.template_text() == (REPO / "DATASET_CARD.md").read_text(encoding="utf-8")


def test_render_refuses_an_unfilled_placeholder() -> None:
    template = "a {{ one }} b {{two}} c {{ one }}"
    assert card.render(template, {"one": "1", "two": "2"}) == "a 1 b 2 c 1"
    with pytest.raises(DeepCACError) as exc:
        card.render(template, {"one": "1"})
    assert exc.value.code is ErrorCode.E_RELEASE_CARD and "two" in exc.value.message
    with pytest.raises(DeepCACError):
        card.render(template, {"one": "1", "two": "  "})


def test_rendered_card_has_the_real_counts(run_dir: Path, release_dir: Path) -> None:
    text = (release_dir / "DATASET_CARD.md").read_text()
    assert not re.search(r"\{\{.*?\}\}", text)
    assert "<!--" not in text  # the template's own note is dropped
    series = pd.read_parquet(run_dir / "tables" / "cac_series.parquet")
    assert f"{series['PatientID'].nunique()} patients" in text
    assert f"{len(series)} scored series" in text
    n_dicom = len(list((run_dir / "dicom").glob("*.dcm")))
    assert f"{n_dicom // 2} SEG objects" in text and f"{n_dicom // 2} SR objects" in text
    n_zero = int((series["agatston_deepcac"].round() == 0).sum())
    assert f"| very low | {n_zero} ({100 * n_zero / len(series):.1f} %) |" in text  # under `deepcac`
    for fig in ("figures/score_distribution_deepcac.png", "figures/risk_categories_deepcac.png"):
        assert f"]({fig})" in text  # every figure names its convention
        assert (release_dir / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Release: **1.0.0**" in text and "built: 2026-03-04" in text  # date from the runs table
    lesions = pd.read_parquet(run_dir / "tables" / "cac_lesions.parquet")
    assert f"{len(lesions)} lesions under `deepcac`" in text  # counted per convention, never summed over them
    # the run was DeepCAC2's U-Net: the published agreement is quoted, for the published weights only
    assert "Spearman 0.879" in text and "only if these are those weights" in text


def test_card_claims_nothing_of_deepcac2_for_another_model(tmp_path: Path) -> None:
    from deepcac2.release.build import build_release
    from tests.release.runfactory import make_run, series_rows

    rows = [r | {"model_name": "classical", "model_version": "0.1.0", "model_id": "classical:0.1.0:noweights",
                 "model_weights_sha256": None} for r in series_rows(3)]  # fmt: skip
    rel = build_release(make_run(tmp_path / "run", rows=rows), "1.0.0", tmp_path / "rel")
    text = (rel / "DATASET_CARD.md").read_text()
    assert "the model that ran is `classical`, not DeepCAC2's published network" in text
    assert "do not describe this release" in text


def test_release_ships_dictionary_conventions_changelog_readable(release_dir: Path) -> None:
    import csv
    import stat

    from deepcac2.schemas.registry import TABLES

    rows = list(csv.DictReader((release_dir / "data_dictionary.csv").open()))
    assert {(r["table"], r["column"]) for r in rows} == {(t, c.name) for t, s in TABLES.items() for c in s.columns}
    primary = next(r for r in rows if (r["table"], r["column"]) == ("cac_series", "is_primary"))
    assert primary["type"] == "bool" and "DeepCAC" in primary["description"]
    assert "`SeriesInstanceUID`" in (release_dir / "DATA_DICTIONARY.md").read_text()
    assert (release_dir / "CONVENTIONS.md").read_text() == (REPO / "docs" / "conventions.md").read_text()
    assert "## Known issues" in (release_dir / "CHANGELOG.md").read_text()
    assert not (release_dir / "CONVENTIONS.md").is_symlink()
    for path in release_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o004, f"{path} is not world-readable ({oct(mode)})"
    # the overlay pictures are in the release once (qa/images), the dashboard points there
    assert not (release_dir / "dashboard" / "images").exists() and list((release_dir / "qa" / "images").glob("*.png"))


def test_metadata_files(release_dir: Path) -> None:
    zenodo = json.loads((release_dir / "zenodo.json").read_text())["metadata"]
    assert zenodo["license"] == "cc-by-4.0" and zenodo["version"] == "1.0.0" and zenodo["upload_type"] == "dataset"
    assert "https://creativecommons.org/licenses/by/4.0/" in (release_dir / "LICENSE").read_text()
    cff = (release_dir / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in cff and "license: CC-BY-4.0" in cff and 'version: "1.0.0"' in cff
    prov = json.loads((release_dir / "provenance.json").read_text())
    assert prov["conventions"]["deepcac"]["params"] == json.loads(json.dumps(CONVENTIONS["deepcac"].params()))
    assert prov["model_cards"][0]["model_name"] == "deepcac2-unet"
    assert set(prov["risk_schemes"]) == {"deepcac", "classic", "cac_drs"}


@pytest.mark.slow
def test_wheel_ships_the_template(tmp_path: Path) -> None:
    """A non-editable install carries a real copy of the top-level template."""
    src = tmp_path / "src"
    for name in ("deepcac2", "pipeline", "schemas", "qa", "release"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md", "DATASET_CARD.md", "CHANGELOG.md"):
        shutil.copy(REPO / name, src / name)
    (src / "docs").mkdir()
    shutil.copy(REPO / "docs" / "conventions.md", src / "docs" / "conventions.md")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run(cmd, cwd=src, check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("deepcac2-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        shipped = z.read("deepcac2/release/DATASET_CARD.md").decode()
        conventions = z.read("deepcac2/release/CONVENTIONS.md").decode()
        changelog = z.read("deepcac2/release/CHANGELOG.md").decode()
    assert shipped == (REPO / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert conventions == (REPO / "docs" / "conventions.md").read_text(encoding="utf-8")
    assert changelog == (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
