"""Find anatomy providers by entry point and choose one per series (``--anatomy NAME|auto``).

``auto`` takes the first provider of :data:`AUTO_ORDER` that covers the series; when a
preferred provider covers it but fails with a permanent error (its SEG references
another series, lacks a segment, does not fit the CT grid, is truncated), the next one
is tried and the failure is kept as a note on the anatomy, so it reaches
``cac_series.loader_notes``. With a named provider, its errors are the series' errors.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvider

ENTRY_POINT_GROUP = "deepcac2.anatomy"
AUTO = "auto"
#: ``auto`` tries these in order; the last one must cover every series
AUTO_ORDER: tuple[str, ...] = ("idc-totalsegmentator", "classical")


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_providers() -> list[str]:
    """Names of all registered anatomy providers, sorted."""
    return sorted(_entry_points())


@functools.lru_cache(maxsize=8)
def load_provider(name: str) -> AnatomyProvider:
    """Build a registered provider (cached: one per process)."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join([AUTO, *sorted(eps)])
        raise DeepCACError(ErrorCode.E_ANATOMY_UNKNOWN, f"unknown anatomy provider {name!r}; known: {known}")
    try:
        provider = eps[name].load()()
    except Exception as exc:  # a broken third-party package must not crash the caller
        raise DeepCACError(ErrorCode.E_ANATOMY_UNKNOWN, f"cannot build anatomy provider {name!r}: {exc}") from exc
    if not isinstance(provider, AnatomyProvider):
        raise DeepCACError(ErrorCode.E_ANATOMY_UNKNOWN, f"anatomy provider {name!r} lacks covers()/anatomy()")
    return provider


def check_name(name: str) -> str:
    """``name`` if it is ``auto`` or a registered provider, else E_ANATOMY_UNKNOWN (for argument parsing)."""
    if name != AUTO:
        load_provider(name)
    return name


def resolve_anatomy(
    ref: stage_values.SeriesRef, ct: stage_values.CTVolume, name: str = AUTO, *, cache: Any = None
) -> Anatomy:
    """The anatomy of one series from the named provider, or by the ``auto`` rule."""
    if name != AUTO:
        provider = load_provider(name)
        if not provider.covers(ref):
            raise DeepCACError(
                ErrorCode.E_ANATOMY_UNAVAILABLE,
                f"anatomy provider {name!r} does not cover series {ref.series_uid}",
                series=ref.series_uid,
            )
        return provider.anatomy(ref, ct, cache=cache)
    notes: list[str] = []
    registered = _entry_points()
    for candidate in AUTO_ORDER:
        if candidate not in registered:  # an optional provider whose package is not installed
            continue
        provider = load_provider(candidate)
        if not provider.covers(ref):
            continue
        try:
            anatomy = provider.anatomy(ref, ct, cache=cache)
        except DeepCACError as exc:
            if exc.transient or candidate == AUTO_ORDER[-1]:
                raise
            notes.append(f"anatomy: {candidate} not used ({exc.code.value}: {exc.message}); fell back")
            continue
        anatomy.notes = (*notes, *anatomy.notes)
        return anatomy
    raise DeepCACError(
        ErrorCode.E_ANATOMY_UNAVAILABLE, f"no anatomy provider covers series {ref.series_uid}", series=ref.series_uid
    )


def parse_name(value: str) -> str:
    """argparse ``type=`` for ``--anatomy``: an unknown provider is a usage error at parse time."""
    import argparse

    try:
        return check_name(value)
    except DeepCACError as exc:
        raise argparse.ArgumentTypeError(exc.message) from exc


#: the ``--anatomy`` help text shared by ``deepcac2 run`` and ``deepcac2 infer``
HELP = (
    "anatomy provider (heart, aorta, pulmonary artery): a registered name, or 'auto' (default): "
    "idc-totalsegmentator where the series has a TotalSegmentator SEG, else classical"
)
