"""Read a TotalSegmentator DICOM SEG: the header first, then only the frames of the wanted segments.

IDC's SEGs are uncompressed BINARY (1 bit per pixel, frames back to back, empty frames
skipped), one segment per class, 85-100 MB at 512x512 and 104 classes. The per-frame
functional groups say which segment and which position each frame holds, so after the
header (about 2% of the object) only the wanted frames are read, by byte range. Frames
of consecutive segments are contiguous, so the reads merge into a few large ranges.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pydicom

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.totalseg.byte_ranges import ByteSource
from deepcac2.pipeline.totalseg.codes import SegmentCode

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
#: how far (in voxels) a frame may sit from a CT slice and still be that slice
POSITION_TOLERANCE = 0.05
#: how far two direction cosines may differ
ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SegHeader:
    """What the reader needs from a SEG's header."""

    series_uid: str
    series_description: str
    sop_instance_uid: str
    sop_class_uid: str
    referenced_series: tuple[str, ...]
    #: segment number -> property type code
    segments: dict[int, SegmentCode]
    #: per frame: its segment number, and its ImagePositionPatient (LPS mm)
    frame_segment: np.ndarray
    frame_position: np.ndarray
    #: ImageOrientationPatient (row then column direction cosines) and PixelSpacing (row, column spacing)
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    #: byte offset and length of the PixelData value in the object
    pixel_offset: int
    pixel_length: int
    algorithm: str

    @property
    def frame_bits(self) -> int:
        return self.rows * self.columns


def _read_error(source: ByteSource, why: str) -> DeepCACError:
    return DeepCACError(ErrorCode.E_ANATOMY_READ, f"{source.name}: {why}")


def _functional(frame, shared, sequence: str, attribute: str):  # noqa: ANN001, ANN202 - pydicom datasets
    """A functional group attribute: per-frame when there, else shared."""
    for group in (frame, shared):
        if group is not None and sequence in group:
            return getattr(group[sequence].value[0], attribute)
    return None


#: the PixelData element header in Explicit VR Little Endian (tag, VR OB/OW, two reserved bytes)
_PIXEL_MARKERS = (b"\xe0\x7f\x10\x00OB\x00\x00", b"\xe0\x7f\x10\x00OW\x00\x00")
_PER_FRAME_TAG = b"\x00\x52\x30\x92SQ\x00\x00"
#: per-frame values found directly in the raw bytes (Explicit VR LE): segment number (US) and DS strings
_SEGMENT_NUMBER = re.compile(rb"\x62\x00\x0b\x00US\x02\x00(..)", re.DOTALL)
_DS = {
    name: re.compile(re.escape(tag) + rb"DS(..)", re.DOTALL)
    for name, tag in (("position", b"\x20\x00\x32\x00"), ("orientation", b"\x20\x00\x37\x00"),
                      ("spacing", b"\x28\x00\x30\x00"))
}  # fmt: skip
#: the top-level attributes the reader uses (pydicom skips the rest, e.g. 150 referenced instances)
HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "SeriesDescription", "SegmentationType",
    "BitsAllocated", "NumberOfFrames", "Rows", "Columns", "SegmentSequence", "ReferencedSeriesSequence",
    "SharedFunctionalGroupsSequence",
]  # fmt: skip
#: the header is read in chunks from this size up, doubling, until the PixelData element shows
FIRST_CHUNK = 1 << 16
MAX_HEADER = 256 << 20


_NUMBER_OF_FRAMES = re.compile(rb"\x28\x00\x08\x00IS(..)", re.DOTALL)


def _header_estimate(first: bytes) -> int | None:
    """Where the pixel data should start, from NumberOfFrames and the stride of the first per-frame items."""
    m = _NUMBER_OF_FRAMES.search(first)
    hits = [h.start() for h in _SEGMENT_NUMBER.finditer(first, first.find(_PER_FRAME_TAG) + 1)][:2]
    if m is None or len(hits) < 2:
        return None
    n = int(first[m.end() : m.end() + int.from_bytes(m.group(1), "little")].decode("ascii").strip() or 0)
    return hits[0] + (n + 1) * (hits[1] - hits[0]) + 4096


