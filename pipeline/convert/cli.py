"""``deepcac2 convert``: write DICOM SEG, DICOM SR and Parquet rows for one series.

Inputs are files, so a mask from any tool (or a reader) can be released the same way
as model output::

    deepcac2 convert --ct SERIES_DIR --cac cac.nrrd [--heart heart.nrrd] \\
        --model-card card.json --out OUT [--convention all] [--labelmap]

Masks are DICOM SEG, NRRD or NIfTI on the CT grid (read like ``deepcac2 score``); a
label map with values 1-4 gives the vessels. Writes ``OUT/<SeriesInstanceUID>/seg.dcm``
and ``sr.dcm`` and ``OUT/tables/<table>.parquet``; prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import TABLES_DIR
from deepcac2.pipeline.conventions import CONVENTIONS, DEFAULT_CONVENTION
from deepcac2.pipeline.stage_values import ModelCard, Prediction
from deepcac2.writable import writable_dir


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True, metavar="SERIES_DIR", help="folder with the CT series (DICOM)")
    parser.add_argument("--cac", required=True, metavar="FILE", help="CAC mask or vessel label map (SEG, NRRD, NIfTI)")
    parser.add_argument("--heart", metavar="FILE", help="heart mask (SEG, NRRD, NIfTI); no heart SEG if absent")
    parser.add_argument("--aortic", metavar="FILE", help="thoracic aortic calcium mask: scored and its own segment")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--convention",
        action="append",
        help=f"convention name (repeatable) or 'all'; known: {', '.join(CONVENTIONS)}; default {DEFAULT_CONVENTION}",
    )
    parser.add_argument("--model-card", metavar="JSON", help="model card (name, version, weights_sha256, ...)")
    parser.add_argument("--model-name", default="external-mask", help="without --model-card: the algorithm name")
    parser.add_argument("--model-version", default="0", help="without --model-card: the algorithm version")
    parser.add_argument("--model-family", default="Artificial Intelligence", help="DICOM CID 7162 family meaning")
    parser.add_argument("--labelmap", action="store_true", help="write a LABELMAP SEG instead of BINARY")


def _card(args: argparse.Namespace) -> ModelCard:
    if not args.model_card:
        return ModelCard(args.model_name, args.model_version, None, "unknown", "unknown", family=args.model_family)
    try:
        data = json.loads(Path(args.model_card).read_text())
        return ModelCard(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"cannot use model card {args.model_card}: {exc}") from exc


def _conventions(names: list[str] | None) -> list[str]:
    names = names or [DEFAULT_CONVENTION]
    out = list(CONVENTIONS) if "all" in names else names
    for n in out:
        if n not in CONVENTIONS:
            raise DeepCACError(
                ErrorCode.E_CONVENTION_UNKNOWN, f"unknown convention {n!r}; known: {', '.join(CONVENTIONS)}"
            )
    return sorted(set(out))


def main(args: argparse.Namespace) -> int:
    writable_dir(args.out, "the output folder (--out)")
    from deepcac2.pipeline.convert.series import convert_series, write_series_tables
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.scoring.engine import score_ct
    from deepcac2.pipeline.scoring.masks import read_mask

    card = _card(args)
    conventions = _conventions(args.convention)
    ct = load_series(args.ct)
    cac = read_mask(args.cac, ct)
    heart = read_mask(args.heart, ct).mask if args.heart else np.zeros(ct.shape, dtype=bool)
    aortic = read_mask(args.aortic, ct).mask & ~cac.mask if args.aortic else None
    prediction = Prediction(heart=heart, cac=cac.mask, card=card, vessels=cac.vessels, aortic=aortic)
    scores = {c: score_ct(ct, cac.mask, convention=c, vessels=cac.vessels) for c in conventions}
    out = Path(args.out)
    converted = convert_series(ct, prediction, scores, out, seg_encoding="labelmap" if args.labelmap else "binary")
    tables = write_series_tables([converted], out / TABLES_DIR)
    summary = {
        "SeriesInstanceUID": converted.series_uid,
        "seg": str(converted.seg_path),
        "segs": {kind.value: str(path) for kind, path in converted.seg_paths.items()},
        "sr": str(converted.sr_path),
        "seg_sop_instance_uid": converted.refs.seg_sop_instance_uid,
        "sr_sop_instance_uid": converted.refs.sr_sop_instance_uid,
        "tables": {k: str(v) for k, v in tables.items()},
        "agatston": {c: s.agatston for c, s in scores.items()},
    }
    json.dump(summary, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0
