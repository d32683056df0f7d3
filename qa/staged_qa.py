"""``deepcac2 qa s3://bucket/run``: QA of a run in an object store, through a local copy.

The checks read files (pydicom, dciodvfy, the tables), so the run is downloaded into a
temporary folder, without what QA never reads (fragments, logs, the lock, the old QA),
checked there, and QA's own files are put (``--out``'s other files stay, as on disk): into ``RUN/qa/`` of the bucket, or to
``--out`` (a folder or a URL). What QA records about its inputs (``binding``) is the
bytes downloaded, which are the bucket's, so ``release build`` accepts it for that run.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import NOT_READ_AFTER_RUN, QA_DIR, TABLES_DIR, Remote, is_url, local_copy, renamed, staged

CODE = ErrorCode.E_QA_INPUT


def uses_a_bucket(args: argparse.Namespace) -> bool:
    return any(is_url(v) for v in (args.run_dir, args.out, args.cohort, args.reference))


def main_staged(args: argparse.Namespace, main: Callable[[argparse.Namespace], int]) -> int:
    """Run ``main`` (the qa command) on local copies of every URL in ``args``; put its outputs back."""
    with tempfile.TemporaryDirectory(prefix="deepcac2-qa-") as tmp:
        scratch = Path(tmp)
        local = argparse.Namespace(**vars(args))
        local.run_dir = str(staged(args.run_dir, scratch / "run", CODE, skip=(*NOT_READ_AFTER_RUN, QA_DIR)))
        if args.cohort:
            local.cohort = str(local_copy(args.cohort, scratch / "cohort", CODE))
        if args.reference and is_url(args.reference):  # drift reads only its cac_series table
            table = f"{args.reference.rstrip('/')}/{TABLES_DIR}/cac_series.parquet"
            local.reference = str(local_copy(table, scratch / "reference" / TABLES_DIR, CODE).parent.parent)
        target = args.out or (f"{args.run_dir.rstrip('/')}/{QA_DIR}" if is_url(args.run_dir) else None)
        if is_url(target):
            local.out = str(scratch / QA_DIR)
            local.shown_out = (local.out, target)
        if args.import_reviews:
            if is_url(args.run_dir):  # the verdicts land in the run's tables/
                rc = main(local)
                Remote.parse(args.run_dir).put_file(
                    Path(local.run_dir) / TABLES_DIR / "reviews.parquet", f"{TABLES_DIR}/reviews.parquet"
                )
                print(f"put {args.run_dir.rstrip('/')}/{TABLES_DIR}/reviews.parquet")
                return rc
            return main(local)
        try:
            rc = main(local)
        except DeepCACError as exc:  # its message names the copies: name the bucket instead
            raise renamed(exc, (local.run_dir, args.run_dir), (local.out, target)) from exc
        if is_url(target):
            put = Remote.parse(target).upload_tree(scratch / QA_DIR)  # as on disk: other files there stay
            print(f"QA: {len(put)} files put to {target}")
        return rc
