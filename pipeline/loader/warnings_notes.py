"""pydicom's complaints about values, collected into the loader's notes instead of printed.

pydicom reports a value it finds invalid (a UID with letters, a DS too long) through
``warnings.warn`` and its ``pydicom`` logger at once; with no logging configured, Python
prints every such log record, so a series of 30 slices with one bad UID printed 30
warnings before the loader's own error. Inside :func:`collect_warnings` both go to a
list of the current thread instead (other threads, and code outside the block, are
untouched), and :func:`summarize` turns them into one note per distinct message.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_state = threading.local()
_install_lock = threading.Lock()
_installed = False
#: pydicom appends a link to the standard to each value warning; notes keep the first sentence
_LINK = " Please see <"


class _ToBucket(logging.Filter):
    """On the ``pydicom`` logger: a record of a thread that collects goes to its list, not to any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        bucket = getattr(_state, "bucket", None)
        if bucket is None:
            return True
        bucket.append(record.getMessage())
        return False


def _install() -> None:
    """Add the logger filter once, and wrap ``warnings.showwarning`` again if someone replaced it since."""
    global _installed
    with _install_lock:
        if not _installed:
            logging.getLogger("pydicom").addFilter(_ToBucket())
            _installed = True
        if getattr(warnings.showwarning, "_collects", False):
            return
        previous = warnings.showwarning

        def showwarning(message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any) -> None:
            bucket = getattr(_state, "bucket", None)
            if bucket is None:
                previous(message, category, filename, lineno, *args, **kwargs)
            elif str(message) not in bucket:  # pydicom logged it already; other warnings once
                bucket.append(str(message))

        showwarning._collects = True  # type: ignore[attr-defined]
        warnings.showwarning = showwarning


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect this thread's pydicom log records and warnings into the yielded list."""
    _install()
    outer = getattr(_state, "bucket", None)
    bucket: list[str] = []
    _state.bucket = bucket
    try:
        yield bucket
    finally:
        _state.bucket = outer
        if outer is not None:
            outer.extend(bucket)


def summarize(messages: list[str], limit: int = 5) -> list[str]:
    """One note per distinct message (first sentence), with its count; at most ``limit``, then a count of the rest."""
    counts = Counter(m.split(_LINK, 1)[0].strip() for m in messages)
    notes = [f"pydicom: {text}" + (f" ({n} times)" if n > 1 else "") for text, n in counts.most_common(limit)]
    if len(counts) > limit:
        notes.append(f"pydicom: {len(counts) - limit} more distinct warning(s)")
    return notes
