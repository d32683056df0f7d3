"""The client loop: keep at most ``max_in_flight`` series submitted, commit each as it finishes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from distributed import Client, Future, wait
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
#: how long the loop waits for a series to finish before it looks at the deadlines again
POLL_S = 1.0


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
        self.policy = Policy(
            str(store.dicom_dir), config.conventions, config.retries, config.backoff_s, anatomy=config.anatomy
        )
        self.gpu = False
        #: last task key -> (series, attempt, its three futures, monotonic submit time)
        self.inflight: dict[str, tuple[SeriesRef, int, list[Future], float]] = {}

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
        self.inflight[f3.key] = (ref, attempt, [f1, f2, f3], time.monotonic())

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
        while self.inflight:
            for key in self._finished():
                ref, attempt, chain, _ = self.inflight.pop(key)
                result = self.outcome(chain[-1], ref, attempt)
                for f in chain:
                    f.release()
                del chain
                if isinstance(result, Failure) and result.code in RUN_FATAL:
                    raise DeepCACError(ErrorCode(result.code), f"the run stops: {result.message}")
                if isinstance(result, Failure) and result.code == ErrorCode.E_WORKER_LOST.value:
                    if attempt <= self.config.retries:
                        log.write("series_retry", series_uid=ref.series_uid, attempt=attempt, code=result.code)
                        self.submit(ref, attempt + 1)
                        continue
                self._settle(ref, result, attempt, pending, bar, log, summary)
            for ref, failure in self._expired():
                self._settle(ref, failure, failure.attempts, pending, bar, log, summary)

    def _settle(
        self,
        ref: SeriesRef,
        result: Done | Failure,
        attempt: int,
        pending: Iterator[SeriesRef],
        bar: Progress,
        log: RunLog,
        summary: RunSummary,
    ) -> None:
        """Commit a finished series, report progress and memory, and submit the next one."""
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

    def _finished(self) -> list[str]:
        """Keys of the series whose last task is finished; waits at most POLL_S for the first one."""
        tails = [chain[-1] for _, _, chain, _ in self.inflight.values()]
        try:
            done, _ = wait(tails, timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return [f.key for f in done]

    def _expired(self) -> list[tuple[SeriesRef, Failure]]:
        """Series past ``series_timeout_s`` since submission: cancelled, their workers restarted, E_TIMEOUT.

        Dask cannot interrupt a running task; restarting its worker (through the nanny) is
        the only way to free the stuck thread. Other tasks on that worker are rescheduled
        by Dask. E_TIMEOUT is transient, so ``--resume`` tries such a series again.
        """
        timeout = self.config.series_timeout_s
        now = time.monotonic()
        late = [key for key, (*_, t0) in self.inflight.items() if timeout and now - t0 > timeout]
        if not late:
            return []
        processing = {w: set(keys) for w, keys in self.client.processing().items()}
        out = []
        for key in late:
            ref, attempt, chain, _ = self.inflight.pop(key)
            keys = {f.key for f in chain}
            busy = sorted(w for w, running in processing.items() if running & keys)
            running = sorted(k for w in busy for k in processing[w] & keys)
            stage = running[0].split("-", 1)[0] if running else "orchestrate"
            self.client.cancel(chain, force=True)
            message = f"not finished {timeout:g} s after it was submitted (in stage {stage}); {self._restart(busy)}"
            out.append((ref, Failure(ref.series_uid, stage, ErrorCode.E_TIMEOUT.value, message, attempt)))
        return out

    def _restart(self, workers: list[str]) -> str:
        if not workers:
            return "its tasks were cancelled before any started"
        try:
            status = self.client.restart_workers(workers, timeout=60, raise_for_error=False)
        except Exception as exc:  # a worker without a nanny cannot be restarted from here
            return f"restarting worker(s) {workers} failed ({type(exc).__name__}: {exc}); a stuck thread may remain"
        return f"worker(s) restarted to free the stuck thread: {status}"

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
