"""Render DATASET_CARD.md, the dataset's datasheet, with facts measured on the release.

The template is the repository's top-level ``DATASET_CARD.md``. ``release/DATASET_CARD.md``
is a symbolic link to it, shipped as package data (``*.md`` in setup.py), so a wheel
carries a real copy of the one template and an editable install reads the original:
there is a single source and a single lookup path.

Placeholders are ``{{ name }}``. Rendering refuses when any is left without a value,
and drops the template's own HTML comment (it describes the template, not the data).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.risk_categories import SCHEME_NAMES, SCHEMES, labels
from deepcac2.release.run_tables import ERROR_CODE, PATIENT_KEY, SERIES_KEY, STUDY_KEY, category_column

TEMPLATE_PATH = Path(__file__).with_name("DATASET_CARD.md")
CARD_NAME = "DATASET_CARD.md"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


def template_text() -> str:
    if not TEMPLATE_PATH.is_file():
        raise DeepCACError(ErrorCode.E_RELEASE_CARD, f"dataset card template not found at {TEMPLATE_PATH}")
    return TEMPLATE_PATH.read_text(encoding="utf-8")


def placeholders(template: str) -> list[str]:
    """Placeholder names in order of first appearance (comments excluded)."""
    return list(dict.fromkeys(PLACEHOLDER.findall(_COMMENT.sub("", template))))


def render(template: str, values: dict[str, str]) -> str:
    """Fill every placeholder; refuse when one has no value or an empty one."""
    body = _COMMENT.sub("", template)
    missing = [n for n in placeholders(template) if not str(values.get(n, "")).strip()]
    if missing:
        raise DeepCACError(ErrorCode.E_RELEASE_CARD, f"dataset card placeholders without a value: {missing}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), body)


# -- the measured facts, as Markdown fragments ---------------------------------------------


def _n_unique(df: pd.DataFrame | None, col: str) -> int:
    return 0 if df is None or col not in df.columns else int(df[col].nunique())


def counts(
    scores: pd.DataFrame, lesions: pd.DataFrame | None, failures: pd.DataFrame | None, dicom_by_modality: dict[str, int]
) -> dict[str, int]:
    """The headline counts (also used by the Zenodo description). Lesions are counted per
    convention: conventions delimit lesions differently, so a sum over them counts nothing."""
    by_convention = (
        lesions["convention"].value_counts().to_dict()
        if lesions is not None and "convention" in lesions.columns
        else None
    )
    return counts_of(
        _n_unique(scores, PATIENT_KEY),
        _n_unique(scores, STUDY_KEY),
        len(scores),
        by_convention,
        failures,
        dicom_by_modality,
    )


def counts_of(
    patients: int,
    studies: int,
    scored: int,
    lesions_by_convention: dict[str, int] | None,
    failures: pd.DataFrame | None,
    dicom_by_modality: dict[str, int],
) -> dict[str, int]:
    """:func:`counts` from numbers already counted (``build_scan``: the tables a batch at a time)."""
    out = {
        "patients": patients,
        "studies": studies,
        "scored series": scored,
        "failed series": _n_unique(failures, SERIES_KEY),
    }
    for conv, n in sorted((lesions_by_convention or {}).items()):
        out[f"lesions under `{conv}`"] = int(n)
    out.update({f"{m} objects": n for m, n in sorted(dicom_by_modality.items())})
    return out


def counts_markdown(facts: dict[str, int], failures: pd.DataFrame | None) -> str:
    text = "; ".join(f"{v:,} {k}" for k, v in facts.items()) + "."
    if failures is not None and ERROR_CODE in failures.columns and len(failures):
        top = failures[ERROR_CODE].value_counts().sort_index()
        text += " Failures by code: " + ", ".join(f"`{c}` {n}" for c, n in top.items()) + "."
        text += "\n\n" + failed_series_markdown(failures)
    return text


#: failed series named per code in the card (all of them are in tables/failures.parquet)
CARD_FAILED_EXAMPLES = 5


def failed_series_markdown(failures: pd.DataFrame) -> str:
    """Failed series by error code: stages, count and the first series of each (E_INTERNAL, a bug, first)."""
    lines = ["  | error code | series | stages | series (first by UID) |", "  |---|---|---|---|"]
    codes = sorted(failures[ERROR_CODE].dropna().unique(), key=lambda c: (c != "E_INTERNAL", c))
    for code in codes:
        part = failures[failures[ERROR_CODE] == code]
        uids = sorted(part[SERIES_KEY].astype(str).unique())
        stages = ", ".join(sorted(part["stage"].astype(str).unique())) if "stage" in part.columns else ""
        shown = ", ".join(f"`{u}`" for u in uids[:CARD_FAILED_EXAMPLES])
        more = f" and {len(uids) - CARD_FAILED_EXAMPLES} more" if len(uids) > CARD_FAILED_EXAMPLES else ""
        lines.append(f"  | `{code}` | {len(uids)} | {stages} | {shown}{more} |")
    return "\n".join(lines)


def category_markdown(by_convention: dict[str, pd.DataFrame]) -> str:
    """One Markdown table per scheme: a row per category, a column per scoring convention (series, share)."""
    parts = []
    conventions = sorted(by_convention)
    for scheme in SCHEME_NAMES:
        head = [
            f"  *{SCHEMES[scheme].description}* (`{scheme}`), series (share) per scoring convention",
            "",
            "  | category | " + " | ".join(f"`{c}`" for c in conventions) + " |",
            "  |---|" + "---:|" * len(conventions),
        ]
        rows = []
        for label in labels(scheme):
            cells = []
            for conv in conventions:
                frame = by_convention[conv]
                n = int((frame[category_column(scheme)] == label).sum())
                cells.append(f"{n:,} ({100 * n / max(len(frame), 1):.1f} %)")
            rows.append(f"  | {label} | " + " | ".join(cells) + " |")
        parts.append("\n".join([*head, *rows]))
    return "\n\n" + "\n\n".join(parts) + "\n"


def figures_markdown(paths: list[str]) -> str:
    return "\n\n" + "\n".join(f"  ![{Path(p).stem.replace('_', ' ')}]({p})" for p in paths) + "\n"


def qa_markdown(checks: pd.DataFrame | None) -> str:
    if checks is None:
        return "no QA was run for this release (built with --allow-no-qa)."
    failed = checks[~checks["passed"].astype(bool)]
    text = f"{len(checks):,} checks over {checks['check'].nunique()} kinds; {len(failed):,} failed, none blocking"
    if len(failed):
        text += " (" + ", ".join(f"{c}: {n}" for c, n in failed["check"].value_counts().sort_index().items()) + ")"
    return text + "; the report is `qa/report.html`."


#: what the DeepCAC2 publication measured, and for which weights
_PUBLISHED = (
    "DeepCAC2 reported agreement with expert readers on 390 NLST scans of Spearman 0.879 and weighted "
    "kappa 0.844, for its published weights (`vivid-haze-6_model.pt`)"
)


def model_claims(cards: list[dict[str, str]]) -> str:
    """What may be said of the model that ran: DeepCAC2's published agreement only for DeepCAC2's network."""
    names = sorted({c.get("model_name", "") for c in cards} - {""})
    if not names:
        return "the model that made this release is not recorded, so no agreement figure is claimed for it."
    ran = ", ".join(f"`{n}`" for n in names)
    if names == ["deepcac2-unet"]:
        hashes = ", ".join(sorted({f"`{c.get('model_weights_sha256')}`" for c in cards}))
        return (
            f"the model that ran is DeepCAC2's U-Net ({ran}, weights SHA-256 {hashes}). {_PUBLISHED}; "
            "they hold for this release only if these are those weights, which this card does not verify."
        )
    return (
        f"the model that ran is {ran}, not DeepCAC2's published network: its agreement with expert readers "
        f"has not been measured, and the published DeepCAC2 figures ({_PUBLISHED.removeprefix('DeepCAC2 reported ')}) "
        "do not describe this release."
    )


def model_markdown(cards: list[dict[str, str]]) -> str:
    if not cards:
        return "(not recorded in the tables)."
    return "; ".join(", ".join(f"{k.removeprefix('model_')} `{v}`" for k, v in c.items() if v) for c in cards) + "."


# -- what the release left out, per series and per participant (issue #22) ------------------

ROUNDS = {0: "T0", 1: "T1", 2: "T2"}


def _per_round(frame: pd.DataFrame) -> list[str]:
    """Series per screening round (T0, T1, T2), and how many have no round."""
    if "study_year" not in frame.columns:
        return [f"{len(frame):,}" if y is None else "-" for y in (None,)]
    years = frame["study_year"]
    return [f"{int((years == y).sum()):,}" for y in ROUNDS] + [f"{int(years.isna().sum()):,}"]


def _left_out_rows(frame: pd.DataFrame, by: str, label: str) -> list[str]:
    head = [
        f"  | {label} | series | T0 | T1 | T2 | no round | participants |",
        "  |---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for key, part in sorted(frame.groupby(by, sort=False), key=lambda kv: (-len(kv[1]), str(kv[0]))):
        people = f"{part[PATIENT_KEY].nunique():,}" if PATIENT_KEY in part.columns else "not known"
        years = _per_round(part) if "study_year" in part.columns else ["-"] * 4
        rows.append(f"  | `{key}` | {len(part):,} | " + " | ".join(years) + f" | {people} |")
    return head + rows


def left_out_markdown(
    exclusions: pd.DataFrame | None, failures: pd.DataFrame | None, cohort: pd.DataFrame | None
) -> str:
    """Counts per cohort rule (``exclusions``) and per failure code (``failures``), in series per round and
    participants. A failure's round and participant come from the cohort table."""
    parts = []
    if exclusions is None:
        parts.append("  The cohort's exclusions were not recorded (a cohort made before the `exclusions` table).")
    elif exclusions.empty:
        parts.append("  The cohort rules excluded no series.")
    else:
        parts.append(
            f"  **Excluded by the cohort rules** ({len(exclusions):,} series, table `exclusions`; "
            "a localizer is an exclusion, rule `not_localizer`):\n"
        )
        parts += _left_out_rows(exclusions, "rule", "rule")
    if failures is None or failures.empty or ERROR_CODE not in failures.columns:
        parts.append("\n  No series failed.")
    else:
        first = failures.sort_values(SERIES_KEY).drop_duplicates(SERIES_KEY)  # one code per series
        if cohort is not None and SERIES_KEY in cohort.columns:
            known = [c for c in (PATIENT_KEY, "study_year") if c in cohort.columns]
            first = first.merge(cohort[[SERIES_KEY, *known]], on=SERIES_KEY, how="left")
        parts.append(f"\n  **Failed** ({len(first):,} series, table `failures`; stable error codes):\n")
        parts += _left_out_rows(first, ERROR_CODE, "error code")
    return "\n\n" + "\n".join(parts) + "\n"


