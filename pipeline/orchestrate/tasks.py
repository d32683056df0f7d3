"""The per-series task bodies that run on Dask workers.

A series is three chained tasks so CPU and GPU work overlap across series:

* ``fetch_load_task`` (CPU): fetch into the worker's cache, decode to a CTVolume, then
  the anatomy (``--anatomy``; reading a TotalSegmentator SEG is I/O, like the fetch);
* ``infer_task`` (GPU resource when the cluster has one): the model, loaded once per worker,
  on the CT and its anatomy;
* ``finish_task`` (CPU): score and convert, returning the table rows.

Tasks never raise for a bad series: they return a :class:`Failure`, which the next task
passes through. Exceptions would have to be pickled back to the client, and a
DeepCACError does not survive that with its code; a value does. Transient errors are
retried here, on the worker, with exponential backoff.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepcac2.errors import TRANSIENT_CODES, DeepCACError, ErrorCode, error_code_of, one_line
from deepcac2.pipeline import process
from deepcac2.pipeline.anatomy.registry import AUTO
from deepcac2.pipeline.conventions import DEFAULT_CONVENTIONS
from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate import defaults
from deepcac2.pipeline.stage_values import SeriesRef


@dataclass(frozen=True)
class Failure:
    """Why one series failed: becomes one row of the ``failures`` table."""

    series_uid: str
    stage: str
    code: str
    message: str
    attempts: int = 1
    #: the error's structured detail, values as strings (DeepCACError.to_dict)
    detail: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a table row holds one line; a longer or multi-line message (a traceback) keeps its full text in detail
        short = one_line(self.message)
        if short != self.message:
            object.__setattr__(self, "detail", {**self.detail, "message_full": self.message})
            object.__setattr__(self, "message", short)

    @property
    def transient(self) -> bool:
        return ErrorCode(self.code) in TRANSIENT_CODES


@dataclass(frozen=True)
class Done:
    """A finished series: its table rows and how long each stage took (for the log only)."""

    series_uid: str
    rows: process.TableRows
    timings: dict[str, float] = field(default_factory=dict)
    #: stage -> the worker that ran it (log only: shows where GPU and CPU stages went)
    workers: dict[str, str] = field(default_factory=dict)
    #: the content fingerprint of the series' files when it was loaded (``--verify-inputs``), else None
    inputs: str | None = None


@dataclass(frozen=True)
class Loaded:
    """The output of the CPU load step (the CT and its anatomy), carried to inference and conversion."""

    value: Any
    seconds: float
    worker: str = ""
    anatomy: Any = None
    #: the part of ``seconds`` the anatomy step took
    anatomy_seconds: float = 0.0
    #: the content fingerprint of the series' files (``--verify-inputs``), else None
    inputs: str | None = None


@dataclass(frozen=True)
class Predicted:
    value: Any
    seconds: float
    worker: str = ""


def _load_default_model(spec: ModelSpec) -> Any:
    from deepcac2.pipeline.models.base import load_spec

    return load_spec(spec)


def _finish_default(ref: SeriesRef, ct: Any, prediction: Any, out_dir: Path, conventions: tuple[str, ...]) -> Any:
    return process.score_and_convert(ref, ct, prediction, out_dir, conventions)


#: what the real stages import, imported by each worker before its first task (see plugin.py)
WARM_MODULES: tuple[str, ...] = (
    "pydicom",
    "highdicom",
    "torch",
    "deepcac2.pipeline.loader",
    "deepcac2.pipeline.sources",
    "deepcac2.pipeline.anatomy.registry",
    "deepcac2.pipeline.models.base",
    "deepcac2.pipeline.scoring.engine",
    "deepcac2.pipeline.convert",
    "deepcac2.pipeline.convert.review_picture",
)


@dataclass(frozen=True)
class Stages:
    """The stage functions a run uses. Module-level callables, so Dask ships them by name.

    The defaults are the real stages of :mod:`deepcac2.pipeline.process`; tests and
    benchmarks inject trivial ones (see :mod:`deepcac2.pipeline.dev.fake_stages`) to measure the orchestration alone.
    ``warm`` names the modules a worker imports before it runs any task.
    """

    fetch_load: Callable[[SeriesRef, Any], Any] = process.fetch_and_load
    #: (ref, loaded value, provider name or "auto", cache) -> anatomy
    anatomy: Callable[[SeriesRef, Any, str, Any], Any] = process.anatomy
    infer: Callable[[Any, Any, Any], Any] = process.infer
    finish: Callable[[SeriesRef, Any, Any, Path, tuple[str, ...]], process.TableRows] = _finish_default
    load_model: Callable[[ModelSpec], Any] = _load_default_model
    warm: tuple[str, ...] = WARM_MODULES


@dataclass(frozen=True)
class Policy:
    """Retry and output settings shared by all tasks of a run."""

    out_dir: str
    conventions: tuple[str, ...] = DEFAULT_CONVENTIONS
    retries: int = defaults.RETRIES
    backoff_s: float = defaults.BACKOFF_S
    #: the anatomy provider (``--anatomy``): a registered name or "auto"
    anatomy: str = AUTO
    #: take the content fingerprint of a local series' files before loading it (``--verify-inputs``)
    verify_inputs: bool = False


def _attempt(stage: str, ref: SeriesRef, policy: Policy, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn``; retry transient errors with backoff; turn any error into a Failure."""
    attempt = 1
    while True:
        try:
            return fn(*args)
        except Exception as exc:  # one bad series must never take the worker down
            code = error_code_of(exc)
            if code in TRANSIENT_CODES and attempt <= policy.retries:
                time.sleep(policy.backoff_s * 2 ** (attempt - 1))
                attempt += 1
                continue
            return _failure(ref, stage, exc, attempt)


