"""A structured JSON-lines log per run: one object per line, written whole.

Every line has ``ts`` (unix seconds), ``run_id`` and ``event``; the other fields depend
on the event (``run_start``, ``series_done``, ``series_failed``, ``series_retry``,
``memory``, ``interrupted``, ``run_end``). ``jq`` or ``pandas.read_json(lines=True)`` read it.

Whole lines: each line goes to the file in one ``write`` of an ``O_APPEND`` descriptor, and a
write that fails part way (a full disk) is cut back to where the line began before the error
is raised, so the file never ends in half a line that ``read_json(lines=True)`` would choke on.
A file torn otherwise (a machine that lost power) is read by :func:`read_log`, which drops an
unfinished last line.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, path: str | os.PathLike[str], run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, event: str, **fields: Any) -> None:
        if self._fd is None:
            return
        doc = {"ts": round(time.time(), 3), "run_id": self.run_id, "event": event, **fields}
        write_line(self._fd, (json.dumps(doc, default=str, sort_keys=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_line(fd: int, data: bytes) -> None:
    """Append ``data`` (one line) whole, or not at all: a short or failed write is cut back, then raised."""
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a regular file writes short only when the disk is full
            raise OSError(errno.ENOSPC, "No space left on device (short write)")
    except OSError:
        os.ftruncate(fd, start)
        raise


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a run log, in order; an unfinished last line (a torn write) is dropped."""
    lines = Path(path).read_bytes().split(b"\n")
    events = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:  # no newline after it: a line that was never finished
                break
            raise
    return events
