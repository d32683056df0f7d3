"""The anatomy SEG an output refers to: IDC's TotalSegmentator SEG is referenced, never copied."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import Prediction

#: the provider whose heart is IDC's own SEG (``pipeline/anatomy``)
IDC_TOTALSEGMENTATOR = "idc-totalsegmentator"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


@dataclass(frozen=True)
class SegReference:
    """A SEG instance in IDC that our objects cite (same study as the CT)."""

    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    provider: str
    version: str

    def evidence(self, study_uid: str) -> Dataset:
        """A header stub that highdicom's SR evidence and our references accept."""
        ds = Dataset()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = self.series_uid
        ds.SOPInstanceUID = self.sop_instance_uid
        ds.SOPClassUID = self.sop_class_uid
        return ds


def anatomy_reference(prediction: Prediction) -> SegReference | None:
    """The TotalSegmentator SEG the heart came from; None when the heart was made here."""
    anatomy = prediction.anatomy
    provenance = getattr(anatomy, "provenance", None)
    if provenance is None or provenance.provider != IDC_TOTALSEGMENTATOR:
        return None
    if not provenance.seg_series_uid or not provenance.seg_sop_instance_uid:
        raise DeepCACError(
            ErrorCode.E_SEG_WRITE,
            f"anatomy from {IDC_TOTALSEGMENTATOR} without its SEG's UIDs: the outputs could not cite it",
        )
    return SegReference(
        provenance.seg_series_uid,
        provenance.seg_sop_instance_uid,
        provenance.seg_sop_class_uid or SEG_SOP_CLASS,
        provenance.provider,
        provenance.version,
    )


def anatomy_parameters(prediction: Prediction) -> dict[str, str]:
    """Algorithm parameters naming the anatomy the model was given (SEG segments and SR groups)."""
    provenance = getattr(prediction.anatomy, "provenance", None)
    if provenance is None:
        return {}
    out = {"anatomy": f"{provenance.provider} {provenance.version}".strip()}
    ref = anatomy_reference(prediction)
    if ref is not None:
        out["anatomy_seg"] = ref.sop_instance_uid
    return out
