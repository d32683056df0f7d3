"""What losing a worker or the scheduler looks like to the client, as coded results.

A worker lost under a series (``KilledWorker``, a closed connection, a cancelled future) is
``E_WORKER_LOST`` for that series, which the loop submits again. Losing the scheduler loses
every task in flight at once: that is not a series' failure but the run's, ``E_SCHEDULER_LOST``.
"""

from __future__ import annotations

from distributed import Client
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.tasks import Failure
from deepcac2.pipeline.stage_values import SeriesRef

try:  # where KilledWorker lives moved between distributed releases
    from distributed import KilledWorker
except ImportError:  # pragma: no cover
    from distributed.scheduler import KilledWorker  # type: ignore[no-redef]


def worker_lost(exc: BaseException, ref: SeriesRef, attempt: int) -> Failure | None:
    """The E_WORKER_LOST failure for an exception that means the series' worker (or connection) was lost, else None.

    The failure's detail names the worker it was last on, when Dask says.
    """
    if isinstance(exc, KilledWorker):
        stage = str(getattr(exc, "task", "")).split("-", 1)[0] or "worker"
        worker = str(getattr(getattr(exc, "last_worker", None), "address", "") or "")
        msg = f"the task's worker died too many times (allowed-failures reached; last on {worker or 'unknown'})"
        return Failure(ref.series_uid, stage, ErrorCode.E_WORKER_LOST.value, msg, attempt, {"worker": worker})
    if isinstance(exc, FutureCancelledError):
        return Failure(ref.series_uid, "orchestrate", ErrorCode.E_WORKER_LOST.value, f"cancelled: {exc}", attempt)
    if isinstance(exc, CommClosedError | ConnectionError):
        msg = f"connection lost while waiting for the series: {type(exc).__name__}: {exc}"
        return Failure(ref.series_uid, "orchestrate", ErrorCode.E_WORKER_LOST.value, msg, attempt)
    return None


def scheduler_lost(client: Client, exc: BaseException) -> DeepCACError | None:
    """E_SCHEDULER_LOST when ``exc`` comes from losing the scheduler (the client is no longer connected), else None.

    Losing the scheduler loses every task in flight (Dask cancels the client's futures with
    the reason ``scheduler-connection-lost``); committed series are safe, and ``--resume``
    continues once a scheduler is there again.
    """
    if "scheduler-connection-lost" not in str(exc) and client.status == "running":
        return None
    address = getattr(getattr(client, "scheduler", None), "address", None) or "?"
    return DeepCACError(
        ErrorCode.E_SCHEDULER_LOST,
        f"lost the connection to the Dask scheduler {address} ({type(exc).__name__}); the series in flight "
        "were dropped, every committed series is kept; start a scheduler again, then run again with --resume",
        scheduler=address,
    )


__all__ = ["KilledWorker", "scheduler_lost", "worker_lost"]