def _header_bytes(source: ByteSource) -> tuple[bytes, int]:
    """The bytes before the pixel data, and where the PixelData element starts.

    The first chunk tells the frame count and the size of a per-frame item, so the rest
    of the header is usually fetched in one more read of about the right length.
    """
    size = source.size()
    buf, chunk = b"", FIRST_CHUNK
    while True:
        if len(buf) == FIRST_CHUNK and (estimate := _header_estimate(buf)) is not None and estimate > len(buf):
            chunk = estimate - len(buf)
        got = source.read(len(buf), min(chunk, size - len(buf))) if len(buf) < size else b""
        lo = max(len(buf) - 8, 0)
        buf += got
        hits = [i for i in (buf.find(m, lo) for m in _PIXEL_MARKERS) if i >= 0]
        if hits:
            return buf, min(hits)
        if not got or len(buf) >= min(size, MAX_HEADER):
            raise _read_error(source, "no PixelData element: truncated, or not a SEG in Explicit VR Little Endian")
        chunk *= 2


def _ds_strings(pattern: re.Pattern[bytes], raw: bytes) -> list[bytes]:
    """The raw DS values (backslash-separated ASCII) of every element the pattern finds."""
    out = []
    for m in pattern.finditer(raw):
        n = int.from_bytes(m.group(1), "little")
        out.append(raw[m.end() : m.end() + n].strip(b" \x00"))
    return out


def _distinct(strings: list[bytes]) -> list[list[float]]:
    """The distinct values among raw DS strings, parsed (frames repeat the same orientation and spacing)."""
    return [[float(v) for v in x.split(b"\\")] for x in dict.fromkeys(strings)]


def _frame_values(raw: bytes, n: int) -> tuple[np.ndarray, np.ndarray, list[list[float]], list[list[float]]] | None:
    """Segment numbers and positions of the ``n`` frames from the per-frame sequence's bytes, or None
    when the bytes do not hold exactly one of each per frame (then pydicom parses them)."""
    numbers = np.frombuffer(b"".join(m.group(1) for m in _SEGMENT_NUMBER.finditer(raw)), dtype="<u2")
    positions = _ds_strings(_DS["position"], raw)
    if len(numbers) != n or len(positions) != n:
        return None
    values = b"\\".join(positions).split(b"\\")  # parsed in one vectorised conversion
    if len(values) != 3 * n:
        return None
    return (
        numbers.astype(np.int32),
        np.asarray(values).astype(np.float64).reshape(n, 3),
        _distinct(_ds_strings(_DS["orientation"], raw)),
        _distinct(_ds_strings(_DS["spacing"], raw)),
    )


def _one(values: list[list[float]], what: str, source: ByteSource) -> tuple[float, ...]:
    distinct = {tuple(round(v, 6) for v in x) for x in values}
    if len(distinct) > 1:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_GEOMETRY, f"{source.name}: frames differ in {what}: {sorted(distinct)[:3]}"
        )
    return tuple(values[0]) if values else ()