def participant_category_markdown(scores: pd.DataFrame, convention: str) -> str:
    """Per scheme: participants per category and round, one series each (``is_primary``)."""
    if "is_primary" not in scores.columns or "study_year" not in scores.columns:
        return "not available: the tables do not mark one series per participant and round (`is_primary`)."
    primary = scores[scores["is_primary"].fillna(False).astype(bool)]
    parts = []
    for scheme in SCHEME_NAMES:
        rows = [
            f"  *{SCHEMES[scheme].description}* (`{scheme}`, convention `{convention}`): participants, "
            "one series each (`is_primary`), per screening round",
            "",
            "  | category | " + " | ".join(f"{r} participants" for r in ROUNDS.values()) + " |",
            "  |---|" + "---:|" * len(ROUNDS),
        ]
        totals = {y: max(int((primary["study_year"] == y).sum()), 1) for y in ROUNDS}
        for label in labels(scheme):
            cells = []
            for y in ROUNDS:
                n = int(((primary["study_year"] == y) & (primary[category_column(scheme)] == label)).sum())
                cells.append(f"{n:,} ({100 * n / totals[y]:.1f} %)")
            rows.append(f"  | {label} | " + " | ".join(cells) + " |")
        parts.append("\n".join(rows))
    return "\n\n" + "\n\n".join(parts) + "\n"


