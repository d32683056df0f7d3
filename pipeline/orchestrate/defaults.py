"""The defaults of a run, stated once: ``RunConfig``, the tasks' ``Policy``, ``ClusterSpec``,
``CacheSpec`` and ``deepcac2 run``'s flags all read them from here.

A light module (no Dask import), so the command line can show them without loading a cluster.
The scoring conventions and the anatomy provider have their own owners
(``pipeline.conventions.DEFAULT_CONVENTIONS``, ``anatomy.registry.AUTO``).
"""

from __future__ import annotations

#: retries of a transient error (on a worker) or a lost task (worker died)
RETRIES = 2
#: first wait before a retry, in seconds (doubled each time)
BACKOFF_S = 1.0
#: a series' task that ran this long on a worker is E_TIMEOUT (0 or None: no limit)
SERIES_TIMEOUT_S = 3600.0
#: a worker holding a task of a series in flight that sent no heartbeat this long is removed
WORKER_TTL_S = 120.0
#: local cluster: memory per worker (Dask's own "auto")
MEMORY_LIMIT = "auto"
#: local cluster: worker deaths a task may see before it is E_WORKER_LOST
ALLOWED_FAILURES = 3
#: bytes each worker's fetch cache may hold, in GiB
CACHE_GIB = 20.0
