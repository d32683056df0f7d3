"""Rules of the layout that code review alone would let slip."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("deepcac2", "pipeline", "schemas", "qa", "release")
#: "small enough to read in one sitting"
MAX_LINES = 450


def _modules() -> list[Path]:
    return sorted(p for folder in PACKAGE_FOLDERS for p in (REPO / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_orchestration_imports_dask() -> None:
    offenders = [
        str(p.relative_to(REPO))
        for p in _modules()
        if {"dask", "distributed", "dask_cuda"} & _imports(p) and "orchestrate" not in p.parts
    ]
    assert offenders == [], f"stages must not import Dask: {offenders}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_are_readable_in_one_sitting(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} lines; split it"


def test_registered_model_cards_have_dicom_algorithm_families() -> None:
    """A card's family becomes the SEG's algorithm family code (CID 7162): a wrong one fails every SEG."""
    from pydicom.sr.codedict import codes

    from deepcac2.pipeline.models.base import available_models, load_model

    meanings = {getattr(codes.cid7162, k).meaning for k in codes.cid7162.dir()}
    for name in available_models():
        if name == "deepcac2-unet":
            continue  # needs a weights file; its card is checked in tests/models
        card = load_model(name).card
        assert card.family in meanings, f"{name}: {card.family!r} is not a CID 7162 family"


def test_dicom_writers_do_not_import_the_convert_stage() -> None:
    """seg/ and sr/ (and their shared helpers in dicomout/) sit below convert/, which calls them."""
    offenders = []
    for folder in ("seg", "sr", "dicomout"):
        for path in sorted((REPO / "pipeline" / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepcac2.pipeline.convert"):
                    offenders.append(f"{path.relative_to(REPO)}: {node.module}")
    assert offenders == []


#: a module name a subpackage may repeat because it names the same role in each (highdicom's
#: sop/content/enum; a subpackage's cli, base, registry, run, model); any other name is unique
ROLE_NAMES = frozenset({"__init__", "__main__", "base", "cli", "content", "enum", "model", "registry", "run", "sop"})


def test_module_names_are_unique_but_for_roles() -> None:
    """Two modules of one name that mean different things (three ``totalseg``, four ``tables``) mislead."""
    seen: dict[str, list[str]] = {}
    for path in _modules():
        if path.stem not in ROLE_NAMES:
            seen.setdefault(path.stem, []).append(str(path.relative_to(REPO)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
