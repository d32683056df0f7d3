"""``diff_releases``: what changed between two releases, e.g. after regenerating with a new model.

Writes into ``out_dir``:

- ``RELEASE_NOTES.md``: versions and model cards of both sides, series added and removed,
  agreement (Spearman, linearly weighted kappa per risk scheme, ICC(2,1)), one
  reclassification table per scheme (rows: old category, columns: new) and the
  largest score changes;
- ``series_changes.parquet``: one row per series in either release (status added,
  removed, changed or unchanged; old and new score and categories);
- ``reclassification.parquet``: scheme, old_category, new_category, series (every pair);
- ``agreement.parquet``: metric, scheme, value;
- ``bland_altman.png``: new minus old against their mean;
- ``uid_conflicts.parquet``: SOPInstanceUID, old_md5, new_md5, old_path, new_path of every
  DICOM object whose content changed under an unchanged UID (its creation stamps, ContentDate/Time
  and the like, aside: see ``dicomout/reproducible.py``). There must be none: output UIDs
  derive from all that determines the content (``docs/outputs.md``), and IDC keys objects by
  SOPInstanceUID, so such an object would overwrite or collide with the released one.
  ``release diff`` exits 1 when there is one.

Statistics come from ``deepcac2.pipeline.scoring.evaluate.compare`` with the new release
as "prediction" and the old as "reference"; categories are banded from the scores by
``pipeline.risk_categories`` on both sides, so a banding change cannot pose as a score change.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import risk_categories
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.dicomout.reproducible import STAMP_KEYWORDS
from deepcac2.pipeline.scoring.evaluate import EvaluationResult, agreement_lines, compare, format_stat
from deepcac2.release.layout import find_dicom_objects
from deepcac2.release.manifest import IDC_MANIFEST_NAME, hash_file
from deepcac2.release.metadata import model_cards
from deepcac2.release.run_tables import PATIENT_KEY, SCORE, SERIES_KEY, STUDY_KEY, primary_scores, table_frame

NOTES = "RELEASE_NOTES.md"
TOP_CHANGES = 10


@dataclass(frozen=True)
class DiffResult:
    notes_path: Path
    series_changes: pd.DataFrame
    #: scheme, old_category, new_category, series
    reclassification: pd.DataFrame
    agreement: EvaluationResult | None
    added: list[str]
    removed: list[str]
    #: SOPInstanceUIDs whose object changed under the same UID (must be empty)
    uid_conflicts: list[str] = field(default_factory=list)


def _provenance(rel: Path) -> dict[str, object]:
    path = rel / "provenance.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def dicom_md5(rel: Path) -> dict[str, tuple[str, str]]:
    """SOPInstanceUID -> (md5, path) of every DICOM object: a release's ``idc_manifest.csv``, else every file of a run."""
    manifest = rel / IDC_MANIFEST_NAME
    if manifest.exists():
        with open(manifest, newline="", encoding="utf-8") as f:
            return {r["SOPInstanceUID"]: (r["md5"], r["path"]) for r in csv.DictReader(f)}
    out = {}
    for obj in find_dicom_objects(rel):
        path = obj.source.relative_to(rel).as_posix()
        out[obj.sop_uid] = (hash_file(rel, path).md5, path)
    return out


def _without_stamps(path: Path) -> Dataset | None:
    """The object with its creation stamps removed (``reproducible.STAMP_KEYWORDS``); None when unreadable."""
    try:
        ds = pydicom.dcmread(path)
    except Exception:  # noqa: BLE001 - missing or broken: compared by bytes alone
        return None

    def strip(item: Dataset) -> None:
        for keyword in STAMP_KEYWORDS:
            if keyword in item:
                delattr(item, keyword)
        for elem in item:
            if elem.VR == "SQ":
                for child in elem.value:
                    strip(child)

    strip(ds)
    return ds


def _same_content(old: Path, new: Path) -> bool:
    """Equal but for the creation stamp (a run in another folder stamps its objects with its own time)."""
    a, b = _without_stamps(old), _without_stamps(new)
    return a is not None and b is not None and a == b


