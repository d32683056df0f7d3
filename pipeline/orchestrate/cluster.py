"""Which Dask cluster a run uses: a local one (CPU or dask-cuda GPU) or an existing scheduler.

``allowed-failures`` is how often a task may be on a worker that dies before Dask gives
up with KilledWorker (recorded as E_WORKER_LOST). For a local cluster it is set here;
an external scheduler reads it from its own config, e.g.
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=3 dask scheduler``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import dask
from distributed import Client, LocalCluster

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate import defaults

#: the worker resource that inference tasks ask for
GPU = "GPU"
#: the local cluster listens here only: nothing on the network can submit work to it or read its dashboard
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterSpec:
    scheduler: str | None = None
    workers: int | None = None
    threads: int | None = None
    memory_limit: str | None = defaults.MEMORY_LIMIT
    #: None: use GPUs when the machine (local) or any worker (remote) has them
    gpu: bool | None = None
    allowed_failures: int = defaults.ALLOWED_FAILURES
    #: the local cluster's dashboard (HOST:PORT); None: none. It has no authentication and shows
    #: series UIDs, so it is off unless asked for (``--dashboard``), and on loopback by default
    dashboard_address: str | None = None
    #: where the local cluster's scheduler and workers listen: loopback, never every interface
    host: str = LOOPBACK
    connect_timeout_s: float = 30.0


def count_local_gpus() -> int:
    """NVIDIA GPUs visible here, without importing torch (slow) in the client."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return min(n, len(visible.split(","))) if visible else n


def _local_cluster(spec: ClusterSpec) -> Any:
    cpus = os.cpu_count() or 1
    gpus = count_local_gpus() if spec.gpu is None else (count_local_gpus() if spec.gpu else 0)
    if spec.gpu and gpus == 0:
        raise DeepCACError(ErrorCode.E_INTERNAL, "--gpu was asked for but no NVIDIA GPU is visible")
    if gpus:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            LocalCUDACluster = None  # noqa: N806
        # two threads per GPU worker: one runs the model while the other fetches and converts
        threads = spec.threads or max(2, cpus // gpus)
        if LocalCUDACluster is not None:
            return LocalCUDACluster(
                threads_per_worker=threads,
                resources={GPU: 1},
                memory_limit=spec.memory_limit,
                **_listen(spec),
            )
        # without dask-cuda: one worker per GPU would need CUDA_VISIBLE_DEVICES per worker; use one
        return LocalCluster(
            n_workers=1,
            threads_per_worker=threads,
            resources={GPU: 1},
            memory_limit=spec.memory_limit,
            **_listen(spec),
        )
    threads = spec.threads or 1
    workers = spec.workers or max(1, cpus // threads)
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        memory_limit=spec.memory_limit,
        **_listen(spec),
    )


def _listen(spec: ClusterSpec) -> dict[str, Any]:
    """Scheduler and workers on ``spec.host`` (loopback); the dashboard only when asked for.

    Dask's scheduler always serves a few HTTP routes (health, metrics); without a dashboard
    they go to a free port on the same loopback host, not to 8787 on every interface.
    """
    if spec.dashboard_address:
        return {"host": spec.host, "dashboard_address": spec.dashboard_address}
    return {
        "host": spec.host,
        "dashboard_address": None,
        "scheduler_kwargs": {"dashboard": False, "dashboard_address": f"{spec.host}:0"},
    }


@contextmanager
def open_client(spec: ClusterSpec) -> Iterator[Client]:
    """A connected client; a local cluster started here is shut down on exit."""
    after = ExitStack()  # left after the client is closed
    with after, ExitStack() as stack:
        stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": spec.allowed_failures}))
        if spec.scheduler:
            try:
                client = Client(spec.scheduler, timeout=spec.connect_timeout_s)
            except OSError as exc:  # TimeoutError included
                raise DeepCACError(
                    ErrorCode.E_SCHEDULER_LOST,
                    f"cannot reach the Dask scheduler {spec.scheduler} within {spec.connect_timeout_s:g} s: {exc}",
                    scheduler=spec.scheduler,
                ) from exc
        else:
            cluster = stack.enter_context(_local_cluster(spec))
            client = Client(cluster)
        stack.enter_context(client)
        try:
            yield client
        except DeepCACError as exc:
            if exc.code is ErrorCode.E_SCHEDULER_LOST:
                # closing cancels the client's reconnect loop, which Dask logs with a traceback; the
                # coded error already says what happened and what to do
                after.enter_context(_quiet(logging.getLogger("distributed.client")))
            raise


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def workers_info(client: Client) -> dict[str, Any]:
    try:
        return client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older distributed lists every worker without the argument
        return client.scheduler_info()["workers"]


def has_gpu(worker: dict[str, Any]) -> bool:
    """Whether a worker, as ``workers_info`` lists it, advertises the GPU resource."""
    return GPU in (worker.get("resources") or {})


def use_gpu_resource(client: Client, spec: ClusterSpec, wait_s: float = 30.0) -> bool:
    """Whether inference tasks should ask for the GPU resource.

    Asking for a resource no worker has would leave the tasks waiting forever, so with
    ``gpu`` unset it is used only when a connected worker advertises it.
    """
    if spec.gpu is False:
        return False
    if not workers_info(client):
        try:
            client.wait_for_workers(1, timeout=wait_s)
        except TimeoutError as exc:
            raise DeepCACError(
                ErrorCode.E_TIMEOUT, f"no Dask worker joined the scheduler within {wait_s:.0f} s"
            ) from exc
    has = any(has_gpu(w) for w in workers_info(client).values())
    if spec.gpu and not has:
        raise DeepCACError(ErrorCode.E_INTERNAL, f"--gpu was asked for but no worker has the {GPU} resource")
    return has
