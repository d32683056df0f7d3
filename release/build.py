"""``build_release``: turn a checked RUN_DIR into a versioned, checksummed release folder.

Release layout (all paths relative to the release root)::

    DATASET_CARD.md  LICENSE  CITATION.cff  zenodo.json  provenance.json
    MANIFEST.csv      every other file: size, MD5, CRC32C, SHA-256 (see manifest.py)
    idc_manifest.csv  SOPInstanceUID, path, MD5 of each DICOM object
    dicom/<PatientID>/<StudyInstanceUID>/<Modality>_<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    tables/*.parquet  the run's tables, byte for byte, plus the cohort table when known
    qa/               the run's QA (checks.parquet, report.html, images/)
    figures/*.png     score and category distributions (shown in the card)
    dashboard/        static review page (index.html + data.js + images/)

Determinism: nothing depends on the clock, the machine or file order. The build date
comes from the run (see :func:`run_date`), and every writer sorts what it writes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.types import sha256_file
from deepcac2.release import card, figures, manifest, metadata
from deepcac2.release.dashboard.build import build_dashboard
from deepcac2.release.layout import find_dicom_objects
from deepcac2.release.metadata import ReleaseInfo
from deepcac2.release.tables import TABLES_DIR, primary_scores, read_table

QA_DIR = "qa"
CHECKS = "checks.parquet"
FIGURES = ("figures/score_distribution.png", "figures/risk_categories.png")
NOT_RECORDED = "(not recorded)"


def read_checks(run_dir: Path, allow_no_qa: bool) -> pd.DataFrame | None:
    """The run's QA results; refuses a missing QA (unless allowed) and any blocking failure."""
    path = run_dir / QA_DIR / CHECKS
    if not path.exists():
        if allow_no_qa:
            return None
        raise DeepCACError(
            ErrorCode.E_RELEASE_QA_MISSING, f"{path} not found: run QA first, or pass --allow-no-qa for a draft"
        )
    checks = pd.read_parquet(path)
    for col in ("check", "subject", "passed", "blocking"):
        if col not in checks.columns:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path} has no {col!r} column")
    blocked = checks[checks["blocking"].astype(bool) & ~checks["passed"].astype(bool)]
    if len(blocked):
        shown = "; ".join(f"{r.check} on {r.subject}" for r in blocked.head(5).itertuples())
        raise DeepCACError(
            ErrorCode.E_RELEASE_QA_BLOCKED,
            f"{len(blocked)} blocking QA check(s) failed, the release is refused: {shown}",
            count=len(blocked),
        )
    return checks


def run_date(run_dir: Path, runs: pd.DataFrame | None) -> str:
    """The release date, from the inputs: SOURCE_DATE_EPOCH, else the run's latest timestamp."""
    if epoch := os.environ.get("SOURCE_DATE_EPOCH"):
        return datetime.fromtimestamp(int(epoch), tz=UTC).date().isoformat()
    if runs is not None:
        stamps = [
            pd.to_datetime(runs[c], utc=True) for c in runs.columns if pd.api.types.is_datetime64_any_dtype(runs[c])
        ]
        latest = max((s.max() for s in stamps if s.notna().any()), default=None)
        if latest is not None:
            return latest.date().isoformat()
    mtime = (run_dir / TABLES_DIR / "cac_series.parquet").stat().st_mtime
    return datetime.fromtimestamp(mtime, tz=UTC).date().isoformat()


def cohort_facts(cohort: pa.Table | None) -> tuple[str, str, str]:
    """(policy, rules, idc-index-data version) of a cohort table.

    The cohort stage records ``policy`` and ``idc_index_data`` in the Parquet schema
    metadata and a ``selection_reason`` per row ("policy P: passed r1, r2; ...").
    """
    if cohort is None:
        return NOT_RECORDED, NOT_RECORDED, NOT_RECORDED
    meta = {k.decode(): v.decode() for k, v in (cohort.schema.metadata or {}).items()}
    reasons = (
        [str(v) for v in cohort.column("selection_reason").to_pylist()]
        if "selection_reason" in cohort.column_names
        else []
    )
    policies = sorted({m.group(1) for r in reasons if (m := re.match(r"policy (\S+):", r))})
    rules = sorted({m.group(1).strip() for r in reasons if (m := re.search(r"passed ([^;]*)", r))})
    policy = meta.get("policy") or ", ".join(policies) or NOT_RECORDED
    return policy, "; ".join(rules) or NOT_RECORDED, meta.get("idc_index_data") or NOT_RECORDED


