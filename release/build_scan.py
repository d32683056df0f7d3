"""What ``release build`` reads from a run, a batch at a time (issue 23).

At NLST size ``cac_series`` (126k rows, 140 columns) read whole, the objects as a list, the
manifest as entries and the cohort as a table grew the build by ~10 KB per series (1.6 GB at
129k). Here ``cac_series`` is read a batch of the columns the release uses at a time and kept as
the few numbers per series the card and the figures count (:class:`SeriesFacts`); UIDs stay on
disk: DuckDB reads them out of the Parquet file where the release needs them (the objects named,
the patients drawn for the dashboard), and the objects go into the build's scratch database
(``scratch.py``). The figures, counts and card are the ones the whole-table code gave.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.risk_categories import SCHEME_NAMES, labels
from deepcac2.release.layout import scan_run_objects
from deepcac2.release.metadata import MODEL_COLUMNS
from deepcac2.release.run_tables import (
    METRICS,
    PATIENT_KEY,
    SCORE,
    SERIES_KEY,
    STUDY_KEY,
    STUDY_YEAR,
    category_column,
    checked_table,
    primary_scores,
    risk_column,
)
from deepcac2.release.scratch import Scratch, sql_text

#: rows of cac_series read at a time
BATCH_ROWS = 10_000
#: the cac_series columns the dashboard shows besides the scores (``dashboard.write_dashboard.EXTRA``)
EXTRA = ("is_primary", "qa_flags", "seg_series_uid", "sr_series_uid")


@dataclass
class SeriesFacts:
    """What the card, the figures and provenance need of ``cac_series``, without its UIDs."""

    #: convention -> the scored series' score, study year, categories (and ``is_primary`` for the default)
    by_convention: dict[str, pd.DataFrame]
    conventions: list[str]
    #: patients, studies and series scored under the default convention
    patients: int = 0
    studies: int = 0
    scored: int = 0
    #: the distinct model cards' columns and ``conventions_json`` values (a few rows)
    models: pd.DataFrame = field(default_factory=pd.DataFrame)
    conventions_json: list[str] = field(default_factory=list)
    #: the default convention's frame, with ``is_primary`` (the card's participant table)
    default: pd.DataFrame = field(default_factory=pd.DataFrame)


def _columns(names: list[str], conventions: list[str]) -> list[str]:
    ids = [SERIES_KEY, PATIENT_KEY, STUDY_KEY, STUDY_YEAR, "is_primary", *MODEL_COLUMNS, "conventions_json"]
    per = [f"{m}_{c}" for c in conventions for m in METRICS] + [
        risk_column(s, c) for c in conventions for s in SCHEME_NAMES
    ]
    wanted = set(ids + per)
    return [n for n in names if n in wanted]


def _compact(scores: pd.DataFrame, default: bool) -> pd.DataFrame:
    """The columns the card and figures count; categories as codes of the scheme's labels (a byte a series:
    every count is of those labels, so a value outside them counts nowhere either way)."""
    keep = [SCORE, STUDY_YEAR, *(["is_primary"] if default else []), *(category_column(s) for s in SCHEME_NAMES)]
    out = scores[[c for c in keep if c in scores.columns]].copy()
    for scheme in SCHEME_NAMES:
        out[category_column(scheme)] = pd.Categorical(out[category_column(scheme)], categories=labels(scheme))
    return out


def _scored_conventions(path: Path, names: list[str]) -> list[str]:
    """``run_tables.conventions_in``: conventions with an Agatston column holding a value, from batches."""
    prefix, found = f"{SCORE}_", set()
    columns = [n for n in names if n.startswith(prefix)]
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns) if columns else ():
        # pandas' notna: NaN is no value either
        found |= {c for c in columns if not pc.all(pc.is_null(batch.column(c), nan_is_null=True)).as_py()}
    return sorted(c.removeprefix(prefix) for c in found)


def _unique_series(path: Path, db: Scratch) -> None:
    """``primary_scores``' refusal of a series listed twice, over the whole file."""
    dup = db.one(
        f"SELECT {SERIES_KEY} FROM read_parquet({sql_text(path)}) GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
    )
    if dup:
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cac_series lists series {dup[0]} more than once")


def _scored(column: str) -> str:
    """SQL for pandas' ``notna`` of a score: neither null nor NaN."""
    return f"{column} IS NOT NULL AND NOT isnan(CAST({column} AS DOUBLE))"


