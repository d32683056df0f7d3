"""``release build|verify`` on object storage (``s3://``, ``gs://``), through local copies.

* ``build``: a run in a bucket is downloaded (without fragments, logs, the lock) and the
  release built from the copy. An ``--out`` in a bucket is downloaded first when it holds
  an earlier release, so ``--overwrite`` applies the same rules as on disk (only a
  deepcac2 release, only its own files), and the bucket is then made to hold exactly the
  new release (each object one atomic PUT; the old release's files the new one lacks go).
* ``verify``: the release is downloaded and verified; its hashes are of the bytes the
  bucket served.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import NOT_READ_AFTER_RUN, Remote, is_url, local_copy, renamed, staged
from deepcac2.release.outdir import RUN_MARKERS

CODE = ErrorCode.E_RELEASE_INPUT


def uses_a_bucket(*values: object) -> bool:
    return any(is_url(v) for v in values)


def _nested(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def build_staged(args: argparse.Namespace, build: Callable[[argparse.Namespace], int]) -> int:
    """Run ``build`` (the release build command) on local copies; put the release to ``--out`` if it is a URL."""
    if is_url(args.run_dir) and is_url(args.out) and _nested(str(args.run_dir), str(args.out)):
        raise DeepCACError(
            ErrorCode.E_OUTPUT_NOT_OURS,
            f"--out {args.out} and the run {args.run_dir} are the same prefix or one holds the other: "
            "write the release to a separate prefix",
        )
    with tempfile.TemporaryDirectory(prefix="deepcac2-release-") as tmp:
        scratch = Path(tmp)
        local = argparse.Namespace(**vars(args))
        local.run_dir = staged(args.run_dir, scratch / "run", CODE, skip=NOT_READ_AFTER_RUN)
        if args.cohort:
            local.cohort = local_copy(args.cohort, scratch / "cohort", CODE)
        remote = Remote.parse(args.out) if is_url(args.out) else None
        if remote is not None:
            if any(remote.exists(m) for m in RUN_MARKERS):
                raise DeepCACError(
                    ErrorCode.E_OUTPUT_NOT_OURS, f"--out {args.out} is a run (it has {RUN_MARKERS[0]}), not a release"
                )
            local.out = scratch / "release"
            local.shown_out = (str(local.out), remote.uri())
            remote.download_tree("", local.out)  # an earlier release: build's own rules decide (--overwrite)
        else:
            local.out = Path(args.out)
        try:
            rc = build(local)
        except DeepCACError as exc:  # its message names the copies: name the bucket instead
            raise renamed(exc, (local.run_dir, args.run_dir), (local.out, args.out)) from exc
        if remote is not None and rc == 0:
            put, gone = remote.mirror(local.out)
            print(f"release put to {remote.uri()}: {len(put)} objects ({len(gone)} of the earlier release removed)")
        return rc


def verify_staged(rel: str, verify: Callable[[Path], int]) -> int:
    """Run ``verify`` on a local copy of the release at the URL ``rel``."""
    with tempfile.TemporaryDirectory(prefix="deepcac2-verify-") as tmp:
        return verify(staged(rel, Path(tmp) / "release", ErrorCode.E_RELEASE_VERIFY))
