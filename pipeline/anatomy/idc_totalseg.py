"""Provider ``idc-totalsegmentator``: the anatomy of a CT from its TotalSegmentator SEG.

The cohort gives each series its candidate SEGs (``SeriesRef.params["totalseg"]``, from
the cohort column ``totalseg_candidate_series``: IDC's index by the FACTS §6 rule, or SEG
files of a local folder linked by ReferencedSeriesSequence). For each candidate in order:

1. read the SEG's header by byte range (local file or anonymous S3);
2. if its ReferencedSeriesSequence does not name the CT series, note it and try the next;
3. check that the object holds every announced frame (truncated -> E_ANATOMY_READ) and
   that every frame sits on a CT slice with the CT's orientation and pixel grid
   (E_ANATOMY_GEOMETRY);
4. find the segments by SegmentedPropertyType code: the five heart classes and the aorta
   must be there (E_ANATOMY_SEGMENTS); the pulmonary artery and the other structures are
   taken when present;
5. read only those segments' frames (bytes held in the worker's bounded cache): the heart's
   whole, then the others over the cardiac slab (``SLAB_BELOW_MM`` below the heart to
   ``SLAB_ABOVE_MM`` above it: the thoracic aorta with its arch, not the abdominal aorta);
   the ribs only within ``NEAR_HEART_MM`` of the heart's slices; elsewhere those masks are
   empty.

No candidate referencing the CT is E_ANATOMY_MISMATCH; ``auto`` then falls back to
``classical`` with a note in ``cac_series.loader_notes``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.totalseg import codes, seg_reader
from deepcac2.pipeline.totalseg.byte_ranges import ByteSource, LocalFile, s3_series_object

NAME = "idc-totalsegmentator"
#: SeriesRef.params key holding the candidate SEGs (a list of dicts, the cohort's column)
PARAM = "totalseg"
#: the heart parts and the aorta must be in the SEG; the rest is taken when present
MUST_HAVE = ("heart_myocardium", "heart_atrium_left", "heart_ventricle_left", "heart_atrium_right",
             "heart_ventricle_right", "aorta")  # fmt: skip

#: the masks besides the heart are read over the cardiac slab only: from this far below the
#: heart (the thoracic aorta reaches the diaphragm) to this far above it (the aortic arch)
SLAB_BELOW_MM, SLAB_ABOVE_MM = 30.0, 100.0
#: structures read only within this distance of the heart's slices (not the whole slab): the
#: ribs serve the CAC rules, which look at calcium near the heart (shell 10 mm, cage 15 mm)
NEAR_HEART_MM: dict[str, float] = {"ribs": 25.0}
#: the heart's parts, always in ``Anatomy.structures`` (they are read for the heart anyway)
HEART_PARTS = ("myocardium", "atrium_left", "atrium_right", "ventricle_left", "ventricle_right")

log = logging.getLogger(__name__)


def candidates_of(ref: stage_values.SeriesRef) -> list[dict[str, Any]]:
    return [c for c in (ref.params.get(PARAM) or []) if c and (c.get("location") or c.get("series_aws_url"))]


def open_source(candidate: dict[str, Any], cache: Any = None) -> ByteSource:
    """A local SEG file, or the SEG object in IDC's bucket (the endpoint and bucket of the worker's fetch source)."""
    location = candidate.get("location")
    if location and "://" not in str(location):
        return LocalFile(location)
    url = candidate.get("series_aws_url") or location
    source = getattr(cache, "source", None)
    endpoint = getattr(source, "endpoint_url", None)
    # the worker's source may override the bucket, as it does for the CT
    return s3_series_object(str(url), endpoint, candidate.get("crdc_series_uuid"), getattr(source, "bucket", None))


@contextlib.contextmanager
def held(cache: Any, key: str, nbytes: int) -> Iterator[None]:
    """Count ``nbytes`` against the worker cache's cap while they are held (when the cache can)."""
    hold = getattr(cache, "hold", None)
    if hold is None:
        yield
        return
    with hold(key, nbytes):
        yield


def _wanted(header: seg_reader.SegHeader, structures: tuple[str, ...]) -> tuple[dict[str, list[int]], list[str]]:
    """Segment numbers per mask name, and the notes on what is missing."""
    notes = []
    present = {int(n) for n in np.unique(header.frame_segment)}
    missing = [c for c in MUST_HAVE if not set(seg_reader.segment_numbers(header, codes.codes_of((c,)))) & present]
    if missing:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_SEGMENTS,
            f"SEG {header.series_uid} has no (or empty) segment(s) {', '.join(missing)}",
            seg=header.series_uid,
            missing=",".join(missing),
        )
    wanted = {
        name: seg_reader.segment_numbers(header, codes.codes_of(classes)) for name, classes in codes.REQUIRED.items()
    }
    if not set(wanted["pulmonary_artery"]) & present:
        notes.append(f"anatomy {NAME}: SEG {header.series_uid} has no pulmonary artery (empty mask)")
    for name in (*HEART_PARTS, *structures):
        numbers = seg_reader.segment_numbers(header, codes.codes_of(codes.STRUCTURE_CLASSES[name]))
        if set(numbers) & present:
            wanted[name] = numbers
    return wanted, notes