def _scored_counts(path: Path, names: list[str], db: Scratch) -> tuple[int, int, int]:
    def distinct(col: str) -> str:
        return f"count(DISTINCT {col})" if col in names else "0"

    score = f"{SCORE}_{DEFAULT_CONVENTION}"
    found = db.one(
        f"SELECT {distinct(PATIENT_KEY)}, {distinct(STUDY_KEY)}, count(*) FROM read_parquet({sql_text(path)}) "
        f"WHERE {_scored(score)}"
    )
    return int(found[0]), int(found[1]), int(found[2])


def scan_series(run_dir: Path, db: Scratch) -> SeriesFacts:
    """:class:`SeriesFacts` of the run's cac_series, read :data:`BATCH_ROWS` rows at a time."""
    path = checked_table(run_dir, "cac_series", required=True)
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows == 0:
        raise DeepCACError(
            ErrorCode.E_RELEASE_INPUT,
            f"{run_dir} has no scored series (cac_series is empty): there is nothing to release; "
            "see tables/failures.parquet for why",
        )
    names = parquet.schema_arrow.names
    for col in (SERIES_KEY, f"{SCORE}_{DEFAULT_CONVENTION}"):
        if col not in names:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cac_series has no {col!r} column")
    _unique_series(path, db)
    conventions = _scored_conventions(path, names)
    shown = conventions or [DEFAULT_CONVENTION]
    parts: dict[str, list[pd.DataFrame]] = {c: [] for c in {*shown, DEFAULT_CONVENTION}}
    models, texts = [], set()
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=_columns(names, shown)):
        frame = batch.to_pandas()
        for conv in parts:
            extra = ("is_primary",) if conv == DEFAULT_CONVENTION else ()
            parts[conv].append(_compact(primary_scores(frame, conv, extra), conv == DEFAULT_CONVENTION))
        if "model_name" in frame.columns:
            models.append(frame[[c for c in MODEL_COLUMNS if c in frame.columns]].drop_duplicates())
        if "conventions_json" in frame.columns:
            texts |= set(frame["conventions_json"].dropna().unique())
    frames = {c: pd.concat(p, ignore_index=True) for c, p in parts.items()}
    patients, studies, scored = _scored_counts(path, names, db)
    return SeriesFacts(
        by_convention={c: frames[c] for c in shown},
        conventions=conventions,
        patients=patients,
        studies=studies,
        scored=scored,
        models=pd.concat(models, ignore_index=True).drop_duplicates() if models else pd.DataFrame(),
        conventions_json=sorted(texts),
        default=frames[DEFAULT_CONVENTION],
    )


def lesions_by_convention(run_dir: Path) -> dict[str, int] | None:
    """Lesions per convention (``card.counts``), the ``convention`` column counted a batch at a time;
    None without a lesions table or column."""
    path = checked_table(run_dir, "cac_lesions")
    if path is None or "convention" not in pq.read_schema(path).names:
        return None
    counts: dict[str, int] = {}
    for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000, columns=["convention"]):
        for item in pc.value_counts(batch.column(0)).to_pylist():
            if item["values"] is not None:
                counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return dict(sorted(counts.items()))


def dashboard_scores(run_dir: Path, db: Scratch, n_patients: int, seed: int) -> pd.DataFrame:
    """``primary_scores`` (with the dashboard's columns) of the patients ``write_dashboard.sample_patients``
    draws: the sorted distinct patients with a score numbered by DuckDB, the same indices drawn, and
    only their rows read."""
    path = checked_table(run_dir, "cac_series", required=True)
    source = f"read_parquet({sql_text(path)})"
    score = f"{SCORE}_{DEFAULT_CONVENTION}"
    everyone = f"SELECT DISTINCT {PATIENT_KEY} AS p FROM {source} WHERE {_scored(score)} AND {PATIENT_KEY} IS NOT NULL"
    (total,) = db.one(f"SELECT count(*) FROM ({everyone})")
    picked = (
        list(range(total))
        if n_patients >= total
        else sorted(int(i) for i in np.random.default_rng(seed).choice(total, size=n_patients, replace=False))
    )
    numbered = f"SELECT p, row_number() OVER (ORDER BY p) - 1 AS i FROM ({everyone})"
    patients = [p for (p,) in db.rows(f"SELECT p FROM ({numbered}) WHERE i IN (SELECT unnest(?)) ORDER BY p", [picked])]
    return primary_scores(_rows_of(path, patients), DEFAULT_CONVENTION, EXTRA)


