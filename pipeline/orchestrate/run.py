"""``run_cohort``: every series of a cohort through the pipeline on a Dask cluster.

The client keeps at most ``max_in_flight`` series submitted. Each finished series is
committed to the output store at once (a fragment), then the next series is submitted,
so memory stays bounded and a crash loses only the series in flight. Every series of the
cohort ends as exactly one fragment: done (rows for cac_series, ...) or failed (one
``failures`` row with its stable code).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distributed.comm.core import CommClosedError

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import CREATED_STAMP
from deepcac2.pipeline.anatomy.registry import AUTO
from deepcac2.pipeline.conventions import DEFAULT_CONVENTIONS
from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate import defaults, hooks
from deepcac2.pipeline.orchestrate.cluster import GPU, ClusterSpec, open_client, use_gpu_resource
from deepcac2.pipeline.orchestrate.log import RunLog
from deepcac2.pipeline.orchestrate.loop import SeriesLoop
from deepcac2.pipeline.orchestrate.losses import scheduler_lost
from deepcac2.pipeline.orchestrate.plugin import PLUGIN_NAME, CacheSpec, PipelinePlugin
from deepcac2.pipeline.orchestrate.progress import Progress
from deepcac2.pipeline.orchestrate.records import failure_row, run_record, write_runs_table
from deepcac2.pipeline.orchestrate.series_batches import (
    SeriesBatches,
    check_cohort,
    from_cohort,
    from_refs,
    pending,
    plan,
)
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore
from deepcac2.pipeline.orchestrate.tasks import Stages
from deepcac2.pipeline.stage_values import SeriesRef, sha256_file


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the series list and the output folder: what ``deepcac2 run``'s
    flags say, built once (``orchestrate/cli.py``) and passed whole to :func:`run_cohort`.

    A value no run can use (a negative count, ``resume`` with ``overwrite``) is a ValueError
    here; unknown conventions and anatomy providers are refused by :func:`run_series` before
    any work (E_CONVENTION_UNKNOWN, E_ANATOMY_UNKNOWN).
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    #: anatomy provider for every series: a registered name or "auto" (``--anatomy``)
    anatomy: str = AUTO
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    conventions: tuple[str, ...] = DEFAULT_CONVENTIONS
    max_in_flight: int | None = None
    resume: bool = False
    overwrite: bool = False
    #: how often a transient error (on a worker) or a lost task (worker died) is retried
    retries: int = defaults.RETRIES
    backoff_s: float = defaults.BACKOFF_S
    cache: CacheSpec | None = None
    progress: bool = True
    #: log client and worker memory every this many finished series (0: never)
    memory_every: int = 0
    #: a series whose task has run this long on a worker (time queued does not count) is E_TIMEOUT
    #: and its worker restarted (a hung decoder or fetch must not stall the run); None or 0: no limit
    series_timeout_s: float | None = defaults.SERIES_TIMEOUT_S
    #: a worker holding a task of a series in flight that sent no heartbeat this long is removed
    #: from the scheduler, so its tasks run elsewhere (a frozen worker, a host gone); None or 0: never
    worker_ttl_s: float | None = defaults.WORKER_TTL_S
    #: failed series with these codes are run again (``--retry-failed``; implies resuming)
    retry_codes: frozenset[str] = frozenset()
    #: load local series whose files changed since the cohort was made (else E_INPUT_CHANGED)
    rescan: bool = False
    #: take a content fingerprint (SHA-256 of every byte) of each local series when it is loaded, and
    #: compare it on --resume; local series without a cohort fingerprint are refused (``--verify-inputs``)
    verify_inputs: bool = False

    def __post_init__(self) -> None:
        # lists are accepted for convenience; the config stays hashable and comparable
        object.__setattr__(self, "conventions", tuple(self.conventions))
        object.__setattr__(self, "retry_codes", frozenset(self.retry_codes))
        problems = [
            f"{name} must be >= {least}, got {value!r}"
            for name, value, least in (
                ("retries", self.retries, 0),
                ("backoff_s", self.backoff_s, 0),
                ("memory_every", self.memory_every, 0),
                ("max_in_flight", self.max_in_flight, 1),
                ("series_timeout_s", self.series_timeout_s, 0),
                ("worker_ttl_s", self.worker_ttl_s, 0),
            )
            if value is not None and not value >= least
        ]
        if not self.conventions:
            problems.append("conventions is empty: name at least one scoring convention")
        if self.resume and self.overwrite:
            problems.append("resume and overwrite contradict each other: choose one")
        if problems:
            raise ValueError("RunConfig: " + "; ".join(problems))


@dataclass
class RunSummary:
    run_id: str
    #: the output folder, or its URL (``--out s3://...``)
    out_dir: Path | str
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    tables: dict[str, Path | str] = field(default_factory=dict)
    complete: bool = False
    interrupted: bool = False
    dashboard: str | None = None
    log_path: Path | str | None = None
    #: seconds spent in each stage, summed over the series done in this run
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: the error code that stopped the run (scheduler lost, model error), None when it ended or was interrupted
    stopped_by: str | None = None

    def format(self) -> str:
        state = "complete" if self.complete else ("interrupted" if self.interrupted else "incomplete")
        rate = (self.done + self.failed) / self.elapsed_s * 3600 if self.elapsed_s > 0 else 0.0
        lines = [
            f"run {self.run_id}: {state} in {self.elapsed_s:.1f} s ({rate:.0f} series/hour)",
            f"  series: {self.total} in cohort, {self.skipped} already committed, "
            f"{self.done} done, {self.failed} failed this run",
        ]
        lines += [f"  {code}: {n}" for code, n in sorted(self.by_code.items())]
        lines += [f"  table {name}: {path}" for name, path in sorted(self.tables.items())]
        if self.log_path:
            lines.append(f"  log: {self.log_path}")
        return "\n".join(lines)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (batch schedulers, kill) stops the run like Ctrl-C: in-flight series are dropped cleanly."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


#: the per-series output tables, always written (empty when no series produced rows)
OUTPUT_TABLES = ("cac_series", "cac_lesions", "measurements", "failures")


def run_series(
    refs: Sequence[SeriesRef] | SeriesBatches,
    out_dir: str | os.PathLike[str],
    config: RunConfig,
    *,
    stages: Stages | None = None,
    identity: dict[str, Any] | None = None,
    cohort_file: str | os.PathLike[str] | None = None,
) -> RunSummary:
    """Run every series in ``refs``; the cohort-independent core of :func:`run_cohort`.

    ``refs`` may be read a batch at a time (``series_batches``: a cohort file's 129k series
    are never held at once). ``cohort_file``, when given, is copied to
    ``out_dir/cohort.parquet`` so QA and the release know what the run was asked to do
    (coverage, cohort policy).
    """
    series = refs if isinstance(refs, SeriesBatches) else from_refs(refs)
    cohort_uids = check_cohort(series, verify_inputs=config.verify_inputs and not config.rescan)
    # without the cohort's fingerprints the load step does not compare them
    series = replace(series, rescan=config.rescan)
    from deepcac2.pipeline.anatomy.registry import check_name
    from deepcac2.pipeline.conventions import get_convention

    for name in config.conventions:
        get_convention(name)  # an unknown name stops the run before any work
    check_name(config.anatomy)
    config = replace(config, model=config.model.with_digest())  # the weights are hashed here, once per run
    stages = stages or Stages()
    started = time.time()
    run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(started))}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    store = OutputStore(out_dir)
    summary = RunSummary(run_id=run_id, out_dir=store.root, total=len(cohort_uids))
    with store:
        identity = {
            "conventions": list(config.conventions),
            "model": config.model.identity(),
            "anatomy": config.anatomy,
            **(identity or {}),
        }
        resume = config.resume or bool(config.retry_codes)
        store.check_identity(identity, resume=resume, overwrite=config.overwrite)
        if cohort_file is not None:
            store.keep_cohort(Path(cohort_file))
        created = creation_stamp(store.root)
        store.sync()  # a bucket gets run.json, the stamp and the cohort before any series runs
        # which series to run; the series done before: are their inputs still what was scored? (even on a
        # finished run; with --rescan those that changed are scored as they are now)
        planned = plan(series, store, config.retry_codes, verify_inputs=config.verify_inputs, rescan=config.rescan)
        changed = planned.changed
        summary.skipped = planned.total - planned.todo - (0 if config.rescan else len(changed))
        summary.log_path = store.logs_dir / f"run-{run_id}.jsonl"
        with RunLog(summary.log_path, run_id) as log, _sigterm_as_interrupt(), _stamp_environment(created):
            log.write(
                "run_start",
                out_dir=store.where,
                total=planned.total,
                todo=planned.todo,
                identity=identity,
                created=created,
            )
            if changed:
                log.write("inputs_changed", series=[f.series_uid for f in changed], rescan=config.rescan)
            for failure in [] if config.rescan else changed:  # their results and objects must not ship
                store.discard_dicom(failure.series_uid)
                row = failure_row(failure)
                store.commit(Fragment(failure.series_uid, "failed", failure.code, {"failures": [row]}))
                summary.failed += 1
                summary.by_code[failure.code] = summary.by_code.get(failure.code, 0) + 1
                log.write("series_failed", **row)
            bar: Progress | None = None
            loop: SeriesLoop | None = None
            stopped: DeepCACError | None = None
            try:
                with open_client(config.cluster) as client:
                    # an external scheduler serves its own; the local cluster's only when asked for (--dashboard)
                    show = config.cluster.scheduler or config.cluster.dashboard_address
                    summary.dashboard = client.dashboard_link if show else None
                    if summary.dashboard:
                        print(f"deepcac2 run: Dask dashboard at {summary.dashboard}", file=sys.stderr, flush=True)
                    loop = SeriesLoop(client, store, config, stages, run_id)
                    hooks.at("client_ready", client=client)
                    try:
                        loop.gpu = use_gpu_resource(client, config.cluster) if planned.todo else False
                        # setup imports the stages' modules (and loads the model) on every worker, and again on
                        # each worker that joins or restarts later, before it runs a task
                        plugin = PipelinePlugin(
                            config.model, config.cache, stages, gpu_resource=GPU if loop.gpu else None
                        )
                        register_plugin(client, plugin, log)
                    except DeepCACError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - only the scheduler's loss is turned into a code
                        lost = scheduler_lost(client, exc)
                        if lost is None:
                            raise
                        raise lost from exc
                    hooks.at("plugin_registered", client=client)
                    log.write("cluster", dashboard=summary.dashboard, gpu_resource=loop.gpu)
                    bar = Progress(planned.total, summary.skipped, enabled=config.progress)
                    loop.run(pending(series, planned), bar, log, summary)
            except KeyboardInterrupt as exc:
                summary.interrupted = True
                log.write("interrupted", reason=str(exc) or "SIGINT", in_flight=len(loop.inflight) if loop else 0)
            except DeepCACError as exc:
                log.write("run_failed", **exc.to_dict())
                stopped = exc
            finally:
                if bar is not None:
                    bar.close()
            summary.elapsed_s = time.time() - started
            summary.stopped_by = stopped.code.value if stopped else None
            store.commit_run(run_id, run_record(summary, config, identity, started))
            if stopped is not None:
                # the record of a run that stopped (scheduler lost, model error) is listed too; the rest
                # of the tables wait for a run that ends, so nothing half-done is mistaken for a result
                summary.tables["runs"] = write_runs_table(store)
                log.write(
                    "run_end",
                    complete=False,
                    stopped_by=summary.stopped_by,
                    done=summary.done,
                    failed=summary.failed,
                    skipped=summary.skipped,
                    elapsed_s=round(summary.elapsed_s, 3),
                )
                raise stopped
            hooks.at("tables", store=store)
            if not summary.interrupted:
                # dicom/ holds the objects of the series committed as done, and nothing else
                removed = store.sweep_dicom(cohort_uids)
                if removed:
                    log.write("dicom_swept", removed=removed)
                summary.tables = store.assemble(cohort_uids, OUTPUT_TABLES)
                summary.tables["runs"] = write_runs_table(store)
                summary.complete = True
            summary.by_code = _codes_of_all(store, cohort_uids) if summary.complete else summary.by_code
            log.write(
                "run_end",
                complete=summary.complete,
                done=summary.done,
                failed=summary.failed,
                skipped=summary.skipped,
                by_code=summary.by_code,
                elapsed_s=round(summary.elapsed_s, 3),
            )
        # as the user names them: the bucket's URLs when --out is one (its local mirror is gone after this)
        summary.tables = {name: store.public(path) for name, path in summary.tables.items()}
        summary.log_path = store.public(summary.log_path)
        summary.out_dir = store.public(store.root)
    return summary


#: the DICOM objects' creation stamp of an output folder (``dicomout/reproducible.py``), kept for --resume
CREATED_FILE = Path(CREATED_STAMP)


def creation_stamp(root: Path) -> str:
    """``SOURCE_DATE_EPOCH`` of the folder's objects: the one recorded, else the variable, else now; recorded once."""
    from deepcac2.pipeline.dicomout.reproducible import STAMP_VARIABLE

    path = Path(root) / CREATED_FILE
    if path.exists() and path.read_text().strip().isdigit():
        return path.read_text().strip()
    value = os.environ.get(STAMP_VARIABLE, "").strip()
    value = value if value.isdigit() else str(int(time.time()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return value


@contextmanager
def _stamp_environment(created: str) -> Iterator[None]:
    """The run's stamp in this process's environment (local workers inherit it; PipelinePlugin carries it)."""
    from deepcac2.pipeline.dicomout.reproducible import STAMP_VARIABLE

    previous = os.environ.get(STAMP_VARIABLE)
    os.environ[STAMP_VARIABLE] = created
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(STAMP_VARIABLE, None)
        else:
            os.environ[STAMP_VARIABLE] = previous


def register_plugin(client: Any, plugin: PipelinePlugin, log: RunLog, attempts: int = 5) -> None:
    """Register the worker plugin; a worker lost while it is set up (CommClosedError) is retried.

    The scheduler keeps the plugin before it sends it to the workers, so workers that join
    later get it anyway; a retry sends it again to the workers that are there now (their
    setup runs again). A lost scheduler is not retried: the caller turns it into E_SCHEDULER_LOST.
    """
    for attempt in range(1, attempts + 1):
        try:
            client.register_plugin(plugin, name=PLUGIN_NAME)
            return
        except (CommClosedError, OSError) as exc:
            if scheduler_lost(client, exc) is not None:
                raise
            if attempt == attempts:
                raise DeepCACError(
                    ErrorCode.E_WORKER_LOST,
                    f"workers died while the run's plugin was set up on them, {attempts} times "
                    f"(last: {type(exc).__name__}: {exc}); see the workers' logs (an import or the model load)",
                ) from exc
            log.write("plugin_retry", attempt=attempt, error=f"{type(exc).__name__}: {exc}")
            time.sleep(0.5 * attempt)  # the scheduler may still list the dead worker: give it time to drop it


def _codes_of_all(store: OutputStore, wanted: set[str]) -> dict[str, int]:
    """Failure counts per code over the whole cohort (``wanted``), this run and earlier ones."""
    counts = Counter(f.code for f in store.heads() if f.series_uid in wanted and f.status == "failed")
    return dict(sorted(counts.items()))


def run_cohort(
    cohort_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: RunConfig | None = None,
    *,
    stages: Stages | None = None,
) -> RunSummary:
    """Process every series of the cohort Parquet at ``cohort_path`` into ``out_dir``, as ``config`` says."""
    identity = {"cohort_sha256": sha256_file(str(cohort_path))}
    series = from_cohort(cohort_path)  # read a batch at a time, never held whole
    return run_series(series, out_dir, config or RunConfig(), stages=stages, identity=identity, cohort_file=cohort_path)
