"""Stand-in stages for the ``scale`` benchmark: the real run's bookkeeping at NLST size, without a model.

Each series goes through the real Dask tasks (load, inference, finish) with trivial bodies:
the finish step returns the realistic rows of ``standin_rows`` and writes two tiny DICOM
objects into the run's ``dicom/<SeriesInstanceUID>/`` (a SEG and an SR of the right SOP
classes and identifiers, header only: no pixel data, no content tree, so the checks that
parse their content fail on them and the benchmark says so). About 2 % of the series fail
at load (E_NO_IMAGES), chosen by their uid. Everything is a pure function of the uid.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.tasks import Stages
from deepcac2.pipeline.stage_values import SeriesRef

FAILED_EVERY = 50
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR, as the real SR


def fails(series_uid: str) -> bool:
    """Whether the stand-in load fails for this series (about 1 in ``FAILED_EVERY``)."""
    return int(hashlib.sha256(series_uid.encode()).hexdigest()[:8], 16) % FAILED_EVERY == 0


def fetch_load(ref: SeriesRef, cache: Any) -> dict[str, Any]:
    if fails(ref.series_uid):
        raise DeepCACError(ErrorCode.E_NO_IMAGES, f"stand-in: no images for {ref.series_uid}")
    return {"uid": ref.series_uid}


def anatomy(ref: SeriesRef, loaded: Any, name: str, cache: Any) -> None:
    return None


def infer(model: Any, loaded: Any, anatomy: Any) -> None:
    return None


def write_object(path: Path, sop_class: str, modality: str, sop_uid: str, series_uid: str, ref: SeriesRef) -> None:
    """A header-only DICOM file: what the release needs to place it (layout.read_object) and QA to classify it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, sop_uid, modality
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = ref.patient_id, f"{ref.series_uid}.0", series_uid
    source = Dataset()
    source.SeriesInstanceUID = ref.series_uid
    ds.ReferencedSeriesSequence = [source]  # QA finds the series a SEG belongs to here
    tmp = path.with_name(f".{path.name}.tmp")  # the run sweeps a half-written one
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)


def finish(
    ref: SeriesRef, loaded: Any, predicted: Any, out_dir: Path, conventions: tuple[str, ...]
) -> dict[str, list[dict[str, Any]]]:
    from deepcac2.pipeline.dev.standin_rows import object_uids, series_rows

    uids = object_uids(ref.series_uid)
    folder = Path(out_dir) / ref.series_uid
    folder.mkdir(parents=True, exist_ok=True)
    write_object(folder / "seg.dcm", SEG_CLASS, "SEG", uids["seg"], uids["seg_series"], ref)
    write_object(folder / "sr.dcm", SR_CLASS, "SR", uids["sr"], uids["sr_series"], ref)
    return series_rows(ref.series_uid, str(ref.patient_id), int(ref.params.get("study_year", 0)))


def load_model(spec: object) -> object:
    return object()


STAGES = Stages(
    fetch_load=fetch_load, anatomy=anatomy, infer=infer, finish=finish, load_model=load_model, warm=("pydicom",)
)