#: the finer stage a task's error belongs to, by code: (task, code) -> stage of the failures table
_FETCH_CODES = {ErrorCode.E_FETCH_FAILED, ErrorCode.E_FETCH_TRANSIENT, ErrorCode.E_FETCH_COUNT_MISMATCH}
_CONVERT_CODES = {
    ErrorCode.E_SEG_WRITE,
    ErrorCode.E_SR_WRITE,
    ErrorCode.E_TABLE_WRITE,
    ErrorCode.E_UID_INVALID,
    ErrorCode.E_DISK_FULL,
    ErrorCode.E_OUTPUT_UNWRITABLE,
}


def stage_of(task: str, code: ErrorCode, exc: BaseException | None = None) -> str:
    """The stage that raised ``exc`` (``process.in_stage``), else the task's stage by error code.

    ``fetch``/``load`` for the first task, ``score``/``convert`` for the last.
    """
    named = process.stage_of_exception(exc) if exc is not None else None
    if named:
        return named
    if task == "fetch_load":
        return "fetch" if code in _FETCH_CODES | {ErrorCode.E_CACHE_FULL} else "load"
    if task == "score_convert":
        return "convert" if code in _CONVERT_CODES else "score"
    return task


def unexpected_traceback(exc: BaseException) -> str | None:
    """The formatted traceback when ``exc`` is, or was caused by, an exception no stage expected; else None.

    A DeepCACError raised on purpose needs no traceback; one that wraps a library error
    (highdicom's ValueError, ...) and every plain exception (E_INTERNAL) keep theirs, so
    the cause can be found from the ``failures`` table and the run log alone.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not isinstance(current, DeepCACError):
            return "".join(traceback.format_exception(exc))
        current = current.__cause__
    return None


def _failure(ref: SeriesRef, task: str, exc: BaseException, attempts: int) -> Failure:
    code = error_code_of(exc)
    stage = stage_of(task, code, exc)
    detail = {str(k): str(v) for k, v in exc.detail.items()} if isinstance(exc, DeepCACError) else {}
    tb = unexpected_traceback(exc)
    if tb is not None:
        detail["traceback"] = tb
        detail["exception"] = type(exc).__name__
    if isinstance(exc, DeepCACError):
        return Failure(ref.series_uid, stage, code.value, exc.message, attempts, detail)
    return Failure(ref.series_uid, stage, code.value, f"{type(exc).__name__}: {exc}", attempts, detail)


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # called outside a Dask worker (tests, process_series)
        return ""


def _context() -> Any:
    """The worker's pipeline plugin (model and cache), or a local one outside Dask."""
    from deepcac2.pipeline.orchestrate.plugin import current_plugin

    return current_plugin()


