"""Typed errors with stable, machine-readable codes.

Every failure the pipeline records per series carries one of these codes. Codes are
part of the public `failures` table: never rename one, only add.
"""

from __future__ import annotations

import errno
from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes. The value is what tables and logs store."""

    # input selection and fetching
    E_COHORT_INVALID = "E_COHORT_INVALID"
    #: the cohort (or a local folder given to ``cohort --from-dir``) holds no series
    E_COHORT_EMPTY = "E_COHORT_EMPTY"
    #: a local series' files differ from what the cohort recorded (count, names, sizes, mtimes)
    E_INPUT_CHANGED = "E_INPUT_CHANGED"
    #: the series' PatientID is empty, missing or not usable as a release folder name (``pipeline.identifiers``)
    E_PATIENT_ID = "E_PATIENT_ID"
    E_FETCH_FAILED = "E_FETCH_FAILED"
    E_FETCH_TRANSIENT = "E_FETCH_TRANSIENT"
    E_FETCH_COUNT_MISMATCH = "E_FETCH_COUNT_MISMATCH"
    E_CACHE_FULL = "E_CACHE_FULL"
    # DICOM loading
    E_NO_IMAGES = "E_NO_IMAGES"
    E_UNREADABLE_FILE = "E_UNREADABLE_FILE"
    E_TRUNCATED_PIXELS = "E_TRUNCATED_PIXELS"
    E_TRANSFER_SYNTAX = "E_TRANSFER_SYNTAX"
    E_MODALITY = "E_MODALITY"
    E_DIMENSIONS = "E_DIMENSIONS"
    E_UID_INVALID = "E_UID_INVALID"
    E_GEOMETRY_MISSING = "E_GEOMETRY_MISSING"
    E_GEOMETRY_GAP = "E_GEOMETRY_GAP"
    E_GEOMETRY_UNEVEN = "E_GEOMETRY_UNEVEN"
    E_GEOMETRY_TILT = "E_GEOMETRY_TILT"
    E_GEOMETRY_ORIENTATION = "E_GEOMETRY_ORIENTATION"
    E_DUPLICATE_CONFLICT = "E_DUPLICATE_CONFLICT"
    E_MIXED_SERIES = "E_MIXED_SERIES"
    E_TOO_FEW_SLICES = "E_TOO_FEW_SLICES"
    #: a synthetic-data request that cannot be built (bad spec, plaques that do not fit)
    E_SYNTH_SPEC = "E_SYNTH_SPEC"
    #: multi-frame, colour, or a pixel encoding the loader does not take (not a transfer syntax problem)
    E_UNSUPPORTED_IMAGE = "E_UNSUPPORTED_IMAGE"
    #: the series has no FrameOfReferenceUID: a SEG on it could not be placed in space (refused before any work)
    E_NO_FRAME_OF_REFERENCE = "E_NO_FRAME_OF_REFERENCE"
    #: contrast-enhanced CT (blood pool well above non-contrast blood): calcium cannot be told from contrast
    E_CONTRAST_ENHANCED = "E_CONTRAST_ENHANCED"
    # model and inference
    E_MODEL_LOAD = "E_MODEL_LOAD"
    E_MODEL_UNKNOWN = "E_MODEL_UNKNOWN"
    E_INFERENCE = "E_INFERENCE"
    E_NO_HEART = "E_NO_HEART"
    E_OUT_OF_MEMORY = "E_OUT_OF_MEMORY"
    # anatomy stage (heart and great vessels from a provider)
    #: no such anatomy provider is registered
    E_ANATOMY_UNKNOWN = "E_ANATOMY_UNKNOWN"
    #: the chosen provider does not cover the series (no TotalSegmentator SEG for it, ...)
    E_ANATOMY_UNAVAILABLE = "E_ANATOMY_UNAVAILABLE"
    #: the anatomy source names another series (SEG ReferencedSeriesSequence)
    E_ANATOMY_MISMATCH = "E_ANATOMY_MISMATCH"
    #: a required segment (heart part, aorta, pulmonary artery) is missing or empty
    E_ANATOMY_SEGMENTS = "E_ANATOMY_SEGMENTS"
    #: the anatomy's frames do not sit on the CT grid (positions, orientation, size)
    E_ANATOMY_GEOMETRY = "E_ANATOMY_GEOMETRY"
    #: the anatomy source cannot be read (truncated object, failed range read, not a SEG)
    E_ANATOMY_READ = "E_ANATOMY_READ"
    # scoring
    E_MASK_GEOMETRY = "E_MASK_GEOMETRY"
    E_SCORING = "E_SCORING"
    E_CONVENTION_UNKNOWN = "E_CONVENTION_UNKNOWN"
    # conversion and output
    E_SEG_WRITE = "E_SEG_WRITE"
    E_SR_WRITE = "E_SR_WRITE"
    E_TABLE_WRITE = "E_TABLE_WRITE"
    E_TABLE_SCHEMA = "E_TABLE_SCHEMA"
    E_OUTPUT_LOCKED = "E_OUTPUT_LOCKED"
    E_OUTPUT_EXISTS = "E_OUTPUT_EXISTS"
    #: --overwrite refused: the folder is not this tool's output of that kind, holds other files, or holds the input
    E_OUTPUT_NOT_OURS = "E_OUTPUT_NOT_OURS"
    #: an output path cannot be created or written (permissions, read-only file system, a file in the way)
    E_OUTPUT_UNWRITABLE = "E_OUTPUT_UNWRITABLE"
    #: a write failed because the file system is full (ENOSPC) or a quota is exceeded (EDQUOT)
    E_DISK_FULL = "E_DISK_FULL"
    # release
    E_RELEASE_INPUT = "E_RELEASE_INPUT"
    E_RELEASE_QA_BLOCKED = "E_RELEASE_QA_BLOCKED"
    E_RELEASE_QA_MISSING = "E_RELEASE_QA_MISSING"
    #: the run's QA checked other bytes than the run now holds (a table or object changed since QA)
    E_RELEASE_QA_STALE = "E_RELEASE_QA_STALE"
    E_RELEASE_CARD = "E_RELEASE_CARD"
    E_RELEASE_VERIFY = "E_RELEASE_VERIFY"
    E_QUERY_OUTPUT = "E_QUERY_OUTPUT"
    # QA and review
    E_QA_INPUT = "E_QA_INPUT"
    E_REVIEW_INVALID = "E_REVIEW_INVALID"
    # orchestration
    E_WORKER_LOST = "E_WORKER_LOST"
    #: the run lost its connection to the Dask scheduler: the series in flight are dropped (``run --resume``)
    E_SCHEDULER_LOST = "E_SCHEDULER_LOST"
    #: ``run --resume`` asked of an output made from other inputs (weights, cohort, conventions by content)
    E_RESUME_MISMATCH = "E_RESUME_MISMATCH"
    #: the committed state of a bucket --out cannot be read back whole (a fragment pack cut short or altered)
    E_RUN_STATE_DAMAGED = "E_RUN_STATE_DAMAGED"
    E_TIMEOUT = "E_TIMEOUT"
    E_INTERNAL = "E_INTERNAL"


#: Codes worth a retry: the same call may succeed later (``run --resume`` retries them).
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.E_FETCH_TRANSIENT,
        ErrorCode.E_WORKER_LOST,
        ErrorCode.E_TIMEOUT,
        ErrorCode.E_OUT_OF_MEMORY,
        ErrorCode.E_DISK_FULL,
    }
)

#: OS error numbers that mean "no space left": the write may succeed once space is freed
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DeepCACError(Exception):
    """An error with a stable code, a human message and optional structured detail."""

    def __init__(self, code: ErrorCode, message: str, **detail: object) -> None:
        super().__init__(f"[{code.value}] {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.detail = detail

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "message": self.message, "detail": {k: str(v) for k, v in self.detail.items()}}


def disk_full(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT OSError in ``exc`` or its causes (a writer wraps it in its own code), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


def error_code_of(exc: BaseException) -> ErrorCode:
    """The stable code for any exception; unknown exceptions are E_INTERNAL.

    A full disk is E_DISK_FULL whatever the writer called it (E_SEG_WRITE, E_TABLE_WRITE, ...):
    it is transient, so ``run --resume`` writes the series again once space is freed.
    """
    if disk_full(exc) is not None:
        return ErrorCode.E_DISK_FULL
    if isinstance(exc, DeepCACError):
        return exc.code
    if isinstance(exc, MemoryError):
        return ErrorCode.E_OUT_OF_MEMORY
    return ErrorCode.E_INTERNAL


#: longest failure message kept in a table row (the full text goes to detail_json)
MESSAGE_LIMIT = 500


def one_line(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """A failure message as one line: of a traceback only its last line (the exception itself),
    other line breaks and runs of blanks as single spaces, and at most ``limit`` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback (most recent call last)"):
        lines = lines[-1:]
    flat = " ".join(" ".join(lines).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
