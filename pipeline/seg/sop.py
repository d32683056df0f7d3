"""Build and write the DICOM SEG of one series.

The SEG shares Study and FrameOfReference with its source CT, references every source
instance, and has derived (deterministic) UIDs and dates: see ``docs/outputs.md``.
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
from deepcac2.pipeline.convert.reproducible import drop_broken_references, freeze, source_datetime, write_atomic
from deepcac2.pipeline.seg.content import (
    SegmentSpec,
    labelmap_priority,
    segment_descriptions,
    segment_layout,
    segment_masks,
)
from deepcac2.pipeline.seg.enum import SegEncoding
from deepcac2.pipeline.types import CTVolume, ModelCard, Prediction
from deepcac2.pipeline.uids import output_uid

#: Our objects' SeriesNumber is source SeriesNumber x 100 + offset (CloudSegmentator's
#: pattern); 41 = SEG, 42 = SR, so they sort right after the source in viewers.
SEG_SERIES_OFFSET = 41
SR_SERIES_OFFSET = 42
#: Written as ContentCreatorName of every SEG and SR (a PN with one component).
CONTENT_CREATOR_NAME = "DeepCAC2^Automatic"
MANUFACTURER = "deepcac2 project"

_IS_MAX = 2**31 - 1


def derived_series_number(source_series_number: object, offset: int) -> int:
    """``source x 100 + offset``; a missing source number counts as 0, huge ones wrap to stay a valid IS."""
    try:
        src = int(str(source_series_number)) if source_series_number not in (None, "") else 0
    except ValueError:
        src = 0
    number = abs(src) * 100 + offset
    return number if number <= _IS_MAX else (abs(src) % 10_000_000) * 100 + offset


def seg_uids(
    ct: CTVolume, card: ModelCard, encoding: SegEncoding, toolkit_version: str = __version__
) -> dict[str, UID]:
    """Series, SOP instance and dimension organization UIDs of the SEG, derived from its inputs."""
    enc = f"encoding={encoding.value}"
    return {
        kind: output_uid(f"seg-{kind}", ct.series_uid, card, enc, toolkit_version=toolkit_version)
        for kind in ("series", "sop", "dimension-organization")
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
    by_number = {spec.number: m for spec, m in zip(layout, masks, strict=True)}
    for number in labelmap_priority(layout):
        labels[by_number[number][z]] = number
    return labels, hd.seg.SegmentationTypeValues.LABELMAP


def _reference_every_source(seg: hd.seg.Segmentation, ct: CTVolume) -> None:
    """List every source slice, in slice order, in SourceImageSequence and ReferencedSeriesSequence.

    highdicom's ``further_source_images`` does the same but looks up the IOD of each image
    in the standard tables (uncached), which cost more than the rest of the SEG.
    """

    def reference(h: Dataset) -> Dataset:  # a new item per sequence: items are never shared
        ref = Dataset()
        ref.ReferencedSOPClassUID = h.SOPClassUID
        ref.ReferencedSOPInstanceUID = h.SOPInstanceUID
        return ref

    seg.SourceImageSequence = [reference(h) for h in ct.headers]
    by_series: dict[str, list[Dataset]] = {}
    for h in ct.headers:
        by_series.setdefault(str(h.SeriesInstanceUID), []).append(reference(h))
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
    encoding: SegEncoding | str = SegEncoding.BINARY,
    toolkit_version: str = __version__,
) -> hd.seg.Segmentation:
    """The SEG of ``prediction`` on ``ct`` (segments from ``content.segment_layout``).

    Empty frames are omitted; a segment with no voxels at all (zero calcium) is still
    described, with no frames, so segment numbers never shift.
    """
    encoding = SegEncoding(encoding)
    _check_inputs(ct, prediction)
    card = prediction.card
    layout = segment_layout(prediction.vessels is not None)
    masks = segment_masks(prediction, layout)
    # highdicom checks every voxel it is given: hand it only the slab with voxels; the
    # other slices are referenced afterwards (see _reference_every_source)
    z = occupied_slices(masks)
    pixels, seg_type = _pixel_array(masks, layout, encoding, z)
    uids = seg_uids(ct, card, encoding, toolkit_version)
    tracking = {
        s.number: output_uid("seg-tracking", ct.series_uid, card, str(s.number), toolkit_version=toolkit_version)
        for s in layout
    }
    source_number = ct.headers[0].get("SeriesNumber")
    try:
        seg = hd.seg.Segmentation(
            source_images=ct.headers[z],
            pixel_array=pixels,
            segmentation_type=seg_type,
            segment_descriptions=segment_descriptions(layout, card, tracking),
            series_instance_uid=uids["series"],
            series_number=derived_series_number(source_number, SEG_SERIES_OFFSET),
            sop_instance_uid=uids["sop"],
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=card.name[:64],
            software_versions=[f"deepcac2 {toolkit_version}", f"{card.name} {card.version}"[:64]],
            device_serial_number=(card.weights_sha256 or "none")[:64],
            content_description=f"Heart and coronary calcium, {card.name} {card.version}"[:64],
            content_label="CAC",
            content_creator_name=CONTENT_CREATOR_NAME,
            series_description=f"CAC SEG {card.name} {card.version}"[:64],
            omit_empty_frames=True,
        )
    except (DeepCACError, MemoryError):  # keep their own codes (E_OUT_OF_MEMORY is retried)
        raise
    except Exception as exc:  # highdicom raises ValueError/TypeError on inconsistent sources
        raise DeepCACError(ErrorCode.E_SEG_WRITE, f"{ct.series_uid}: highdicom refused the SEG: {exc}") from exc
    _reference_every_source(seg, ct)
    date, time = source_datetime(ct.headers)
    freeze(seg, date, time, uids["dimension-organization"])
    drop_broken_references(seg)
    return seg


def write_seg(seg: hd.seg.Segmentation, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    try:
        return write_atomic(path, lambda tmp: seg.save_as(tmp, enforce_file_format=True))
    except OSError as exc:
        raise DeepCACError(ErrorCode.E_SEG_WRITE, f"cannot write SEG to {path}: {exc}") from exc
