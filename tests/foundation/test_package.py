"""The package layout, install modes and console script the brief asks for."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from deepcac2.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {
    "pipeline": "deepcac2.pipeline",
    "schemas": "deepcac2.schemas",
    "qa": "deepcac2.qa",
    "release": "deepcac2.release",
}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.mark.parametrize("folder,package", sorted(FOLDERS.items()))
def test_top_level_folders_are_subpackages(folder: str, package: str) -> None:
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == (REPO / folder).resolve()


def test_torch_range_accepts_the_cpu_build_on_disk() -> None:
    deps = _pyproject()["project"]["dependencies"]
    torch = [d for d in deps if d.replace(" ", "").lower().startswith("torch")]
    assert len(torch) == 1, deps
    spec = SpecifierSet(torch[0][len("torch") :])
    assert "2.13.0" in spec
    assert spec != SpecifierSet(""), "torch must be a range, not unpinned"


def test_every_dependency_is_a_range() -> None:
    for dep in _pyproject()["project"]["dependencies"]:
        assert any(op in dep for op in (">=", "<", "~=", "==")), f"{dep} has no version range"


def test_python_requirement() -> None:
    assert SpecifierSet(_pyproject()["project"]["requires-python"]) == SpecifierSet(">=3.11")


def test_console_script_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "deepcac2", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run([sys.executable, "-m", "deepcac2", command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"deepcac2 {command}" in out.stdout


def test_unknown_command_fails() -> None:
    out = subprocess.run([sys.executable, "-m", "deepcac2", "no-such-command"], capture_output=True, text=True)
    assert out.returncode != 0


@pytest.mark.slow
def test_regular_wheel_contains_every_subpackage(tmp_path: Path) -> None:
    """A non-editable install must carry every folder with an __init__.py."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("deepcac2-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.relative_to(REPO / folder)
            expected = "/".join([*package.split("."), *rel.parts])
            assert expected in names, f"{expected} missing from the wheel"
    assert "deepcac2/cli.py" in names
    assert any(n.endswith("entry_points.txt") and "deepcac2" in n for n in names)
