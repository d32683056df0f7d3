"""The model interface and the registry of models (entry-point group ``deepcac2.models``).

A model is any object with a ``card`` and a ``predict(ct, anatomy)`` method: it takes the
heart (and great vessels) from the anatomy stage (``deepcac2.pipeline.anatomy``) instead of
computing its own, and returns a Prediction whose ``heart`` is ``anatomy.heart`` and whose
``anatomy`` is the anatomy it was given. A package adds one by
declaring an entry point in the group ``deepcac2.models`` whose target is a factory
``factory(weights: str | None = None, device: str | None = None) -> CACModel``.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values

ENTRY_POINT_GROUP = "deepcac2.models"
DEFAULT_MODEL = "classical"
DEFAULT_WEIGHTED_MODEL = "deepcac2-unet"


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
    if name is None:
        name = DEFAULT_WEIGHTED_MODEL if weights else DEFAULT_MODEL
    return _load_cached(name, weights, device)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, weights: str | None, device: str | None) -> CACModel:
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "(none registered; is the package installed?)"
        raise DeepCACError(ErrorCode.E_MODEL_UNKNOWN, f"unknown model {name!r}; known models: {known}", model=name)
    try:
        factory = eps[name].load()  # type: ignore[attr-defined]
    except Exception as exc:  # a broken third-party package must not crash the caller
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, f"cannot import model {name!r}: {exc}", model=name) from exc
    try:
        model = factory(weights=weights, device=device)
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
