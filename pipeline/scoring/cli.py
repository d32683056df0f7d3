"""``deepcac2 score --ct SERIES_DIR --mask FILE``: score a given mask (SEG, NRRD, NIfTI) on its CT.

``--roi FILE`` scores all calcium over the convention's threshold inside a region instead
(with ``--mask`` too: inside both). Expert annotations and phantoms are scored by the same
engine as model output. Output: JSON on stdout, or ``--out`` FILE.json / FILE.parquet
(series rows; lesions beside it as FILE.lesions.parquet).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepcac2.argtypes import positive_float
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import CONVENTIONS, DEFAULT_CONVENTION, Convention, get_convention
from deepcac2.pipeline.scoring.engine import score_ct
from deepcac2.pipeline.scoring.score_rows import convention_row, lesion_rows, scores_json
from deepcac2.pipeline.stage_values import CTVolume, Scores
from deepcac2.writable import writable_file


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True, metavar="SERIES_DIR", help="folder with the CT series (DICOM)")
    parser.add_argument("--mask", metavar="FILE", help="CAC mask: DICOM SEG, NRRD or NIfTI on the CT grid")
    parser.add_argument("--roi", metavar="FILE", help="region (NRRD, NIfTI or SEG): score all calcium over threshold")
    parser.add_argument(
        "--convention",
        default=DEFAULT_CONVENTION,
        help=f"convention name or 'all' (known: {', '.join(CONVENTIONS)}; default {DEFAULT_CONVENTION})",
    )
    parser.add_argument(
        "--mass-factor", type=positive_float, help="calibration, mg HA/cm3 per HU (overrides the header)"
    )
    parser.add_argument("--out", metavar="FILE", help="FILE.json or FILE.parquet; default: JSON on stdout")


def _conventions(name: str) -> list[Convention]:
    return list(CONVENTIONS.values()) if name == "all" else [get_convention(name)]


def _load_ct(path: str) -> CTVolume:
    from deepcac2.pipeline.loader import load_series  # the loader is a sibling stage; import when used

    return load_series(path)


def score_files(
    ct: CTVolume,
    mask_path: str | None,
    roi_path: str | None,
    conventions: list[Convention],
    mass_factor: float | None = None,
) -> list[Scores]:
    """Score a mask file, a region file or both on a loaded CT, under each convention."""
    from deepcac2.pipeline.scoring.masks import read_mask

    if mask_path is None and roi_path is None:
        raise DeepCACError(ErrorCode.E_SCORING, "give --mask, --roi or both")
    given = read_mask(mask_path, ct) if mask_path else None
    roi = read_mask(roi_path, ct).mask if roi_path else None
    region = given.mask if roi is None else (roi if given is None else given.mask & roi)
    vessels = given.vessels if given is not None else None
    out = []
    for conv in conventions:
        # a region holds tissue of every density: only its calcium over threshold counts
        c = conv.with_options(mask_threshold=True) if roi is not None and not conv.mask_threshold else conv
        out.append(score_ct(ct, region, convention=c, vessels=vessels, mass_factor=mass_factor))
    return out


def write_scores(results: list[Scores], series_uid: str | None, out: str | None) -> None:
    if out is None or out.endswith(".json"):
        text = json.dumps([scores_json(s, series_uid) for s in results], indent=2, default=str)
        if out is None:
            print(text)
        else:
            Path(out).write_text(text + "\n")
        return
    if not out.endswith(".parquet"):
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"--out must end in .json or .parquet, got {out}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([convention_row(s, series_uid) for s in results]), out)
    lesions = [row for s in results for row in lesion_rows(s, series_uid)]
    if lesions:
        pq.write_table(pa.Table.from_pylist(lesions), out[: -len(".parquet")] + ".lesions.parquet")


def main(args: argparse.Namespace) -> int:
    conventions = _conventions(args.convention)
    if args.mask is None and args.roi is None:
        raise DeepCACError(ErrorCode.E_SCORING, "give --mask, --roi or both")
    if args.out and not args.out.endswith((".json", ".parquet")):
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"--out must end in .json or .parquet, got {args.out}")
    if args.out:
        writable_file(args.out, "the scores file (--out)")
    ct = _load_ct(args.ct)
    results = score_files(ct, args.mask, args.roi, conventions, mass_factor=args.mass_factor)
    write_scores(results, ct.series_uid, args.out)
    if args.out:
        for s in results:
            print(
                f"{s.convention}: Agatston {s.agatston:.1f}, {s.lesion_count} lesions, {s.categories}", file=sys.stderr
            )
    return 0
