"""Helpers for the orchestration tests: real Dask processes on loopback, tiny cohort files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

#: this interpreter runs scheduler and workers (a copied venv's ``dask`` script may name another python)
DASK = [sys.executable, "-m"]


def held_run(cmd: list[str], flag: Path, at_commit: int, **popen) -> subprocess.Popen:
    """Start ``cmd`` (a ``deepcac2 run``) that holds after its ``at_commit``-th commit until ``flag`` is removed.

    Returns once the run is held: it cannot finish before the test acts (SIGINT, kill the
    scheduler), however loaded the machine is. No fragment polling, no sleep race.
    """
    from deepcac2.pipeline.orchestrate.hooks import HOLD_ENV

    env = {**os.environ, **popen.pop("env", {}), HOLD_ENV: f"{at_commit}:{flag}"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **popen)
    end = time.time() + 180
    while not flag.exists():
        if proc.poll() is not None or time.time() > end:
            text = proc.communicate(timeout=30)[0] if proc.poll() is not None else "(still running)"
            proc.kill()
            raise AssertionError(f"the run never reached commit {at_commit}: {text}")
        time.sleep(0.02)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen
    #: the stand-in stages' plan file (DEEPCAC2_FAKE_PLAN of the workers); tests write it
    plan: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(n, timeout=timeout)


def start_dask(
    tmp: Path,
    n_workers: int = 2,
    worker_args: list[list[str]] | None = None,
    *,
    nanny: bool = False,
    env: dict[str, str] | None = None,
) -> DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes.

    Without a nanny a kill -9 kills the worker for good; with one (``nanny=True``, as in a
    LocalCluster) the nanny starts a new worker process, which registers again.
    """
    port = free_port()
    plan = tmp / "fake-plan.json"
    plan.write_text("{}")
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "3",
        "DEEPCAC2_FAKE_PLAN": str(plan),
        **(env or {}),
    }
    log = open(tmp / "dask-scheduler.log", "wb")  # noqa: SIM115 - lives as long as the process
    sched = subprocess.Popen(
        [
            *DASK,
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    _wait_port(port)
    procs = DaskProcesses(f"tcp://127.0.0.1:{port}", sched, plan)
    for i in range(n_workers):
        wlog = open(tmp / f"dask-worker-{i}.log", "wb")  # noqa: SIM115
        cmd = [*DASK, "distributed.cli.dask_worker", procs.address, "--nworkers", "1", "--nthreads", "1"]
        cmd += [] if nanny else ["--no-nanny"]
        cmd += ["--host", "127.0.0.1", "--name", f"w{i}", "--no-dashboard", "--memory-limit", "2GiB"]
        cmd += worker_args[i] if worker_args else []
        procs.workers.append(
            subprocess.Popen(cmd, stdout=wlog, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        )
    procs.wait_for_workers(n_workers)
    return procs


def stop_dask(procs: DaskProcesses) -> None:
    """Kill them: they hold no state worth a graceful shutdown, and tests should be quick."""
    for p in [*procs.workers, procs.scheduler]:
        try:  # the whole process group: a nanny's worker process too
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def write_cohort_parquet(path: Path, uids: list[str], locations: list[str] | None = None) -> Path:
    """A minimal valid cohort table (schemas/cohort.py) for series that need no real files."""
    from deepcac2.pipeline.cohort.table import write_cohort
    from deepcac2.schemas.cohort import TABLE

    rows = [
        {
            "PatientID": f"P{i % 3}",
            "StudyInstanceUID": f"1.2.826.0.1.3680043.99.1.{i % 3}",
            "SeriesInstanceUID": uid,
            "instanceCount": 1,
            "location": locations[i] if locations else str(path.parent),
            "selection_reason": "test",
        }
        for i, uid in enumerate(uids)
    ]
    return write_cohort(pa.Table.from_pylist(rows, schema=TABLE.arrow), path)


def bucket_fragments(url: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A bucket run's committed fragments: (loose objects, members of its packs), each name -> bytes.

    Read with the store's own pack reader (each pack checked against its index), later packs over earlier.
    """
    import tempfile

    from deepcac2.location import FRAGMENT_PACKS, FRAGMENTS, Remote
    from deepcac2.pipeline.orchestrate.packs import read_pack

    remote = Remote.parse(url)
    loose = {n[len(FRAGMENTS) + 1 :]: remote.read_bytes(n) for n in remote.files(FRAGMENTS)}
    packed: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in remote.files(FRAGMENT_PACKS):
            pack = Path(tmp) / "pack.tar.zst"
            pack.write_bytes(remote.read_bytes(name))
            for member in read_pack(pack, Path(tmp) / "out", name):
                packed[member] = (Path(tmp) / "out" / member).read_bytes()
    return loose, packed


def bucket_fragment_count(url: str) -> int:
    """How many series a bucket run has committed, loose or packed."""
    loose, packed = bucket_fragments(url)
    return len(set(loose) | set(packed))