def slab_of(name: str, heart: tuple[int, int], step_mm: float) -> tuple[int, int]:
    """The CT slices (first, last; may run past the volume) over which mask ``name`` is read."""
    if name in NEAR_HEART_MM:
        m = int(round(NEAR_HEART_MM[name] / step_mm))
        return heart[0] - m, heart[1] + m
    return heart[0] - int(round(SLAB_BELOW_MM / step_mm)), heart[1] + int(round(SLAB_ABOVE_MM / step_mm))


def _slabs(rest: dict[str, list[int]], heart: tuple[int, int], step_mm: float):
    """The masks grouped by the slab they are read over (one read per slab)."""
    groups: dict[tuple[int, int], list[str]] = {}
    for name in rest:
        groups.setdefault(slab_of(name, heart, step_mm), []).append(name)
    return [(names, keep) for keep, names in groups.items()]


def anatomy_from_seg(
    source: ByteSource,
    ct: stage_values.CTVolume,
    *,
    structures: tuple[str, ...] = codes.DEFAULT_STRUCTURES,
    cache: Any = None,
    header: seg_reader.SegHeader | None = None,
) -> Anatomy:
    """The anatomy of ``ct`` from one SEG (its reference already checked, or checked here)."""
    header = header or seg_reader.read_header(source)
    seg_reader.check_reference(header, ct.series_uid)
    seg_reader.check_size(source, header)
    slices = seg_reader.frame_slices(header, ct.geometry, ct.shape)
    wanted, notes = _wanted(header, structures)
    heart_names = ("heart", *(n for n in HEART_PARTS if n in wanted))
    first = {n: wanted[n] for n in heart_names}
    rest = {n: v for n, v in wanted.items() if n not in first}
    frame_bytes = header.frame_bits // 8 + 1
    with held(
        cache, f"seg-{header.series_uid}", int(np.isin(header.frame_segment, wanted["heart"]).sum()) * frame_bytes
    ):
        masks = seg_reader.read_masks(source, header, slices, ct.shape, first)
    # the rest only over the cardiac slab: the thoracic aorta and arch, not the abdomen; the
    # ribs only near the heart
    ks = np.flatnonzero(masks["heart"].any(axis=(1, 2)))
    for names, keep in _slabs(rest, (int(ks[0]), int(ks[-1])), ct.geometry.spacing[2]):
        in_slab = (slices >= keep[0]) & (slices <= keep[1])
        count = int((np.isin(header.frame_segment, sorted({n for k in names for n in rest[k]})) & in_slab).sum())
        with held(cache, f"seg-{header.series_uid}", count * frame_bytes):
            masks.update(
                seg_reader.read_masks(source, header, slices, ct.shape, {k: rest[k] for k in names}, keep=keep)
            )
    log.debug("%s: read %d of %d bytes of %s", NAME, source.bytes_read, source.size(), source.name)
    heart, aorta, pa = masks.pop("heart"), masks.pop("aorta"), masks.pop("pulmonary_artery")
    return Anatomy(
        heart=heart,
        aorta=aorta,
        pulmonary_artery=pa,
        structures=masks,
        provenance=AnatomyProvenance(
            provider=NAME,
            version=header.algorithm or codes.TOTALSEG_VERSION,
            seg_series_uid=header.series_uid,
            seg_sop_instance_uid=header.sop_instance_uid,
            seg_sop_class_uid=header.sop_class_uid,
        ),
        notes=tuple(notes),
    )


class TotalSegmentatorAnatomy:
    """Heart (five classes), aorta, pulmonary artery and thoracic structures from IDC's TotalSegmentator SEG."""

    name = NAME

    def __init__(self, structures: tuple[str, ...] = codes.DEFAULT_STRUCTURES) -> None:
        self.structures = structures

    def covers(self, ref: stage_values.SeriesRef) -> bool:
        return bool(candidates_of(ref))

    def anatomy(self, ref: stage_values.SeriesRef, ct: stage_values.CTVolume, *, cache: Any = None) -> Anatomy:
        candidates = candidates_of(ref)
        if not candidates:
            raise DeepCACError(ErrorCode.E_ANATOMY_UNAVAILABLE, f"series {ref.series_uid} has no TotalSegmentator SEG")
        skipped: list[str] = []
        for candidate in candidates:
            source = open_source(candidate, cache)
            header = seg_reader.read_header(source)
            try:
                seg_reader.check_reference(header, ct.series_uid)
            except DeepCACError as exc:
                skipped.append(f"anatomy {NAME}: candidate SEG {header.series_uid} skipped ({exc.message})")
                continue
            anatomy = anatomy_from_seg(source, ct, structures=self.structures, cache=cache, header=header)
            anatomy.notes = (*skipped, *anatomy.notes)
            return anatomy
        raise DeepCACError(
            ErrorCode.E_ANATOMY_MISMATCH,
            f"none of the {len(candidates)} candidate SEG(s) references series {ct.series_uid}",
            series=ct.series_uid,
        )


def build() -> TotalSegmentatorAnatomy:
    """Entry-point factory (group ``deepcac2.anatomy``)."""
    return TotalSegmentatorAnatomy()