def _content(ref: SeriesRef, policy: Policy) -> str | None | Failure:
    """The series' content fingerprint when ``--verify-inputs`` asks for it (local series only)."""
    from deepcac2.pipeline.orchestrate.inputs import check_content, content_fingerprint, is_local

    if not policy.verify_inputs or not is_local(ref):
        return None

    def content() -> str:
        now = content_fingerprint(str(ref.location))
        check_content(ref, now)  # against the cohort's, when it recorded one
        return now

    return _attempt("fetch_load", ref, policy, content)


def _finish_into(stages: Stages, policy: Policy, ref: SeriesRef, ct: Any, prediction: Any) -> Any:
    """Score and convert into ``policy.out_dir``: a folder, or a bucket URL (``run --out s3://...``).

    For a bucket the objects are written to a scratch folder on this worker and put to
    ``dicom/<SeriesInstanceUID>/`` before the rows go back, so the client commits a series
    only once its objects are in the bucket: no shared filesystem is needed.
    """
    from deepcac2.location import Remote, is_url

    if not is_url(policy.out_dir):
        return stages.finish(ref, ct, prediction, Path(policy.out_dir), policy.conventions)
    import tempfile

    remote = Remote.parse(policy.out_dir)
    with tempfile.TemporaryDirectory(prefix="deepcac2-objects-") as scratch:
        rows = stages.finish(ref, ct, prediction, Path(scratch), policy.conventions)
        remote.upload_tree(Path(scratch))
    return rows


def fetch_load_task(ref: SeriesRef, stages: Stages, policy: Policy) -> Loaded | Failure:
    t0 = time.perf_counter()
    cache = _context().cache()
    inputs = _content(ref, policy)  # before the load: the bytes hashed are the bytes then read
    if isinstance(inputs, Failure):
        return inputs
    out = _attempt("fetch_load", ref, policy, lambda: stages.fetch_load(ref, cache))
    if isinstance(out, Failure):
        return out
    t1 = time.perf_counter()
    anatomy = _attempt("anatomy", ref, policy, stages.anatomy, ref, out, policy.anatomy, cache)
    if isinstance(anatomy, Failure):
        return anatomy
    t2 = time.perf_counter()
    return Loaded(out, t2 - t0, _worker_address(), anatomy, t2 - t1, inputs)


def infer_task(ref: SeriesRef, loaded: Loaded | Failure, stages: Stages, policy: Policy) -> Predicted | Failure:
    if isinstance(loaded, Failure):
        return loaded
    t0 = time.perf_counter()
    try:
        model = _context().model(stages)
    except Exception as exc:  # reported per series; the client stops the run on model errors
        return _failure(ref, "model", exc, 1)
    out = _attempt("infer", ref, policy, stages.infer, model, loaded.value, loaded.anatomy)
    return out if isinstance(out, Failure) else Predicted(out, time.perf_counter() - t0, _worker_address())


def finish_task(
    ref: SeriesRef, loaded: Loaded | Failure, predicted: Predicted | Failure, stages: Stages, policy: Policy
) -> Done | Failure:
    if isinstance(loaded, Failure):
        return loaded
    if isinstance(predicted, Failure):
        return predicted
    t0 = time.perf_counter()
    rows = _attempt("score_convert", ref, policy, _finish_into, stages, policy, ref, loaded.value, predicted.value)
    if isinstance(rows, Failure):
        return rows
    timings = {
        "fetch_load": loaded.seconds - loaded.anatomy_seconds,
        "anatomy": loaded.anatomy_seconds,
        "infer": predicted.seconds,
        "score_convert": time.perf_counter() - t0,
    }
    workers = {"fetch_load": loaded.worker, "infer": predicted.worker, "score_convert": _worker_address()}
    return Done(ref.series_uid, rows, timings, workers, loaded.inputs)
