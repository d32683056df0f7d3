"""``deepcac2 infer``: run a registered model on one DICOM series and save its masks.

Writes ``heart`` and ``cac`` masks (and ``vessels`` when the model gives them), and the
anatomy's ``aorta`` and ``pulmonary_artery``, as NIfTI or NRRD on the CT grid, plus
``model_card.json``; prints the model card and where the anatomy came from (``--anatomy``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.registry import HELP as ANATOMY_HELP
from deepcac2.pipeline.anatomy.registry import parse_name
from deepcac2.writable import writable_dir

SUFFIX = {"nifti": ".nii.gz", "nrrd": ".nrrd"}


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True, help="folder holding one DICOM CT series")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--model", default=None, help="registered model name (default: classical, or deepcac2-unet with --weights)"
    )
    parser.add_argument("--weights", default=None, help="weights file for the model")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when present)")
    parser.add_argument("--anatomy", default="auto", type=parse_name, help=ANATOMY_HELP)
    parser.add_argument("--format", choices=sorted(SUFFIX), default="nifti", help="mask file format")


def write_mask(mask: np.ndarray, geometry: stage_values.Geometry, path: Path) -> None:
    """Save a (z, y, x) label array with the CT geometry (SimpleITK keeps LPS/RAS right)."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetOrigin(geometry.origin)
    img.SetSpacing(geometry.spacing)
    img.SetDirection(geometry.direction)
    try:
        sitk.WriteImage(img, str(path), useCompression=True)
    except RuntimeError as exc:
        raise DeepCACError(ErrorCode.E_SEG_WRITE, f"cannot write {path}: {exc}") from exc


def save_prediction(
    pred: stage_values.Prediction, geometry: stage_values.Geometry, out: Path, fmt: str = "nifti"
) -> dict[str, str]:
    """Write the masks and the model card; return name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"heart": pred.heart, "cac": pred.cac}
    if pred.vessels is not None:
        files["vessels"] = pred.vessels
    if pred.anatomy is not None:  # the great vessels the model was given, for review
        files["aorta"] = pred.anatomy.aorta
        files["pulmonary_artery"] = pred.anatomy.pulmonary_artery
    written = {}
    for name, mask in files.items():
        path = out / f"{name}{SUFFIX[fmt]}"
        write_mask(mask, geometry, path)
        written[name] = str(path)
    card = out / "model_card.json"
    card.write_text(json.dumps({**asdict(pred.card), "model_id": pred.card.model_id}, indent=2) + "\n")
    written["model_card"] = str(card)
    return written


def main(args: argparse.Namespace) -> int:
    writable_dir(args.out, "the output folder (--out)")
    from deepcac2.pipeline import process
    from deepcac2.pipeline.loader import load_series
    from deepcac2.pipeline.models.base import load_model

    model = load_model(args.model, args.weights, device=args.device)
    ct = load_series(args.ct)
    ref = stage_values.SeriesRef(
        series_uid=ct.series_uid, study_uid=ct.study_uid, patient_id=ct.patient_id, location=args.ct
    )
    anatomy = process.anatomy(ref, ct, args.anatomy)
    pred = process.infer(model, ct, anatomy)
    written = save_prediction(pred, ct.geometry, Path(args.out), args.format)
    voxel_ml = ct.geometry.voxel_volume_mm3 / 1000.0
    print(json.dumps({"model_card": asdict(pred.card), "model_id": pred.card.model_id}, indent=2))
    prov = anatomy.provenance
    print(f"anatomy: {prov.provider} {prov.version}" + (f" (SEG {prov.seg_series_uid})" if prov.seg_series_uid else ""))
    for note in anatomy.notes:
        print(f"  {note}")
    print(f"heart {pred.heart.sum() * voxel_ml:.1f} mL, cac {int(pred.cac.sum())} voxels")
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
