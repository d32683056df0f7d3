"""``deepcac2 cohort``: select series from the offline IDC index, or index a local DICOM folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepcac2.argtypes import non_negative_int, positive_float, positive_int
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.localdir import reason_kind
from deepcac2.pipeline.cohort.rules import CohortFilters
from deepcac2.pipeline.cohort.select import (
    DEFAULT_SECONDS_PER_SERIES,
    POLICIES,
    index_local_and_explain,
    select_and_explain,
)
from deepcac2.pipeline.cohort.table import write_cohort, write_exclusions
from deepcac2.writable import writable_file


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, help="cohort Parquet file to write")
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default=None,
        help="'all' eligible series (default for the "
        "index) or 'deepcac': one per study; a local folder keeps every series unless given",
    )
    parser.add_argument("--collection", default="nlst", help="IDC collection_id (default nlst)")
    parser.add_argument("--index", type=Path, help="IDC index Parquet (default: the one idc-index-data ships)")
    parser.add_argument("--from-dir", type=Path, metavar="DIR", help="index a local DICOM folder instead")
    parser.add_argument(
        "--list-skipped", action="store_true", help="--from-dir: name every file left out (default: counts per reason)"
    )
    parser.add_argument(
        "--allow-empty", action="store_true", help="--from-dir: write a cohort even when no series is found (exit 0)"
    )
    f = parser.add_argument_group("filters")
    f.add_argument("--study-year", type=non_negative_int, nargs="+", help="NLST study years (0 = T0, 1, 2)")
    f.add_argument("--kernel", nargs="+", help="reconstruction kernels, e.g. B30f STANDARD")
    f.add_argument("--thickness", type=float, nargs=2, metavar=("MIN", "MAX"), help="slice thickness range, mm")
    f.add_argument("--manufacturer", nargs="+", help="NLST codes (GE SE PH TO) or DICOM Manufacturer prefixes")
    f.add_argument("--patients", nargs="+", help="PatientIDs to keep")
    f.add_argument("--patients-file", type=Path, help="file with one PatientID per line")
    f.add_argument("--sample", type=positive_int, help="random sample of N series (after the policy)")
    f.add_argument("--seed", type=non_negative_int, default=0, help="seed of --sample (default 0)")
    f.add_argument("--limit", type=positive_int, help="first N series in patient/study/series order")
    e = parser.add_argument_group("explain")
    e.add_argument("--explain", action="store_true", help="print what each rule removed and the projections")
    e.add_argument(
        "--seconds-per-series",
        type=positive_float,
        default=DEFAULT_SECONDS_PER_SERIES,
        help=f"run-time projection per series and worker (default {DEFAULT_SECONDS_PER_SERIES:g} s)",
    )
    e.add_argument("--workers", type=positive_int, default=1, help="parallel workers for the run-time projection")  # fmt: skip


def _filters(args: argparse.Namespace) -> CohortFilters:
    patients = list(args.patients or [])
    if args.patients_file is not None:
        try:
            patients += [line.strip() for line in args.patients_file.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cannot read {args.patients_file}: {exc}") from exc
    return CohortFilters(
        study_years=tuple(args.study_year) if args.study_year else None,
        kernels=tuple(args.kernel) if args.kernel else None,
        thickness_mm=tuple(args.thickness) if args.thickness else None,
        manufacturers=tuple(args.manufacturer) if args.manufacturer else None,
        patients=tuple(patients) if (args.patients or args.patients_file) else None,
        sample=args.sample,
        seed=args.seed,
        limit=args.limit,
    )


def _report_skipped(skipped: list[tuple[str, str]], every: bool) -> None:
    """Files left out of a --from-dir index: every one with --list-skipped, else counts per reason."""
    if every:
        for path, why in skipped:
            print(f"skipped {path}: {why}", file=sys.stderr)
        return
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for path, why in skipped:
        by_kind.setdefault(reason_kind(why), []).append((str(path), why))
    for kind, files in sorted(by_kind.items()):
        path, why = files[0]
        example = f"e.g. {path}" + (f": {why}" if why != kind else "")
        print(f"skipped {len(files)} file(s): {kind} ({example}); --list-skipped lists all", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    filters = _filters(args)
    if args.output is not None:
        writable_file(args.output, "the cohort file (-o)")  # before minutes of indexing, not after
    if args.from_dir is not None:
        table, skipped, report = index_local_and_explain(
            args.from_dir, policy=args.policy, filters=filters,
            seconds_per_series=args.seconds_per_series, workers=args.workers,
        )  # fmt: skip
        _report_skipped(skipped, args.list_skipped)
        if args.explain:
            print(report.format_table())
        if table.num_rows == 0 and not args.allow_empty:
            found = (
                f"{report.start.series} series found, none left after the rules"
                if report.start.series
                else (f"no DICOM series found ({len(skipped)} file(s) skipped, see above)")
            )
            raise DeepCACError(
                ErrorCode.E_COHORT_EMPTY,
                f"{args.from_dir}: {found}; nothing written (pass --allow-empty to write an empty cohort)",
            )
    else:
        policy = args.policy or "all"
        if args.output is None and not args.explain:
            raise DeepCACError(ErrorCode.E_COHORT_INVALID, "give -o/--output, --explain, or both")
        table, report = select_and_explain(
            policy, collection=args.collection, filters=filters, index_path=args.index,
            seconds_per_series=args.seconds_per_series, workers=args.workers,
        )  # fmt: skip
        if args.explain:
            print(report.format_table())
            if args.output is None:
                return 0
    if args.output is None:
        print(table.select(["PatientID", "SeriesInstanceUID", "instanceCount", "location"]).to_pandas().to_string())
        return 0
    write_cohort(table, args.output)
    excluded = write_exclusions(report.exclusions(), args.output)  # what was left out, and by which rule
    print(f"wrote {table.num_rows} series to {args.output}; the series left out, with their rules, to {excluded}")
    return 0
