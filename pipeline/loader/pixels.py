"""Pixel data: what pydicom can decode, whether it is all there, and HU written into a preallocated volume."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import as_pixel_options, get_decoder, pixel_array
from pydicom.tag import Tag
from pydicom.uid import UID

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader.values import Values

PIXEL_DATA = Tag("PixelData")
INT16_MIN, INT16_MAX = int(np.iinfo(np.int16).min), int(np.iinfo(np.int16).max)


@cache
def _decoder_problem(syntax: str) -> str | None:
    """Why pydicom cannot decode ``syntax`` here, or None when it can."""
    try:
        decoder = get_decoder(UID(syntax))
    except NotImplementedError:
        return "pydicom has no decoder for it"
    if not decoder.is_available:
        missing = "; ".join(f"{name}: {', '.join(deps)}" for name, deps in decoder.missing_dependencies.items())
        return f"no installed plugin can decode it ({missing})"
    return None


def transfer_syntax(ds: Dataset, path: Path) -> UID:
    """The file's transfer syntax, if pydicom with the installed plugins can decode it."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise DeepCACError(ErrorCode.E_TRANSFER_SYNTAX, f"{path.name}: no Transfer Syntax UID in the file meta")
    syntax = UID(str(meta.TransferSyntaxUID))
    problem = _decoder_problem(str(syntax))
    if problem is not None:
        raise DeepCACError(
            ErrorCode.E_TRANSFER_SYNTAX, f"{path.name}: transfer syntax {syntax} ({syntax.name}): {problem}", path=path
        )
    return syntax


#: Image Pixel module attributes without which pixels cannot be decoded (PS3.3 C.7.6.3, type 1).
REQUIRED = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored")


