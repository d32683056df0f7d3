"""``deepcac2 release build|verify|diff``."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepcac2.argtypes import non_negative_int


def build_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    b = sub.add_parser("build", help="build a versioned release folder from a checked RUN_DIR")
    b.add_argument("run_dir", type=_path_or_url, help="output folder or s3:// / gs:// URL of `deepcac2 run` (after QA)")
    b.add_argument("--version", required=True, help="release version, e.g. 1.0.0")
    b.add_argument("--out", required=True, type=_path_or_url, help="release folder (or s3:// / gs:// URL) to create")
    b.add_argument("--cohort", type=_path_or_url, help="the cohort Parquet the run processed (gives the cohort policy)")
    b.add_argument("--allow-no-qa", action="store_true", help="build a draft without QA results")
    b.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier release in --out (only a deepcac2 release, only its own files)",
    )
    b.add_argument(
        "--dashboard-patients", type=non_negative_int, default=200, help="patients on the dashboard (default 200)"
    )
    b.add_argument("--seed", type=non_negative_int, default=0, help="seed of the dashboard's patient sample")
    b.add_argument("--doi", help="the release DOI, once Zenodo assigned it")
    b.add_argument("--funding", help="funding statement for the dataset card")
    b.add_argument("--errata", help="errata for the dataset card")
    b.add_argument(
        "--creator",
        action="append",
        metavar="'FAMILY, GIVEN|AFFILIATION|ORCID'",
        help="a creator for CITATION.cff, zenodo.json and the card (repeat, in order; default: the deepcac2 project)",
    )

    v = sub.add_parser("verify", help="recompute hashes and validate tables; exit 1 on any problem")
    v.add_argument("rel_dir", type=_path_or_url, help="a release folder or its s3:// / gs:// URL")

    d = sub.add_parser("diff", help="compare two releases: score changes, reclassification, agreement")
    d.add_argument("old", type=Path)
    d.add_argument("new", type=Path)
    d.add_argument("--out", type=Path, required=True, help="folder for RELEASE_NOTES.md, Parquet tables and plot")
    d.add_argument("--convention", default="deepcac", help="scoring convention to compare (default deepcac)")


def _path_or_url(value: str) -> Path | str:
    """A local path, or a bucket URL kept as text (a Path would fold ``s3://`` into ``s3:/``)."""
    from deepcac2.location import is_url

    return value if is_url(value) else Path(value)


def main(args: argparse.Namespace) -> int:
    from deepcac2.release.staged_release import build_staged, uses_a_bucket, verify_staged

    if args.action in ("build", "verify"):
        import pyarrow as pa

        # Arrow's default pool (mimalloc) kept the freed batches of each table check: verify's peak grew
        # ~120 MiB more over a 475k-row measurements table than with the system allocator (issue 23)
        pa.set_memory_pool(pa.system_memory_pool())
    if args.action == "build" and uses_a_bucket(args.run_dir, args.out, args.cohort):
        return build_staged(args, _build)  # on local copies; the release put to --out when it is a URL
    if args.action == "build":
        return _build(args)
    if args.action == "verify" and uses_a_bucket(args.rel_dir):
        return verify_staged(args.rel_dir, _verify)
    if args.action == "verify":
        return _verify(args.rel_dir)
    from deepcac2.release.diff import diff_releases

    result = diff_releases(args.old, args.new, args.out, convention=args.convention)
    print(f"release notes: {result.notes_path}")
    if result.uid_conflicts:
        print(f"E_RELEASE_INPUT: {len(result.uid_conflicts)} object(s) changed under an unchanged SOPInstanceUID "
              f"(uid_conflicts.parquet), e.g. {result.uid_conflicts[0]}")  # fmt: skip
        return 1
    return 0


def _build(args: argparse.Namespace) -> int:
    from deepcac2.location import shown_as
    from deepcac2.release.build import build_release
    from deepcac2.release.manifest import manifest_sha256
    from deepcac2.release.outdir import check_placement
    from deepcac2.writable import writable_dir

    check_placement(args.out, args.run_dir)  # before the probe creates --out, maybe inside the run
    writable_dir(args.out, "the release folder (--out)")

    stated = {k: getattr(args, k) for k in ("doi", "funding", "errata") if getattr(args, k)}
    if args.creator:
        stated["authors"] = tuple(args.creator)
    out = build_release(
        args.run_dir,
        args.version,
        args.out,
        allow_no_qa=args.allow_no_qa,
        overwrite=args.overwrite,
        dashboard_patients=args.dashboard_patients,
        dashboard_seed=args.seed,
        stated=stated,
        cohort=args.cohort,
    )
    shown = shown_as(args)
    print(f"release {args.version} built in {shown(out)}")
    print(f"  root hash:    {manifest_sha256(out)} (SHA-256 of MANIFEST.csv)")
    print(f"  dataset card: {shown(out / 'DATASET_CARD.md')}")
    print(f"  dashboard:    {shown(out / 'dashboard' / 'index.html')}")
    return 0


def _verify(rel_dir: Path) -> int:
    from deepcac2.release.verify import verify_release

    report = verify_release(rel_dir)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
