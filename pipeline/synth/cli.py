"""``deepcac2 synth``: write a synthetic cohort (DICOM, truth JSON/Parquet, manifest)."""

from __future__ import annotations

import argparse
import time

from deepcac2.argtypes import non_negative_float, non_negative_int, positive_float, positive_int
from deepcac2.pipeline.synth.habitus import HABITUS
from deepcac2.pipeline.synth.named_cohorts import COHORTS, write_cohort
from deepcac2.writable import writable_dir


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", choices=COHORTS, default="demo", help="which cohort to write (default: demo)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="everything is deterministic from this seed")
    parser.add_argument(
        "--slices", type=positive_int, default=None, help="slices per chest series (default: 160 mm of z)"
    )
    parser.add_argument("--rows", type=positive_int, default=512, help="rows = columns of chest and QRM series")
    parser.add_argument(
        "--noise", type=non_negative_float, default=None, help="noise SD in HU (soft kernels); 0 = exact"
    )
    parser.add_argument("--plaques", type=non_negative_int, default=4, help="chest cohort: number of random plaques")
    parser.add_argument("--pixel-spacing", type=positive_float, default=None, help="chest cohort: pixel spacing, mm")
    parser.add_argument("--thickness", type=positive_float, default=None, help="chest cohort: slice thickness, mm")
    parser.add_argument("--increment", type=positive_float, default=None, help="chest cohort: slice increment, mm")
    parser.add_argument("--kvp", type=positive_int, default=None, help="chest cohort: kVp")
    parser.add_argument(
        "--great-vessels",
        action="store_true",
        help="demo and chest cohorts: real mediastinal anatomy (aortic arch, descending aorta against the heart, "
        "pulmonary arteries, esophagus, nodes, costal cartilage) and non-coronary calcium in it",
    )
    parser.add_argument(
        "--habitus",
        action="append",
        choices=HABITUS,
        default=None,
        help="chest cohort with --great-vessels: a heart that is hard to find (repeat to combine): "
        "anterior_contact (no lung between the heart and the front chest wall), wide_heart, obese",
    )
    parser.add_argument(
        "--no-totalseg",
        action="store_true",
        help="demo and chest cohorts: do not write IDC's TotalSegmentator SEG beside each chest "
        "(dcmqi; by default every chest gets one)",
    )


def main(args: argparse.Namespace) -> int:
    writable_dir(args.out, "the output folder (--out)")
    opts = {
        name: value
        for name, value in (
            ("pixel_spacing_mm", args.pixel_spacing),
            ("slice_thickness_mm", args.thickness),
            ("slice_increment_mm", args.increment),
            ("kvp", args.kvp),
            ("habitus", tuple(args.habitus) if args.habitus else None),
        )
        if value is not None
    }
    start = time.perf_counter()
    manifest = write_cohort(
        args.cohort,
        args.out,
        seed=args.seed,
        slices=args.slices,
        rows=args.rows,
        noise=args.noise,
        plaques=args.plaques,
        great_vessels=args.great_vessels,
        totalseg=not args.no_totalseg,
        **(opts if args.cohort == "chest" else {}),
    )
    files = sum(manifest.column("n_files").to_pylist())
    print(
        f"deepcac2 synth: wrote cohort {args.cohort!r}: {manifest.num_rows} series, {files} files "
        f"in {time.perf_counter() - start:.1f} s to {args.out}"
    )
    return 0