def read_cohort(run_dir: Path, cohort: str | Path | None) -> tuple[Path, pa.Table] | None:
    """The cohort the run processed: ``cohort``, else ``RUN_DIR/cohort.parquet``, else None.

    When the run recorded its cohort's SHA-256 (``state/run.json``), a different file is refused:
    the card would describe a selection the run did not process.
    """
    path = Path(cohort) if cohort is not None else run_dir / "cohort.parquet"
    if not path.exists():
        if cohort is not None:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cohort file {path} does not exist")
        return None
    state = run_dir / "state" / "run.json"
    recorded = json.loads(state.read_text()).get("cohort_sha256") if state.exists() else None
    if recorded and sha256_file(str(path)) != recorded:
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path} is not the cohort {run_dir} processed (SHA-256 differs)")
    return path, pq.read_table(path)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DeepCACError(ErrorCode.E_OUTPUT_LOCKED, f"{out_dir} exists and is not empty (use --overwrite)")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_release(
    run_dir: str | Path,
    version: str,
    out_dir: str | Path,
    *,
    allow_no_qa: bool = False,
    overwrite: bool = False,
    dashboard_patients: int = 200,
    dashboard_seed: int = 0,
    stated: dict[str, str] | None = None,
    cohort: str | Path | None = None,
) -> Path:
    """Build the release of ``run_dir`` into ``out_dir`` and return ``out_dir``.

    Refuses (DeepCACError) when QA is missing (unless ``allow_no_qa``), when a blocking
    QA check failed, or when the run lacks its per-series table. ``stated`` overrides the
    :class:`ReleaseInfo` statements (doi, funding, errata, ...). ``cohort`` is the cohort
    Parquet the run processed (``deepcac2 cohort`` output; default ``RUN_DIR/cohort.parquet``);
    its selection reasons give the card's cohort policy and rules, which the tables do not record.
    """
    run_dir, out = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"run folder {run_dir} does not exist")
    checks = read_checks(run_dir, allow_no_qa)
    series = read_table(run_dir, "cac_series", required=True)
    lesions, failures, runs = (read_table(run_dir, n) for n in ("cac_lesions", "failures", "runs"))
    scores = primary_scores(series)
    cohort_found = read_cohort(run_dir, cohort)
    policy, rules, index_version = cohort_facts(cohort_found[1] if cohort_found else None)
    info = ReleaseInfo(version=version, build_date=run_date(run_dir, runs), **(stated or {}))
    objects = find_dicom_objects(run_dir)
    _prepare_out(out, overwrite)

    for obj in objects:
        _copy(obj.source, out / obj.release_path)
    for table in sorted((run_dir / TABLES_DIR).glob("*.parquet")):
        _copy(table, out / TABLES_DIR / table.name)
    if cohort_found is not None and not (out / TABLES_DIR / "cohort.parquet").exists():
        _copy(cohort_found[0], out / TABLES_DIR / "cohort.parquet")  # the selection record travels along
    if (run_dir / QA_DIR).is_dir():
        shutil.copytree(run_dir / QA_DIR, out / QA_DIR)
    figures.score_histogram(scores, out / FIGURES[0])
    figures.category_bars(scores, out / FIGURES[1])
    build_dashboard(scores, out / "dashboard", run_dir / QA_DIR / "images", dashboard_patients, dashboard_seed)

    by_modality = pd.Series([o.modality for o in objects], dtype=object).value_counts().to_dict()
    facts = card.counts(scores, lesions, failures, by_modality)
    cards = metadata.model_cards(series, runs)
    conventions = metadata.conventions_used(series)
    metadata.write_license(out)
    metadata.write_citation(out, info)
    metadata.write_zenodo(out, info, facts)
    metadata.write_provenance(out, info, cards, conventions)
    values = {
        "release_version": info.version,
        "toolkit_version": __version__,
        "build_date": info.build_date,
        "doi": info.doi,
        "funding": info.funding,
        "counts": card.counts_markdown(facts, failures),
        "category_table": card.category_markdown(scores),
        "figures": card.figures_markdown(list(FIGURES)),
        "conventions": ", ".join(f"`{c}`" for c in conventions) or NOT_RECORDED,
        "index_version": index_version,
        "cohort_policy": policy,
        "cohort_rules": rules,
        "model_card": card.model_markdown(cards),
        "qa_summary": card.qa_markdown(checks),
        "distribution": info.distribution,
        "errata": info.errata,
    }
    (out / card.CARD_NAME).write_text(card.render(card.template_text(), values), encoding="utf-8")

    entries = [manifest.hash_file(out, p) for p in manifest.list_files(out, (manifest.MANIFEST_NAME,))]
    md5 = {e.path: e.md5 for e in entries}
    manifest.write_idc_manifest(out, {o.sop_uid: o.release_path for o in objects}, md5)
    entries.append(manifest.hash_file(out, manifest.IDC_MANIFEST_NAME))
    manifest.write_manifest(out, entries)
    return out
