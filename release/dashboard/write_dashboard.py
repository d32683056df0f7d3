"""Write the review dashboard for a seeded random subset of patients.

The page is static: ``index.html``, ``style.css`` and ``app.js`` are package files
copied as they are, and the data goes into a sibling ``data.js`` (a script that sets
``window.DEEPCAC2_DATA``) rather than a JSON file, because browsers refuse ``fetch``
of local files: the page then works from ``file://`` and from any static host alike.
Overlay pictures are not copied: rows point at the release's ``qa/images`` (one copy).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from deepcac2.pipeline.risk_categories import SCHEME_NAMES, labels
from deepcac2.qa.links import viewer_url
from deepcac2.release.run_tables import PATIENT_KEY, SCORE, SERIES_KEY, STUDY_KEY, STUDY_YEAR, category_column

STATIC = ("index.html", "style.css", "app.js")
#: cac_series columns the page shows besides the scores
EXTRA = ("is_primary", "qa_flags", "seg_series_uid", "sr_series_uid")
#: extra score columns shown when the table has them
OPTIONAL = ("volume_mm3", "mass_mg", "lesion_count")


def sample_patients(patient_ids: pd.Series, n: int, seed: int) -> list[str]:
    """``n`` patients drawn without replacement with a seeded generator, sorted."""
    everyone = sorted(str(p) for p in patient_ids.dropna().unique())
    if n >= len(everyone):
        return everyone
    picked = np.random.default_rng(seed).choice(len(everyone), size=n, replace=False)
    return sorted(everyone[i] for i in picked)


def _plain(value: object) -> object:
    """JSON-able value: numpy scalars and arrays to Python, NaN/NA to None."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def dashboard_rows(scores: pd.DataFrame, patients: list[str], images: dict[str, str]) -> list[dict[str, object]]:
    """The sampled patients' series, each patient's rows in study-year order."""
    keep = scores[scores[PATIENT_KEY].astype(str).isin(patients)]
    cols = [PATIENT_KEY, STUDY_KEY, SERIES_KEY, STUDY_YEAR, SCORE, *OPTIONAL, *EXTRA]
    cols += [category_column(s) for s in SCHEME_NAMES]
    order = [c for c in (PATIENT_KEY, STUDY_YEAR, STUDY_KEY, SERIES_KEY) if c in keep.columns]
    rows = []
    for rec in keep.sort_values(order, na_position="last").to_dict("records"):
        row = {c: _plain(rec.get(c)) for c in cols if c in keep.columns}
        row["qa_flags"] = row.get("qa_flags") or []
        row["image"] = images.get(str(rec[SERIES_KEY]))
        study = rec.get(STUDY_KEY)
        row["viewer_seg"] = viewer_url(study, rec.get("seg_series_uid")) if study else None
        row["viewer_sr"] = viewer_url(study, rec.get("sr_series_uid")) if study and rec.get("sr_series_uid") else None
        rows.append(row)
    return rows


def build_dashboard(
    scores: pd.DataFrame,
    out_dir: Path,
    images_dir: Path | None = None,
    n_patients: int = 200,
    seed: int = 0,
    *,
    convention: str = "deepcac",
) -> Path:
    """Write the dashboard into ``out_dir`` and return the path of its ``index.html``.

    ``images_dir`` holds per-series overlay PNGs named ``<SeriesInstanceUID>.png`` (the
    release's ``qa/images``); rows link to them relative to the page, without copies.
    ``convention`` is the scoring convention of ``scores``: the page names it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).parent
    for name in STATIC:
        shutil.copyfile(here / name, out_dir / name)
    patients = sample_patients(scores[PATIENT_KEY], n_patients, seed)
    images: dict[str, str] = {}
    sampled = scores[scores[PATIENT_KEY].astype(str).isin(patients)]
    for uid in sorted(sampled[SERIES_KEY].astype(str)):
        src = images_dir / f"{uid}.png" if images_dir else None
        if src is not None and src.is_file():
            images[uid] = Path(_relative(src, out_dir)).as_posix()
    data = {
        "patients": len(patients),
        "seed": seed,
        "convention": convention,
        "schemes": {s: list(labels(s)) for s in SCHEME_NAMES},
        "rows": dashboard_rows(scores, patients, images),
    }
    text = "window.DEEPCAC2_DATA = " + json.dumps(data, sort_keys=True, separators=(",", ":")) + ";\n"
    (out_dir / "data.js").write_text(text, encoding="utf-8")
    return out_dir / "index.html"


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
