"""Test hooks: named points of a run where a test acts deterministically instead of racing a sleep.

Two kinds, both no-ops unless a test sets them:

* In-process callbacks (``installed(point, fn)``): ``run_series`` calls ``at(point, ...)`` at
  ``client_ready`` (connected, before the worker plugin is registered), ``plugin_registered``,
  ``committed`` (a series committed and counted; ``count`` of them so far in this run) and
  ``tables`` (the loop is over, before the tables are written). A test kills a worker there.
* ``DEEPCAC2_TEST_HOLD_AT_COMMIT=N:PATH`` (for ``deepcac2 run`` in a subprocess): right after
  its N-th series is committed the run writes ``PATH`` and waits while ``PATH`` exists. The test sees the
  file, does what it must (SIGINT, kill the scheduler) and removes the file to let the run go
  on. The run cannot finish before the test acts, however loaded the machine is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOLD_ENV = "DEEPCAC2_TEST_HOLD_AT_COMMIT"
_CALLBACKS: dict[str, list[Callable[..., Any]]] = {}


def at(point: str, **context: Any) -> None:
    """Call the callbacks installed at ``point`` (none outside tests)."""
    for fn in list(_CALLBACKS.get(point, ())):
        fn(**context)


@contextmanager
def installed(point: str, fn: Callable[..., Any]) -> Iterator[None]:
    _CALLBACKS.setdefault(point, []).append(fn)
    try:
        yield
    finally:
        _CALLBACKS[point].remove(fn)


def after_commit(count: int) -> None:
    """The ``committed`` callbacks; then hold the run after its ``count``-th commit when the environment asks."""
    at("committed", count=count)
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    n, _, path = spec.partition(":")
    if count != int(n) or not path:
        return
    flag = Path(path)
    flag.write_text(str(os.getpid()))
    while flag.exists():  # a signal (SIGINT, SIGTERM) interrupts the sleep as it would the run
        time.sleep(0.02)
