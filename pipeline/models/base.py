"""The model interface and the registry of models (entry-point group ``deepcac2.models``).

A model is any object with a ``card`` and a ``predict(ct, anatomy)`` method: it takes the
heart (and great vessels) from the anatomy stage (``deepcac2.pipeline.anatomy``) instead of
computing its own, and returns a Prediction whose ``heart`` is ``anatomy.heart`` and whose
``anatomy`` is the anatomy it was given. A package adds one by
declaring an entry point in the group ``deepcac2.models`` whose target is a factory
``factory(weights: str | None = None, device: str | None = None) -> CACModel``; a factory
that also takes ``weights_sha256`` gets the digest the run already read (its card should
carry it), so the weights are hashed once.

A run names its model with one value, :class:`ModelSpec`: the resume identity, the model
card, the UIDs and the provenance all read the weights' SHA-256 from it.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values

ENTRY_POINT_GROUP = "deepcac2.models"
DEFAULT_MODEL = "classical"
DEFAULT_WEIGHTED_MODEL = "deepcac2-unet"


@dataclass(frozen=True)
class ModelSpec:
    """The model of a run: registered name (None: by weights), weights file, their SHA-256, torch device."""

    name: str | None = None
    weights: str | None = None
    device: str | None = None
    #: SHA-256 of the weights file, read once per run (:meth:`with_digest`); None without a weights file
    weights_sha256: str | None = None

    def with_digest(self) -> ModelSpec:
        """This spec with the weights' SHA-256 read (once: a spec that has it is returned as is)."""
        if self.weights_sha256 or not self.weights or not Path(self.weights).is_file():
            return self
        return replace(self, weights_sha256=stage_values.sha256_file(str(self.weights)))

    def identity(self) -> dict[str, str | None]:
        """The model by name and the weights by content, never by file name or size (``run --resume`` compares it).

        A different file with the same name and size must not resume a run made with the other;
        a weights path that is no file stays by name (loading it fails on the workers).
        """
        if self.weights_sha256:
            return {"name": self.name, "weights_sha256": self.weights_sha256}
        return {"name": self.name, "weights": self.weights}


@runtime_checkable
class CACModel(Protocol):
    """What every model offers. Masks come back on the CT grid, same shape as ``ct.hu``."""

    card: stage_values.ModelCard

    def predict(self, ct: stage_values.CTVolume, anatomy: Any) -> stage_values.Prediction:
        """CAC (and optional vessels/aortic calcium) of ``ct`` around ``anatomy.heart`` (an ``Anatomy``)."""
        ...


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_entry_points())


def load_model(name: str | None = None, weights: str | None = None, *, device: str | None = None) -> CACModel:
    """Build a registered model. Cached: a process loads each (name, weights, device) once.

    ``name`` None picks ``classical`` without weights and ``deepcac2-unet`` with weights.
    """
    return load_spec(ModelSpec(name, weights, device))


def load_spec(spec: ModelSpec) -> CACModel:
    """Build the model of ``spec`` (see :func:`load_model`); its card takes the spec's weights digest."""
    name = spec.name or (DEFAULT_WEIGHTED_MODEL if spec.weights else DEFAULT_MODEL)
    return _load_cached(name, spec.weights, spec.device, spec.weights_sha256)


def _takes_digest(factory: Any) -> bool:
    """Whether the factory names a ``weights_sha256`` parameter (older third-party factories do not)."""
    try:
        return "weights_sha256" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, weights: str | None, device: str | None, weights_sha256: str | None = None) -> CACModel:
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "(none registered; is the package installed?)"
        raise DeepCACError(ErrorCode.E_MODEL_UNKNOWN, f"unknown model {name!r}; known models: {known}", model=name)
    try:
        factory = eps[name].load()  # type: ignore[attr-defined]
    except Exception as exc:  # a broken third-party package must not crash the caller
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"cannot import model {name!r}: {exc}", model=name) from exc
    try:
        digest = {"weights_sha256": weights_sha256} if weights_sha256 and _takes_digest(factory) else {}
        model = factory(weights=weights, device=device, **digest)
    except DeepCACError:
        raise
    except Exception as exc:
        raise DeepCACError(
            ErrorCode.E_MODEL_LOAD, f"model {name!r} failed to load weights {weights!r}: {exc}", model=name
        ) from exc
    if not isinstance(model, CACModel):
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"model {name!r} has no card/predict interface", model=name)
    return model


def clear_cache() -> None:
    """Forget loaded models (tests, or a worker that must free GPU memory)."""
    _load_cached.cache_clear()
