"""Choose the series to process from the offline IDC index: policies, filters, explanation.

``select_cohort`` returns a pyarrow Table in the ``schemas.cohort`` layout; ``explain`` says
what each rule removed and projects storage and run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort import seg_candidates
from deepcac2.pipeline.cohort.index import collection_totals, index_version, load_collection
from deepcac2.pipeline.cohort.localdir import index_folder
from deepcac2.pipeline.cohort.nlst import NLST_FIELDS, deepcac_rank, is_localizer, parse_series_description
from deepcac2.pipeline.cohort.rules import CohortFilters, Rule, always_rules, eligibility_rules
from deepcac2.pipeline.cohort.table import SORT_KEYS, frame_to_table

Policy = Literal["all", "deepcac"]
POLICIES: tuple[str, ...] = ("all", "deepcac")

#: Assumed end-to-end cost of one series on one worker (fetch, load, heart + CAC models,
#: SEG/SR/Parquet writing). A planning figure, not a measurement: pass your own.
DEFAULT_SECONDS_PER_SERIES = 30.0


def parsed_frame(
    collection: str = "nlst", index_path: str | Path | None = None, modality: str | None = "CT"
) -> pd.DataFrame:
    """The collection's series (CT only by default: the first rule) with the parsed NLST columns added."""
    df = load_collection(collection, index_path, modality)
    df["series_size_bytes"] = (df["series_size_MB"].fillna(0.0) * 1e6).round().astype("int64")
    df["location"] = None
    return add_parsed_columns(df)


