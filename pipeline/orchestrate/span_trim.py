"""Keep the scheduler's span metadata from growing with every series submitted.

Distributed's spans (``distributed.spans.Span.add_metadata``) append one ``{"type": "Future"}``
to the span's ``collections`` for every ``client.submit``, and the ``default`` span lives as
long as the scheduler. A run submits 3 tasks a series, so an NLST run (129k series) leaves
~387k such dicts on the scheduler: ~0.6 KB a series, never freed. With a local cluster the
scheduler lives in the client's process: that was most of the client's growth from 10k to
129k series in the scale bench (issue 23). The list only feeds the dashboard's span view,
which needs each type once, so the loop keeps one of each, every ``TRIM_EVERY`` series.

Dask's own ``key_split`` cache (``functools.lru_cache(100000)``) also keeps the keys of the
first ~33k series; it is bounded (~35 MB) and left alone.
"""

from __future__ import annotations

import json
from typing import Any

from distributed import Client

#: series committed between two trims (one scheduler round trip each)
TRIM_EVERY = 1_000


def trim_span_metadata(dask_scheduler: Any = None) -> int:
    """On the scheduler: each span's ``collections`` kept one per distinct entry; the number dropped."""
    spans = getattr(dask_scheduler, "extensions", {}).get("spans")
    dropped = 0
    for span in getattr(spans, "spans", {}).values():
        metadata = getattr(span, "_metadata", None)  # private: an unknown layout is left alone
        collections = metadata.get("collections") if isinstance(metadata, dict) else None
        if not isinstance(collections, list) or len(collections) < 2:
            continue
        unique = list({json.dumps(c, sort_keys=True, default=str): c for c in collections}.values())
        dropped += len(collections) - len(unique)
        collections[:] = unique
    return dropped


def trim_spans(client: Client) -> int | None:
    """``trim_span_metadata`` on the client's scheduler; None when it could not run there.

    Never fatal: a scheduler that cannot import this module (another image) or a lost
    connection only costs the trim; the loop's own checks deal with a lost scheduler.
    """
    try:
        return int(client.run_on_scheduler(trim_span_metadata))
    except Exception:  # noqa: BLE001 - housekeeping must not end a run
        return None
