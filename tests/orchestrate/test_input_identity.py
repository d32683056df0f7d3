"""Through ``deepcac2 run`` with the real stages: stray files are notes, a changed series is E_INPUT_CHANGED
until --rescan, and its objects never outlive its failure."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow


def _run(cohort, out, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepcac2", "run", "--cohort", str(cohort), "--out", str(out), "--no-progress"]
    cmd += ["--workers", "1", "--threads", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_stray_files_changed_series_and_rescan(tmp_path):
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    for seed in range(2):
        write_cohort("chest", tmp_path / "synth" / f"c{seed}", seed=seed, slices=40, rows=256, plaques=2)
    table, _ = index_local(tmp_path / "synth")
    rows = {r["SeriesInstanceUID"]: r for r in table.to_pylist()}
    kept, changed = sorted(rows)
    cohort = write_cohort_table(table, tmp_path / "cohort.parquet")
    # one series loses its last slice after the cohort was made
    gone = sorted(
        (p for p in (tmp_path / "synth").rglob("*.dcm") if p.parent.name == changed), key=lambda p: int(p.stem)
    )
    assert len(gone) == 40
    gone[-1].unlink()  # the last slice: no gap, so --rescan can load the rest

    done = _run(cohort, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    failures = pq.read_table(tmp_path / "out" / "tables" / "failures.parquet").to_pylist()
    assert [(r["SeriesInstanceUID"], r["error_code"], r["transient"]) for r in failures] == [
        (changed, "E_INPUT_CHANGED", False)
    ]
    assert "39 files now, 40 when the cohort was made" in failures[0]["message"]
    assert not (tmp_path / "out" / "dicom" / changed).exists()

    # --rescan loads it as it is now (39 slices: the last one is gone, no gap)
    again = _run(cohort, tmp_path / "out", "--retry-failed", "E_INPUT_CHANGED", "--rescan")
    assert again.returncode == 0, again.stderr
    series = {
        r["SeriesInstanceUID"]: r for r in pq.read_table(tmp_path / "out" / "tables" / "cac_series.parquet").to_pylist()
    }
    assert set(series) == {kept, changed}
    assert series[changed]["num_slices"] == 39
    assert pq.read_table(tmp_path / "out" / "tables" / "failures.parquet").num_rows == 0


def test_stray_files_in_a_series_folder_do_not_fail_the_series(tmp_path):
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    write_cohort("chest", tmp_path / "synth", seed=3, slices=40, rows=256, plaques=2)
    folder = next(p.parent for p in (tmp_path / "synth").rglob("*.dcm"))
    (folder / "notes.txt").write_text("reader notes")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(600))
    table, skipped = index_local(tmp_path / "synth")
    assert {p.rsplit("/", 1)[-1] for p, why in skipped if why == "not a DICOM file"} >= {"notes.txt", "Thumbs.db"}
    cohort = write_cohort_table(table, tmp_path / "cohort.parquet")
    done = _run(cohort, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (row,) = pq.read_table(tmp_path / "out" / "tables" / "cac_series.parquet").to_pylist()
    assert any("not DICOM" in n and "notes.txt" in n and "Thumbs.db" in n for n in row["loader_notes"]), row
