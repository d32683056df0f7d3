"""Build and write the DICOM SEGs of one series (calcium; by vessel; a heart made here).

Each SEG shares Study and FrameOfReference with its source CT, references every source
instance, takes its geometry from the loader, and has derived (deterministic) UIDs and
dates: see ``docs/outputs.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dicomout import geometry_attributes as geometry
from deepcac2.pipeline.dicomout.content_key import ContentKey, content_key
from deepcac2.pipeline.dicomout.identity import (
    BODY_PART_EXAMINED,
    CAC_SEG,
    CONTENT_CREATOR_NAME,
    HEART_SEG,
    MANUFACTURER,
    VESSEL_SEG,
    ObjectKind,
    derived_series_number,
    model_name,
    series_description,
    software_versions,
)
from deepcac2.pipeline.dicomout.references import SegReference, anatomy_parameters, anatomy_reference
from deepcac2.pipeline.dicomout.reproducible import drop_broken_references, freeze, object_datetime, write_object
from deepcac2.pipeline.dicomout.source import require_frame_of_reference, source_headers
from deepcac2.pipeline.seg.content import SegmentSpec, segment_descriptions, segment_layout, segment_masks
from deepcac2.pipeline.seg.enum import SegEncoding, SegKind
from deepcac2.pipeline.stage_values import CTVolume, Prediction
from deepcac2.pipeline.uids import derive_uid, output_uid

#: each SEG kind's naming, numbering and UID prefix
OBJECT_KINDS: dict[SegKind, ObjectKind] = {SegKind.CAC: CAC_SEG, SegKind.VESSELS: VESSEL_SEG, SegKind.HEART: HEART_SEG}


def seg_uids(key: ContentKey, encoding: SegEncoding, kind: SegKind = SegKind.CAC) -> dict[str, UID]:
    """Series, SOP instance and dimension organization UIDs of a SEG: its kind and encoding, and the series' key."""
    enc = f"encoding={encoding.value}"
    prefix = OBJECT_KINDS[kind].uid_prefix
    return {
        what: derive_uid(f"{prefix}-{what}", *key.parts(), enc) for what in ("series", "sop", "dimension-organization")
    }


def _check_inputs(ct: CTVolume, prediction: Prediction) -> None:
    if len(ct.headers) != ct.shape[0]:
        raise DeepCACError(
            ErrorCode.E_SEG_WRITE,
            f"{ct.series_uid}: {len(ct.headers)} source headers for {ct.shape[0]} slices; the SEG needs one per slice",
        )
    if prediction.cac.shape != ct.shape:
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY, f"{ct.series_uid}: masks {prediction.cac.shape} do not match CT {ct.shape}"
        )
    h = ct.headers[0]
    if (int(h.Rows), int(h.Columns)) != ct.shape[1:]:
        raise DeepCACError(
            ErrorCode.E_SEG_WRITE, f"{ct.series_uid}: header size {h.Rows}x{h.Columns} != {ct.shape[1:]}"
        )


def occupied_slices(masks: list[np.ndarray]) -> slice:
    """The slices with any segment voxel; the first slice alone when all masks are empty."""
    per_slice = np.zeros(masks[0].shape[0], dtype=bool)
    for m in masks:
        per_slice |= m.any(axis=(1, 2))
    z = np.flatnonzero(per_slice)
    return slice(int(z[0]), int(z[-1]) + 1) if z.size else slice(0, 1)


def _pixel_array(
    masks: list[np.ndarray], layout: tuple[SegmentSpec, ...], encoding: SegEncoding, z: slice
) -> tuple[np.ndarray, hd.seg.SegmentationTypeValues]:
    if encoding is SegEncoding.BINARY:
        # segments-last *view* of a segments-first array: highdicom's overlap check sums
        # over the last axis, which is 5x faster when that axis is not the contiguous one
        stacked = np.stack([m[z] for m in masks], axis=0)
        return np.moveaxis(stacked, 0, -1), hd.seg.SegmentationTypeValues.BINARY
    labels = np.zeros(masks[0][z].shape, dtype=np.uint8)
    for spec, mask in zip(layout, masks, strict=True):  # segments never overlap: order does not matter
        labels[mask[z]] = spec.number
    return labels, hd.seg.SegmentationTypeValues.LABELMAP


def _apply_loader_geometry(seg: hd.seg.Segmentation, ct: CTVolume) -> None:
    """Write the loader's spacing, thickness, orientation and per-frame positions.

    highdicom swaps the pixel measures we pass for the source's when the pixel spacing
    agrees ("to account for small numerical differences"), which brings back the source's
    SliceThickness and SpacingBetweenSlices, negative ones included. Each frame's position
    is recomputed from the source slice it derives from.
    """
    shared = seg.SharedFunctionalGroupsSequence[0]
    shared.PixelMeasuresSequence = geometry.pixel_measures(ct)
    shared.PlaneOrientationSequence = geometry.plane_orientation(ct)
    slice_of = {str(h.SOPInstanceUID): k for k, h in enumerate(ct.headers)}
    positions = geometry.plane_positions(ct)
    for frame in seg.get("PerFrameFunctionalGroupsSequence", []):
        source = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        frame.PlanePositionSequence = positions[slice_of[str(source)]]


