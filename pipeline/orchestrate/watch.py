"""What the client asks the scheduler about the series in flight (run with ``client.run_on_scheduler``).

The series timeout counts how long a task has been *running* on a worker, which only the
scheduler knows (each worker's heartbeat reports its executing tasks and for how long). A
task that waits in a worker's queue behind another one, a hung one for instance, is not
running: its series must not time out for it, and it may be moved to a worker with a free
thread (``loop.SeriesLoop._move_queued``).
"""

from __future__ import annotations

from typing import Any


def task_states(keys: list[str], dask_scheduler: Any = None) -> dict[str, Any]:
    """On the scheduler: where each of ``keys`` is, and which workers have a free thread.

    ``tasks``: key -> (state, worker, running_s). ``state`` is ``running`` (the worker
    reported it executing, ``running_s`` seconds so far), ``assigned`` (sent to
    ``worker``, waiting there for a thread), or the scheduler's own state (``memory``,
    ``erred``, ``waiting``, ``queued`` on the scheduler, ``no-worker``, ...). Keys the scheduler does not know are left out.
    ``free``: addresses of running workers assigned fewer tasks than they have threads.
    ``workers``: how many workers are running.
    """
    from distributed.metrics import time as wall_clock  # the clock of the scheduler's last_seen

    scheduler = dask_scheduler
    now = wall_clock()
    tasks: dict[str, tuple[str, str | None, float | None]] = {}
    for key in keys:
        ts = scheduler.tasks.get(key)
        if ts is None:
            continue
        ws = ts.processing_on if ts.state == "processing" else None
        if ws is None:
            tasks[key] = (str(ts.state), None, None)
            continue
        reported = ws.executing.get(ts)  # as of the worker's last heartbeat
        if reported is None:
            tasks[key] = ("assigned", ws.address, None)
        else:
            tasks[key] = ("running", ws.address, reported + max(0.0, now - ws.last_seen))
    running = [ws for ws in scheduler.workers.values() if str(getattr(ws.status, "name", ws.status)) == "running"]
    free = sorted(ws.address for ws in running if len(ws.processing) < ws.nthreads)
    return {"tasks": tasks, "free": free, "workers": len(running)}


async def remove_worker(address: str, reason: str, dask_scheduler: Any = None) -> int:
    """On the scheduler: remove (and close) one worker; its tasks run elsewhere. Returns the workers left."""
    from distributed.metrics import time as wall_clock

    scheduler = dask_scheduler
    if address in scheduler.workers:
        await scheduler.remove_worker(address=address, stimulus_id=f"deepcac2-{reason}-{wall_clock()}", close=True)
    return len(scheduler.workers)


async def remove_silent_workers(
    keys: list[str], silent_s: float, dask_scheduler: Any = None
) -> list[tuple[str, float, list[str]]]:
    """On the scheduler: remove each worker that processes one of ``keys`` and sent no heartbeat for ``silent_s``.

    Returns (worker address, seconds silent, the keys it held). The scheduler reschedules
    the tasks of a removed worker, as it does when a worker's connection closes. As in the
    scheduler's own ``worker-ttl`` check, the limit is at least 10 heartbeat intervals.
    """
    from distributed.metrics import time as wall_clock
    from distributed.scheduler import heartbeat_interval

    scheduler = dask_scheduler
    now = wall_clock()
    silent_s = max(silent_s, 10 * heartbeat_interval(len(scheduler.workers)))
    silent: dict[str, tuple[float, list[str]]] = {}
    for key in keys:
        ts = scheduler.tasks.get(key)
        ws = getattr(ts, "processing_on", None) if ts is not None and ts.state == "processing" else None
        if ws is None:
            continue
        quiet = now - ws.last_seen
        if quiet > silent_s:
            silent.setdefault(ws.address, (quiet, []))[1].append(str(key))
    for address in silent:
        await scheduler.remove_worker(address=address, stimulus_id=f"deepcac2-silent-{now}", close=True)
    return [(address, quiet, held) for address, (quiet, held) in sorted(silent.items())]
