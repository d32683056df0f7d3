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
from deepcac2.pipeline.scoring.conventions import CONVENTIONS
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
    assert f"| very low | {n_zero} |" in text
    for fig in ("figures/score_distribution.png", "figures/risk_categories.png"):
        assert f"]({fig})" in text
        assert (release_dir / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Release: **1.0.0**" in text and "built: 2026-03-04" in text  # date from the runs table


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
    for name in ("pyproject.toml", "setup.py", "README.md", "DATASET_CARD.md"):
        shutil.copy(REPO / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    subprocess.run(cmd, cwd=src, check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("deepcac2-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        shipped = z.read("deepcac2/release/DATASET_CARD.md").decode()
    assert shipped == (REPO / "DATASET_CARD.md").read_text(encoding="utf-8")