def read_header(source: ByteSource) -> SegHeader:
    """Parse the header by ranges; the pixel data is located, not read.

    The top-level attributes are parsed by pydicom; the per-frame functional groups (one
    item per frame, about 600 bytes each) are scanned for their segment numbers and
    positions directly, which is some 50 times faster than building a Dataset per frame
    (pydicom still parses them when the scan does not find exactly one value per frame).
    """
    try:
        buf, at = _header_bytes(source)
        pixel_length = int.from_bytes(buf[at + 8 : at + 12], "little")
        cut = buf.rfind(_PER_FRAME_TAG, 0, at)
        ds = pydicom.dcmread(io.BytesIO(buf[: cut if cut > 0 else at]), specific_tags=HEADER_TAGS)
        if str(ds.get("SOPClassUID", "")) != SEG_STORAGE:
            raise _read_error(source, f"SOP class {ds.get('SOPClassUID')} is not Segmentation Storage")
        if ds.get("SegmentationType") != "BINARY" or int(ds.get("BitsAllocated", 0)) != 1:
            raise _read_error(source, f"SegmentationType {ds.get('SegmentationType')}: only BINARY is read")
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            raise _read_error(source, f"compressed SEG ({ds.file_meta.TransferSyntaxUID.name}) is not read by range")
        n = int(ds.NumberOfFrames)
        shared = ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
        fast = _frame_values(buf[cut:at], n) if cut > 0 else None
        if fast is not None:
            seg_numbers, positions, orientations, spacings = fast
            orientation = _one(orientations, "orientation", source) or _functional(
                None, shared, "PlaneOrientationSequence", "ImageOrientationPatient"
            )
            spacing = _one(spacings, "pixel spacing", source) or _functional(
                None, shared, "PixelMeasuresSequence", "PixelSpacing"
            )
        else:
            frames = pydicom.dcmread(io.BytesIO(buf[:at])).PerFrameFunctionalGroupsSequence
            if len(frames) != n:
                raise _read_error(source, f"{len(frames)} per-frame items for {n} frames")
            seg_numbers = np.asarray(
                [_functional(f, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber") for f in frames],
                dtype=np.int32,
            )
            positions = np.asarray(
                [
                    [float(v) for v in _functional(f, shared, "PlanePositionSequence", "ImagePositionPatient")]
                    for f in frames
                ],
                dtype=np.float64,
            ).reshape(n, 3)
            first = frames[0] if n else None
            orientation = _functional(first, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = _functional(first, shared, "PixelMeasuresSequence", "PixelSpacing")
        segments = {int(s.SegmentNumber): SegmentCode.of(s) for s in ds.SegmentSequence}
        algorithm = next((str(s.get("SegmentAlgorithmName", "")) for s in ds.SegmentSequence), "")
        referenced = tuple(str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence") or [])
        return SegHeader(
            series_uid=str(ds.SeriesInstanceUID),
            series_description=str(ds.get("SeriesDescription", "")),
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            referenced_series=referenced,
            segments=segments,
            frame_segment=seg_numbers,
            frame_position=positions,
            orientation=tuple(float(v) for v in orientation or ()),
            pixel_spacing=tuple(float(v) for v in spacing or ()),  # type: ignore[arg-type]
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            pixel_offset=at + 12,
            pixel_length=pixel_length,
            algorithm=algorithm,
        )
    except DeepCACError:
        raise
    except Exception as exc:  # a damaged header fails in many ways inside pydicom
        raise _read_error(source, f"unreadable SEG header: {type(exc).__name__}: {exc}") from exc


def check_size(source: ByteSource, header: SegHeader) -> None:
    """The object must hold every frame the header announces (a truncated download is refused)."""
    need = (len(header.frame_segment) * header.frame_bits + 7) // 8
    have = min(header.pixel_length, source.size() - header.pixel_offset)
    if header.pixel_length < need or have < need:
        raise _read_error(source, f"truncated: {need} bytes of frames announced, {have} present")


def check_reference(header: SegHeader, ct_series_uid: str) -> None:
    """E_ANATOMY_MISMATCH unless the SEG's ReferencedSeriesSequence names the CT series."""
    if ct_series_uid not in header.referenced_series:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_MISMATCH,
            f"SEG {header.series_uid} references series {', '.join(header.referenced_series) or '(none)'}, "
            f"not {ct_series_uid}",
            seg=header.series_uid,
        )


def frame_slices(header: SegHeader, geometry: stage_values.Geometry, shape: tuple[int, int, int]) -> np.ndarray:
    """The CT slice (index along axis 0) of every frame; E_ANATOMY_GEOMETRY when a frame is off the grid."""

    def fail(why: str) -> DeepCACError:
        return DeepCACError(ErrorCode.E_ANATOMY_GEOMETRY, f"SEG {header.series_uid} does not fit the CT grid: {why}")

    if (header.rows, header.columns) != (shape[1], shape[2]):
        raise fail(f"frames are {header.rows}x{header.columns}, CT slices {shape[1]}x{shape[2]}")
    d = geometry.direction_matrix
    if len(header.orientation) != 6 or len(header.pixel_spacing) != 2:
        raise fail("no ImageOrientationPatient or PixelSpacing")
    row_dir, col_dir = np.asarray(header.orientation[:3]), np.asarray(header.orientation[3:])
    if (
        np.abs(row_dir - d[:, 0]).max() > ORIENTATION_TOLERANCE
        or np.abs(col_dir - d[:, 1]).max() > ORIENTATION_TOLERANCE
    ):
        raise fail(f"orientation {header.orientation} differs from the CT's")
    ps = header.pixel_spacing  # (between rows, between columns) = (y, x)
    if (
        abs(ps[0] - geometry.spacing[1]) > 1e-3 * geometry.spacing[1]
        or abs(ps[1] - geometry.spacing[0]) > 1e-3 * geometry.spacing[0]
    ):
        raise fail(f"pixel spacing {ps} differs from the CT's {geometry.spacing[1::-1]}")
    if len(header.frame_position) == 0:
        return np.zeros(0, dtype=np.int64)
    ijk = geometry.lps_to_index(header.frame_position)
    k = np.rint(ijk[:, 2])
    off = np.abs(ijk - np.stack([np.zeros(len(k)), np.zeros(len(k)), k], axis=1)).max(axis=1)
    bad = (off > POSITION_TOLERANCE) | (k < 0) | (k >= shape[0])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail(
            f"{int(bad.sum())} frame(s) off the CT slices, e.g. frame {i + 1} at {header.frame_position[i].tolist()}"
        )
    return k.astype(np.int64)


def segment_numbers(header: SegHeader, codes: frozenset[SegmentCode]) -> list[int]:
    """Segments whose property type (and modifier, where the wanted code has one) is among ``codes``."""

    def matches(seg: SegmentCode) -> bool:
        return any(
            seg.scheme == c.scheme and seg.value == c.value and (c.modifier is None or c.modifier == seg.modifier)
            for c in codes
        )

    return sorted(n for n, code in header.segments.items() if matches(code))


def _ranges(frames: np.ndarray, frame_bytes: int) -> list[tuple[int, int]]:
    """(first frame, frame count) runs of consecutive frame indices."""
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    return [(int(run[0]), len(run)) for run in np.split(frames, breaks)]


def read_frames(source: ByteSource, header: SegHeader, frames: np.ndarray) -> np.ndarray:
    """The bits of the given frames (sorted), (n, rows, columns) bool, each contiguous run read as one range."""
    frames = np.asarray(frames, dtype=np.int64)
    out = np.empty((len(frames), header.rows, header.columns), dtype=bool)
    bits = header.frame_bits
    at = 0
    for first, count in _ranges(frames, bits // 8):
        start_bit, end_bit = first * bits, (first + count) * bits
        lo, hi = start_bit // 8, (end_bit + 7) // 8
        data = np.frombuffer(source.read(header.pixel_offset + lo, hi - lo), dtype=np.uint8)
        flat = np.unpackbits(data, bitorder="little")[start_bit - lo * 8 : end_bit - lo * 8]
        out[at : at + count] = flat.view(bool).reshape(count, header.rows, header.columns)
        at += count
    return out


def read_masks(
    source: ByteSource,
    header: SegHeader,
    slices: np.ndarray,
    shape: tuple[int, int, int],
    wanted: dict[str, list[int]],
    keep: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """One mask on the CT grid per name, the union of its segments' frames (each frame read once).

    ``keep``: only frames on CT slices ``lo..hi`` (inclusive) are read; the rest stay empty.
    """
    numbers = sorted({n for segs in wanted.values() for n in segs})
    chosen = np.isin(header.frame_segment, numbers)
    if keep is not None:
        chosen &= (slices >= keep[0]) & (slices <= keep[1])
    frames = np.flatnonzero(chosen)
    bits = read_frames(source, header, frames)
    segment_of, slice_of = header.frame_segment[frames], slices[frames]
    out = {name: np.zeros(shape, dtype=bool) for name in wanted}
    for name, segs in wanted.items():
        mask = out[name]
        for i in np.flatnonzero(np.isin(segment_of, segs)):  # in place: no copies of the frames
            np.logical_or(mask[slice_of[i]], bits[i], out=mask[slice_of[i]])
    return out
