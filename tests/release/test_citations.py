"""The release cites NLST (collection and trial) and IDC in the card, CITATION.cff and zenodo.json; creators are stated."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deepcac2.release.build import build_release
from deepcac2.release.citations import Creator

NLST_COLLECTION, NLST_TRIAL, IDC = "10.7937/TCIA.HMQ8-J677", "10.1056/NEJMoa1102873", "10.1148/rg.230180"


def test_default_release_cites_nlst_and_idc_everywhere(release_dir: Path) -> None:
    text = (release_dir / "DATASET_CARD.md").read_text()
    section = text.split("## Citation", 1)[1].split("## Maintenance", 1)[0]
    for doi in (NLST_COLLECTION, NLST_TRIAL, IDC):
        assert f"https://doi.org/{doi}" in section, doi
    cff = yaml.safe_load((release_dir / "CITATION.cff").read_text())
    assert {r["doi"] for r in cff["references"]} >= {NLST_COLLECTION, NLST_TRIAL, IDC}
    assert cff["authors"] == [{"name": "deepcac2 project"}]
    zenodo = json.loads((release_dir / "zenodo.json").read_text())["metadata"]
    related = {r["identifier"]: r["relation"] for r in zenodo["related_identifiers"]}
    assert related[NLST_COLLECTION] == "isDerivedFrom" and related[NLST_TRIAL] == related[IDC] == "references"


def test_creators_are_configurable(run_dir: Path, tmp_path: Path) -> None:
    people = ("Doe, Jane|Example University|0000-0002-1825-0097", "Roe, Richard")
    rel = build_release(run_dir, "1.0.1", tmp_path / "rel", dashboard_patients=2, stated={"authors": people})
    cff = yaml.safe_load((rel / "CITATION.cff").read_text())
    assert cff["authors"][0] == {
        "family-names": "Doe",
        "given-names": "Jane",
        "affiliation": "Example University",
        "orcid": "https://orcid.org/0000-0002-1825-0097",
    }
    assert cff["authors"][1] == {"family-names": "Roe", "given-names": "Richard"}
    creators = json.loads((rel / "zenodo.json").read_text())["metadata"]["creators"]
    assert creators == [Creator.parse(p).zenodo() for p in people]
    assert creators[0]["affiliation"] == "Example University"
    assert "Doe, Jane; Roe, Richard" in (rel / "DATASET_CARD.md").read_text()