def add_parsed_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add the NLST fields parsed from SeriesDescription, and the ``is_localizer`` flag.

    Columns already present (a local folder fills image type, kernel... from DICOM) are kept
    where the description does not have the NLST form.
    """
    # Parse each distinct description once (NLST: ~58k distinct among ~590k series).
    codes, distinct = pd.factorize(df["SeriesDescription"].fillna(""))
    parsed = pd.DataFrame([parse_series_description(text) for text in distinct], columns=[n for n, _ in NLST_FIELDS])
    for name, kind in NLST_FIELDS:
        values = pd.Series(parsed[name].to_numpy()[codes], index=df.index)
        if name in df.columns:
            values = values.where(values.notna(), df[name])
        df[name] = pd.array(values, dtype="Int16" if kind is int else "float64" if kind is float else object)
    # Other collections have no NLST form: take maker and model from the DICOM attributes.
    for column, dicom in (("scanner_manufacturer", "Manufacturer"), ("scanner_model", "ManufacturerModelName")):
        if dicom in df.columns:
            df[column] = df[column].where(df[column].notna(), df[dicom])
    keys = list(zip(df["image_type"].fillna(""), df["SeriesDescription"].fillna(""), strict=True))
    flags = {key: is_localizer(key[0] or None, key[1] or None) for key in set(keys)}
    df["is_localizer"] = np.array([flags[key] for key in keys], dtype=bool)
    return df


@dataclass(frozen=True)
class Counts:
    series: int
    studies: int
    patients: int
    bytes: int

    @classmethod
    def of(cls, df: pd.DataFrame) -> Counts:
        return cls(
            series=len(df),
            studies=int(df["StudyInstanceUID"].nunique()),
            patients=int(df["PatientID"].nunique()),
            bytes=int(df["series_size_bytes"].sum()),
        )


@dataclass(frozen=True)
class RuleStep:
    """What one rule removed, and what was left after it."""

    rule: str
    description: str
    removed: Counts
    left: Counts
    #: the removed rows themselves (the ``exclusions`` table), and where the rule comes from
    excluded: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    kind: str = "eligibility"


@dataclass(frozen=True)
class Explanation:
    policy: str
    collection: str
    start: Counts
    steps: tuple[RuleStep, ...]
    seconds_per_series: float
    workers: int
    #: selected series with one, several and no candidate TotalSegmentator SEG
    totalseg: tuple[int, int, int] | None = None
    #: a local folder (``collection`` is then its path), not an IDC collection
    local: bool = False

    def exclusions(self) -> pa.Table:
        """Every series a rule removed, with the rule (the ``exclusions`` table, sorted by series)."""
        return exclusions_table(self.steps, None if self.local else self.collection)

    @property
    def final(self) -> Counts:
        return self.steps[-1].left if self.steps else self.start

    @property
    def storage_tb(self) -> float:
        """Bytes to move for the selected series, in TB (10^12 bytes, as IDC reports)."""
        return self.final.bytes / 1e12

    @property
    def run_hours(self) -> float:
        return self.final.series * self.seconds_per_series / 3600.0 / self.workers

    def rows(self) -> list[dict[str, object]]:
        """One plain dict per rule (what ``format_table`` prints), for tables and logs."""
        return [
            {
                "rule": step.rule,
                "description": step.description,
                "series_removed": step.removed.series,
                "studies_removed": step.removed.studies,
                "patients_removed": step.removed.patients,
                "tb_removed": step.removed.bytes / 1e12,
                "series_left": step.left.series,
            }
            for step in self.steps
        ]

    def format_table(self) -> str:
        head = f"{'rule':<28} {'series -':>10} {'studies -':>10} {'patients -':>10} {'TB -':>8}   {'series left':>11}"
        lines = [f"cohort {self.collection!r}, policy {self.policy!r}", head, "-" * len(head)]
        s = self.start
        lines.append(f"{'(index)':<28} {'':>10} {'':>10} {'':>10} {'':>8}   {s.series:>11,}")
        for step in self.steps:
            r = step.removed
            lines.append(
                f"{step.rule:<28} {r.series:>10,} {r.studies:>10,} {r.patients:>10,} {r.bytes / 1e12:>8.3f}"
                f"   {step.left.series:>11,}"
            )
        f = self.final
        lines.append("-" * len(head))
        lines.append(f"selected: {f.series:,} series, {f.studies:,} studies, {f.patients:,} patients")
        lines.append(f"storage to move: {self.storage_tb:.3f} TB")
        lines.append(
            f"run time: {self.run_hours:,.1f} h at {self.seconds_per_series:g} s/series on {self.workers} worker(s)"
        )
        if self.totalseg is not None:
            lines.append(seg_candidates.coverage_line(self.totalseg))
        return "\n".join(lines)


def _apply(df: pd.DataFrame, rule: Rule, steps: list[RuleStep], kind: str = "eligibility") -> pd.DataFrame:
    before = Counts.of(df)
    mask = rule.keep(df).to_numpy(dtype=bool) if len(df) else np.ones(0, dtype=bool)
    kept = df[mask] if len(df) else df
    after = Counts.of(kept)
    removed = Counts(
        before.series - after.series, before.studies - after.studies, before.patients - after.patients,
        before.bytes - after.bytes,
    )  # fmt: skip
    steps.append(RuleStep(rule.name, rule.description, removed, after, df[~mask] if len(df) else None, kind))
    return kept


_EXCLUSION_COLUMNS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "collection_id", "study_year",
                      "image_type", "instanceCount", "SeriesDescription")  # fmt: skip


def exclusions_table(steps: tuple[RuleStep, ...] | list[RuleStep], collection: str | None = None) -> pa.Table:
    """The ``exclusions`` table of the rule steps: one row per removed series, sorted by series.

    The IDC index's non-CT series are counted by the ``ct`` rule (``--explain``) but not listed:
    only CT rows are read from the index (its SEG and SR objects are no series to process).
    """
    from deepcac2.schemas.exclusions import TABLE as EXCLUSIONS

    frames = []
    for step in steps:
        if step.excluded is None or step.excluded.empty:
            continue
        part = pd.DataFrame({c: step.excluded[c] if c in step.excluded.columns else None for c in _EXCLUSION_COLUMNS})
        part = part.assign(rule=step.rule, rule_kind=step.kind, description=step.description)
        frames.append(part)
    schema = EXCLUSIONS.arrow
    if not frames:
        return schema.empty_table()
    df = pd.concat(frames, ignore_index=True)
    if collection is not None:
        df["collection_id"] = df["collection_id"].where(df["collection_id"].notna(), collection)
    df = df.sort_values("SeriesInstanceUID", kind="mergesort").drop_duplicates("SeriesInstanceUID")
    columns = {}
    for f in schema:
        values = df[f.name].astype(object).where(df[f.name].notna(), None)
        columns[f.name] = pa.array(values.tolist(), type=f.type)
    return pa.table(columns, schema=schema)


def _deepcac_choice(df: pd.DataFrame) -> pd.DataFrame:
    """One series per study: a DeepCAC spacing, closest to 2.5 mm, then the kernel order."""
    ranks = [deepcac_rank(t, k) for t, k in zip(df["slice_thickness_mm"], df["kernel"], strict=True)]
    df = df.assign(
        _listed=[r[0] for r in ranks],
        _distance=[r[1] for r in ranks],
        _kernel=[r[2] for r in ranks],
        _candidates=df.groupby("StudyInstanceUID")["SeriesInstanceUID"].transform("size"),
    )
    # Ties (same thickness and kernel) go to the series with more slices, then the smaller UID.
    df = df.sort_values(
        ["StudyInstanceUID", "_listed", "_distance", "_kernel", "instanceCount", "SeriesInstanceUID"],
        ascending=[True, True, True, True, False, True],
        kind="mergesort",
    )
    best = df.drop_duplicates("StudyInstanceUID", keep="first").copy()
    best["selection_reason"] = [
        f"{reason}; deepcac: best of {n} in study (thickness {t if pd.notna(t) else 'unknown'} mm, kernel {k})"
        for reason, n, t, k in zip(
            best["selection_reason"], best["_candidates"], best["slice_thickness_mm"], best["kernel"], strict=True
        )
    ]
    return best.drop(columns=["_listed", "_distance", "_kernel", "_candidates"])


def _run(
    policy: str, collection: str, filters: CohortFilters | None, index_path: str | Path | None
) -> tuple[pd.DataFrame, Counts, list[RuleStep]]:
    if policy not in POLICIES:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    filters = filters or CohortFilters()
    # Only CT rows are loaded (590k -> 200k rows for NLST); the `ct` rule's numbers come from
    # SQL totals over the whole collection instead.
    start = Counts(*collection_totals(collection, index_path))
    df, ct_rows, steps = run_rules(parsed_frame(collection, index_path, "CT"), policy, filters)
    if steps and steps[0].rule == "ct":
        removed = Counts(*(getattr(start, f) - getattr(ct_rows, f) for f in ("series", "studies", "patients", "bytes")))
        steps[0] = RuleStep("ct", steps[0].description, removed, steps[0].left)
    return df, start, steps


def run_rules(
    df: pd.DataFrame, policy: str, filters: CohortFilters, eligibility: bool = True
) -> tuple[pd.DataFrame, Counts, list[RuleStep]]:
    """Apply eligibility, filters, policy, sample and limit to a parsed frame (also used for local folders)."""
    start = Counts.of(df)
    steps: list[RuleStep] = []
    base = eligibility_rules() if eligibility else always_rules()
    rules = base + filters.rules()
    for i, rule in enumerate(rules):
        df = _apply(df, rule, steps, "eligibility" if i < len(base) else "filter")
    passed = ", ".join(r.name for r in rules) or "no rules"
    df = df.assign(selection_reason=f"policy {policy}: passed {passed}")
    if policy == "deepcac":
        chosen = _deepcac_choice(df)
        keep = df["SeriesInstanceUID"].isin(set(chosen["SeriesInstanceUID"]))
        df = _apply(
            df,
            Rule("deepcac_one_per_study", "one series per study (DeepCAC preference)", lambda d: keep),
            steps,
            "policy",
        )
        df = chosen
    df = df.sort_values(list(SORT_KEYS), kind="mergesort")
    if filters.sample is not None and filters.sample < len(df):
        rng = np.random.default_rng(filters.seed)
        picked = np.zeros(len(df), dtype=bool)
        picked[rng.choice(len(df), size=filters.sample, replace=False)] = True
        df = _apply(
            df,
            Rule(
                "sample",
                f"random {filters.sample} series, seed {filters.seed}",
                lambda d: pd.Series(picked, index=d.index),
            ),
            steps,
            "sample",
        )
        df["selection_reason"] = df["selection_reason"] + f"; sampled (seed {filters.seed})"
    if filters.limit is not None and filters.limit < len(df):
        head = np.arange(len(df)) < filters.limit
        df = _apply(
            df,
            Rule("limit", f"first {filters.limit} series", lambda d: pd.Series(head, index=d.index)),
            steps,
            "sample",
        )
    return df, start, steps


def select_cohort(
    policy: Policy = "all",
    *,
    collection: str = "nlst",
    filters: CohortFilters | None = None,
    index_path: str | Path | None = None,
) -> pa.Table:
    """The selected series as a ``schemas.cohort`` table, sorted by patient, study, series."""
    return select_and_explain(policy, collection=collection, filters=filters, index_path=index_path)[0]


def explain(
    policy: Policy = "all",
    *,
    collection: str = "nlst",
    filters: CohortFilters | None = None,
    index_path: str | Path | None = None,
    seconds_per_series: float = DEFAULT_SECONDS_PER_SERIES,
    workers: int = 1,
) -> Explanation:
    """Per rule: series, studies, patients and bytes removed; plus storage and run-time projections."""
    return select_and_explain(
        policy, collection=collection, filters=filters, index_path=index_path,
        seconds_per_series=seconds_per_series, workers=workers,
    )[1]  # fmt: skip


def select_and_explain(
    policy: Policy = "all",
    *,
    collection: str = "nlst",
    filters: CohortFilters | None = None,
    index_path: str | Path | None = None,
    seconds_per_series: float = DEFAULT_SECONDS_PER_SERIES,
    workers: int = 1,
) -> tuple[pa.Table, Explanation]:
    """Both results of one pass over the index."""
    if seconds_per_series <= 0 or workers < 1:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, "seconds_per_series must be > 0 and workers >= 1")
    df, start, steps = _run(policy, collection, filters, index_path)
    df = seg_candidates.attach_idc(df, seg_candidates.idc_candidates(collection, index_path))
    table = frame_to_table(df, {"policy": policy, "collection": collection, "idc_index_data": index_version()})
    explanation = Explanation(
        policy, collection, start, tuple(steps), seconds_per_series, workers, seg_candidates.coverage(df)
    )
    return table, explanation


def index_local(
    folder: str | Path, *, policy: Policy | None = None, filters: CohortFilters | None = None
) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Index a local DICOM folder into the cohort schema; also returns the files left out and why.

    Without a policy every series found is kept but localizers and series without a usable
    PatientID (``rules.always_rules``; filters still apply); with one, the same eligibility
    rules and choice as for the IDC index run.
    """
    table, skipped, _ = index_local_and_explain(folder, policy=policy, filters=filters)
    return table, skipped


def index_local_and_explain(
    folder: str | Path,
    *,
    policy: Policy | None = None,
    filters: CohortFilters | None = None,
    seconds_per_series: float = DEFAULT_SECONDS_PER_SERIES,
    workers: int = 1,
) -> tuple[pa.Table, list[tuple[str, str]], Explanation]:
    """``index_local`` plus the per-rule explanation."""
    if policy is not None and policy not in POLICIES:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    if seconds_per_series <= 0 or workers < 1:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, "seconds_per_series must be > 0 and workers >= 1")
    found = index_folder(folder)
    df = add_parsed_columns(found.frame)
    name = policy or "local"
    df, start, steps = run_rules(df, name, filters or CohortFilters(), eligibility=policy is not None)
    df = seg_candidates.attach_local(df, found.segs)
    table = frame_to_table(df, {"policy": name, "source_folder": str(folder)})
    explanation = Explanation(
        name, str(folder), start, tuple(steps), seconds_per_series, workers, seg_candidates.coverage(df), local=True
    )
    return table, found.skipped, explanation
