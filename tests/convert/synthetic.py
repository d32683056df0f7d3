"""A small, valid CT series written with pydicom, and a CTVolume built from it by hand.

Independent of the project's loader: the geometry comes from how we wrote the files.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from dicom_factory import ct_slice
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from deepcac2.pipeline.stage_values import CTVolume, Geometry, InstanceRef, ModelCard, Prediction

SPACING = (0.7, 0.7, 2.5)
ORIGIN = (-22.4, -30.1, -50.0)

CARD = ModelCard(
    name="deepcac2-test",
    version="1.2.3",
    weights_sha256="ab" * 32,
    license="MIT",
    training_data="synthetic",
)


def ct_datasets(
    n: int = 12, rows: int = 64, cols: int = 64, seed: int = 0, hot: np.ndarray | None = None
) -> list[Dataset]:
    """``n`` axial CT slices, bottom to top, with the Type 1/2 attributes of CT Image Storage.

    Noise in [-100, 100) HU; voxels of the optional (z, y, x) mask ``hot`` are 350 HU (calcium).
    """
    rng = np.random.default_rng(seed)
    study, series, frame = (generate_uid(entropy_srcs=[f"{kind}-{seed}"]) for kind in ("study", "series", "for"))
    out = []
    for k in range(n):
        pixels = rng.integers(-100, 100, (rows, cols)).astype(np.int16)
        if hot is not None:
            pixels[hot[k]] = 350
        ds = ct_slice(
            pixels,
            series_uid=series,
            study_uid=study,
            sop_uid=generate_uid(entropy_srcs=[f"sop-{seed}-{k}"]),
            position=(ORIGIN[0], ORIGIN[1], ORIGIN[2] + SPACING[2] * k),
            pixel_spacing=(SPACING[1], SPACING[0]),
            intercept=0,
            patient_id="100001",
            FrameOfReferenceUID=frame,
            PatientName="Test^Patient",
            PatientBirthDate="",
            PatientSex="O",
            StudyDate="19990102",
            StudyTime="101500",
            StudyID="1",
            AccessionNumber="",
            ReferringPhysicianName="",
            SeriesNumber=3,
            InstanceNumber=k + 1,
            AcquisitionNumber=1,
            Manufacturer="SIEMENS",
            ManufacturerModelName="Sensation 16",
            SliceThickness=SPACING[2],
            KVP=120,
            ConvolutionKernel="B30f",
            PositionReferenceIndicator="",
            RescaleType="HU",
        )
        out.append(ds)
    return out


def write_series(datasets: list[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        p = folder / f"{i:04d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def ct_volume(datasets: list[Dataset]) -> CTVolume:
    """A CTVolume as the loader would give it: HU in (z, y, x), header-only datasets."""
    hu = np.stack([ds.pixel_array.astype(np.int16) for ds in datasets])
    headers = []
    for ds in datasets:
        h = copy.deepcopy(ds)
        del h.PixelData
        headers.append(h)
    first = datasets[0]
    return CTVolume(
        hu=hu,
        geometry=Geometry(origin=ORIGIN, spacing=SPACING),
        series_uid=first.SeriesInstanceUID,
        study_uid=first.StudyInstanceUID,
        patient_id=first.PatientID,
        frame_of_reference_uid=first.FrameOfReferenceUID,
        slice_thickness=float(first.SliceThickness),
        kvp=float(first.KVP),
        instances=tuple(InstanceRef(ds.SOPClassUID, ds.SOPInstanceUID) for ds in datasets),
        headers=headers,
    )


def prediction(
    shape: tuple[int, int, int], *, calcium: bool = True, vessels: bool = True, aortic: bool = False
) -> Prediction:
    """A box heart, two calcium blobs (one LAD, one RCA) inside it, or none; ``aortic``: a calcified
    plaque outside the heart (a synthetic stand-in for ``Prediction.aortic``)."""
    heart = np.zeros(shape, dtype=bool)
    heart[2:10, 16:48, 16:48] = True
    cac = np.zeros(shape, dtype=bool)
    labels = np.zeros(shape, dtype=np.uint8) if vessels else None
    if calcium:
        cac[4:6, 20:23, 20:24] = True
        cac[7, 40:44, 30:33] = True
        if labels is not None:
            labels[4:6, 20:23, 20:24] = 2  # LAD
            labels[7, 40:44, 30:33] = 4  # RCA
    tac = None
    if aortic:
        tac = np.zeros(shape, dtype=bool)
        tac[3:6, 52:56, 10:14] = True
    return Prediction(heart=heart, cac=cac, card=CARD, vessels=labels, aortic=tac)


def scores(convention: str = "deepcac", *, calcium: bool = True, vessels: bool = True, mass: float | None = None):
    """Hand-filled Scores matching ``prediction``: two lesions (LAD, RCA), or none."""
    from deepcac2.pipeline.stage_values import Lesion, Scores, VesselScore

    params = {"dims": 2, "connectivity": 8, "kvp_adjusted": False, "note": convention}
    if not calcium:
        return Scores(convention, params, 0.0, 0.0, None if mass is None else 0.0, 0,
                      categories={"deepcac": "very low", "classic": "0", "cac_drs": "0"})  # fmt: skip
    lesions = (
        Lesion(
            1, "LAD" if vessels else None, 4, 5, 16.66, 412.0, 260.5, 11.76, 43.3312345678901, (-7.0, -15.0, -38.75)
        ),
        Lesion(2, "RCA" if vessels else None, 7, 7, 5.88, 190.0, 170.25, 14.7, 1.96, (-1.0, -1.0, -32.5)),
    )
    per_vessel = (
        {"LAD": VesselScore(43.3312345678901, 11.76, mass, 1), "RCA": VesselScore(1.96, 14.7, None, 1)}
        if vessels
        else {}
    )
    return Scores(
        convention, params, 45.2912345678901, 26.46, mass, 2, lesions=lesions, per_vessel=per_vessel,
        categories={"deepcac": "low", "classic": "11-100", "cac_drs": "1-99"},
    )  # fmt: skip