def source_markdown(meta: dict[str, str], index_version: str, policy: str, known: bool = True) -> tuple[str, str]:
    """(source, acquisition) sentences that follow where the series came from: an IDC collection or a folder."""
    folder = meta.get("source_folder")
    collection = meta.get("collection")
    if folder:
        source = (
            f"CT series from a local folder of DICOM files (`{Path(folder).name}`), indexed with "
            f"`deepcac2 cohort --from-dir` (cohort policy **{policy}**); not selected from the IDC index."
        )
        return source, "as each series' DICOM header records it (scanner, kernel, thickness and kVp in `cac_series`)."
    if known:
        named = f"the IDC collection `{collection}`" if collection else "an IDC collection (name not recorded)"
        source = (
            f"CT series of {named}, selected from the IDC index shipped by "
            f"`idc-index-data` {index_version} with cohort policy **{policy}**."
        )
        if collection == "nlst":
            return source, (
                "NLST low-dose chest CT (2002-2007), 120-140 kVp, many scanner models and kernels of GE, "
                "Siemens, Philips and Toshiba; parameters per series are parsed from the NLST SeriesDescription "
                "and stored in `cac_series`."
            )
        return source, "as the IDC index and each series' DICOM header record it (in `cac_series`)."
    return (
        f"not recorded (no cohort table with the run); cohort policy **{policy}**.",
        "as each series' DICOM header records it (in `cac_series`).",
    )