def _reference_every_source(seg: hd.seg.Segmentation, headers: list[Dataset], anatomy: SegReference | None) -> None:
    """List every source slice, in slice order, in SourceImageSequence and ReferencedSeriesSequence.

    highdicom's ``further_source_images`` does the same but looks up the IOD of each image
    in the standard tables (uncached), which cost more than the rest of the SEG. The
    TotalSegmentator SEG whose heart the model used is cited in ReferencedImageSequence
    (General Image module: "other images significantly related") and listed, as the Common
    Instance Reference module asks, in ReferencedSeriesSequence.
    """

    def reference(h: Dataset) -> Dataset:  # a new item per sequence: items are never shared
        ref = Dataset()
        ref.ReferencedSOPClassUID = h.SOPClassUID
        ref.ReferencedSOPInstanceUID = h.SOPInstanceUID
        return ref

    seg.SourceImageSequence = [reference(h) for h in headers]
    by_series: dict[str, list[Dataset]] = {}
    for h in headers:
        by_series.setdefault(str(h.SeriesInstanceUID), []).append(reference(h))
    if anatomy is not None:
        stub = anatomy.evidence(str(seg.StudyInstanceUID))
        seg.ReferencedImageSequence = [reference(stub)]
        by_series.setdefault(anatomy.series_uid, []).append(reference(stub))
    referenced = []
    for uid, refs in by_series.items():
        series = Dataset()
        series.SeriesInstanceUID = uid
        series.ReferencedInstanceSequence = refs
        referenced.append(series)
    seg.ReferencedSeriesSequence = referenced


def build_seg(
    ct: CTVolume,
    prediction: Prediction,
    *,
    kind: SegKind | str = SegKind.CAC,
    encoding: SegEncoding | str = SegEncoding.BINARY,
    toolkit_version: str = __version__,
    key: ContentKey | None = None,
    headers: list[Dataset] | None = None,
) -> hd.seg.Segmentation:
    """One SEG of ``prediction`` on ``ct``: its segments from ``content.segment_layout(kind)``.

    ``headers``: ``dicomout.source.source_headers(ct)`` when the caller made them already
    (one series' SEGs and SR share them); made here otherwise.

    Geometry (spacing, thickness, orientation, positions) is the loader's
    (``dicomout.geometry_attributes``). Empty frames are omitted; a segment with no voxels at all
    (zero calcium) is still described, with no frames, so segment numbers never shift.
    ``key``: the series' ``ContentKey`` (computed here when not given; ``convert_series``
    computes it once for all SEGs of a series).
    """
    kind, encoding = SegKind(kind), SegEncoding(encoding)
    _check_inputs(ct, prediction)
    require_frame_of_reference(ct)
    if headers is None:
        headers = source_headers(ct)  # named attributes only: no private element reaches highdicom
    card = prediction.card
    anatomy = anatomy_reference(prediction) if kind is not SegKind.HEART else None
    layout = segment_layout(kind, has_aortic=prediction.aortic is not None)
    masks = segment_masks(prediction, layout)
    # highdicom checks every voxel it is given: hand it only the slab with voxels; the
    # other slices are referenced afterwards (see _reference_every_source)
    z = occupied_slices(masks)
    pixels, seg_type = _pixel_array(masks, layout, encoding, z)
    uids = seg_uids(key or content_key(ct, prediction, toolkit_version), encoding, kind)
    prefix = OBJECT_KINDS[kind].uid_prefix
    tracking = {
        s.number: output_uid(f"{prefix}-tracking", ct.series_uid, card, str(s.number), toolkit_version=toolkit_version)
        for s in layout
    }
    source_number = headers[0].get("SeriesNumber")
    try:
        seg = hd.seg.Segmentation(
            source_images=headers[z],
            pixel_array=pixels,
            segmentation_type=seg_type,
            segment_descriptions=segment_descriptions(layout, card, tracking, anatomy_parameters(prediction)),
            series_instance_uid=uids["series"],
            series_number=derived_series_number(source_number, OBJECT_KINDS[kind].series_offset),
            sop_instance_uid=uids["sop"],
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=model_name(card),
            software_versions=software_versions(card, toolkit_version),
            device_serial_number=(card.weights_sha256 or "none")[:64],
            content_description=series_description(OBJECT_KINDS[kind], card, source_number),
            content_label=OBJECT_KINDS[kind].content_label,
            content_creator_name=CONTENT_CREATOR_NAME,
            series_description=series_description(OBJECT_KINDS[kind], card, source_number),
            pixel_measures=geometry.pixel_measures(ct),
            plane_orientation=geometry.plane_orientation(ct),
            plane_positions=geometry.plane_positions(ct, z),
            omit_empty_frames=True,
        )
    except (DeepCACError, MemoryError):  # keep their own codes (E_OUT_OF_MEMORY is retried)
        raise
    except Exception as exc:  # highdicom raises ValueError/TypeError on inconsistent sources
        raise DeepCACError(ErrorCode.E_SEG_WRITE, f"{ct.series_uid}: highdicom refused the SEG: {exc}") from exc
    seg.BodyPartExamined = BODY_PART_EXAMINED
    _apply_loader_geometry(seg, ct)
    _reference_every_source(seg, headers, anatomy)
    date, time = object_datetime(headers)
    freeze(seg, date, time, uids["dimension-organization"])
    drop_broken_references(seg)
    return seg


def write_seg(seg: hd.seg.Segmentation, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    return write_object(seg, path, ErrorCode.E_SEG_WRITE, "SEG")