def _rows_of(path: Path, patients: list[str]) -> pd.DataFrame:
    """The rows of ``patients``, as pandas gives them from the whole table: an integer (boolean) column
    with a null anywhere in the file becomes float (object) there, so it does here too."""
    parquet, wanted = pq.ParquetFile(path), pa.array(patients, pa.string())
    names = parquet.schema_arrow.names
    columns = [n for n in names if n in {*_columns(names, [DEFAULT_CONVENTION]), *EXTRA}]  # what primary_scores reads
    schema = pa.schema([parquet.schema_arrow.field(n) for n in columns])
    kept, nulls = [], dict.fromkeys(columns, 0)
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            nulls[name] += column.null_count
        kept.append(batch.filter(pc.is_in(batch.column(PATIENT_KEY), value_set=wanted)))
    frame = pa.Table.from_batches(kept, schema=schema).to_pandas()
    for field_ in schema:
        if nulls[field_.name] and pa.types.is_integer(field_.type):
            frame[field_.name] = frame[field_.name].astype("float64")
        elif nulls[field_.name] and pa.types.is_boolean(field_.type):
            frame[field_.name] = frame[field_.name].astype(object)
    return frame


def collect_objects(run_dir: Path, db: Scratch) -> None:
    """The run's DICOM objects into ``objects`` and the SOPInstanceUIDs cac_series names into ``named``;
    two named objects with one SOPInstanceUID are refused (IDC keys instances by it)."""
    path = checked_table(run_dir, "cac_series", required=True)
    columns = [c for c in pq.read_schema(path).names if c.endswith("_sop_instance_uid")]
    db.create("named", sop="VARCHAR")
    if columns:
        union = " UNION ALL ".join(f'SELECT "{c}" AS sop FROM read_parquet({sql_text(path)})' for c in columns)
        db.execute(f"INSERT INTO named SELECT DISTINCT sop FROM ({union}) WHERE sop IS NOT NULL")
    db.create("objects", row="BIGINT", source="VARCHAR", sop="VARCHAR", path="VARCHAR", modality="VARCHAR")
    db.append(
        "objects",
        ((i, str(o.source), o.sop_uid, o.release_path, o.modality) for i, o in enumerate(scan_run_objects(run_dir))),
    )
    db.execute("CREATE TABLE shipped AS SELECT * FROM objects SEMI JOIN named USING (sop)")
    # a plain aggregate (DuckDB spills it); the files of the repeated UIDs only, which are few, read back
    twice = "SELECT sop FROM shipped GROUP BY sop HAVING count(*) > 1"
    first: dict[str, str] = {}
    clashes = []  # (row of the second file, UID, first file, second file), as the scan met them
    for sop, source, row in db.rows(
        f"SELECT sop, source, row FROM shipped SEMI JOIN ({twice}) USING (sop) ORDER BY row"
    ):
        if sop in first:
            clashes.append((row, sop, first[sop], source))
        first.setdefault(sop, source)
    if clashes:
        _, sop, one, other = min(clashes)
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"SOPInstanceUID {sop} appears twice: {one} and {other}")


def shipped_sources(db: Scratch) -> Iterator[tuple[str, Path]]:
    """(SOPInstanceUID, source file) of every object the release ships, by release path."""
    for sop, source in db.rows("SELECT sop, source FROM shipped ORDER BY path"):
        yield str(sop), Path(str(source))


def modalities(db: Scratch) -> dict[str, int]:
    return {str(m): int(n) for m, n in db.rows("SELECT modality, count(*) FROM shipped GROUP BY 1 ORDER BY 1")}


def _copy_hashed(src: Path, dst: Path, chunk: int = 1 << 20) -> str:
    """Copy ``src`` to ``dst``; the MD5 of the bytes (idc_manifest.csv's), read once."""
    md5 = hashlib.md5()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(chunk):
            md5.update(block)
            fout.write(block)
    return md5.hexdigest()


def copy_objects(db: Scratch, out: Path) -> None:
    """Copy the shipped objects to their release paths; (SOPInstanceUID, path, MD5) into ``copied``."""

    def copied() -> Iterator[tuple[str, str, str]]:
        for sop, source, rel in db.rows("SELECT sop, source, path FROM shipped ORDER BY path"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            yield sop, rel, _copy_hashed(Path(source), out / rel)

    db.create("copied", sop="VARCHAR", path="VARCHAR", md5="VARCHAR")
    db.append("copied", copied())


def idc_rows(db: Scratch) -> Iterator[tuple[str, str, str]]:
    """idc_manifest.csv's rows, sorted by SOPInstanceUID."""
    yield from db.rows("SELECT sop, path, md5 FROM copied ORDER BY sop")  # type: ignore[misc]


def make_world_readable(root: Path) -> None:
    """0644 files and 0755 folders: a release is published, and copies keep the run's modes (0600 seen).
    A walk, not a list of the release's 250k paths."""
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    root.chmod(0o755)
