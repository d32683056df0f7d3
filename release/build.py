"""``build_release``: turn a checked RUN_DIR into a versioned, checksummed release folder.

Release layout (all paths relative to the release root)::

    DATASET_CARD.md  LICENSE  CITATION.cff  zenodo.json  provenance.json
    DATA_DICTIONARY.md  data_dictionary.csv   every table's columns, from schemas/
    CONVENTIONS.md    the scoring conventions (docs/conventions.md)
    CHANGELOG.md      what changed, and known issues
    queries.sql       example DuckDB queries (category at T0, progression T0 -> T2, exclusions, measurements)
    MANIFEST.csv      every file but itself and the card: size, MD5, CRC32C, SHA-256; its own
                      SHA-256 is the root hash the card shows (the card is sealed in provenance.json)
    idc_manifest.csv  SOPInstanceUID, path, MD5 of each DICOM object
    dicom/<PatientID>/<StudyInstanceUID>/<Modality>_<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    tables/*.parquet  the run's tables, byte for byte, plus the cohort table when known
    qa/               the run's QA (checks.parquet, report.html, images/: the one copy of the pictures)
    figures/*.png     score and category distributions per convention (shown in the card)
    dashboard/        static review page (index.html + data.js; pictures from qa/images)

Every file is world-readable (0644, folders 0755), whatever the run's umask was.

Determinism: nothing depends on the clock, the machine or file order. The build date
comes from the run (see :func:`run_date`), and every writer sorts what it writes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import COHORT_FILE, QA_CHECKS, QA_DIR, RUN_FILE
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.stage_values import sha256_file
from deepcac2.qa import binding
from deepcac2.release import build_scan, card, citations, figures, manifest, metadata, outdir
from deepcac2.release.dashboard.write_dashboard import build_dashboard
from deepcac2.release.metadata import ReleaseInfo
from deepcac2.release.run_tables import SERIES_KEY, TABLES_DIR, table_frame
from deepcac2.release.scratch import Scratch, walk_files
from deepcac2.schemas import dictionary

CHECKS = QA_CHECKS
NOT_RECORDED = "(not recorded)"
#: documents shipped as they are (package files: symbolic links to the repository's originals, or
#: ``queries.sql``, the example queries CI runs on a built release)
DOCUMENTS = ("CONVENTIONS.md", "CHANGELOG.md", "queries.sql")
#: not in MANIFEST.csv: itself, and the card that shows its hash (manifest.py)
UNLISTED = (manifest.MANIFEST_NAME, *manifest.QUOTES_MANIFEST)


def figure_paths(convention: str) -> tuple[str, str]:
    return f"figures/score_distribution_{convention}.png", f"figures/risk_categories_{convention}.png"


def index_version(cohort_meta_version: str, runs: pd.DataFrame | None) -> str:
    """The IDC index version: the cohort's, else what the run recorded (``runs.idc_index_version``)."""
    if cohort_meta_version != NOT_RECORDED:
        return cohort_meta_version
    if runs is not None and "idc_index_version" in runs.columns:
        known = sorted({str(v) for v in runs["idc_index_version"].dropna()})
        if known:
            return ", ".join(known)
    return NOT_RECORDED


def _has(frame: pd.DataFrame | None, column: str) -> bool:
    return frame is not None and column in frame.columns


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
    reasons = cohort.column("selection_reason").to_pylist() if "selection_reason" in cohort.column_names else []
    return _facts(_meta(cohort.schema), reasons)


def _meta(schema: pa.Schema) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}


def _facts(meta: dict[str, str], reasons: Iterable[object]) -> tuple[str, str, str]:
    policies, rules = set(), set()
    for reason in map(str, reasons):
        if m := re.match(r"policy (\S+):", reason):
            policies.add(m.group(1))
        if m := re.search(r"passed ([^;]*)", reason):
            rules.add(m.group(1).strip())
    policy = meta.get("policy") or ", ".join(sorted(policies)) or NOT_RECORDED
    return policy, "; ".join(sorted(rules)) or NOT_RECORDED, meta.get("idc_index_data") or NOT_RECORDED


def cohort_file_facts(path: Path) -> tuple[str, str, str]:
    """:func:`cohort_facts` of a cohort file, its reasons read a batch at a time (distinct values only)."""
    parquet = pq.ParquetFile(path)
    column = "selection_reason"
    batches = parquet.iter_batches(batch_size=100_000, columns=[column]) if column in parquet.schema_arrow.names else ()
    return _facts(_meta(parquet.schema_arrow), (r for b in batches for r in pc.unique(b.column(0)).to_pylist()))