def check_image_pixel_module(ds: Dataset, values: Values, path: Path) -> None:
    """Single-frame greyscale with 8 or 16 bits allocated: what a CT slice is."""
    if PIXEL_DATA not in ds:
        raise DeepCACError(ErrorCode.E_TRUNCATED_PIXELS, f"{path.name}: an image without Pixel Data (truncated?)")
    missing = [k for k in (*REQUIRED, "PixelRepresentation") if values.get(k) in (None, "")]
    if missing:
        raise DeepCACError(
            ErrorCode.E_UNREADABLE_FILE, f"{path.name}: required Image Pixel attribute(s) missing: {missing}"
        )
    frames = values.get("NumberOfFrames")
    samples, allocated, stored = values["SamplesPerPixel"], values["BitsAllocated"], values["BitsStored"]
    representation, photometric = values["PixelRepresentation"], str(values["PhotometricInterpretation"])
    problems = []
    if frames not in (None, "") and int(frames) != 1:
        problems.append(f"{frames} frames (multi-frame images are not loaded)")
    if int(samples) != 1:
        problems.append(f"SamplesPerPixel {samples} (colour)")
    if allocated not in (8, 16) or not 1 <= stored <= allocated:
        problems.append(f"BitsAllocated {allocated} with BitsStored {stored}")
    if representation not in (0, 1):
        problems.append(f"PixelRepresentation {representation}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        problems.append(f"PhotometricInterpretation {photometric}")
    if "ModalityLUTSequence" in ds and "RescaleSlope" not in ds:
        problems.append("a Modality LUT Sequence instead of Rescale Slope/Intercept")
    if problems:
        raise DeepCACError(ErrorCode.E_UNSUPPORTED_IMAGE, f"{path.name}: {'; '.join(problems)}", path=path)


def check_pixel_length(ds: Dataset, values: Values, path: Path, syntax: UID) -> None:
    """E_TRUNCATED_PIXELS when Pixel Data is absent or (uncompressed) shorter than Rows x Columns needs.

    Uses the deferred element's offset and length against the file size, so nothing is read.
    The expected length is that of one frame of one sample: ``check_image_pixel_module``
    has already refused anything else.
    """
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if raw is None:
        raise DeepCACError(ErrorCode.E_TRUNCATED_PIXELS, f"{path.name}: has image attributes but no Pixel Data")
    deferred = getattr(raw, "value", None) is None and getattr(raw, "value_tell", None) is not None
    if deferred:
        length = raw.length if raw.length != 0xFFFFFFFF else 1
        available = min(length, os.path.getsize(path) - raw.value_tell)
    else:
        available = len(raw.value or b"")
    rows, cols, bits = int(values["Rows"]), int(values["Columns"]), int(values["BitsAllocated"])
    expected = 1 if syntax.is_encapsulated else rows * cols * bits // 8
    if available < expected:
        raise DeepCACError(
            ErrorCode.E_TRUNCATED_PIXELS,
            f"{path.name}: Pixel Data holds {available} bytes, {expected} needed for {rows}x{cols} at {bits} bits",
            path=path,
        )


def rescale(ds: Dataset | Values) -> tuple[float, float]:
    """(slope, intercept) of the modality LUT; identity when absent (PS3.3 C.11.1)."""
    try:
        slope = float(ds.get("RescaleSlope") or 1.0)
        intercept = float(ds.get("RescaleIntercept") or 0.0)
    except (TypeError, ValueError) as exc:
        raise DeepCACError(ErrorCode.E_UNSUPPORTED_IMAGE, f"unparseable rescale slope/intercept: {exc}") from exc
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise DeepCACError(ErrorCode.E_UNSUPPORTED_IMAGE, f"rescale slope {slope}, intercept {intercept} is unusable")
    return slope, intercept


#: The Image Pixel attributes pydicom's ``as_pixel_options`` reads (a test keeps this in step)
PIXEL_OPTION_KEYWORDS = (
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "PixelRepresentation",
)  # fmt: skip


class PixelOptions:
    """pydicom's ``as_pixel_options`` once per distinct Image Pixel module of a load, not per slice.

    Called on every slice it would convert nine header values each time; slices whose
    values (from ``values.ValueCache``) are equal get a copy of the same options.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple, dict] = {}

    def __call__(self, ds: Dataset, values: Values) -> dict:
        key = (*((k in values, values.get(k)) for k in PIXEL_OPTION_KEYWORDS), "ExtendedOffsetTable" in ds)
        if key not in self._seen:
            self._seen[key] = as_pixel_options(ds)
        return dict(self._seen[key])


def decode(
    ds: Dataset,
    values: Values,
    path: Path,
    *,
    release: bool = True,
    buffer: bytearray | None = None,
    options: PixelOptions | None = None,
) -> np.ndarray:
    """Stored values of one slice via pydicom (sign and unused high bits handled there).

    With ``release`` the Pixel Data element is dropped from ``ds`` afterwards, so kept
    headers stay light. With ``buffer``, uncompressed Pixel Data still on disk is read
    into it and decoded in place: the result is a view of ``buffer``, valid until the
    buffer is reused.
    """
    try:
        arr = _decode(ds, path, buffer, (options or PixelOptions())(ds, values))
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # decoders raise anything on bad data, even Rust panics (BaseException)
        text = str(exc)
        code = ErrorCode.E_TRUNCATED_PIXELS if "less than expected" in text else ErrorCode.E_UNREADABLE_FILE
        raise DeepCACError(code, f"{path.name}: pixel data cannot be decoded ({type(exc).__name__}: {text})") from exc
    finally:
        if release and PIXEL_DATA in ds:
            del ds[PIXEL_DATA]
    rows, cols = values["Rows"], values["Columns"]
    if arr.shape != (rows, cols):
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"{path.name}: decoded {arr.shape}, header says {rows}x{cols}")
    return arr


def _decode(ds: Dataset, path: Path, buffer: bytearray | None, options: dict) -> np.ndarray:
    """pydicom's decoder; uncompressed Pixel Data still on disk is read in one call and handed to it.

    Reading the bytes at the deferred element's offset ourselves skips pydicom's deferred
    re-read of the element, which costs about a quarter of a 512x512 slice's load time.
    Read into a reused, writeable ``buffer``, pydicom decodes as a view (``view_only``)
    and fixes unused high bits in place: no fresh 512 KB array per slice, no copy.
    """
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if syntax.is_encapsulated or getattr(raw, "value", None) is not None:
        return pixel_array(ds)
    with open(path, "rb") as f:
        f.seek(raw.value_tell)
        if buffer is None or len(buffer) < raw.length:
            data: bytes | memoryview = f.read(raw.length)
            view_only = False
        else:
            data = memoryview(buffer)[: f.readinto(memoryview(buffer)[: raw.length])]
            view_only = True
    arr, _ = get_decoder(syntax).as_array(data, pixel_keyword="PixelData", view_only=view_only, **as_pixel_options(ds))
    return arr


def _stored_range(values: Values) -> tuple[int, int]:
    """The values BitsStored and PixelRepresentation allow."""
    bits = int(values["BitsStored"])
    if int(values["PixelRepresentation"]) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _fits_int16(lo: int, hi: int, slope: float, intercept: float) -> bool:
    ends = (lo * int(slope) + int(intercept), hi * int(slope) + int(intercept))
    return INT16_MIN <= min(ends) and max(ends) <= INT16_MAX


def hu_volume(datasets: list[Dataset], values: list[Values], paths: list[Path], notes: list[str]) -> np.ndarray:
    """Decode every slice straight into one preallocated (z, y, x) HU array.

    int16 when every slice's slope and intercept are integers, else float32. When the
    stored bit depth could overflow int16, each slice's actual range is checked, and a
    slice that does overflow promotes the volume to float32 (with a note) rather than wrap.
    """
    rescales = [rescale(v) for v in values]
    integral = all(s.is_integer() and i.is_integer() for s, i in rescales)
    rows, cols = int(values[0]["Rows"]), int(values[0]["Columns"])
    hu = np.empty((len(datasets), rows, cols), np.int16 if integral else np.float32)
    buffer = bytearray(rows * cols * 2)  # one slice of 16-bit pixels, reused for every slice
    options = PixelOptions()
    for k, (ds, v, path, (slope, intercept)) in enumerate(zip(datasets, values, paths, rescales, strict=True)):
        stored = decode(ds, v, path, buffer=buffer, options=options)
        lo, hi = _stored_range(v)
        if hu.dtype == np.int16 and not _fits_int16(lo, hi, slope, intercept):
            lo, hi = int(stored.min()), int(stored.max())
            if not _fits_int16(lo, hi, slope, intercept):
                notes.append(f"HU of {path.name} exceed int16: volume stored as float32")
                hu = hu.astype(np.float32)
        if hu.dtype == np.int16:
            if slope == 1 and stored.dtype.itemsize == 2 and INT16_MIN <= intercept <= INT16_MAX:
                # 16-bit add on an int16 view, no casts (twice as fast): int16 wraps modulo 2**16
                # and every true result fits int16 (checked above), so the sum is exact
                np.add(stored.view(np.int16), np.int16(intercept), out=hu[k])
            elif slope == 1:
                # exact integer arithmetic in int32 (buffered by numpy, no full-size temporary), stored as int16
                np.add(stored, np.int32(intercept), out=hu[k], dtype=np.int32, casting="unsafe")
            else:
                hu[k] = stored.astype(np.int32) * np.int32(slope) + np.int32(intercept)
        else:
            np.multiply(stored, np.float32(slope), out=hu[k], dtype=np.float32, casting="unsafe")
            hu[k] += np.float32(intercept)
    return hu
