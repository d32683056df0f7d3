"""The layer order of the package, stated once.

A module may import modules of its own layer and of the layers below it, never of a layer above:
a lower layer owns what several upper ones share. ``tests/foundation/test_layers.py`` holds every
import to this order: module level and inside functions, absolute and relative.

Lowest first:

- ``core``: error codes, the values that flow between stages, UIDs and identifiers, the scoring
  conventions and risk bands, where outputs live;
- ``schemas``: every table schema; low because the cohort step already writes tables, and a
  table's columns follow the conventions and risk bands of ``core`` (a lower layer), never a stage;
- ``loader``, then ``totalseg`` (reads IDC's TotalSegmentator SEGs by byte ranges), then ``cohort``
  (indexes a folder with the loader's rules, attaches each CT's SEGs), then ``sources`` (fetch what
  a cohort names), then ``contrast`` (refuses a contrast CT the loader read);
- ``anatomy``, ``models``, ``scoring``;
- ``dicomout``, then ``seg``, then ``sr`` (the SR references the SEG);
- ``convert``, ``process`` (one series' stages; ``deepcac2 infer`` runs some of them on one series),
  ``orchestrate`` (Dask), ``qa``, ``release``.

Outside the order (``OUTSIDE``): the synthetic data generator and the development tools
(training, figures, evaluation scripts, benchmark baselines) and ``bench/``. They may import any
layer; nothing in a layer imports them. On top (``TOP``): the console script and the package root
(``deepcac2.open_release``), which may import anything.
"""

from __future__ import annotations

#: (layer, the modules and packages in it), lowest first
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "deepcac2._version",
            "deepcac2.errors",
            "deepcac2.argtypes",
            "deepcac2.writable",
            "deepcac2.location",
            "deepcac2.layers",
            "deepcac2.pipeline.stage_values",
            "deepcac2.pipeline.uids",
            "deepcac2.pipeline.identifiers",
            "deepcac2.pipeline.conventions",
            "deepcac2.pipeline.risk_categories",
        ),
    ),
    ("schemas", ("deepcac2.schemas",)),
    ("loader", ("deepcac2.pipeline.loader",)),
    ("totalseg", ("deepcac2.pipeline.totalseg",)),
    ("cohort", ("deepcac2.pipeline.cohort",)),
    ("sources", ("deepcac2.pipeline.sources",)),
    ("contrast", ("deepcac2.pipeline.contrast",)),
    ("anatomy", ("deepcac2.pipeline.anatomy",)),
    ("models", ("deepcac2.pipeline.models",)),
    ("scoring", ("deepcac2.pipeline.scoring",)),
    ("dicomout", ("deepcac2.pipeline.dicomout",)),
    ("seg", ("deepcac2.pipeline.seg",)),
    ("sr", ("deepcac2.pipeline.sr",)),
    ("convert", ("deepcac2.pipeline.convert",)),
    ("process", ("deepcac2.pipeline.process", "deepcac2.pipeline.infer_cli")),
    ("orchestrate", ("deepcac2.pipeline.orchestrate",)),
    ("qa", ("deepcac2.qa",)),
    ("release", ("deepcac2.release",)),
)

#: package roots whose own ``__init__`` is a docstring: core, matched exactly (their modules are placed above)
ROOTS: tuple[str, ...] = ("deepcac2.pipeline",)

#: outside the order: they may import any layer, no layer imports them
OUTSIDE: tuple[str, ...] = ("deepcac2.pipeline.synth", "deepcac2.pipeline.dev", "bench")

#: on top of every layer: the console script and the package root (exact module names)
TOP: tuple[str, ...] = ("deepcac2", "deepcac2.cli", "deepcac2.__main__")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (the longest prefix that names it), ``None`` when unplaced.

    ``TOP`` and ``OUTSIDE`` are returned as ``"top"`` and ``"outside"``.
    """
    if module in TOP:
        return "top"
    if module in ROOTS:
        return "core"
    if any(_within(module, p) for p in OUTSIDE):
        return "outside"
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for p in prefixes:
            if _within(module, p) and (best is None or len(p) > best[0]):
                best = (len(p), name)
    return None if best is None else best[1]


def rank(layer: str) -> int:
    """Position of a layer in ``LAYERS``, lowest 0."""
    return [name for name, _ in LAYERS].index(layer)


def allowed(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` under the order."""
    src, dst = layer_of(importer), layer_of(imported)
    if src is None or dst is None:
        return False
    if dst == "top":
        return src == "top"
    if src in ("top", "outside"):
        return True
    if dst == "outside":
        return False
    return rank(dst) <= rank(src)
