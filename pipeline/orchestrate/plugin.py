"""Per-worker state: the model (loaded once, on first use) and the fetch cache.

Registered on every worker as a Dask ``WorkerPlugin``. The model is loaded lazily so a
CPU-only worker in a mixed cluster never loads it; a lock makes the load happen once
even when the worker runs several threads.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from distributed import WorkerPlugin, get_worker

PLUGIN_NAME = "deepcac2-pipeline"


@dataclass(frozen=True)
class ModelSpec:
    name: str | None = None
    weights: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class CacheSpec:
    """Where a worker stages remote series, and how many bytes it may hold."""

    root: str
    max_bytes: int = 20 * 2**30
    endpoint_url: str | None = None
    bucket: str | None = None


class PipelinePlugin(WorkerPlugin):
    """Holds the model and the fetch cache of one worker process."""

    name = PLUGIN_NAME

    def __init__(self, model: ModelSpec, cache: CacheSpec | None = None) -> None:
        self.model_spec = model
        self.cache_spec = cache
        self.worker_name = f"local-{os.getpid()}"
        self._model: Any = None
        self._model_error: BaseException | None = None
        self._cache: Any = None
        self._lock = threading.Lock()

    # the lock cannot be pickled: the plugin travels to workers without its state
    def __getstate__(self) -> dict[str, Any]:
        return {"model_spec": self.model_spec, "cache_spec": self.cache_spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_spec"], state["cache_spec"])  # type: ignore[misc]

    def setup(self, worker: Any) -> None:
        self.worker_name = str(worker.name)

    def teardown(self, worker: Any) -> None:
        self._model = None

    def model(self, stages: Any) -> Any:
        """The model, loaded on first use. A failed load is remembered, not retried per series."""
        with self._lock:
            if self._model is None and self._model_error is None:
                spec = self.model_spec
                try:
                    self._model = stages.load_model(spec.name, spec.weights, spec.device)
                except Exception as exc:
                    self._model_error = exc
            if self._model_error is not None:
                raise self._model_error
            return self._model

    def cache(self) -> Any:
        """This worker's SeriesCache (one folder per worker), or None when none is configured."""
        if self.cache_spec is None:
            return None
        with self._lock:
            if self._cache is None:
                from deepcac2.pipeline.sources import IDCSource, SeriesCache

                spec = self.cache_spec
                source_args = {k: v for k, v in (("endpoint_url", spec.endpoint_url), ("bucket", spec.bucket)) if v}
                root = os.path.join(spec.root, re.sub(r"[^A-Za-z0-9_.-]", "_", self.worker_name))
                self._cache = SeriesCache(IDCSource(**source_args), root, spec.max_bytes, ahead=0)
            return self._cache


_local: PipelinePlugin | None = None


def current_plugin() -> PipelinePlugin:
    """The plugin of the worker running this task; outside a worker, a process-wide one."""
    try:
        worker = get_worker()
    except ValueError:
        worker = None
    if worker is not None and PLUGIN_NAME in worker.plugins:
        return worker.plugins[PLUGIN_NAME]
    global _local
    if _local is None:
        _local = PipelinePlugin(ModelSpec())
    return _local
