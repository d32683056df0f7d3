"""Issue 25, item 1: ``--overwrite`` removes only what this tool made.

Probes through the CLI (``deepcac2.cli.main``), as an operator types them: ``--out`` equal to
the run, a folder holding the run, a folder inside it, an unrelated folder, another run, and a
release with a stranger's file in it. Each refusal is ``E_OUTPUT_NOT_OURS`` and removes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deepcac2.cli import main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.release.verify import verify_release
from tests.release.runfactory import make_run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _build(run: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(
        ["release", "build", str(run), "--version", "1.0.0", "--out", str(out), "--dashboard-patients", "1", *extra]
    )
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("safety") / "parent" / "RUN", n_patients=1, images=False)


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_out_never_is_holds_or_sits_in_the_run(run_dir: Path, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(run_dir)
    out = {"same": run_dir, "parent": run_dir.parent, "inside": run_dir / "release"}[where]
    rc, err = _build(run_dir, out, capsys, "--overwrite")
    assert rc != 0 and "E_OUTPUT_NOT_OURS" in err and "Traceback" not in err, err
    assert _snapshot(run_dir) == before  # the run is untouched (it was deleted before the fix)
    assert not (run_dir / "release").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_release(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    rc, err = _build(run_dir, out, capsys, "--overwrite")
    assert rc != 0 and "E_OUTPUT_NOT_OURS" in err
    assert (out / "thesis.tex").read_text() == "years of work"


def test_overwrite_refuses_another_run_folder(run_dir: Path, tmp_path: Path, capsys) -> None:
    other = make_run(tmp_path / "OTHER", n_patients=1, qa=False, images=False)
    (other / "state").mkdir()
    (other / "state" / "run.json").write_text("{}")
    before = _snapshot(other)
    rc, err = _build(run_dir, other, capsys, "--overwrite")
    assert rc != 0 and "E_OUTPUT_NOT_OURS" in err and _snapshot(other) == before


def test_overwrite_replaces_a_release_but_refuses_when_a_stranger_file_is_in_it(
    run_dir: Path, tmp_path: Path, capsys
) -> None:
    rel = tmp_path / "REL"
    assert _build(run_dir, rel, capsys)[0] == 0
    (rel / "figures" / "my_notes.txt").write_text("keep me")
    before = _snapshot(rel)
    rc, err = _build(run_dir, rel, capsys, "--overwrite")
    assert rc != 0 and "E_OUTPUT_NOT_OURS" in err and "figures/my_notes.txt" in err
    assert _snapshot(rel) == before  # nothing removed, the stranger's file least of all

    (rel / "figures" / "my_notes.txt").unlink()
    (rel / "tables" / "cac_series.parquet").write_bytes(b"stale")  # a damaged earlier release is still ours
    rc, err = _build(run_dir, rel, capsys, "--overwrite")
    assert rc == 0, err
    assert verify_release(rel).ok


def test_run_refuses_a_release_folder_and_overwrite_clears_only_qa_outputs(tmp_path: Path, run_dir: Path) -> None:
    rel = tmp_path / "REL"
    shutil.copytree(run_dir, rel)
    (rel / "MANIFEST.csv").write_text("path\n")
    with OutputStore(rel) as store, pytest.raises(DeepCACError) as exc:
        store.check_identity({"a": 1}, resume=False, overwrite=True)
    assert exc.value.code is ErrorCode.E_OUTPUT_NOT_OURS
    assert (rel / "dicom").is_dir() and (rel / "qa" / "checks.parquet").exists()

    out = tmp_path / "RUN"
    with OutputStore(out) as store:
        store.check_identity({"a": 1}, resume=False, overwrite=False)
    (out / "qa" / "images").mkdir(parents=True)
    for name in ("checks.parquet", "report.html", "review_sheet.csv", "images/1.2.png", "my_notes.txt"):
        (out / "qa" / name).write_text("x")
    with OutputStore(out) as store:
        store.check_identity({"a": 2}, resume=False, overwrite=True)
    left = sorted(p.relative_to(out / "qa").as_posix() for p in (out / "qa").rglob("*") if p.is_file())
    assert left == ["my_notes.txt"]  # the old QA is gone, the operator's file is not
