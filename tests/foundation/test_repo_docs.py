"""The README, dataset card and CI script say what the brief requires."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DATASHEET_SECTIONS = ["Motivation", "Composition", "Collection", "Preprocessing", "Uses", "Distribution", "Maintenance"]


def test_readme_shows_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make demo" in text and "make test" in text


def test_dataset_card_has_every_datasheet_section() -> None:
    headings = [h.lower() for h in re.findall(r"^## (.+)$", (REPO / "DATASET_CARD.md").read_text(), flags=re.M)]
    for section in DATASHEET_SECTIONS:
        assert any(h.startswith(section.lower()) for h in headings), f"section {section} missing: {headings}"


def test_dataset_card_states_license_and_source() -> None:
    text = (REPO / "DATASET_CARD.md").read_text()
    assert "CC BY 4.0" in text
    assert "NLST" in text and "{{ toolkit_version }}" in text


def test_ci_script_requires_shared_data_and_runs_make_test() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert "make test" in text
    assert "DEEPCAC2_REQUIRE_SHARED_DATA=1" in text
    assert "dicom3tools" in text
    assert '"$rc" = 5' in text, "pytest's no-tests exit code must become a failure"


def test_makefile_has_the_targets() -> None:
    text = (REPO / "Makefile").read_text()
    for target in ("setup", "demo", "test", "bench", "lint"):
        assert re.search(rf"^{target}:", text, flags=re.M), target
    assert "torch==2.13.0" in text
