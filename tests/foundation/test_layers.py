"""Every import of the package against the layer order in ``deepcac2.layers``.

Counts module-level imports and imports inside functions, absolute and relative: an import
placed in a function still ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from deepcac2 import layers

REPO = Path(__file__).resolve().parents[2]
#: import name -> folder, as setup.py maps them
FOLDERS = {
    "deepcac2": "deepcac2",
    "deepcac2.pipeline": "pipeline",
    "deepcac2.schemas": "schemas",
    "deepcac2.qa": "qa",
    "deepcac2.release": "release",
}


def _module_files() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    out: dict[str, tuple[Path, bool]] = {}
    for package, folder in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            if is_init:
                parts = parts[:-1]
            out[".".join([package, *parts])] = (path, is_init)
    return out


MODULES = _module_files()


def imports_of(module: str, path: Path, is_init: bool, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every ``import``/``from ... import`` in the file, relative ones resolved.

    ``from package import name`` counts as an import of ``package.name`` when that is a module.
    """
    package = module if is_init else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.append((full if full in known else source, node.lineno))
    return found


def _edges() -> list[tuple[str, str, str]]:
    """(importer, imported, where) for every import of a package module or of ``bench``."""
    known = set(MODULES)
    edges = []
    for module, (path, is_init) in MODULES.items():
        for imported, line in imports_of(module, path, is_init, known):
            if imported.split(".")[0] in ("deepcac2", "bench"):
                edges.append((module, imported, f"{path.relative_to(REPO)}:{line}"))
    return edges


EDGES = _edges()


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if layers.layer_of(m) is None]
    assert unplaced == [], f"place these modules in deepcac2/layers.py: {unplaced}"


def test_every_entry_of_the_order_names_a_module() -> None:
    """A renamed or removed module leaves no stale entry behind."""
    entries = [p for _, prefixes in layers.LAYERS for p in prefixes] + list(layers.ROOTS) + list(layers.TOP)
    entries += [p for p in layers.OUTSIDE if p != "bench"]
    stale = [p for p in entries if p not in MODULES]
    assert stale == []


def test_no_import_goes_up_the_order_or_into_development_tools() -> None:
    bad = [
        f"{where}: {src} ({layers.layer_of(src)}) imports {dst} ({layers.layer_of(dst)})"
        for src, dst, where in EDGES
        if not layers.allowed(src, dst)
    ]
    assert bad == [], "imports against deepcac2/layers.py:\n" + "\n".join(bad)


def test_function_level_and_relative_imports_are_counted(tmp_path: Path) -> None:
    """The walk sees an import inside a function and resolves a relative one (the test can fail)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\n\n\ndef f():\n    from deepcac2.release import build\n\n\nfrom ..release import verify\n"
    )
    found = imports_of("deepcac2.pipeline.cohort.probe", probe, False, set(MODULES))
    names = {name for name, _ in found}
    assert {"deepcac2.release.build", "deepcac2.pipeline.release"} <= names
    assert not layers.allowed("deepcac2.pipeline.cohort.probe", "deepcac2.release.build")


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("deepcac2.pipeline.scoring.engine", "deepcac2.pipeline.loader.read", True),
        ("deepcac2.pipeline.loader.read", "deepcac2.pipeline.scoring.engine", False),
        ("deepcac2.pipeline.process", "deepcac2.qa.run", False),
        ("deepcac2.pipeline.models.base", "deepcac2.pipeline.synth.phantom", False),
        ("deepcac2.pipeline.synth.phantom", "deepcac2.pipeline.anatomy.base", True),
        ("deepcac2.release.build", "bench.measure", False),
        ("deepcac2.cli", "deepcac2.release.build", True),
        ("deepcac2.release.build", "deepcac2.cli", False),
    ],
)
def test_the_rule(importer: str, imported: str, ok: bool) -> None:
    assert layers.allowed(importer, imported) is ok


def test_modules_named_in_strings_exist_and_sit_in_a_layer() -> None:
    """Modules named as text (entry points, the workers' warm list, the CLI) follow a move or a rename."""
    import tomllib

    from deepcac2.cli import COMMANDS
    from deepcac2.pipeline.orchestrate.tasks import WARM_MODULES

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    named = [
        target.split(":")[0] for group in pyproject["project"]["entry-points"].values() for target in group.values()
    ]
    named += [m for m in WARM_MODULES if m.startswith("deepcac2")]
    missing = [m for m in named if m not in MODULES]
    assert missing == []
    assert [m for m in named if layers.layer_of(m) in (None, "outside")] == [], "run-path names must be in a layer"
    assert [module for module, _ in COMMANDS.values() if module not in MODULES] == []


def test_the_architecture_picture_draws_the_order() -> None:
    """docs/architecture.md draws the layers top down; its rows follow ``LAYERS`` (a new layer is drawn)."""
    text = (REPO / "docs" / "architecture.md").read_text()
    names = {name for name, _ in layers.LAYERS}
    drawn = [line.split()[1] for line in text.splitlines() if line.startswith("  │ ") and line.split()[1] in names]
    assert drawn[::-1] == [name for name, _ in layers.LAYERS]
