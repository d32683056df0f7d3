"""The client loop: keep at most ``max_in_flight`` series submitted, commit each as it finishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from distributed import Client, Future, as_completed
from distributed.client import FutureCancelledError

from deepcac2.errors import DeepCACError, ErrorCode, error_code_of
from deepcac2.pipeline.orchestrate.cluster import GPU, workers_info
from deepcac2.pipeline.orchestrate.log import RunLog
from deepcac2.pipeline.orchestrate.progress import Progress
from deepcac2.pipeline.orchestrate.records import failure_row
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore
from deepcac2.pipeline.orchestrate.tasks import Done, Failure, Policy, Stages, fetch_load_task, finish_task, infer_task
from deepcac2.pipeline.types import SeriesRef

if TYPE_CHECKING:
    from deepcac2.pipeline.orchestrate.run import RunConfig, RunSummary

try:  # where KilledWorker lives moved between distributed releases
    from distributed import KilledWorker
except ImportError:  # pragma: no cover
    from distributed.scheduler import KilledWorker  # type: ignore[no-redef]

#: failures that concern the whole run, not one series: the run stops instead of recording them
RUN_FATAL = frozenset({ErrorCode.E_MODEL_LOAD.value, ErrorCode.E_MODEL_UNKNOWN.value})


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class SeriesLoop:
    """Keeps the pipeline full: submit, collect, commit, refill."""

    def __init__(self, client: Client, store: OutputStore, config: RunConfig, stages: Stages, run_id: str) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.stages = stages
        self.tag = run_id.rsplit("-", 1)[-1]
        self.policy = Policy(str(store.dicom_dir), config.conventions, config.retries, config.backoff_s)
        self.gpu = False
        self.inflight: dict[str, tuple[SeriesRef, int, list[Future]]] = {}
        self.ac = as_completed()

    def submit(self, ref: SeriesRef, attempt: int) -> None:
        tag = f"{ref.series_uid}-{self.tag}-{attempt}"
        submit = self.client.submit
        f1 = submit(fetch_load_task, ref, self.stages, self.policy, key=f"fetch_load-{tag}", priority=0)
        infer_resources = {GPU: 1} if self.gpu else None
        f2 = submit(
            infer_task, ref, f1, self.stages, self.policy, key=f"infer-{tag}", priority=1, resources=infer_resources
        )
        # the last stage first: finishing a series frees its memory
        f3 = submit(finish_task, ref, f1, f2, self.stages, self.policy, key=f"score_convert-{tag}", priority=2)
        self.inflight[f3.key] = (ref, attempt, [f1, f2, f3])
        self.ac.add(f3)

    def outcome(self, future: Future, ref: SeriesRef, attempt: int) -> Done | Failure:
        try:
            return future.result()
        except KilledWorker as exc:
            stage = str(getattr(exc, "task", "")).split("-", 1)[0] or "worker"
            msg = "the task's worker died too many times (allowed-failures reached)"
            return Failure(ref.series_uid, stage, ErrorCode.E_WORKER_LOST.value, msg, attempt)
        except FutureCancelledError as exc:
            return Failure(ref.series_uid, "orchestrate", ErrorCode.E_WORKER_LOST.value, f"cancelled: {exc}", attempt)
        except Exception as exc:
            code = error_code_of(exc).value
            return Failure(ref.series_uid, "orchestrate", code, f"{type(exc).__name__}: {exc}", attempt)

    def run(self, todo: Sequence[SeriesRef], bar: Progress, log: RunLog, summary: RunSummary) -> None:
        pending = iter(todo)
        limit = self.config.max_in_flight or 2 * _total_threads(self.client) + 2
        for ref in pending:
            self.submit(ref, 1)
            if len(self.inflight) >= limit:
                break
        for future in self.ac:
            ref, attempt, chain = self.inflight.pop(future.key)
            result = self.outcome(future, ref, attempt)
            for f in chain:
                f.release()
            del chain, future
            if isinstance(result, Failure) and result.code in RUN_FATAL:
                raise DeepCACError(ErrorCode(result.code), f"the run stops: {result.message}")
            if isinstance(result, Failure) and result.code == ErrorCode.E_WORKER_LOST.value:
                if attempt <= self.config.retries:
                    log.write("series_retry", series_uid=ref.series_uid, attempt=attempt, code=result.code)
                    self.submit(ref, attempt + 1)
                    continue
            result = self.commit(ref, result, attempt, log, summary)
            bar.update(isinstance(result, Done))
            finished = summary.done + summary.failed
            if self.config.memory_every and finished % self.config.memory_every == 0:
                workers = self.client.run(_rss_mb)
                rss = _rss_mb()
                log.write(
                    "memory", finished=finished, in_flight=len(self.inflight), client_rss_mb=rss, worker_rss_mb=workers
                )
            nxt = next(pending, None)
            if nxt is not None:
                self.submit(nxt, 1)

    def commit(self, ref: SeriesRef, result: Done | Failure, attempt: int, log: RunLog, summary: RunSummary) -> Any:
        """Write the series' fragment (done, or one failures row) and count it."""
        if isinstance(result, Done):
            try:
                self.store.commit(Fragment(ref.series_uid, "done", None, result.rows))
            except DeepCACError as exc:  # rows that cannot be stored fail this series, not the run
                result = Failure(ref.series_uid, "convert", exc.code.value, exc.message, attempt)
        if isinstance(result, Done):
            summary.done += 1
            for stage, seconds in result.timings.items():
                summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
            log.write("series_done", series_uid=ref.series_uid, seconds=result.timings, workers=result.workers)
            return result
        row = failure_row(result)
        self.store.commit(Fragment(ref.series_uid, "failed", result.code, {"failures": [row]}))
        summary.failed += 1
        summary.by_code[result.code] = summary.by_code.get(result.code, 0) + 1
        log.write("series_failed", **row)
        return result


def _total_threads(client: Client) -> int:
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers_info(client).values()))
