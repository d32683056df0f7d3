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
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dicomout.identity import (
    BODY_PART_EXAMINED,
    MANUFACTURER,
    SR,
    algorithm_name,
    derived_series_number,
    model_name,
    series_description,
    software_versions,
)
from deepcac2.pipeline.dicomout.references import SegReference
from deepcac2.pipeline.dicomout.reproducible import drop_broken_references, freeze, object_datetime, write_object
from deepcac2.pipeline.dicomout.source import require_frame_of_reference, source_headers
from deepcac2.pipeline.seg.enum import SegKind
from deepcac2.pipeline.sr.content import GroupSpec
from deepcac2.pipeline.sr.enum import declare_private_scheme
from deepcac2.pipeline.sr.library import attach, image_library
from deepcac2.pipeline.stage_values import CTVolume, ModelCard
from deepcac2.pipeline.uids import derive_uid, device_uid, output_uid

PROCEDURE_REPORTED = codes.LN.CTUnspecifiedBodyRegion  # CID 100; NLST is low-dose chest CT, not cardiac CT
#: the Finding Site concept name as IDC's qualitative_measurements view reads it (SRT only; see qa/idc_views.py)
FINDING_SITE_SRT = ("G-C0E3", "SRT", "Finding Site")


def finding_sites_as_srt(items: Any) -> None:
    """Write every Finding Site concept name (SCT 363698007, highdicom's) as SRT G-C0E3, recursively.

    The same concept (PS3.16 maps the retired SRT code to SCT); IDC's quantitative view reads both,
    its qualitative view only SRT G-C0E3, so with SCT every risk category would leave IDC's tables.
    """
    for item in items or []:
        names = item.get("ConceptNameCodeSequence")
        if names and (names[0].CodeValue, names[0].CodingSchemeDesignator) == ("363698007", "SCT"):
            names[0].CodeValue, names[0].CodingSchemeDesignator, names[0].CodeMeaning = FINDING_SITE_SRT
        finding_sites_as_srt(item.get("ContentSequence"))


def groups_digest(groups: list[GroupSpec]) -> str:
    """SHA-256 of everything the groups report: conventions and parameters, regions, segments, codes and values.

    Part of the SR's UIDs, so an SR that reports anything different never reuses a UID.
    """

    def code(c: Any) -> str:
        return f"{c.scheme_designator}:{c.value}" if c is not None else "none"

    lines = [
        "|".join([
            str(g.number), g.convention, g.params_json, g.region, g.seg_kind.value, str(g.segment_number),
            code(g.finding), code(g.finding_site), ",".join(f"{b:g}" for b in g.hu_bands),
            *(f"{code(m.quantity)}={m.value!r}{code(m.unit)}{code(m.method)}" for m in g.measurements),
            *(f"{k}:{code(n)}={code(v)}" for k, (n, v) in sorted(g.categories.items())),
        ])
        for g in groups
    ]  # fmt: skip
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def sr_uids(
    ct: CTVolume,
    card: ModelCard,
    seg_sop_uids: list[str],
    groups: list[GroupSpec],
    toolkit_version: str = __version__,
    anatomy: str = "none",
) -> dict[str, UID]:
    """Series and SOP instance UIDs of the SR.

    Its SEGs' UIDs carry the series' whole ``ContentKey`` (input fingerprint, model, anatomy,
    masks, toolkit); the groups' digest adds the conventions and every reported value.
    """
    extra = (
        f"seg={','.join(sorted(seg_sop_uids))}",
        f"groups={groups_digest(groups)}",
        f"anatomy={anatomy}",
        f"model={card.name}|{card.version}|{card.weights_sha256 or 'noweights'}",
        f"toolkit={toolkit_version}",
    )
    return {kind: derive_uid(f"sr-{kind}", ct.series_uid, *extra) for kind in ("series", "sop")}


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
    cited = "none" if anatomy is None else f"{anatomy.provider}|{anatomy.version}|{anatomy.sop_instance_uid}"
    uids = sr_uids(ct, card, [str(s.SOPInstanceUID) for s in segs.values()], groups, toolkit_version, cited)
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
    # General Equipment (as the SEG): which model and software made it; highdicom takes neither
    sr.ManufacturerModelName = model_name(card)
    sr.SoftwareVersions = software_versions(card, toolkit_version)
    sr.BodyPartExamined = BODY_PART_EXAMINED  # Type 3, not in the SR series module: dciodvfy warns, IDC indexes it
    finding_sites_as_srt(sr.ContentSequence)
    attach(sr, image_library(ct, headers))
    declare_private_scheme(sr)
    date, time = object_datetime(headers)
    freeze(sr, date, time)
    drop_broken_references(sr)
    return sr


def write_sr(sr: hd.sr.Comprehensive3DSR, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    return write_object(sr, path, ErrorCode.E_SR_WRITE, "SR")