def uid_conflicts(old: Path, new: Path) -> pd.DataFrame:
    """The objects present in both with one SOPInstanceUID and different content (creation stamps aside)."""
    a, b = dicom_md5(old), dicom_md5(new)
    rows = [
        {
            "SOPInstanceUID": uid,
            "old_md5": a[uid][0],
            "new_md5": b[uid][0],
            "old_path": a[uid][1],
            "new_path": b[uid][1],
        }
        for uid in sorted(set(a) & set(b))
        if a[uid][0] != b[uid][0] and not _same_content(old / a[uid][1], new / b[uid][1])
    ]
    return pd.DataFrame(rows, columns=["SOPInstanceUID", "old_md5", "new_md5", "old_path", "new_path"])


def series_changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Outer join of the two one-convention score frames on series, with a status column."""
    ids = [c for c in (SERIES_KEY, STUDY_KEY, PATIENT_KEY) if c in old.columns and c in new.columns]
    left = old[[*ids, SCORE]].rename(columns={SCORE: "agatston_old"})
    right = new[[*ids, SCORE]].rename(columns={SCORE: "agatston_new"})
    df = left.merge(right, on=SERIES_KEY, how="outer", suffixes=("", "_n"), sort=True)
    for col in ids[1:]:  # identifiers from whichever side has the series
        df[col] = df[col].fillna(df.pop(f"{col}_n"))
    df["delta"] = df["agatston_new"] - df["agatston_old"]
    df["status"] = "changed"
    df.loc[df["agatston_old"].isna(), "status"] = "added"
    df.loc[df["agatston_new"].isna(), "status"] = "removed"
    df.loc[df["delta"] == 0, "status"] = "unchanged"
    categories = []
    for scheme in risk_categories.SCHEME_NAMES:
        for side in ("old", "new"):
            col = f"{scheme}_{side}"
            df[col] = [
                None if pd.isna(v) else risk_categories.category(scheme, float(v)) for v in df[f"agatston_{side}"]
            ]
            categories.append(col)
    return df[[*ids, "status", "agatston_old", "agatston_new", "delta", *categories]].reset_index(drop=True)


def reclassification(result: EvaluationResult | None) -> pd.DataFrame:
    """Long table of old -> new category counts per scheme (from compare's confusion, transposed)."""
    rows = []
    for scheme in risk_categories.SCHEME_NAMES:
        names = risk_categories.labels(scheme)
        m = result.confusion[scheme] if result is not None else pd.DataFrame(0, index=names, columns=names)
        rows += [
            {"scheme": scheme, "old_category": o, "new_category": n, "series": int(m.loc[n, o])}
            for o in names
            for n in names
        ]
    return pd.DataFrame(rows)


def _reclass_markdown(reclass: pd.DataFrame, result: EvaluationResult | None) -> list[str]:
    lines = []
    for scheme in risk_categories.SCHEME_NAMES:
        names = list(risk_categories.labels(scheme))
        t = reclass[reclass["scheme"] == scheme].pivot(index="old_category", columns="new_category", values="series")
        t = t.reindex(index=names, columns=names)
        rank = {n: i for i, n in enumerate(names)}
        up = int(sum(t.loc[o, n] for o in names for n in names if rank[n] > rank[o]))
        down = int(sum(t.loc[o, n] for o in names for n in names if rank[n] < rank[o]))
        kappa = format_stat(result.kappa[scheme]) if result is not None else "n/a"
        lines += [
            f"### `{scheme}` — weighted kappa {kappa}; reclassified {up + down} of {int(t.to_numpy().sum())} "
            f"({up} up, {down} down)",
            "",
            "| old \\ new | " + " | ".join(names) + " |",
            "|---" + "|---:" * len(names) + "|",
            *[f"| {o} | " + " | ".join(str(int(t.loc[o, n])) for n in names) + " |" for o in names],
            "",
        ]
    return lines


def _side(prov: dict[str, object], rel: Path) -> str:
    cards = prov.get("model_cards") or model_cards(table_frame(rel, "cac_series"))
    models = ", ".join(f"{c.get('model_name')} {c.get('model_version')}" for c in cards) or "model not recorded"
    return f"`{rel}`: release {prov.get('release_version', 'unknown')}, {models}"


def notes_markdown(
    old: Path,
    new: Path,
    changes: pd.DataFrame,
    reclass: pd.DataFrame,
    result: EvaluationResult | None,
    conv: str,
    conflicts: pd.DataFrame | None = None,
) -> str:
    count = changes["status"].value_counts()
    lines = [
        f"# Release notes: {_provenance(new).get('release_version', new.name)} "
        f"vs {_provenance(old).get('release_version', old.name)}",
        "",
        f"- old: {_side(_provenance(old), old)}",
        f"- new: {_side(_provenance(new), new)}",
        f"- convention compared: `{conv}`",
        f"- series: {int(count.get('changed', 0))} changed, {int(count.get('unchanged', 0))} unchanged, "
        f"{int(count.get('added', 0))} added, {int(count.get('removed', 0))} removed",
        "",
        "## Agreement (new vs old)",
        "",
    ]
    if result is None:
        lines.append("The releases share no series: no agreement statistics.")
    else:
        lines += agreement_lines(result, difference="new - old", figure="bland_altman.png", kappa=True)
    lines += ["", "## Risk category reclassification (rows: old, columns: new)", ""]
    lines += _reclass_markdown(reclass, result)
    moved = changes[changes["status"] == "changed"]
    top = moved.reindex(moved["delta"].abs().sort_values(ascending=False, kind="mergesort").index).head(TOP_CHANGES)
    lines += [
        f"## Largest score changes (top {TOP_CHANGES})",
        "",
        "| series | old | new | change |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.SeriesInstanceUID} | {r.agatston_old:.1f} | {r.agatston_new:.1f} | {r.delta:+.1f} |"
        for r in top.itertuples()
    ]
    for status in ("added", "removed"):
        uids = changes.loc[changes["status"] == status, SERIES_KEY].tolist()
        lines += ["", f"## Series {status} ({len(uids)})", "", *[f"- {u}" for u in uids[:100]]]
        if len(uids) > 100:
            lines.append(f"- ... and {len(uids) - 100} more (see `series_changes.parquet`)")
    n = 0 if conflicts is None else len(conflicts)
    lines += ["", f"## Objects changed under an unchanged SOPInstanceUID ({n}; must be 0)", ""]
    if n:
        lines += [f"- {r.SOPInstanceUID}: `{r.old_path}` -> `{r.new_path}`" for r in conflicts.head(100).itertuples()]
    else:
        lines.append("None: every object that changed has a new UID.")
    return "\n".join(lines) + "\n"


def diff_releases(
    old: str | Path, new: str | Path, out_dir: str | Path, *, convention: str = DEFAULT_CONVENTION
) -> DiffResult:
    """Compare two release (or run) folders; write release notes and tables into ``out_dir``."""
    old, new, out = Path(old), Path(new), Path(out_dir)
    a = primary_scores(table_frame(old, "cac_series", required=True), convention)
    b = primary_scores(table_frame(new, "cac_series", required=True), convention)
    changes = series_changes(a, b)
    shared = set(a[SERIES_KEY]) & set(b[SERIES_KEY])
    result = None
    if shared:
        try:
            result = compare(b, a, key=SERIES_KEY, score=SCORE)
        except DeepCACError as exc:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"cannot compare {old} and {new}: {exc.message}") from exc
    reclass = reclassification(result)
    conflicts = uid_conflicts(old, new)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(conflicts, preserve_index=False), out / "uid_conflicts.parquet")
    pq.write_table(pa.Table.from_pandas(changes, preserve_index=False), out / "series_changes.parquet")
    pq.write_table(pa.Table.from_pandas(reclass, preserve_index=False), out / "reclassification.parquet")
    metrics = result.metrics() if result is not None else []
    schema = pa.schema([("metric", pa.string()), ("scheme", pa.string()), ("value", pa.float64())])
    pq.write_table(pa.Table.from_pylist(metrics, schema=schema), out / "agreement.parquet")
    if result is not None and result.bland_altman is not None:
        from deepcac2.pipeline.scoring.plots import write_bland_altman_png

        pairs = result.pairs
        write_bland_altman_png(pairs["pred"], pairs["ref"], result.bland_altman, out / "bland_altman.png", "Agatston")
    notes = out / NOTES
    notes.write_text(notes_markdown(old, new, changes, reclass, result, convention, conflicts), encoding="utf-8")
    return DiffResult(
        notes_path=notes,
        series_changes=changes,
        reclassification=reclass,
        agreement=result,
        added=changes.loc[changes["status"] == "added", SERIES_KEY].tolist(),
        removed=changes.loc[changes["status"] == "removed", SERIES_KEY].tolist(),
        uid_conflicts=conflicts["SOPInstanceUID"].tolist(),
    )
