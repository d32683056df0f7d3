"""Per-worker state: the model and the fetch cache, and imports done before any task runs.

Registered on every worker as a Dask ``WorkerPlugin``. ``setup`` runs when the plugin is
registered and again on every worker that joins later, a restarted one included, before
that worker runs a task. It imports the stages' modules (pydicom, highdicom, torch, the
model's code) and loads the model on the workers that will run inference: on a fresh
worker, two threads importing pydicom at once (a task, and the thread that unpickles a
CT volume sent from another worker) got "partially initialized module 'pydicom'".
A CPU-only worker in a mixed cluster never loads the model; a lock makes the load happen
once even when the worker runs several threads. ``setup`` never raises: a failed import
or model load is remembered and reported by the first task that needs it.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distributed import WorkerPlugin, get_worker

from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate import defaults

PLUGIN_NAME = "deepcac2-pipeline"


@dataclass(frozen=True)
class CacheSpec:
    """Where a worker stages remote series, and how many bytes it may hold."""

    root: str
    max_bytes: int = int(defaults.CACHE_GIB * 2**30)
    endpoint_url: str | None = None
    bucket: str | None = None


class PipelinePlugin(WorkerPlugin):
    """Holds the model and the fetch cache of one worker process."""

    name = PLUGIN_NAME

    def __init__(
        self,
        model: ModelSpec,
        cache: CacheSpec | None = None,
        stages: Any = None,
        *,
        gpu_resource: str | None = None,
    ) -> None:
        self.model_spec = model
        self.cache_spec = cache
        #: the run's Stages: what to import (``stages.warm``) and how to load the model, in setup
        self.stages = stages
        #: when inference asks for this resource, only the workers that have it load the model
        self.gpu_resource = gpu_resource
        self.worker_name = f"local-{os.getpid()}"
        #: the run's creation stamp for the DICOM objects (SOURCE_DATE_EPOCH), carried to remote workers
        self.created = os.environ.get("SOURCE_DATE_EPOCH")
        #: modules imported by setup, and the ones that failed ("name: error")
        self.warmed: list[str] = []
        self.warm_errors: list[str] = []
        self._model: Any = None
        self._model_error: BaseException | None = None
        self._cache: Any = None
        self._lock = threading.Lock()

    # the lock cannot be pickled: the plugin travels to workers without its state
    def __getstate__(self) -> dict[str, Any]:
        return {
            "model_spec": self.model_spec,
            "cache_spec": self.cache_spec,
            "stages": self.stages,
            "gpu_resource": self.gpu_resource,
            "created": self.created,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["model_spec"], state["cache_spec"], state.get("stages"), gpu_resource=state.get("gpu_resource")
        )
        if state.get("created"):
            os.environ["SOURCE_DATE_EPOCH"] = self.created = state["created"]

    def setup(self, worker: Any) -> None:
        """Import the stages' modules and load the model before this worker runs any task.

        Synchronous on purpose: the worker's event loop runs nothing else meanwhile, so no
        task or unpickling thread can import the same modules at the same time.
        """
        self.worker_name = str(worker.name)
        if self.stages is None:
            return
        self.warm(getattr(self.stages, "warm", ()))
        if self.runs_inference(worker):
            try:
                self.model(self.stages)
            except Exception as exc:  # remembered by model(); the first inference task reports it
                logging.getLogger(__name__).warning("model load on %s failed: %s", self.worker_name, exc)

    def warm(self, modules: Sequence[str]) -> None:
        for name in modules:
            try:
                importlib.import_module(name)
                self.warmed.append(name)
            except Exception as exc:  # an optional module (torch on a CPU-only install): the task will say
                self.warm_errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def runs_inference(self, worker: Any) -> bool:
        """Every worker without a GPU resource in the run; only the workers that offer it with one."""
        if self.gpu_resource is None:
            return True
        resources = getattr(getattr(worker, "state", None), "total_resources", None) or {}
        return bool(resources.get(self.gpu_resource))

    def teardown(self, worker: Any) -> None:
        self._model = None

    def model(self, stages: Any) -> Any:
        """The model, loaded on first use. A failed load is remembered, not retried per series."""
        with self._lock:
            if self._model is None and self._model_error is None:
                try:
                    self._model = stages.load_model(self.model_spec)
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
