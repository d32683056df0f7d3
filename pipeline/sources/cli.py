"""``deepcac2 fetch``: download or stage the series of a cohort into a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepcac2.argtypes import non_negative_int, positive_float
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort
from deepcac2.pipeline.identifiers import validate_uid
from deepcac2.pipeline.sources.base import Source
from deepcac2.pipeline.sources.cache import RetryPolicy, fetch_verified
from deepcac2.pipeline.sources.idc import DEFAULT_BUCKET, IDCSource
from deepcac2.pipeline.sources.local import LocalSource
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.writable import writable_dir


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", type=Path, required=True, help="cohort Parquet file (deepcac2 cohort -o)")
    parser.add_argument("--dest", type=Path, required=True, help="folder; each series goes to DEST/<SeriesUID>/")
    parser.add_argument("--source", choices=("idc", "local"), default="idc", help="where the series are (default idc)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (default https://s3.amazonaws.com)")
    parser.add_argument("--bucket", help=f"S3 bucket (default: each row's series_aws_url, else {DEFAULT_BUCKET})")
    parser.add_argument("--root", type=Path, help="local source: locations must lie inside this folder")
    parser.add_argument("--max-gb", type=positive_float, help="refuse to start when the cohort needs more (10^9 bytes)")
    parser.add_argument(
        "--retries", type=non_negative_int, default=4, help="tries per series on transient errors (default 4)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the number of series and bytes, move nothing")


def make_source(args: argparse.Namespace) -> Source:
    if args.source == "local":
        return LocalSource(args.root)
    return IDCSource(endpoint_url=args.endpoint_url, bucket=args.bucket)


def plan_bytes(source: Source, refs: list[SeriesRef]) -> int:
    """Bytes the cohort will move (the cohort's sizes; the source is asked where one is missing)."""
    return sum(source.size(r) or 0 for r in refs)


def main(args: argparse.Namespace) -> int:
    if not args.dry_run:  # a dry run creates nothing
        writable_dir(args.dest, "the destination folder (--dest)")
    refs = cohort_to_refs(read_cohort(args.cohort))
    source = make_source(args)
    total = plan_bytes(source, refs)
    print(f"{len(refs)} series, {total:,} bytes ({total / 1e9:.3f} GB) from {source.name}")
    if args.max_gb is not None and total > args.max_gb * 1e9:
        raise DeepCACError(
            ErrorCode.E_CACHE_FULL, f"the cohort needs {total / 1e9:.3f} GB, more than --max-gb {args.max_gb}"
        )
    if args.dry_run:
        return 0
    failures = 0
    retry = RetryPolicy(attempts=max(1, args.retries))
    for ref in refs:
        dest = args.dest / validate_uid(ref.series_uid, "SeriesInstanceUID")
        try:
            fetch_verified(source, ref, dest, retry)
        except DeepCACError as exc:
            failures += 1
            print(f"{ref.series_uid}: {exc.code.value}: {exc.message}")
    print(f"fetched {len(refs) - failures} of {len(refs)} series into {args.dest}")
    return 1 if failures else 0
