"""A structured JSON-lines log per run: one object per line, flushed at once.

Every line has ``ts`` (unix seconds), ``run_id`` and ``event``; the other fields depend
on the event (``run_start``, ``series_done``, ``series_failed``, ``series_retry``,
``memory``, ``interrupted``, ``run_end``). ``jq`` or ``pandas.read_json(lines=True)`` read it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO


class RunLog:
    def __init__(self, path: str | os.PathLike[str], run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, event: str, **fields: Any) -> None:
        if self._f is None:
            return
        doc = {"ts": round(time.time(), 3), "run_id": self.run_id, "event": event, **fields}
        self._f.write(json.dumps(doc, default=str, sort_keys=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
