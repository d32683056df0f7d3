"""``deepcac2 query "SQL" [--release DIR]``: run SQL against a release's tables."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sql", help='SQL over the release tables, e.g. "SELECT count(*) FROM cac_series"')
    parser.add_argument(
        "--release",
        type=Path,
        default=Path(os.environ.get("DEEPCAC2_RELEASE", ".")),
        help="release folder (default: $DEEPCAC2_RELEASE, else the current folder)",
    )
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--out", type=Path, help="write the result to this file (.parquet, .csv or .json)")


def main(args: argparse.Namespace) -> int:
    import duckdb

    from deepcac2.errors import DeepCACError, ErrorCode
    from deepcac2.release.query import open_release

    with open_release(args.release) as rel:
        try:
            df = rel.sql(args.sql).df()
        except duckdb.Error as exc:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"query failed: {exc}") from exc
    if args.out:
        suffix = args.out.suffix.lower()
        if suffix == ".parquet":
            df.to_parquet(args.out, index=False)
        elif suffix == ".json":
            df.to_json(args.out, orient="records", indent=1)
        else:
            df.to_csv(args.out, index=False)
        print(f"{len(df)} rows written to {args.out}")
    elif args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(df.to_json(orient="records", indent=1))
    else:
        print(df.to_string(index=False))
    return 0
