"""``deepcac2 load SERIES_DIR``: load one series and say what it is, or why it cannot be loaded."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from deepcac2.argtypes import positive_float, positive_int
from deepcac2.errors import DeepCACError
from deepcac2.pipeline.loader.options import LoadOptions
from deepcac2.pipeline.loader.series_volume import load_series
from deepcac2.pipeline.stage_values import CTVolume


def build_parser(parser: argparse.ArgumentParser) -> None:
    d = LoadOptions()
    parser.add_argument("series_dir", metavar="SERIES_DIR", help="folder with the DICOM files (any depth)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--series-uid", help="which series, when the folder holds several")
    parser.add_argument("--gap", choices=["fail", "resample"], default=d.gap_policy, help="missing slices / uneven")
    parser.add_argument("--tilt", choices=["fail", "correct"], default=d.tilt_policy, help="gantry tilt handling")
    parser.add_argument(
        "--spacing-tolerance", type=positive_float, default=d.spacing_tolerance, help="fraction of median"
    )
    parser.add_argument(
        "--max-resample-gap", type=positive_float, default=d.max_resample_gap, help="multiple of median"
    )
    parser.add_argument("--min-slices", type=positive_int, default=d.min_slices)
    parser.add_argument("--max-slices", type=positive_int, default=d.max_slices)
    parser.add_argument("--max-rows", type=positive_int, default=d.max_rows)
    parser.add_argument("--max-cols", type=positive_int, default=d.max_cols)
    parser.add_argument("--empty-uids", choices=["allow", "fail"], default=d.empty_uids)
    parser.add_argument("--skip-unreadable", action="store_true", help="skip unreadable files with a note")


def options_from_args(args: argparse.Namespace) -> LoadOptions:
    return LoadOptions(
        gap_policy=args.gap,
        tilt_policy=args.tilt,
        spacing_tolerance=args.spacing_tolerance,
        max_resample_gap=args.max_resample_gap,
        min_slices=args.min_slices,
        max_slices=args.max_slices,
        max_rows=args.max_rows,
        max_cols=args.max_cols,
        empty_uids=args.empty_uids,
        skip_unreadable=args.skip_unreadable,
    )


def describe(volume: CTVolume) -> dict[str, object]:
    """The facts worth printing about a loaded volume, as JSON-able values."""
    g = volume.geometry
    return {
        "series_uid": volume.series_uid,
        "study_uid": volume.study_uid,
        "patient_id": volume.patient_id,
        "shape_zyx": list(volume.shape),
        "dtype": str(volume.hu.dtype),
        "origin": list(g.origin),
        "spacing_xyz": list(g.spacing),
        "direction": list(g.direction),
        "hu_min": float(np.min(volume.hu)),
        "hu_max": float(np.max(volume.hu)),
        "slice_thickness": volume.slice_thickness,
        "kvp": volume.kvp,
        "mass_factor": volume.mass_factor,
        "instances": len(volume.instances),
        "notes": list(volume.notes),
    }


def main(args: argparse.Namespace) -> int:
    try:
        facts = describe(load_series(args.series_dir, options_from_args(args), series_uid=args.series_uid))
    except DeepCACError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": exc.to_dict()}))
        else:
            print(f"error {exc.code.value}: {exc.message}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps({"ok": True, **facts}))
        return 0
    for key, value in facts.items():
        if key != "notes":
            print(f"{key:16s} {value}")
    for note in facts["notes"] or ["(nothing dropped or corrected)"]:  # type: ignore[union-attr]
        print(f"note             {note}")
    return 0
