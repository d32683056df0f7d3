"""``deepcac2 evaluate --pred A --ref B --out DIR``: agreement of two scorings.

A and B are tables (Parquet, CSV or JSON with ``SeriesInstanceUID`` and a score column),
run/release folders (their ``cac_series`` table, one convention), or a synth cohort folder
(its ``truth.parquet``, the rows of one convention): ``deepcac2 evaluate --pred out/demo/run
--ref out/demo/dicom --convention deepcac --out DIR`` scores the demo against its truth.
The synth truth has two references: ``image`` (default), what a reader scores on the image
as written, noise and blur included (``synth/image_truth.py``), and ``nominal``, the plaques
at their painted HU, which a degraded image cannot show (``--truth nominal``).
Optional lesion masks: ``--pred-masks`` and ``--ref-masks`` folders with one NIfTI/NRRD per series, named
``<series_uid>.nii.gz`` (or .nii/.nrrd), for lesion-level sensitivity, PPV and F1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import DEFAULT_CONVENTION
from deepcac2.pipeline.scoring.evaluate import compare, write_report
from deepcac2.writable import writable_dir

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
#: what a synth cohort folder holds the expected scores in
TRUTH_FILE = "truth.parquet"
#: the synth truth's references: suffix of their columns in ``truth.parquet``
TRUTH_REFERENCES = {"image": "_in_image", "nominal": ""}


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, help="prediction: table file or run/release folder")
    parser.add_argument("--ref", required=True, help="reference: table file or run/release folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, *.parquet and the PNG")
    parser.add_argument("--key", default="SeriesInstanceUID", help="column that pairs rows (default SeriesInstanceUID)")
    parser.add_argument("--score", default="agatston", help="score column (default agatston)")
    parser.add_argument("--convention", help=f"rows/columns of this convention (folders: default {DEFAULT_CONVENTION})")
    parser.add_argument(
        "--truth",
        choices=TRUTH_REFERENCES,
        default="image",
        help="synth truth as reference: 'image' (default), what a reader scores on the written image; "
        "'nominal', the painted plaques' analytic scores",
    )
    parser.add_argument("--pred-masks", metavar="DIR", help="predicted lesion masks, <series_uid>.nii.gz")
    parser.add_argument("--ref-masks", metavar="DIR", help="reference lesion masks, <series_uid>.nii.gz")


def read_scores(path: str, score: str, convention: str | None, truth: str = "image") -> pd.DataFrame:
    """A score table from a file, or the one-convention view of a folder's cac_series table.

    A synth cohort folder (``deepcac2 synth --out DIR``) stands for its ``truth.parquet``.
    A long table with a ``convention`` column (the synth truth) keeps the rows of
    ``convention`` (default: DEFAULT_CONVENTION), so one command compares a run with the truth;
    ``truth`` picks its reference (TRUTH_REFERENCES).
    """
    p = Path(path)
    if p.is_dir() and (p / TRUTH_FILE).is_file():
        return _synth_truth(p / TRUTH_FILE, score, convention, truth)
    if p.is_dir():
        from deepcac2.release.run_tables import primary_scores, table_frame  # release layout, only for folders

        return primary_scores(table_frame(p, "cac_series", required=True), convention or DEFAULT_CONVENTION)
    if not p.is_file():
        raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"{p} does not exist")
    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".json": pd.read_json}
    reader = readers.get(p.suffix.lower())
    if reader is None:
        raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"{p}: expected .parquet, .csv or .json")
    df = reader(p)
    if "convention" in df.columns:
        df = df[df["convention"] == (convention or DEFAULT_CONVENTION)]
    wide = f"{score}_{convention or DEFAULT_CONVENTION}"
    if score not in df.columns and wide in df.columns:  # a wide cac_series-like table
        df = df.rename(columns={wide: score})
    return df


def _mask_file(folder: Path, key: str) -> Path | None:
    for suffix in MASK_SUFFIXES:
        if (folder / f"{key}{suffix}").is_file():
            return folder / f"{key}{suffix}"
    return None


def _synth_truth(path: Path, score: str, convention: str | None, truth: str) -> pd.DataFrame:
    """One convention's rows of a synth truth table, ``score`` taken from the chosen reference."""
    df = pd.read_parquet(path)
    df = df[df["convention"] == (convention or DEFAULT_CONVENTION)]
    column = f"{score}{TRUTH_REFERENCES[truth]}"
    if column not in df.columns:
        raise DeepCACError(
            ErrorCode.E_SCORING,
            f"{path} has no {column!r} column (a truth table from an older synth? "
            f"--truth nominal uses {score!r}, or rewrite the cohort with this version)",
        )
    return df.drop(columns=[score], errors="ignore").rename(columns={column: score}) if column != score else df


def lesion_mask_pairs(pred_dir: str, ref_dir: str, keys: list[str]):
    """(pred, ref) bool arrays for every key with a mask in both folders (read with SimpleITK)."""
    import SimpleITK as sitk

    for key in keys:
        a, b = _mask_file(Path(pred_dir), key), _mask_file(Path(ref_dir), key)
        if a is None or b is None:
            continue
        ia, ib = sitk.ReadImage(str(a)), sitk.ReadImage(str(b))
        if ia.GetSize() != ib.GetSize():
            raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"{key}: masks {a} and {b} differ in size")
        yield sitk.GetArrayFromImage(ia) != 0, sitk.GetArrayFromImage(ib) != 0


def main(args: argparse.Namespace) -> int:
    writable_dir(args.out, "the report folder (--out)")
    pred = read_scores(args.pred, args.score, args.convention, args.truth)
    ref = read_scores(args.ref, args.score, args.convention, args.truth)
    pairs = None
    if bool(args.pred_masks) != bool(args.ref_masks):
        raise DeepCACError(ErrorCode.E_SCORING, "give both --pred-masks and --ref-masks, or neither")
    if args.pred_masks:
        keys = sorted(set(pred[args.key].astype(str)) & set(ref[args.key].astype(str)))
        pairs = lesion_mask_pairs(args.pred_masks, args.ref_masks, keys)
    result = compare(pred, ref, key=args.key, score=args.score, convention=args.convention, lesion_masks=pairs)
    paths = write_report(result, args.out)
    print(
        f"{result.n} pairs: Spearman {result.spearman_rho:.3f}, ICC(2,1) {result.icc_2_1:.3f}, "
        f"kappa {', '.join(f'{s} {k:.3f}' for s, k in result.kappa.items())}; report {paths['report']}",
        file=sys.stderr,
    )
    return 0
