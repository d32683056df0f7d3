"""A bounded local cache that fetches series ahead of the worker that processes them.

One background thread fetches in cohort order. It holds at most ``ahead`` series beyond
the one being processed, and never more bytes than ``max_bytes``: before each fetch it
reserves the series' size and waits until that fits. ``release`` deletes a series and
frees its room. Each fetch is retried on transient errors with exponential backoff, and
checked against the cohort's instance count.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.identifiers import validate_uid
from deepcac2.pipeline.sources.base import Source, folder_stats
from deepcac2.pipeline.stage_values import SeriesRef


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the wait before try n+1 is min(base * 2**(n-1), max)."""

    attempts: int = 4
    base_s: float = 1.0
    max_s: float = 60.0

    def delay(self, failed_tries: int) -> float:
        return min(self.base_s * 2 ** (failed_tries - 1), self.max_s)


def fetch_verified(
    source: Source,
    ref: SeriesRef,
    dest: Path,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Fetch one series into ``dest`` (created fresh), retrying transient errors; returns its bytes.

    Raises E_FETCH_FAILED after the last transient failure (the message keeps that failure),
    and E_FETCH_COUNT_MISMATCH when the file count differs from the cohort's instanceCount.
    """
    last: DeepCACError | None = None
    for attempt in range(1, retry.attempts + 1):
        if dest.exists():
            shutil.rmtree(dest)  # no half series left from a failed try
        dest.mkdir(parents=True)
        try:
            source.fetch(ref, dest)
            break
        except DeepCACError as exc:
            if exc.code is not ErrorCode.E_FETCH_TRANSIENT:
                shutil.rmtree(dest, ignore_errors=True)
                raise
            last = exc
            if attempt < retry.attempts:
                sleep(retry.delay(attempt))
    else:
        shutil.rmtree(dest, ignore_errors=True)
        raise DeepCACError(
            ErrorCode.E_FETCH_FAILED,
            f"series {ref.series_uid}: gave up after {retry.attempts} tries; last error {last.message if last else ''}",
            last_code=last.code.value if last else "",
        )
    count, size = folder_stats(dest)
    if ref.instance_count is not None and count != ref.instance_count:
        shutil.rmtree(dest, ignore_errors=True)
        raise DeepCACError(
            ErrorCode.E_FETCH_COUNT_MISMATCH,
            f"series {ref.series_uid}: fetched {count} files, the cohort says {ref.instance_count}",
            fetched=count,
            expected=ref.instance_count,
        )
    return size


@dataclass(frozen=True)
class Staged:
    """One series handed to the worker: its folder, or the error that kept it from arriving."""

    ref: SeriesRef
    folder: Path | None
    error: DeepCACError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_DONE = object()


class SeriesCache:
    """Size-capped staging of series under ``root/<SeriesInstanceUID>/``, with prefetching.

    Two ways to use it. Prefetch in cohort order (a thread keeps ``ahead`` series ready)::

        with SeriesCache(IDCSource(), "/scratch/cache", max_bytes=20e9, ahead=4) as cache:
            for item in cache.stage(refs):
                if item.ok:
                    process(item.folder)
                    cache.release(item.ref)

    Or on demand from any thread (a scheduler decides the order): ``folder = cache.get(ref)``,
    then ``cache.release(ref)``. Both wait for room: the bytes held never exceed ``max_bytes``.
    """

    def __init__(
        self,
        source: Source,
        root: str | Path,
        max_bytes: int | float,
        ahead: int = 2,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        wait_s: float | None = 3600.0,
    ) -> None:
        if ahead < 0 or max_bytes <= 0:
            raise DeepCACError(ErrorCode.E_CACHE_FULL, f"need ahead >= 0 and max_bytes > 0 (got {ahead}, {max_bytes})")
        self.source, self.root, self.max_bytes, self.ahead = source, Path(root), int(max_bytes), ahead
        self.retry, self._sleep, self.wait_s = retry, sleep, wait_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}  # series uid -> reserved bytes (fetching or ready)
        self._ready: set[str] = set()
        self._stop = False
        self._thread: threading.Thread | None = None
        #: the most bytes held at once (for tests and logs)
        self.peak_bytes = 0

    @property
    def used_bytes(self) -> int:
        with self._cond:
            return sum(self._held.values())

    def folder(self, ref: SeriesRef) -> Path:
        return self.root / validate_uid(ref.series_uid, "SeriesInstanceUID")

    def _size(self, ref: SeriesRef) -> int:
        size = self.source.size(ref)
        if size is None:
            raise DeepCACError(ErrorCode.E_CACHE_FULL, f"series {ref.series_uid}: size unknown, cannot cap the cache")
        if size > self.max_bytes:
            raise DeepCACError(
                ErrorCode.E_CACHE_FULL,
                f"series {ref.series_uid} needs {size} bytes, more than the cache cap {self.max_bytes}",
            )
        return size

    def _reserve(self, uid: str, size: int, slots: bool) -> bool:
        """Wait for room for ``size`` bytes (and, for prefetching, a slot); False when stopped.

        Raises E_CACHE_FULL when no room frees up within ``wait_s``.
        """
        deadline = None if self.wait_s is None else time.monotonic() + self.wait_s
        with self._cond:
            while not self._stop and (
                (slots and len(self._held) > self.ahead) or sum(self._held.values()) + size > self.max_bytes
            ):
                if deadline is not None and time.monotonic() > deadline:
                    raise DeepCACError(
                        ErrorCode.E_CACHE_FULL,
                        f"no room for series {uid} ({size} bytes) within {self.wait_s:g} s; "
                        f"{sum(self._held.values())} of {self.max_bytes} bytes held",
                    )
                self._cond.wait(timeout=0.5)
            if self._stop:
                return False
            self._held[uid] = size
            self.peak_bytes = max(self.peak_bytes, sum(self._held.values()))
            return True

    def _forget(self, uid: str) -> None:
        with self._cond:
            self._held.pop(uid, None)
            self._ready.discard(uid)
            self._cond.notify_all()

    def _fetch_reserved(self, ref: SeriesRef, size: int) -> Path:
        """Fetch a series whose room is reserved; on failure the room is freed and the error raised."""
        dest = self.folder(ref)
        try:
            actual = fetch_verified(self.source, ref, dest, self.retry, self._sleep)
        except DeepCACError:
            self._forget(ref.series_uid)
            raise
        with self._cond:
            # account what is really on disk; a cohort size that was too small shows up in peak_bytes
            self._held[ref.series_uid] = max(size, actual)
            self.peak_bytes = max(self.peak_bytes, sum(self._held.values()))
            self._ready.add(ref.series_uid)
            self._cond.notify_all()
        return dest

    def get(self, ref: SeriesRef) -> Path:
        """The local folder of one series, fetched now unless already held; thread-safe.

        A second caller asking for a series being fetched waits for that fetch.
        """
        uid = validate_uid(ref.series_uid, "SeriesInstanceUID")
        with self._cond:
            while uid in self._held and uid not in self._ready and not self._stop:
                self._cond.wait(timeout=0.5)
            if uid in self._ready:
                return self.folder(ref)
        size = self._size(ref)
        if not self._reserve(uid, size, slots=False):
            raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"series {uid}: the cache was closed")
        return self._fetch_reserved(ref, size)

    def _produce(self, refs: list[SeriesRef], out: queue.Queue) -> None:
        for ref in refs:
            try:
                validate_uid(ref.series_uid, "SeriesInstanceUID")
                size = self._size(ref)
                if not self._reserve(ref.series_uid, size, slots=True):
                    break
                folder = self._fetch_reserved(ref, size)
            except DeepCACError as exc:
                out.put(Staged(ref, None, exc))
                continue
            with self._cond:
                stopped = self._stop
            if stopped:
                self.release(ref)
                break
            out.put(Staged(ref, folder))
        out.put(_DONE)

    def stage(self, refs: Iterable[SeriesRef]) -> Iterator[Staged]:
        """Yield each series in order once it is on disk (or failed)."""
        if self._thread is not None:
            raise DeepCACError(ErrorCode.E_INTERNAL, "a SeriesCache stages one cohort at a time")
        out: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._produce, args=(list(refs), out), daemon=True, name="prefetch")
        self._thread.start()
        while (item := out.get()) is not _DONE:
            yield item

    @contextlib.contextmanager
    def hold(self, key: str, nbytes: int) -> Iterator[None]:
        """Count ``nbytes`` held outside the cache folder (the frames of an anatomy SEG read by range)
        against ``max_bytes`` while the block runs; waits for room like a fetch."""
        size = int(nbytes)
        if size > self.max_bytes:
            raise DeepCACError(
                ErrorCode.E_CACHE_FULL, f"{key} needs {size} bytes, more than the cache cap {self.max_bytes}"
            )
        if not self._reserve(key, size, slots=False):
            raise DeepCACError(ErrorCode.E_CACHE_FULL, f"{key}: the cache was closed")
        try:
            yield
        finally:
            self._forget(key)

    def release(self, ref: SeriesRef | str) -> None:
        """Delete a delivered series (a SeriesRef or its SeriesInstanceUID) and free its room.

        A no-op for a series not held.
        """
        uid = validate_uid(ref if isinstance(ref, str) else ref.series_uid, "SeriesInstanceUID")
        shutil.rmtree(self.root / uid, ignore_errors=True)
        self._forget(uid)

    def close(self) -> None:
        """Stop prefetching and delete everything still held."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        for uid in list(self._held):
            shutil.rmtree(self.root / uid, ignore_errors=True)
            self._forget(uid)

    def __enter__(self) -> SeriesCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
