"""The state of an output directory: lock, per-series fragments, final tables.

The folder's layout (``state/``, ``tables/``, ``logs/``, ``dicom/``, the lock and the run
file) is named once, in :mod:`deepcac2.location`; ``state/series/ab/<sha1>.json`` holds one
committed fragment per finished or failed series (a status line, then its rows).

The run owns ``dicom/``: a series committed as failed loses its folder at once, and
before the tables are written every entry that is not the folder of a series committed
as done is removed (objects of an earlier run, of a series that now fails, half-written
temporary files), so no object ships without a ``cac_series`` row.

A fragment is written to a temporary file and renamed, so it is either complete or
absent: a crash loses at most the series in flight. Final tables are assembled from
fragments only, sorted, so they are byte-identical however the work was split up
(out of core: ``parts``). ``OUT`` may be a bucket URL (``s3://``, ``gs://``): ``bucket``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2 import location
from deepcac2.errors import TRANSIENT_CODES, DeepCACError, ErrorCode
from deepcac2.location import (
    COHORT_FILE,
    DICOM_DIR,
    FRAGMENTS,
    LOCK_FILE,
    LOGS_DIR,
    QA_DIR,
    RUN_FILE,
    RUN_RECORDS,
    TABLES_DIR,
    Remote,
    is_url,
)
from deepcac2.pipeline.orchestrate.bucket import BucketMirror
from deepcac2.writable import output_error as os_error
from deepcac2.writable import writable_dir, write_atomic

LOCK_NAME = LOCK_FILE


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, lambda tmp: Path(tmp).write_bytes(data), mode=0o666)  # the umask decides, as before
    except OSError as exc:
        raise os_error(exc, str(path)) from exc


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:  # exists, but its details are not ours to read
        return -1.0


def _holder_alive(holder: dict[str, Any]) -> bool:
    """Whether the process that wrote the lock still runs: same pid *and* same start time.

    A pid is reused once its process is gone; a lock that only compared pids would be
    respected forever by whatever process got the number next.
    """
    started = _process_started(int(holder.get("pid", -1)))
    if started is None:
        return False
    if started < 0:  # not ours to read: assume it is the holder
        return True
    recorded = holder.get("pid_started")
    if recorded is not None:
        return abs(started - float(recorded)) < 1.0
    # a lock written before start times were kept: a process that started after the lock is not its writer
    locked = holder.get("started")
    return locked is None or started <= float(locked) + 1.0


def _short(value: Any) -> str:
    """An identity value for a message: long hashes shortened, so the line stays readable."""
    text = json.dumps(value, sort_keys=True, default=str)
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{20,}\b", r"\1...", text)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays become plain values; anything else is a bug, not a silent str()."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in a table row")


@dataclass(frozen=True)
class Fragment:
    """What is committed for one series."""

    series_uid: str
    status: str  # "done" or "failed"
    code: str | None
    rows: dict[str, list[dict[str, Any]]]
    #: optional outputs that failed for a series done (its ``qa_flags``, e.g. review_picture_failed)
    incomplete: tuple[str, ...] = ()
    #: the content fingerprint of its input when it was scored (``--verify-inputs``), else None
    inputs: str | None = None

    @property
    def retry_on_resume(self) -> bool:
        """A transient failure (worker lost, timeout), or a series done without an optional output, is done again."""
        if self.status == "done":
            return bool(self.incomplete)
        return self.code is not None and ErrorCode(self.code) in TRANSIENT_CODES


class OutputStore:
    """One run's view of an output directory. Use as a context manager: it holds the lock."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        #: an object-store --out (s3://, gs://): the run works in a local mirror of it (``bucket``)
        self.bucket = BucketMirror(Remote.parse(out_dir)) if is_url(out_dir) else None
        self.root = self.bucket.scratch if self.bucket else Path(out_dir)
        #: the output as the user named it: the folder, or the bucket URL
        self.where = self.bucket.remote.uri() if self.bucket else str(self.root)
        self.lock_path = self.root / LOCK_NAME
        self.series_dir = self.root / FRAGMENTS
        self.tables_dir = self.root / TABLES_DIR
        self.logs_dir = self.root / LOGS_DIR
        self.dicom_dir = self.root / DICOM_DIR
        self._locked = False

    # -- locking --------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the directory lock; a lock left by a dead process on this host is removed."""
        who = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        me = json.dumps({**who, "pid_started": _process_started(os.getpid())}).encode()
        if self.bucket:  # a conditional PUT, then the bucket's state/ into the local mirror
            self.bucket.open(me, _holder_alive)
            self._locked = True
            return
        writable_dir(self.root, "the run's output folder (--out)")
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._lock_holder()
                if holder.get("host") == socket.gethostname() and not _holder_alive(holder):
                    self.lock_path.unlink(missing_ok=True)  # stale: its process is gone (or its pid reused)
                    continue
                raise DeepCACError(
                    ErrorCode.E_OUTPUT_LOCKED,
                    f"{self.root} is being written by pid {holder.get('pid')} on {holder.get('host')}; "
                    f"wait for it, or delete {self.lock_path} if that run is dead",
                    lock=self.lock_path,
                ) from None
            except OSError as exc:  # a read-only or foreign-owned folder
                raise os_error(exc, f"the lock {self.lock_path}") from exc
            with os.fdopen(fd, "wb") as f:
                f.write(me)
            self._locked = True
            return
        raise DeepCACError(ErrorCode.E_OUTPUT_LOCKED, f"could not take the lock {self.lock_path}")

    def _lock_holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            return {"pid": -1, "host": socket.gethostname()}  # half-written by a dead process

    def release(self) -> None:
        if self.bucket:
            locked, self._locked = self._locked, False
            self.bucket.finish(put=locked)  # tables, run records, logs; then the lock goes
            return
        if self._locked:
            self.lock_path.unlink(missing_ok=True)
            self._locked = False

    def _write(self, path: Path, data: bytes) -> None:
        """Write one file atomically; in a bucket's mirror, put it to the bucket too (one PUT is atomic)."""
        _atomic_write(path, data)
        if self.bucket:
            self.bucket.commit(path)

    def sync(self) -> None:
        """Put to the bucket what the mirror holds and the bucket does not yet (a local folder: nothing to do)."""
        if self.bucket:
            self.bucket.sync()

    def public(self, path: Path) -> Path | str:
        """Where ``path`` of the run folder is for the user: itself, or its URL in the bucket."""
        if self.bucket is None:
            return path
        rel = Path(path).relative_to(self.root).as_posix()
        return self.bucket.remote.uri("" if rel == "." else rel)

    def dicom_target(self) -> str:
        """Where workers write the SEG/SR folders: ``dicom/`` of the folder, or of the bucket (a URL)."""
        return self.bucket.dicom_url() if self.bucket else str(self.dicom_dir)

    def __enter__(self) -> OutputStore:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- run identity ---------------------------------------------------------------------
    def check_identity(self, identity: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Refuse to mix runs: --resume needs the same inputs; a fresh run needs no committed result.

        Only committed series count as results: a ``run.json`` left by an attempt that stopped
        before committing any (a bad scheduler address, a model that did not load) does not
        make the corrected command fail with E_OUTPUT_EXISTS; it is replaced.
        """
        path = self.root / RUN_FILE
        has_results = any(self.series_dir.glob("*/*.json"))
        has_state = path.exists() or has_results
        if not has_state and self._foreign():
            # a release, or DICOM this run did not make: the run would sweep dicom/ (see the module doc)
            raise DeepCACError(
                ErrorCode.E_OUTPUT_NOT_OURS,
                f"{self.root} is not a run folder (no {RUN_FILE}) but holds a release or dicom/: choose another --out",
            )
        if overwrite and has_state:
            self.clear()
        elif has_results and not resume:
            raise DeepCACError(
                ErrorCode.E_OUTPUT_EXISTS,
                f"{self.root} already holds results; pass --resume to continue or --overwrite to start again",
            )
        elif has_results and path.exists():
            old = json.loads(path.read_text())
            changed = sorted(k for k in identity if old.get(k) != identity[k])
            if changed:
                what = "; ".join(f"{k}: {_short(old.get(k))} then, {_short(identity[k])} now" for k in changed)
                raise DeepCACError(
                    ErrorCode.E_RESUME_MISMATCH,
                    f"cannot resume {self.root}: the inputs differ from those of the run that made it ({what}); "
                    "run with the same inputs, or --overwrite to start again, or use another --out",
                    changed=changed,
                )
        self._write(path, json.dumps(identity, sort_keys=True, indent=1).encode())

    def _foreign(self) -> bool:
        if self.bucket:
            return self.bucket.has_foreign()
        return (self.root / "MANIFEST.csv").exists() or any(self.dicom_dir.glob("*"))

    def clear(self) -> None:
        """Forget committed fragments, tables and QA (for --overwrite). SEG/SR files are overwritten in place."""
        old = [*self.series_dir.glob("*/*.json"), *self.tables_dir.glob("*.parquet")]
        for p in old + list((self.root / RUN_RECORDS).glob("*.json")):
            p.unlink()
        (self.root / RUN_FILE).unlink(missing_ok=True)
        location.clear_qa(self.root / QA_DIR)  # QA of the results just forgotten must not pass for the new ones
        if self.bucket:
            self.bucket.clear(location.QA_FILES)

    # -- fragments ------------------------------------------------------------------------
    def keep_cohort(self, cohort_file: Path) -> Path:
        """Copy the cohort the run processes to ``cohort.parquet`` (atomically; same bytes), and its
        ``exclusions`` table beside it when the cohort step wrote one (the release ships it)."""
        from deepcac2.pipeline.cohort.table import exclusions_path

        target = self.root / COHORT_FILE
        if cohort_file.resolve() != target.resolve():
            self._write(target, cohort_file.read_bytes())
            if exclusions_path(cohort_file).is_file():
                self._write(exclusions_path(target), exclusions_path(cohort_file).read_bytes())
        return target

    def fragment_path(self, series_uid: str) -> Path:
        h = hashlib.sha1(series_uid.encode()).hexdigest()
        return self.series_dir / h[:2] / f"{h}.json"

    def commit(self, fragment: Fragment) -> None:
        """Write one series' result; after this returns, a crash does not lose it.

        The file is one JSON object whose first line holds the status (series, status,
        code, flags, input fingerprint) and whose second holds ``"rows"``: a resume reads
        only the first line of each file (``committed``), anything else reads it as JSON.
        """
        doc = {"series_uid": fragment.series_uid, "status": fragment.status, "code": fragment.code}
        if fragment.incomplete:
            doc["incomplete"] = list(fragment.incomplete)
        if fragment.inputs:
            doc["inputs_sha256"] = fragment.inputs
        try:
            head = json.dumps(doc, sort_keys=True).encode()
            rows = json.dumps(fragment.rows, sort_keys=True, default=_json_default, allow_nan=True).encode()
        except TypeError as exc:
            raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"series {fragment.series_uid}: {exc}") from exc
        # JSON text never holds a raw newline, so the first line is exactly the status
        self._write(self.fragment_path(fragment.series_uid), head[:-1] + b',\n"rows": ' + rows + b"}")

    @staticmethod
    def _read_fragment(path: Path, *, rows: bool) -> Fragment:
        with open(path, "rb") as f:
            first = f.readline()
            if first.endswith(b",\n"):  # the status line
                doc = json.loads(first[:-2] + b"}")
                if rows:
                    doc = json.loads(first + f.read())
            else:  # one line: a fragment written before the status line existed
                doc = json.loads(first)
        incomplete = tuple(doc.get("incomplete", ()))
        table_rows = doc.get("rows", {}) if rows else {}
        return Fragment(
            doc["series_uid"], doc["status"], doc.get("code"), table_rows, incomplete, doc.get("inputs_sha256")
        )

    def _fragment_paths(self) -> Iterator[Path]:
        """Every fragment file in path order, one ``ab/`` folder listed at a time (not 129k paths at once)."""
        if not self.series_dir.is_dir():
            return
        for folder in sorted(self.series_dir.iterdir()):
            if folder.is_dir():
                yield from sorted(folder.glob("*.json"))

    def fragments(self) -> Iterator[Fragment]:
        for p in self._fragment_paths():
            yield self._read_fragment(p, rows=True)

    def heads(self) -> Iterator[Fragment]:
        """Every committed fragment without its rows (only each file's status line is read), in path order."""
        for p in self._fragment_paths():
            yield self._read_fragment(p, rows=False)

    def committed(self) -> dict[str, Fragment]:
        return {f.series_uid: f for f in self.heads()}  # series uid -> its fragment, without the rows

    def head(self, series_uid: str) -> Fragment | None:
        """The series' committed fragment without its rows; None when it has none."""
        try:
            return self._read_fragment(self.fragment_path(series_uid), rows=False)
        except FileNotFoundError:
            return None

    # -- DICOM outputs ----------------------------------------------------------------------
    def series_dicom_dir(self, series_uid: str) -> Path:
        """Where the converter writes a series' SEG and SR (``dicom/<SeriesInstanceUID>/``)."""
        return self.dicom_dir / series_uid

    def discard_dicom(self, series_uid: str) -> bool:
        """Remove a series' objects (it failed: an earlier run's SEG/SR or half of this one's must not ship)."""
        if self.bucket:
            return self.bucket.discard(series_uid)
        folder = self.series_dicom_dir(series_uid)
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
            return True
        if folder.is_dir():
            shutil.rmtree(folder)
            return True
        return False

    def sweep_dicom(self, series_uids: Iterable[str]) -> list[str]:
        """Keep in ``dicom/`` only the folders of the series of ``series_uids`` committed as done.

        Everything else goes, and so do hidden temporary files inside the kept folders (a
        worker killed mid-write leaves one). Returns the removed paths, relative to ``dicom/``.
        """
        wanted = _as_set(series_uids)  # a cohort's 129k uids are not copied
        done = {f.series_uid for f in self.heads() if f.status == "done" and f.series_uid in wanted}
        if self.bucket:
            return self.bucket.sweep(done)
        if not self.dicom_dir.is_dir():
            return []
        removed = []
        for entry in sorted(self.dicom_dir.iterdir()):
            if entry.name in done and entry.is_dir() and not entry.is_symlink():
                for junk in sorted(entry.glob(".*.tmp")):
                    junk.unlink()
                    removed.append(f"{entry.name}/{junk.name}")
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
        return removed

    # -- run records ----------------------------------------------------------------------
    def commit_run(self, run_id: str, record: dict[str, Any]) -> None:
        """Keep one run's record (config, versions, counts, timings) for the ``runs`` table."""
        data = json.dumps(record, sort_keys=True, default=_json_default).encode()
        self._write(self.root / RUN_RECORDS / f"{run_id}.json", data)

    def run_records(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.root / RUN_RECORDS).glob("*.json"))]

    # -- final tables ---------------------------------------------------------------------
    def assemble(self, series_uids: Iterable[str], tables: Iterable[str] = ()) -> dict[str, Path]:
        """Write every table from the fragments of ``series_uids``, sorted, atomically.

        ``tables`` are written even when no fragment has rows for them. A table with a
        registered schema is written out of core (``parts``: validated like the converter's
        writer, sorted by DuckDB, same bytes); others (test stand-ins) by ``table_bytes``.
        """
        from deepcac2.pipeline.orchestrate.parts import assemble_parts

        wanted = _as_set(series_uids)
        chosen = ((f.series_uid, f.rows) for f in self.fragments() if f.series_uid in wanted)
        written, others = assemble_parts(chosen, self.tables_dir, tables)
        for table, table_rows in others.items():
            path = self.tables_dir / f"{table}.parquet"
            _atomic_write(path, table_bytes(table_rows))
            written[table] = path
        return dict(sorted(written.items()))


def optional_outputs_failed(rows: dict[str, list[dict[str, Any]]]) -> tuple[str, ...]:
    """The ``qa_flags`` of a series' rows that say an optional output failed (see process.OPTIONAL_OUTPUT_FAILED)."""
    from deepcac2.pipeline.process import OPTIONAL_OUTPUT_FAILED

    flags = {f for table in rows.values() for row in table for f in (row.get("qa_flags") or ())}
    return tuple(sorted(flags & OPTIONAL_OUTPUT_FAILED))


def _as_set(uids: Iterable[str]) -> set[str] | frozenset[str]:
    return uids if isinstance(uids, (set, frozenset)) else set(uids)


def _content_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def table_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Deterministic Parquet bytes for a table without a registered schema: rows in content order."""
    table = pa.Table.from_pylist(sorted(rows, key=_content_key))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=True, write_statistics=True)
    return sink.getvalue().to_pybytes()
