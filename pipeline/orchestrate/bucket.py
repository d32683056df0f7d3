"""A run folder in an object store (``run --out s3://...``): the client's local mirror of it.

The client keeps the run's state in a local scratch folder laid out like a run folder on
disk, so ``OutputStore`` reads and sorts it as it does on disk; the bucket is the truth:

* the lock is a conditional PUT (create if absent), so a second run is refused, as on disk;
* ``state/`` is downloaded when the lock is taken (``--resume`` reads it), concurrently;
* every fragment is put to the bucket as it is committed (one PUT: whole or absent, so a
  crash loses at most the series in flight, as on disk), and so are ``state/run.json``,
  ``state/created`` and the cohort before any series runs;
* every ``packs.PACK_EVERY`` fragments, and when the run stops, the fragments put since the
  last pack become one object under ``state/packs/`` and their loose objects are deleted
  (``packs``): a resume of NLST GETs ~65 packs, not 129k fragments;
* tables, run records and logs are put by ``sync`` (each table one atomic PUT) at the end,
  the log also every ``LOG_EVERY_S`` while series are committed;
* workers put each series' SEG and SR into ``dicom/<SeriesInstanceUID>/`` themselves
  (``tasks.finish_task``) before the client commits that series; the client only deletes there.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import (
    DICOM_DIR,
    FRAGMENT_PACKS,
    FRAGMENTS,
    LOCK_FILE,
    LOGS_DIR,
    QA_DIR,
    RUN_FILE,
    RUN_RECORDS,
    STATE_DIR,
    TABLES_DIR,
    Remote,
)
from deepcac2.pipeline.orchestrate import hooks, packs
from deepcac2.writable import output_error

#: folders of the scratch copy that ``sync`` never puts: the out-of-core sort's parts and spill, and the
#: fragments (each is put when committed, and packed; so a resumed run does not stat 129k of them again)
_NOT_PUT = (f"{TABLES_DIR}/.parts", f"{FRAGMENTS}/")
#: the run's log is put at least this often while series are committed (and when the run ends)
LOG_EVERY_S = 60.0


class BucketMirror:
    """The bucket side of an ``OutputStore`` whose ``--out`` is a URL."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.scratch = Path(tempfile.mkdtemp(prefix="deepcac2-run-"))
        self._put: dict[str, tuple[int, int]] = {}
        self._next_log = time.monotonic() + LOG_EVERY_S
        self._locked = False
        #: fragments (``ab/<sha1>.json`` under ``state/series/``) put loose since the last pack
        self._loose: set[str] = set()
        self._next_pack = 1

    def open(self, me: bytes, alive: Callable[[dict[str, Any]], bool]) -> None:
        """Take the lock, then copy the bucket's state into the mirror (on failure, the lock goes again)."""
        self.lock(me, alive)
        try:
            self.pull()
        except BaseException:
            self.finish(put=False)
            raise

    def finish(self, *, put: bool) -> None:
        """Put what changed (``put``), then delete the lock and the local mirror, whatever happens."""
        try:
            if put and self._locked:
                self.sync()
        finally:
            self.unlock()
            self.close()

    # -- the lock ---------------------------------------------------------------------------------
    def lock(self, me: bytes, alive: Callable[[dict[str, Any]], bool]) -> None:
        """Take the run lock with a conditional PUT; a lock of a dead process on this host is removed once."""
        for _ in range(2):
            if self.remote.create(LOCK_FILE, me):
                self._locked = True
                return
            holder = self._holder()
            if holder.get("host") == socket.gethostname() and not alive(holder):
                self.remote.delete(LOCK_FILE)  # stale: its process is gone
                continue
            self.close()
            raise DeepCACError(
                ErrorCode.E_OUTPUT_LOCKED,
                f"{self.remote.uri()} is being written by pid {holder.get('pid')} on {holder.get('host')}; "
                f"wait for it, or delete {self.remote.uri(LOCK_FILE)} if that run is dead",
                lock=self.remote.uri(LOCK_FILE),
            )
        self.close()
        raise DeepCACError(ErrorCode.E_OUTPUT_LOCKED, f"could not take the lock {self.remote.uri(LOCK_FILE)}")

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.remote.read_bytes(LOCK_FILE))
        except (FileNotFoundError, ValueError):
            return {"pid": -1, "host": "?"}  # gone meanwhile, or half-written: refused all the same

    def unlock(self) -> None:
        if self._locked:
            self.remote.delete(LOCK_FILE)
            self._locked = False

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    # -- state --------------------------------------------------------------------------------------
    def pull(self) -> None:
        """Copy the bucket's ``state/`` into the scratch folder (what ``--resume`` and the identity check read).

        The packs in order (``packs.PREFETCH`` downloaded and unpacked ahead, in threads), then the
        loose objects (one batched, concurrent get): a series' later copy replaces its earlier one
        (a crash between a pack's PUT and its deletes leaves the same bytes twice).
        """
        names = self.remote.files(STATE_DIR)
        packed = sorted((packs.pack_seq(n), n) for n in names if n.startswith(FRAGMENT_PACKS + "/"))
        for seq, name in packed:
            if seq is None:
                raise packs.damaged(self.remote.uri(name), "not a pack's name")

        def fetch(name: str) -> list[tuple[str, bytes]]:
            return packs.unpack(self.remote.read_bytes(name), self.remote.uri(name))

        order = [name for _, name in packed]
        for (seq, _), members in zip(packed, packs.ahead(fetch, order, packs.PREFETCH), strict=True):
            packs.write_members(self.scratch / FRAGMENTS, members)  # a later pack's copy replaces an earlier one
            self._next_pack = seq + 1
        loose = [n for n in names if not n.startswith(FRAGMENT_PACKS + "/")]
        self.remote.download(loose, [self.scratch / n for n in loose])
        for name in loose:
            if name.startswith(FRAGMENTS + "/"):
                self._loose.add(name[len(FRAGMENTS) + 1 :])  # packed by this run (again, after a crash)
            else:
                self._remember(name)

    def _remember(self, rel: str) -> None:
        st = (self.scratch / rel).stat()
        self._put[rel] = (st.st_size, st.st_mtime_ns)

    def push(self, path: Path) -> None:
        """Put one file of the scratch folder to the same place in the bucket."""
        rel = path.relative_to(self.scratch).as_posix()
        self.remote.put_file(path, rel)
        self._remember(rel)

    def commit(self, path: Path) -> None:
        """Put one durable write of the store (a fragment, run.json, ...); and the log, now and then,
        so a long run's progress can be followed in the bucket and a client lost keeps most of it."""
        rel = path.relative_to(self.scratch).as_posix()
        if rel.startswith(FRAGMENTS + "/"):  # before the PUT: one that fails is put with the next pack
            self._loose.add(rel[len(FRAGMENTS) + 1 :])
        self.push(path)
        if len(self._loose) >= packs.PACK_EVERY:
            self.pack()
        if time.monotonic() >= self._next_log:
            self._next_log = time.monotonic() + LOG_EVERY_S
            for log in sorted((self.scratch / LOGS_DIR).glob("*.jsonl")):
                self.push(log)

    def pack(self) -> str | None:
        """Put the fragments put loose since the last pack as one pack; then, and only then, delete them."""
        if not self._loose:
            return None
        names = sorted(self._loose)
        name = packs.pack_name(self._next_pack)
        local = self.scratch / f".pack-{self._next_pack:08d}.tar.zst"  # a dot: sync never puts it
        try:
            packs.write_pack(self.scratch / FRAGMENTS, names, local)
        except OSError as exc:
            raise output_error(exc, str(local)) from exc
        try:
            self.remote.put_file(local, name)
        finally:
            local.unlink(missing_ok=True)
        self._next_pack += 1
        hooks.at("pack_put", name=name)  # tests stop here: the pack is in, its loose objects not yet gone
        self.remote.delete_many([f"{FRAGMENTS}/{n}" for n in names])
        self._loose.clear()
        return name

    def sync(self) -> list[str]:
        """Pack the loose fragments; then put every scratch file that is new or changed since it was last put or pulled."""
        self.pack()
        put = []
        for path in sorted(p for p in self.scratch.rglob("*") if p.is_file()):
            rel = path.relative_to(self.scratch).as_posix()
            if rel.startswith(_NOT_PUT) or path.name.startswith("."):
                continue
            st = path.stat()
            if self._put.get(rel) != (st.st_size, st.st_mtime_ns):
                self.push(path)
                put.append(rel)
        return put

    def has_foreign(self) -> bool:
        """A release or DICOM objects under a prefix without run state: not a run folder."""
        return self.remote.exists("MANIFEST.csv") or bool(self.remote.files(DICOM_DIR))

    def clear(self, qa_files: tuple[str, ...]) -> None:
        """``--overwrite``: forget the bucket's fragments, run records, tables and QA files."""
        for rel in (FRAGMENTS, FRAGMENT_PACKS, RUN_RECORDS, f"{QA_DIR}/images"):
            self.remote.delete_tree(rel)
        self._loose.clear()
        self._next_pack = 1
        for name in self.remote.entries(TABLES_DIR):
            if name.endswith(".parquet"):
                self.remote.delete(f"{TABLES_DIR}/{name}")
        for rel in (RUN_FILE, *(f"{QA_DIR}/{n}" for n in qa_files)):
            self.remote.delete(rel)
        self._put.clear()

    # -- DICOM objects (written by the workers) -------------------------------------------------------
    def dicom_url(self) -> str:
        return self.remote.uri(DICOM_DIR)

    def discard(self, series_uid: str) -> bool:
        return self.remote.delete_tree(f"{DICOM_DIR}/{series_uid}")

    def sweep(self, done: set[str]) -> list[str]:
        """Delete every ``dicom/`` entry that is not the folder of a series in ``done``."""
        removed = []
        for name in self.remote.entries(DICOM_DIR):
            if name not in done:
                if not self.remote.delete_tree(f"{DICOM_DIR}/{name}"):
                    self.remote.delete(f"{DICOM_DIR}/{name}")
                removed.append(name)
        return removed
