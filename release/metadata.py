"""Packaging metadata of a release: CITATION.cff, Zenodo JSON, LICENSE and provenance.

Every file is written with sorted keys and no wall-clock time (the build date is an
input, see :class:`ReleaseInfo`), so identical inputs give identical bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepcac2._version import __version__
from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.risk_categories import SCHEMES
from deepcac2.release import citations
from deepcac2.release.run_tables import conventions_in

TITLE = "DeepCAC2-NLST: automated coronary artery calcium scores for the National Lung Screening Trial CT"
LICENSE_ID = "CC-BY-4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
#: model card fields, as the run's tables name them (the ModelCard attribute in brackets)
MODEL_COLUMNS = ("model_name", "model_version", "model_weights_sha256", "model_license", "model_training_data")


@dataclass(frozen=True)
class ReleaseInfo:
    """What the release builder states rather than measures."""

    version: str
    #: ISO date (YYYY-MM-DD); taken from the run, never from the clock (see build.py)
    build_date: str
    doi: str = "not yet assigned (draft release; Zenodo assigns it on publication)"
    funding: str = "not stated"
    distribution: str = "this folder is the complete release"
    errata: str = "none reported"
    #: ``"Family, Given|Affiliation|ORCID"`` each (``release build --creator``, repeated); the
    #: default names the project, as an organisation, until the builder states the people
    authors: tuple[str, ...] = ("deepcac2 project",)

    @property
    def creators(self) -> list[citations.Creator]:
        return [citations.Creator.parse(a) for a in self.authors]

    repository_url: str = ""


def model_cards(*tables: pd.DataFrame | None) -> list[dict[str, str]]:
    """Distinct model cards named in the given tables (sorted, JSON-able)."""
    cards: set[tuple[tuple[str, str], ...]] = set()
    for df in tables:
        if df is None or "model_name" not in df.columns:
            continue
        cols = [c for c in MODEL_COLUMNS if c in df.columns]
        for row in df[cols].drop_duplicates().itertuples(index=False):
            cards.add(tuple((c, "" if pd.isna(v) else str(v)) for c, v in zip(cols, row, strict=True)))
    return [dict(c) for c in sorted(cards)]


def conventions_used(cac_series: pd.DataFrame) -> dict[str, dict[str, object] | None]:
    """Convention name -> the parameters the rows recorded (``conventions_json``), for every
    convention with scores; None where the table did not record them."""
    texts = cac_series["conventions_json"].dropna().unique() if "conventions_json" in cac_series.columns else []
    return conventions_recorded(conventions_in(cac_series), texts)


def conventions_recorded(names: list[str], texts: Iterable[str]) -> dict[str, dict[str, object] | None]:
    """:func:`conventions_used` from the conventions with scores and the distinct ``conventions_json`` values."""
    recorded: dict[str, dict[str, object]] = {}
    for text in sorted(texts):
        recorded.update(json.loads(text))
    return {name: recorded.get(name) for name in names}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_license(out: Path) -> Path:
    return _write(
        out / "LICENSE",
        "This release (tables, DICOM SEG and SR objects, figures and documentation) is licensed under the\n"
        "Creative Commons Attribution 4.0 International License (CC BY 4.0).\n\n"
        f"Legal code: {LICENSE_URL}legalcode\nSummary:    {LICENSE_URL}\n\n"
        "You may share and adapt it for any purpose, provided you give appropriate credit, provide a link to\n"
        "the license and indicate if changes were made. The source images are NLST CT from NCI Imaging Data\n"
        "Commons; cite the NLST collection and this release.\n",
    )


def write_citation(out: Path, info: ReleaseInfo) -> Path:
    """CITATION.cff (Citation File Format 1.2.0); values JSON-quoted, which is valid YAML."""
    q = json.dumps
    lines = [
        "cff-version: 1.2.0",
        'message: "If you use this dataset, please cite it as below."',
        "type: dataset",
        f"title: {q(TITLE)}",
        f"version: {q(info.version)}",
        f"date-released: {q(info.build_date)}",
        f"license: {LICENSE_ID}",
        "authors:",
        *[line for c in info.creators for line in c.cff_lines(q)],
    ]
    if info.doi.startswith("10."):
        lines.append(f"doi: {q(info.doi)}")
    if info.repository_url:
        lines.append(f"repository-code: {q(info.repository_url)}")
    lines += ["keywords:", *[f"  - {q(k)}" for k in _KEYWORDS]]
    lines += citations.cff_references(q)  # the NLST collection and trial, IDC, TotalSegmentator
    return _write(out / "CITATION.cff", "\n".join(lines) + "\n")


_KEYWORDS = ("coronary artery calcium", "Agatston score", "NLST", "lung cancer screening", "DICOM SEG", "IDC")


#: how the card shows the root hash (``verify`` reads it back)
ROOT_QUOTE = "Root hash (SHA-256 of MANIFEST.csv): {sha256}"


def zenodo_metadata(info: ReleaseInfo, counts: dict[str, int]) -> dict[str, object]:
    """The ``metadata`` object of Zenodo's deposition API. It is listed in MANIFEST.csv, so it cannot
    quote the root hash (MANIFEST.csv's SHA-256): ``notes`` says where to find it."""
    facts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return {
        "notes": "MANIFEST.csv lists the size, MD5, CRC32C and SHA-256 of every file but itself and "
        "DATASET_CARD.md (sealed in provenance.json); the release's root hash is MANIFEST.csv's SHA-256, "
        "shown in DATASET_CARD.md and printed by `deepcac2 release verify`",
        "upload_type": "dataset",
        "title": TITLE,
        "version": info.version,
        "publication_date": info.build_date,
        "creators": [c.zenodo() for c in info.creators],
        "related_identifiers": citations.zenodo_related(),
        "description": f"Automated coronary artery calcium scores, DICOM SEG/SR and Parquet tables for NLST CT "
        f"in NCI Imaging Data Commons. Contents: {facts}.",
        "license": "cc-by-4.0",
        "access_right": "open",
        "keywords": list(_KEYWORDS),
        **({"doi": info.doi} if info.doi.startswith("10.") else {}),
    }


def write_zenodo(out: Path, info: ReleaseInfo, counts: dict[str, int]) -> Path:
    meta = {"metadata": zenodo_metadata(info, counts)}
    return _write(out / "zenodo.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")


def provenance(
    info: ReleaseInfo,
    cards: list[dict[str, str]],
    conventions: dict[str, dict[str, object] | None],
    card_sha256: str,
) -> dict[str, object]:
    """Model card(s), toolkit version, scoring conventions, risk schemes and the dataset card's seal
    (``card_sha256``: its SHA-256 with the root hash written as zeros, ``manifest.sealed_card_sha256``)."""
    return {
        "card_sha256": card_sha256,
        "release_version": info.version,
        "build_date": info.build_date,
        "toolkit": {"name": "deepcac2", "version": __version__},
        "model_cards": cards,
        "conventions": {
            name: {
                "description": CONVENTIONS[name].description
                if name in CONVENTIONS
                else "a variant named by its options",
                "params": params,
            }
            for name, params in conventions.items()
        },
        "risk_schemes": {
            s.name: [{"label": b.label, "low": b.low, "high": b.high} for b in s.bands] for s in SCHEMES.values()
        },
    }


def write_provenance(
    out: Path,
    info: ReleaseInfo,
    cards: list[dict[str, str]],
    conventions: dict[str, dict[str, object] | None],
    card_sha256: str,
) -> Path:
    data = provenance(info, cards, conventions, card_sha256)
    return _write(out / "provenance.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
