"""One series through every stage, as plain functions (no Dask here).

``process_series`` runs fetch -> load -> anatomy -> infer -> score -> convert for one
series and returns the table rows, or raises :class:`DeepCACError`. The orchestrator
calls the same step functions as separate tasks (CPU: fetch+load+anatomy, GPU: infer,
CPU: score+convert) so the GPU step overlaps I/O and conversion of other series. The
anatomy step sits with the load: reading a TotalSegmentator SEG is I/O, and the
classical provider is CPU work.

Stage modules are imported inside the functions: importing this module stays cheap
(torch is slow to import) and a worker only imports what its tasks use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.registry import AUTO
from deepcac2.pipeline.conventions import DEFAULT_CONVENTIONS

#: the attribute an exception carries naming the stage it was raised in (read by orchestrate.tasks)
STAGE_ATTRIBUTE = "deepcac2_stage"


@contextmanager
def in_stage(name: str) -> Iterator[None]:
    """Name the stage of any exception raised inside (the innermost name wins).

    The orchestrator runs several stages in one task (score and convert); the failure row
    must name the one that raised, not the task.
    """
    try:
        yield
    except Exception as exc:
        if getattr(exc, STAGE_ATTRIBUTE, None) is None:
            try:
                setattr(exc, STAGE_ATTRIBUTE, name)
            except AttributeError:  # an exception type with __slots__: the task's stage is used
                pass
        raise


def stage_of_exception(exc: BaseException) -> str | None:
    """The stage ``in_stage`` named for ``exc``, else None."""
    return getattr(exc, STAGE_ATTRIBUTE, None)


#: rows per output table, e.g. {"cac_series": [...], "cac_lesions": [...], "measurements": [...]}
TableRows = dict[str, list[dict[str, Any]]]


class SeriesCacheLike(Protocol):
    """The part of ``sources.SeriesCache`` the pipeline uses."""

    def get(self, series: stage_values.SeriesRef) -> Any: ...

    def release(self, series: stage_values.SeriesRef) -> None: ...


def is_local(ref: stage_values.SeriesRef) -> bool:
    """A series whose files already sit in a local folder (no fetch needed)."""
    return bool(ref.location) and "://" not in str(ref.location)


def fetch(ref: stage_values.SeriesRef, cache: SeriesCacheLike | None = None) -> Path:
    """The local folder holding the series: its own folder, or a fetched copy in ``cache``."""
    if is_local(ref):
        from deepcac2.pipeline.sources.local import check_unchanged

        folder = Path(str(ref.location))
        if not folder.is_dir():
            raise DeepCACError(
                ErrorCode.E_FETCH_FAILED, f"series folder {folder} does not exist", series=ref.series_uid
            )
        check_unchanged(ref, folder)  # E_INPUT_CHANGED when the folder differs from the cohort's record
        return folder
    if cache is None:
        raise DeepCACError(
            ErrorCode.E_FETCH_FAILED,
            f"series {ref.series_uid} is remote ({ref.location or ref.crdc_series_uuid}) and no fetch cache is set",
            series=ref.series_uid,
        )
    return Path(cache.get(ref))


def load(ref: stage_values.SeriesRef, folder: Path) -> stage_values.CTVolume:
    """Decode the series and check that it is the series the cohort asked for and one we can write on.

    Refused here, before any model work: a series without a Frame of Reference
    (E_NO_FRAME_OF_REFERENCE) and a contrast-enhanced one (E_CONTRAST_ENHANCED).
    """
    from deepcac2.pipeline.contrast import refuse_contrast
    from deepcac2.pipeline.dicomout.source import require_frame_of_reference
    from deepcac2.pipeline.loader import load_series

    ct = load_series(folder, series_uid=ref.series_uid)
    if ct.series_uid and ct.series_uid != ref.series_uid:
        raise DeepCACError(
            ErrorCode.E_MIXED_SERIES,
            f"folder {folder} holds series {ct.series_uid}, the cohort expects {ref.series_uid}",
            series=ref.series_uid,
        )
    from deepcac2.pipeline.identifiers import validate_patient_id

    validate_patient_id(ct.patient_id, ref.series_uid)  # E_PATIENT_ID here, not at release build
    require_frame_of_reference(ct)
    refuse_contrast(ct)  # E_CONTRAST_ENHANCED: blood-pool HU, before the anatomy takes it for no heart
    return ct


def fetch_and_load(ref: stage_values.SeriesRef, cache: SeriesCacheLike | None = None) -> stage_values.CTVolume:
    """Fetch, decode, then free the cached files at once: the volume keeps the headers the writers need."""
    with in_stage("fetch"):
        folder = fetch(ref, cache)
    try:
        with in_stage("load"):
            return load(ref, folder)
    finally:
        if cache is not None and not is_local(ref):
            cache.release(ref)


def anatomy(ref: stage_values.SeriesRef, ct: stage_values.CTVolume, name: str = AUTO, cache: Any = None) -> Any:
    """Heart and great vessels of ``ct`` from the named provider, or by the ``auto`` rule (an ``Anatomy``).

    Any non-DeepCAC error of a provider becomes E_ANATOMY_READ: a provider bug fails the
    series, not the run.
    """
    from deepcac2.pipeline.anatomy.registry import resolve_anatomy

    try:
        return resolve_anatomy(ref, ct, name, cache=cache)
    except DeepCACError:
        raise
    except MemoryError as exc:
        raise DeepCACError(ErrorCode.E_OUT_OF_MEMORY, f"out of memory in the anatomy stage: {exc}") from exc
    except Exception as exc:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_READ, f"anatomy {name}: {type(exc).__name__}: {exc}", series=ref.series_uid
        ) from exc


def infer(model: Any, ct: stage_values.CTVolume, anatomy: Any) -> stage_values.Prediction:
    """Run the model on the CT and its anatomy; any non-DeepCAC error becomes E_INFERENCE.

    (A model bug must not end the run.)
    """
    try:
        prediction = model.predict(ct, anatomy)
    except DeepCACError:
        raise
    except MemoryError as exc:
        raise DeepCACError(ErrorCode.E_OUT_OF_MEMORY, f"out of memory in inference: {exc}") from exc
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
            raise DeepCACError(ErrorCode.E_OUT_OF_MEMORY, f"GPU out of memory in inference: {exc}") from exc
        raise DeepCACError(ErrorCode.E_INFERENCE, f"{type(exc).__name__}: {exc}", series=ct.series_uid) from exc
    if prediction.anatomy is None:  # a model that does not say: it was given this one
        prediction.anatomy = anatomy
    if prediction.cac.shape != ct.hu.shape:
        raise DeepCACError(
            ErrorCode.E_MASK_GEOMETRY,
            f"model returned a mask of shape {prediction.cac.shape} for a CT of shape {ct.hu.shape}",
            series=ct.series_uid,
        )
    return prediction


def score(
    ct: stage_values.CTVolume, prediction: stage_values.Prediction, conventions: Iterable[str] = DEFAULT_CONVENTIONS
) -> dict[str, stage_values.Scores]:
    """Scores of the predicted CAC mask under every named convention."""
    from deepcac2.pipeline.scoring.engine import score_ct

    return {name: score_ct(ct, prediction.cac, convention=name, vessels=prediction.vessels) for name in conventions}


def convert(
    ref: stage_values.SeriesRef,
    ct: stage_values.CTVolume,
    prediction: stage_values.Prediction,
    scores: Mapping[str, stage_values.Scores],
    out_dir: Path,
) -> TableRows:
    """Write SEG and SR under ``out_dir`` and return the table rows of this series."""
    from deepcac2.pipeline.convert import convert_series

    converted = convert_series(ct, prediction, dict(scores), Path(out_dir), series_ref=ref)
    return table_rows_of(converted)


def table_rows_of(converted: Any) -> TableRows:
    """The rows a ``ConvertedSeries`` carries, as {table name: [row dict, ...]}."""
    rows = getattr(converted, "rows", None)
    if not isinstance(rows, Mapping) or "cac_series" not in rows:
        raise DeepCACError(
            ErrorCode.E_TABLE_WRITE, f"converter returned no cac_series row ({type(converted).__name__})"
        )
    return {str(k): [dict(r) for r in v] for k, v in rows.items()}


def score_and_convert(
    ref: stage_values.SeriesRef,
    ct: stage_values.CTVolume,
    prediction: stage_values.Prediction,
    out_dir: Path,
    conventions: Iterable[str] = DEFAULT_CONVENTIONS,
) -> TableRows:
    """The CPU step after inference: scores, SEG/SR/rows, and the review picture beside the SEG."""
    with in_stage("score"):
        scores = score(ct, prediction, conventions)
    with in_stage("convert"):
        rows = convert(ref, ct, prediction, scores, out_dir)
    render_review_picture(ct, prediction, Path(out_dir) / ct.series_uid / REVIEW_PICTURE, rows)
    return rows


#: the per-series review picture, next to seg.dcm and sr.dcm (QA gathers them into qa/images)
REVIEW_PICTURE = "review.png"
#: ``qa_flags`` that say an optional output of the series failed (its results stand): ``run --resume``
#: does such a series again, so a resumed run equals a clean one
OPTIONAL_OUTPUT_FAILED = frozenset({"review_picture_failed"})


def render_review_picture(
    ct: stage_values.CTVolume, prediction: stage_values.Prediction, path: Path, rows: TableRows
) -> None:
    """Write the review PNG while the CT is in memory; a drawing failure flags the row, never fails the series."""
    from deepcac2.pipeline.convert.review_picture import render_series_png

    row = rows["cac_series"][0]
    title = f"{row.get('PatientID') or ''}  {ct.series_uid}  Agatston {row.get('agatston_deepcac')}"
    try:
        render_series_png(ct, prediction, path, title=title)
    except Exception as exc:  # matplotlib trouble must not lose the series' results
        row["qa_flags"] = sorted({*row.get("qa_flags", []), "review_picture_failed"})
        logging.getLogger(__name__).warning(
            "review picture for %s failed: %s: %s", ct.series_uid, type(exc).__name__, exc
        )


def process_series(
    ref: stage_values.SeriesRef,
    model: Any,
    out_dir: Path,
    *,
    conventions: Iterable[str] = DEFAULT_CONVENTIONS,
    cache: SeriesCacheLike | None = None,
    anatomy_name: str = AUTO,
) -> TableRows:
    """Every stage for one series, in this process. Raises DeepCACError on bad input."""
    ct = fetch_and_load(ref, cache)
    with in_stage("anatomy"):
        found = anatomy(ref, ct, anatomy_name, cache)
    with in_stage("infer"):
        prediction = infer(model, ct, found)
    return score_and_convert(ref, ct, prediction, out_dir, conventions)