def cohort_rows_of(path: Path, series: list[str]) -> pd.DataFrame:
    """The cohort's SeriesInstanceUID, PatientID and study_year of ``series`` (the failed ones), a batch at a time."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    columns = [c for c in ("SeriesInstanceUID", "PatientID", "study_year") if c in names]
    if "SeriesInstanceUID" not in names:
        return parquet.schema_arrow.empty_table().select(columns).to_pandas()
    wanted = pa.array(series, pa.string())
    kept = [
        b.filter(pc.is_in(b.column(0), value_set=wanted))
        for b in parquet.iter_batches(batch_size=100_000, columns=columns)
    ]
    return pa.Table.from_batches(kept, schema=parquet.schema_arrow.empty_table().select(columns).schema).to_pandas()


EXCLUSIONS = "exclusions.parquet"


def ship_exclusions(cohort_path: Path | None, target: Path) -> pd.DataFrame | None:
    """Copy the cohort's ``exclusions`` table (beside the cohort file) into the release; None when it was
    not recorded, and then an empty table is shipped so the release always has one."""
    from deepcac2.pipeline.cohort.table import exclusions_path
    from deepcac2.schemas.exclusions import TABLE

    source = exclusions_path(cohort_path) if cohort_path is not None else None
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None and source.is_file():
        _copy(source, target)
        return pq.read_table(target).to_pandas()
    pq.write_table(TABLE.arrow.empty_table(), target)
    return None


def read_cohort(run_dir: Path, cohort: str | Path | None) -> Path | None:
    """The cohort the run processed: ``cohort``, else ``RUN_DIR/cohort.parquet``, else None.

    When the run recorded its cohort's SHA-256 (``state/run.json``), a different file is refused:
    the card would describe a selection the run did not process.
    """
    path = Path(cohort) if cohort is not None else run_dir / COHORT_FILE
    if not path.exists():
        if cohort is not None:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cohort file {path} does not exist")
        return None
    state = run_dir / RUN_FILE
    recorded = json.loads(state.read_text()).get("cohort_sha256") if state.exists() else None
    if recorded and sha256_file(str(path)) != recorded:
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path} is not the cohort {run_dir} processed (SHA-256 differs)")
    return path


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    """An empty ``out_dir``; with ``overwrite``, an earlier release there is removed file by file (outdir.py)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DeepCACError(ErrorCode.E_OUTPUT_LOCKED, f"{out_dir} exists and is not empty (use --overwrite)")
        outdir.clear_release(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def check_qa_current(checks: pd.DataFrame | None, run_dir: Path, objects: Iterable[tuple[str, Path]]) -> None:
    """Refuse QA that checked other bytes than the tables and ``objects`` ((SOPInstanceUID, file) pairs) this
    release ships (qa/binding.py)."""
    if checks is None:
        return  # a draft built with --allow-no-qa
    tables = {
        p.relative_to(run_dir).as_posix(): sha256_file(str(p)) for p in sorted((run_dir / TABLES_DIR).glob("*.parquet"))
    }
    shipped = {sop: sha256_file(str(source)) for sop, source in objects}
    problems = binding.stale_inputs(checks, tables, shipped)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DeepCACError(
            ErrorCode.E_RELEASE_QA_STALE,
            f"the QA in {run_dir / QA_DIR} did not check what the run holds now, the release is refused "
            f"(run `deepcac2 qa {run_dir}` again): {shown}",
            count=len(problems),
        )


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
    outdir.check_placement(out, run_dir)
    checks = read_checks(run_dir, allow_no_qa)
    with Scratch() as db:  # the objects and the UIDs of the tables out of core (build_scan.py)
        return _build(run_dir, out, checks, db, version, overwrite, dashboard_patients, dashboard_seed, stated, cohort)


def _build(
    run_dir: Path,
    out: Path,
    checks: pd.DataFrame | None,
    db: Scratch,
    version: str,
    overwrite: bool,
    dashboard_patients: int,
    dashboard_seed: int,
    stated: dict[str, str] | None,
    cohort: str | Path | None,
) -> Path:
    series = build_scan.scan_series(run_dir, db)  # the numbers per series the card and figures count, no UIDs
    failures, runs = (table_frame(run_dir, n) for n in ("failures", "runs"))
    by_convention = series.by_convention
    cohort_path = read_cohort(run_dir, cohort)
    policy, rules, cohort_index = cohort_file_facts(cohort_path) if cohort_path else (NOT_RECORDED,) * 3
    cohort_meta = _meta(pq.read_schema(cohort_path)) if cohort_path else {}
    failed = sorted(failures[SERIES_KEY].dropna().astype(str).unique()) if _has(failures, SERIES_KEY) else []
    cohort_frame = cohort_rows_of(cohort_path, failed) if cohort_path else None
    source, acquisition = card.source_markdown(
        cohort_meta, index_version(cohort_index, runs), policy, known=cohort_path is not None
    )
    info = ReleaseInfo(version=version, build_date=run_date(run_dir, runs), **(stated or {}))
    # only the objects cac_series names: a stale SEG/SR of a series that failed later never ships
    build_scan.collect_objects(run_dir, db)
    check_qa_current(checks, run_dir, build_scan.shipped_sources(db))
    _prepare_out(out, overwrite)

    build_scan.copy_objects(db, out)
    for table in sorted((run_dir / TABLES_DIR).glob("*.parquet")):
        _copy(table, out / TABLES_DIR / table.name)
    if cohort_path is not None and not (out / TABLES_DIR / "cohort.parquet").exists():
        _copy(cohort_path, out / TABLES_DIR / "cohort.parquet")  # the selection record travels along
    exclusions = ship_exclusions(cohort_path, out / TABLES_DIR / EXCLUSIONS)
    if (run_dir / QA_DIR).is_dir():
        shutil.copytree(run_dir / QA_DIR, out / QA_DIR)
    figure_files = []
    for conv, frame in sorted(by_convention.items()):
        histogram, bars = figure_paths(conv)
        figures.score_histogram(frame, out / histogram, conv)
        figures.category_bars(frame, out / bars, conv)
        figure_files += [histogram, bars]
    build_dashboard(
        build_scan.dashboard_scores(run_dir, db, dashboard_patients, dashboard_seed),
        out / "dashboard",
        out / QA_DIR / "images",
        dashboard_patients,
        dashboard_seed,
        convention=DEFAULT_CONVENTION,
    )
    dictionary.write(out)
    for name in DOCUMENTS:
        _copy(Path(card.__file__).with_name(name), out / name)

    lesions = build_scan.lesions_by_convention(run_dir)
    facts = card.counts_of(series.patients, series.studies, series.scored, lesions, failures, build_scan.modalities(db))
    cards = metadata.model_cards(series.models, runs)
    conventions = metadata.conventions_recorded(series.conventions, series.conventions_json)
    metadata.write_license(out)
    metadata.write_citation(out, info)

    # the card first, with the root hash as zeros: its seal goes into provenance.json, which the
    # manifest lists; the manifest's SHA-256 is the root hash the card then shows (manifest.py)
    values = {
        "release_version": info.version,
        "toolkit_version": __version__,
        "build_date": info.build_date,
        "doi": info.doi,
        "funding": info.funding,
        "counts": card.counts_markdown(facts, failures),
        "category_table": card.category_markdown(by_convention),
        "figures": card.figures_markdown(figure_files),
        "conventions": ", ".join(f"`{c}`" for c in conventions) or NOT_RECORDED,
        "model_claims": card.model_claims(cards),
        "participant_categories": card.participant_category_markdown(series.default, DEFAULT_CONVENTION),
        "left_out": card.left_out_markdown(exclusions, failures, cohort_frame),
        "source": source,
        "acquisition": acquisition,
        "cohort_rules": rules,
        "model_card": card.model_markdown(cards),
        "qa_summary": card.qa_markdown(None if checks is None else checks[~binding.is_binding(checks)]),
        "distribution": info.distribution,
        "errata": info.errata,
        "root_hash": manifest.ROOT_PLACEHOLDER,
        "creators": "; ".join(c.name for c in info.creators),
        "citations": citations.card_markdown(),
    }
    card_text = card.render(card.template_text(), values)
    if card_text.count(manifest.ROOT_PLACEHOLDER) != 1:
        raise DeepCACError(ErrorCode.E_RELEASE_CARD, "the dataset card must show the root hash exactly once")
    metadata.write_zenodo(out, info, facts)
    seal = manifest.sealed_card_sha256(card_text, manifest.ROOT_PLACEHOLDER)  # the zeros are in place already
    metadata.write_provenance(out, info, cards, conventions, seal)

    manifest.write_idc_rows(out, build_scan.idc_rows(db))  # MD5s taken as the objects were copied
    manifest.write_manifest_rows(out, (manifest.hash_file(out, p) for p in walk_files(out) if p not in UNLISTED))
    root_hash = manifest.manifest_sha256(out)
    (out / card.CARD_NAME).write_text(card_text.replace(manifest.ROOT_PLACEHOLDER, root_hash), encoding="utf-8")
    build_scan.make_world_readable(out)  # last: the card too
    return out
