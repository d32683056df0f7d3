"""Build and write the TID 1500 measurement report (Comprehensive 3D SR) of one series.

One SR per source series: an image library of all source images, the model as device
observer, and one volumetric ROI group (TID 1411) per ``content.GroupSpec`` that
references its SEG segment and the source series. UIDs and dates are derived, so a
rerun writes the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dicomout.identity import (
    MANUFACTURER,
    SR,
    algorithm_name,
    derived_series_number,
    series_description,
)
from deepcac2.pipeline.dicomout.references import SegReference
from deepcac2.pipeline.dicomout.reproducible import drop_broken_references, freeze, source_datetime, write_atomic
from deepcac2.pipeline.dicomout.source import require_frame_of_reference, source_headers
from deepcac2.pipeline.seg.enum import SegKind
from deepcac2.pipeline.sr.content import GroupSpec
from deepcac2.pipeline.sr.enum import declare_private_scheme
from deepcac2.pipeline.sr.library import attach, image_library
from deepcac2.pipeline.types import CTVolume, ModelCard
from deepcac2.pipeline.uids import device_uid, output_uid

PROCEDURE_REPORTED = codes.LN.CTUnspecifiedBodyRegion  # CID 100; NLST is low-dose chest CT, not cardiac CT


def groups_digest(groups: list[GroupSpec]) -> str:
    """A short hash of the conventions and their parameters: SRs of different configurations get different UIDs."""
    text = "|".join(f"{g.convention}:{g.params_json}" for g in groups if g.region == "all")
    if any(g.region == "aortic" for g in groups):
        text += "|aortic"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sr_uids(
    ct: CTVolume, card: ModelCard, seg_sop_uids: list[str], groups: list[GroupSpec], toolkit_version: str = __version__
) -> dict[str, UID]:
    extra = (f"seg={','.join(sorted(seg_sop_uids))}", f"conventions={groups_digest(groups)}")
    return {
        kind: output_uid(f"sr-{kind}", ct.series_uid, card, *extra, toolkit_version=toolkit_version)
        for kind in ("series", "sop")
    }


def group_tracking_uid(series_uid: str, card: ModelCard, g: GroupSpec, toolkit_version: str = __version__) -> UID:
    """Tracking Unique Identifier of a group: the same finding keeps its UID across reruns."""
    return output_uid("sr-tracking", series_uid, card, g.convention, g.region, toolkit_version=toolkit_version)


def _observer(card: ModelCard) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(card),
        name=card.name[:64],
        manufacturer_name=MANUFACTURER,
        model_name=card.model_id[:64],
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )


def _group(
    g: GroupSpec, ct: CTVolume, seg: Dataset, card: ModelCard, toolkit_version: str, anatomy: list[str]
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    tracking = hd.sr.TrackingIdentifier(
        uid=group_tracking_uid(ct.series_uid, card, g, toolkit_version),
        identifier=g.tracking_id,
    )
    algorithm = hd.sr.AlgorithmIdentification(
        name=algorithm_name(card), version=card.version, parameters=[*g.algorithm_parameters, *anatomy]
    )
    measurements = [
        hd.sr.Measurement(name=m.quantity, value=m.value, unit=m.unit, method=m.method, algorithm_id=algorithm)
        for m in g.measurements
    ]
    evaluations = [hd.sr.QualitativeEvaluation(name=n, value=v) for n, v in g.categories.values()]
    segment = hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        segment_number=g.segment_number,
        source_series=hd.sr.SourceSeriesForSegmentation(ct.series_uid),
    )
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_segment=segment,
        finding_type=g.finding,
        finding_sites=[hd.sr.FindingSite(g.finding_site)],
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations or None,
    )


def build_sr(
    ct: CTVolume,
    segs: dict[SegKind, Dataset],
    groups: list[GroupSpec],
    card: ModelCard,
    *,
    anatomy: SegReference | None = None,
    anatomy_parameters: dict[str, str] | None = None,
    toolkit_version: str = __version__,
    headers: list[Dataset] | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 report of ``groups``, each measuring a segment of ``segs[group.seg_kind]`` on ``ct``.

    ``anatomy``: the TotalSegmentator SEG whose heart the model used; it is listed in the
    evidence (same study) and named in every group's algorithm parameters.
    """
    if not ct.headers:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: no source headers for the image library")
    missing = sorted({g.seg_kind.value for g in groups} - {k.value for k in segs})
    if missing:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: groups measure SEGs {missing} that were not given")
    require_frame_of_reference(ct)
    if headers is None:
        headers = source_headers(ct)  # named attributes only: no private element reaches highdicom
    uids = sr_uids(ct, card, [str(s.SOPInstanceUID) for s in segs.values()], groups, toolkit_version)
    params = [f"{k}={v}" for k, v in sorted((anatomy_parameters or {}).items())]
    evidence = [*headers, *segs.values()]
    if anatomy is not None:
        evidence.append(anatomy.evidence(str(headers[0].StudyInstanceUID)))
    source_number = headers[0].get("SeriesNumber")
    try:
        report = hd.sr.MeasurementReport(
            observation_context=_observer(card),
            procedure_reported=PROCEDURE_REPORTED,
            imaging_measurements=[_group(g, ct, segs[g.seg_kind], card, toolkit_version, params) for g in groups],
            referenced_images=None,  # attached below, built fast (see library.py)
        )
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence,
            content=report,
            series_instance_uid=uids["series"],
            series_number=derived_series_number(source_number, SR.series_offset),
            sop_instance_uid=uids["sop"],
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            is_final=True,
            series_description=series_description(SR, card, source_number),
        )
    except (DeepCACError, MemoryError):  # keep their own codes (E_OUT_OF_MEMORY is retried)
        raise
    except Exception as exc:  # highdicom validates content items with ValueError/TypeError
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: highdicom refused the SR: {exc}") from exc
    attach(sr, image_library(ct, headers))
    declare_private_scheme(sr)
    date, time = source_datetime(headers)
    freeze(sr, date, time)
    drop_broken_references(sr)
    return sr


def write_sr(sr: hd.sr.Comprehensive3DSR, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    try:
        return write_atomic(path, lambda tmp: sr.save_as(tmp, enforce_file_format=True))
    except OSError as exc:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"cannot write SR to {path}: {exc}") from exc
