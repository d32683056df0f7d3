"""The client loop: keep at most ``max_in_flight`` series submitted, commit each as it finishes.

Losing a worker is transient. Dask reschedules the tasks of a worker that died; a series
whose task was on too many dying workers (``KilledWorker``), whose connection closed or
whose future was cancelled from outside is submitted again, away from the workers it
was lost on, up to ``retries`` times, and only then recorded as ``E_WORKER_LOST``. A
worker that is gone without its connection closing (frozen, its host down) sends no
heartbeats: the loop removes it from the scheduler after ``worker_ttl_s`` of silence,
so its tasks run elsewhere long before the series timeout.

The series timeout counts from when a task of the series started running on a worker, as
the scheduler reports it (``watch.task_states``), never from submission: a series queued
behind a hung one must not time out with it. A series none of whose tasks has run yet,
waiting on one worker while another has a free thread, is moved there (Dask's work
stealing does not move it reliably: it weighs task durations it has not measured yet).
A hung task's worker is restarted through its nanny; one without a nanny is removed from
the scheduler (when others remain), since its stuck thread would hold every task sent to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distributed import Client, Future, wait

from deepcac2.errors import DeepCACError, ErrorCode, error_code_of
from deepcac2.pipeline.orchestrate import hooks
from deepcac2.pipeline.orchestrate.cluster import GPU, has_gpu, workers_info
from deepcac2.pipeline.orchestrate.log import RunLog
from deepcac2.pipeline.orchestrate.losses import KilledWorker, scheduler_lost, worker_lost  # noqa: F401 - KilledWorker: re-exported
from deepcac2.pipeline.orchestrate.progress import Progress
from deepcac2.pipeline.orchestrate.records import failure_row
from deepcac2.pipeline.orchestrate.span_trim import TRIM_EVERY, trim_spans
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore, optional_outputs_failed
from deepcac2.pipeline.orchestrate.tasks import Done, Failure, Policy, Stages, fetch_load_task, finish_task, infer_task
from deepcac2.pipeline.orchestrate.watch import remove_silent_workers, remove_worker, task_states
from deepcac2.pipeline.stage_values import SeriesRef

if TYPE_CHECKING:
    from deepcac2.pipeline.orchestrate.run import RunConfig, RunSummary

#: failures that concern the whole run, not one series: the run stops instead of recording them
RUN_FATAL = frozenset({ErrorCode.E_MODEL_LOAD.value, ErrorCode.E_MODEL_UNKNOWN.value})
#: how long the loop waits for a series to finish before it looks at the deadlines again
POLL_S = 1.0
#: how often the loop asks the scheduler whether a worker holding a series' task went silent
WATCH_S = 5.0
#: a series none of whose tasks has run, queued this long on one worker while another has a free thread, moves
MOVE_AFTER_S = 5.0
#: nothing in flight can run (no worker, or none with the resource a task needs): say so after
#: this long, then again every STALL_REPEAT_S. The run waits: an adaptive cluster (SLURM,
#: Kubernetes) may have no worker for a while and get one later.
STALL_NOTE_S = 60.0
STALL_REPEAT_S = 300.0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@dataclass
class InFlight:
    """One submitted series: its three futures, the workers it was lost on, what the scheduler last said of it."""

    ref: SeriesRef
    attempt: int
    chain: list[Future]
    avoid: frozenset[str] = field(default_factory=frozenset)
    #: how often it was moved off a worker it queued on (part of its task keys)
    moves: int = 0
    #: whether any of its tasks has run (or finished) on a worker
    started: bool = False
    #: the task running now: its key, worker, and since when (time.monotonic()); None between tasks
    running: tuple[str, str, float] | None = None
    #: the worker its next task is queued on (not started), and since when
    queued: tuple[str, float] | None = None


class SeriesLoop:
    """Keeps the pipeline full: submit, collect, commit, refill."""

    def __init__(self, client: Client, store: OutputStore, config: RunConfig, stages: Stages, run_id: str) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.stages = stages
        self.tag = run_id.rsplit("-", 1)[-1]
        self.policy = Policy(
            store.dicom_target(),
            config.conventions,
            config.retries,
            config.backoff_s,
            anatomy=config.anatomy,
            verify_inputs=config.verify_inputs,
        )
        self.gpu = False
        #: last task key -> the series in flight
        self.inflight: dict[str, InFlight] = {}
        #: workers left with a stuck thread (a timed-out task that could be neither restarted nor removed)
        self.stuck: set[str] = set()
        self._next_watch = time.monotonic() + WATCH_S
        self._next_observe = 0.0
        #: since when nothing in flight could run (None: something can), and when to say so next
        self._stalled_since: float | None = None
        self._next_stall_note = 0.0
        self._bar: Progress | None = None

    def submit(self, ref: SeriesRef, attempt: int, avoid: frozenset[str] = frozenset(), moves: int = 0) -> None:
        """Submit the three tasks of a series; a retry or a move prefers workers other than those in ``avoid``."""
        tag = f"{ref.series_uid}-{self.tag}-{attempt}" + (f"-m{moves}" if moves else "")
        avoid = avoid | self.stuck  # a worker left with a stuck thread looks free to the scheduler
        where: dict[str, Any] = {}
        infer_where: dict[str, Any] = {}
        if avoid:
            info = workers_info(self.client)
            others = sorted(set(info) - avoid)
            if others:  # a preference, not a rule: the series still runs if only those workers are left
                where = {"workers": others, "allow_other_workers": True}
            # inference prefers only workers with the GPU: Dask's scheduler fails (KeyError 'GPU',
            # and drops the worker) when it places a resource task on a preferred worker without it
            gpus = [w for w in others if not self.gpu or has_gpu(info[w])]
            if gpus:
                infer_where = {"workers": gpus, "allow_other_workers": True}
        submit = self.client.submit
        f1 = submit(fetch_load_task, ref, self.stages, self.policy, key=f"fetch_load-{tag}", priority=0, **where)
        infer_resources = {GPU: 1} if self.gpu else None
        f2 = submit(
            infer_task,
            ref,
            f1,
            self.stages,
            self.policy,
            key=f"infer-{tag}",
            priority=1,
            resources=infer_resources,
            **infer_where,
        )
        # the last stage first: finishing a series frees its memory
        f3 = submit(finish_task, ref, f1, f2, self.stages, self.policy, key=f"score_convert-{tag}", priority=2, **where)
        self.inflight[f3.key] = InFlight(ref, attempt, [f1, f2, f3], avoid, moves)

    def outcome(self, future: Future, ref: SeriesRef, attempt: int) -> Done | Failure:
        try:
            return future.result()
        except Exception as exc:
            lost_scheduler = scheduler_lost(self.client, exc)
            if lost_scheduler is not None:  # not this series' fault: the run stops, the series stays to do
                raise lost_scheduler from exc
            lost = worker_lost(exc, ref, attempt)
            if lost is not None:
                return lost
            code = error_code_of(exc).value
            return Failure(ref.series_uid, "orchestrate", code, f"{type(exc).__name__}: {exc}", attempt)

    def run(self, todo: Iterable[SeriesRef], bar: Progress, log: RunLog, summary: RunSummary) -> None:
        """Run ``todo``; E_SCHEDULER_LOST (not a traceback) when the scheduler goes away meanwhile."""
        try:
            self._run(todo, bar, log, summary)
        except (DeepCACError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # FuturesCancelledError is an asyncio.CancelledError: a BaseException
            lost = scheduler_lost(self.client, exc)
            if lost is None:
                raise
            raise lost from exc

    def _run(self, todo: Iterable[SeriesRef], bar: Progress, log: RunLog, summary: RunSummary) -> None:
        pending = iter(todo)
        self._bar = bar
        limit = self.config.max_in_flight or 2 * _total_threads(self.client) + 2
        for ref in pending:
            self.submit(ref, 1)
            if len(self.inflight) >= limit:
                break
        while self.inflight:
            for key in self._finished():
                item = self.inflight.pop(key)
                ref, attempt = item.ref, item.attempt
                result = self.outcome(item.chain[-1], ref, attempt)
                for f in item.chain:
                    f.release()
                item.chain.clear()
                if isinstance(result, Failure) and result.code in RUN_FATAL:
                    raise DeepCACError(ErrorCode(result.code), f"the run stops: {result.message}")
                if isinstance(result, Failure) and result.code == ErrorCode.E_WORKER_LOST.value:
                    if attempt <= self.config.retries:
                        worker = result.detail.get("worker", "")
                        log.write(
                            "series_retry",
                            series_uid=ref.series_uid,
                            attempt=attempt,
                            code=result.code,
                            message=result.message,
                        )
                        self.submit(ref, attempt + 1, item.avoid | ({worker} if worker else set()))
                        continue
                self._settle(ref, result, attempt, pending, bar, log, summary)
            self._observe(log)
            for ref, failure in self._expired(log):
                self._settle(ref, failure, failure.attempts, pending, bar, log, summary)
            self._watch(log)

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
        hooks.after_commit(finished)  # tests hold the run here (committed and counted)
        if self.config.memory_every and finished % self.config.memory_every == 0:
            workers = self.client.run(_rss_mb)
            rss = _rss_mb()
            log.write(
                "memory", finished=finished, in_flight=len(self.inflight), client_rss_mb=rss, worker_rss_mb=workers
            )
        if finished % TRIM_EVERY == 0 and trim_spans(self.client) is None:  # span_trim's doc: ~0.6 KB a series
            log.write("span_trim_skipped", finished=finished)
        nxt = next(pending, None)
        if nxt is not None:
            self.submit(nxt, 1)

    def _finished(self) -> list[str]:
        """Keys of the series whose last task is finished; waits at most POLL_S for the first one."""
        tails = [item.chain[-1] for item in self.inflight.values()]
        try:
            done, _ = wait(tails, timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return [f.key for f in done]

    def _observe(self, log: RunLog) -> None:
        """Every POLL_S: ask the scheduler which task of each series runs (since when) or queues, and where.

        Then move the series that queue behind another task while a worker has a free thread.
        """
        now = time.monotonic()
        if not self.inflight or now < self._next_observe:
            return
        self._next_observe = now + POLL_S
        keys = [f.key for item in self.inflight.values() for f in item.chain]
        try:
            seen = self.client.run_on_scheduler(task_states, keys=keys)
        except Exception as exc:  # the run goes on; the next poll asks again
            log.write("watchdog_error", error=f"{type(exc).__name__}: {exc}")
            return
        now = time.monotonic()
        states = seen["tasks"]
        for item in self.inflight.values():
            mine = [(f.key, *states[f.key]) for f in item.chain if f.key in states]
            running = [(key, worker, now - float(secs)) for key, state, worker, secs in mine if state == "running"]
            item.started = item.started or bool(running) or any(s in ("memory", "erred") for _, s, _, _ in mine)
            if running:
                key, worker, since = running[0]
                # the same task on the same worker keeps its first estimate (heartbeats lag); the same
                # key on another worker was rescheduled there (its worker died): its clock starts again
                same = item.running is not None and item.running[:2] == (key, worker)
                item.running = item.running if same else (key, worker, since)
            else:
                item.running = None
            queued = next((worker for _, state, worker, _ in mine if state == "assigned"), None)
            if queued is None or running:
                item.queued = None
            elif item.queued is None or item.queued[0] != queued:
                item.queued = (queued, now)
        self._move_queued(set(seen["free"]), now, log)
        self._note_stall(states.values(), int(seen.get("workers", 1)), now, log)

    def _note_stall(self, states: Any, workers: int, now: float, log: RunLog) -> None:
        """Say so, in the log and above the progress bar, when nothing in flight can run.

        That is: no worker is connected (all were lost), or tasks wait for a worker with a
        resource none has (``no-worker``: the GPU workers are gone) while nothing runs. Such
        tasks never start, so the series timeout never ends them; the run waits for workers,
        as an adaptive cluster needs, but never silently.
        """
        kinds = {state for state, _, _ in states}
        stalled = bool(self.inflight) and (
            workers == 0 or ("no-worker" in kinds and not kinds & {"running", "assigned"})
        )
        if not stalled:
            self._stalled_since = None
            return
        if self._stalled_since is None:
            self._stalled_since, self._next_stall_note = now, now + STALL_NOTE_S
            return
        if now < self._next_stall_note:
            return
        self._next_stall_note = now + STALL_REPEAT_S
        waited = now - self._stalled_since
        reason = (
            "no Dask worker is connected"
            if workers == 0
            else "its tasks need a worker resource (GPU) that no connected worker has"
        )
        log.write("no_worker", waited_s=round(waited), workers=workers, in_flight=len(self.inflight), reason=reason)
        if self._bar is not None:
            self._bar.write(
                f"deepcac2 run: nothing could run for {waited:.0f} s: {reason}; waiting for workers "
                "(Ctrl-C stops the run, committed series are kept, --resume continues)"
            )

    def _move_queued(self, free: set[str], now: float, log: RunLog) -> None:
        """Resubmit, away from their worker, the series that never started and queue there while others are free.

        Nothing of such a series has run, so moving it costs nothing. A task queued on a
        worker waits for that worker's threads: behind a hung task, for the whole timeout.
        """
        for key, item in list(self.inflight.items()):
            if item.started or item.queued is None:
                continue
            worker, since = item.queued
            if now - since < MOVE_AFTER_S or not free - {worker}:
                continue
            del self.inflight[key]
            self.client.cancel(item.chain, force=True)
            for f in item.chain:
                f.release()
            log.write("series_moved", series_uid=item.ref.series_uid, worker=worker, queued_s=round(now - since, 1))
            self.submit(item.ref, item.attempt, item.avoid | {worker}, item.moves + 1)
            free.discard(next(iter(sorted(free - {worker}))))  # one series per free worker and poll

    def _expired(self, log: RunLog) -> list[tuple[SeriesRef, Failure]]:
        """Series whose running task passed ``series_timeout_s``: cancelled, their worker restarted, E_TIMEOUT.

        The clock is the task's time running on its worker, never time spent queued.
        Dask cannot interrupt a running task; restarting its worker (through the nanny) is
        the only way to free the stuck thread. A worker without a nanny is removed from the
        scheduler instead (when others remain), so no task waits behind that thread. Other
        tasks on that worker are rescheduled by Dask. E_TIMEOUT is transient, so
        ``--resume`` tries such a series again.
        """
        timeout = self.config.series_timeout_s
        if not timeout:
            return []
        now = time.monotonic()
        out = []
        for key, item in list(self.inflight.items()):
            ref, attempt = item.ref, item.attempt
            if item.running and now - item.running[2] > timeout:
                task, worker, _ = item.running
                stage = task.split("-", 1)[0]
                self.client.cancel(item.chain, force=True)
                freed = self._restart(worker, log)
                message = f"its {stage} task ran {timeout:g} s on worker {worker} without finishing; {freed}"
            elif item.queued and item.queued[0] in self.stuck and now - item.queued[1] > timeout:
                # nowhere else to go (the only worker, or the only one with the resource it needs)
                worker, since = item.queued
                stage = "orchestrate"
                self.client.cancel(item.chain, force=True)
                message = f"waited {now - since:.0f} s behind the stuck thread of worker {worker}, which stays"
            else:
                continue
            del self.inflight[key]
            out.append((ref, Failure(ref.series_uid, stage, ErrorCode.E_TIMEOUT.value, message, attempt)))
        return out

    def _watch(self, log: RunLog) -> None:
        """Every WATCH_S: remove from the scheduler the silent workers that hold tasks of series in flight.

        Dask notices a worker that died when its connection closes. One that is frozen, or
        whose host went away, keeps its connection half-open and its tasks until the
        scheduler's own ``worker-ttl`` (5 min by default, external schedulers their own).
        Removing it makes the scheduler run those tasks elsewhere now.
        """
        ttl = self.config.worker_ttl_s
        now = time.monotonic()
        if not ttl or not self.inflight or now < self._next_watch:
            return
        self._next_watch = now + WATCH_S
        keys = [f.key for item in self.inflight.values() for f in item.chain]
        try:
            removed = self.client.run_on_scheduler(remove_silent_workers, keys=keys, silent_s=ttl)
        except Exception as exc:  # the watchdog must never stop the run: the series timeout still applies
            log.write("watchdog_error", error=f"{type(exc).__name__}: {exc}")
            return
        for worker, silent, held in removed:
            log.write("worker_removed", worker=worker, silent_s=round(silent, 1), tasks=held)

    def _restart(self, worker: str, log: RunLog) -> str:
        """Free the thread stuck on ``worker``: restart it through its nanny, else remove it from the scheduler."""
        try:
            status = self.client.restart_workers([worker], timeout=60, raise_for_error=False)
        except Exception as exc:  # a worker without a nanny cannot be restarted from here
            failed = f"restarting it failed ({type(exc).__name__}: {exc})"
        else:
            return f"worker restarted to free the stuck thread: {status}"
        workers = workers_info(self.client)
        needs = set((workers.get(worker) or {}).get("resources") or {})
        if not any(needs <= set(w.get("resources") or {}) for a, w in workers.items() if a != worker):
            self.stuck.add(worker)
            why = "the only worker" + (f" with {sorted(needs)}" if needs else "")
            return f"{failed}; it is {why}, so it stays, with a stuck thread"
        try:
            left = self.client.run_on_scheduler(remove_worker, address=worker, reason="stuck")
        except Exception as exc:
            return f"{failed}; removing it failed too ({type(exc).__name__}: {exc}); a stuck thread may remain"
        log.write("worker_removed", worker=worker, reason="stuck thread, no nanny", workers_left=left)
        return f"{failed}; removed it from the scheduler so no task waits behind its stuck thread"

    def commit(self, ref: SeriesRef, result: Done | Failure, attempt: int, log: RunLog, summary: RunSummary) -> Any:
        """Write the series' fragment (done, or one failures row) and count it."""
        if isinstance(result, Done):
            try:
                # a missing optional output (review picture on a full disk) marks it for --resume
                incomplete = optional_outputs_failed(result.rows)
                self.store.commit(Fragment(ref.series_uid, "done", None, result.rows, incomplete, result.inputs))
            except DeepCACError as exc:  # rows that cannot be stored fail this series, not the run
                result = Failure(ref.series_uid, "convert", exc.code.value, exc.message, attempt)
        if isinstance(result, Done):
            summary.done += 1
            for stage, seconds in result.timings.items():
                summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
            log.write("series_done", series_uid=ref.series_uid, seconds=result.timings, workers=result.workers)
            return result
        row = failure_row(result)
        # no object of a failed series may ship: neither an earlier run's nor half of this one's
        self.store.discard_dicom(ref.series_uid)
        try:
            self.store.commit(Fragment(ref.series_uid, "failed", result.code, {"failures": [row]}))
        except DeepCACError as exc:  # the state folder itself cannot be written: nothing can be recorded
            raise DeepCACError(
                exc.code, f"the run stops: {exc.message}; free space or fix permissions, then run again with --resume"
            ) from exc
        summary.failed += 1
        summary.by_code[result.code] = summary.by_code.get(result.code, 0) + 1
        log.write("series_failed", **row)
        return result


def _total_threads(client: Client) -> int:
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers_info(client).values()))
