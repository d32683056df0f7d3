"""``deepcac2 qa DIR``: run every check, write checks.parquet and report.html, exit 1 on a blocking failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

from deepcac2.argtypes import non_negative_int, positive_int
from deepcac2.location import QA_DIR, TABLES_DIR
from deepcac2.pipeline.conventions import CONVENTIONS, DEFAULT_CONVENTION
from deepcac2.qa.run import DEFAULT_SAMPLE, run_qa
from deepcac2.writable import writable_dir


def build_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run folder (from deepcac2 run) or a release folder, or its s3:// / gs:// URL")
    p.add_argument("--cohort", help="the cohort Parquet the run processed (default: RUN_DIR/cohort.parquet)")
    p.add_argument("--reference", help="a previous release or run folder to measure drift against")
    p.add_argument(
        "--sample", type=positive_int, default=DEFAULT_SAMPLE, help="per-object checks on at most this many series"
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the per-object and review samples")
    p.add_argument("--review-sample", type=non_negative_int, default=20, help="series in the human review sheet")
    p.add_argument("--convention", default=DEFAULT_CONVENTION, choices=sorted(CONVENTIONS))
    p.add_argument("--out", help="where to write, a folder or a bucket URL (default: RUN_DIR/qa)")
    p.add_argument(
        "--import-reviews",
        nargs="+",
        metavar="CSV",
        help="instead of checking: import filled-in review sheets into RUN_DIR/tables/reviews.parquet",
    )


def _import_reviews(run_dir: Path, sheets: list[str], seed: int) -> int:
    from deepcac2.qa.review import import_verdicts

    known = set(
        pq.read_table(run_dir / TABLES_DIR / "cac_series.parquet", columns=["SeriesInstanceUID"]).column(0).to_pylist()
    )
    table = import_verdicts(sheets, known, seed=seed)
    out = run_dir / TABLES_DIR / "reviews.parquet"
    pq.write_table(table, out, compression="zstd")
    print(f"imported {table.num_rows} verdicts into {out}")
    return 0


def main(args: argparse.Namespace) -> int:
    from deepcac2.location import shown_as
    from deepcac2.qa.staged_qa import main_staged, uses_a_bucket

    if uses_a_bucket(args):  # s3://, gs://: checked on a local copy, QA's files put back
        return main_staged(args, main)
    run_dir = Path(args.run_dir)
    if args.import_reviews:
        return _import_reviews(run_dir, args.import_reviews, args.seed)
    if (run_dir / TABLES_DIR).is_dir():  # else run_qa says what is wrong with RUN_DIR
        writable_dir(args.out or run_dir / QA_DIR, "the QA folder (--out)")
    outcome = run_qa(
        run_dir,
        cohort=args.cohort,
        reference=args.reference,
        sample=args.sample,
        seed=args.seed,
        review_sample=args.review_sample,
        convention=args.convention,
        out_dir=args.out,
    )
    failed, warned = outcome.failed, outcome.warned  # counted as they came: the results stay on disk
    print(f"QA: {outcome.n_results} results, {sum(failed.values())} blocking failures, {sum(warned.values())} warnings")
    for check, n in sorted(failed.items()):
        print(f"  BLOCKING {check}: {n}")
    for check, n in sorted(warned.items()):
        print(f"  warning  {check}: {n}")
    if warned.get("failures.internal"):
        print(
            f"WARNING: {warned['failures.internal']} series failed with E_INTERNAL (a bug, not bad input);"
            " their tracebacks are in tables/failures.parquet detail_json and the run log",
            file=sys.stderr,
        )
    shown = shown_as(args)
    print(f"checks: {shown(outcome.checks_path)}\nreport: {shown(outcome.report_path)}")
    return 1 if failed else 0
