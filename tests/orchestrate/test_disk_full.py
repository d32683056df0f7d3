"""A full disk fails the series' writes as E_DISK_FULL (transient); --resume completes them once space is freed.

The output's ``dicom/`` lives on a small tmpfs (a separate volume, as on a cluster), filled
with a ballast file. Mounting needs root: CI runs as root; elsewhere the test skips and says why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_cohort

pytestmark = pytest.mark.slow


@contextmanager
def small_filesystem(where: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MiB mounted at ``where``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    where.mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip()}): no small file system to fill")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the file system says ENOSPC."""
    ballast = folder / "ballast"
    with open(ballast, "wb", buffering=0) as f:  # unbuffered: close() has nothing left to write
        for block in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return ballast


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_full_disk_then_resume_gives_the_bytes_of_a_clean_run(tmp_path):
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    for seed in range(2):
        write_cohort("chest", tmp_path / "synth" / f"chest{seed}", seed=seed, slices=40, rows=256, plaques=2)
    table, _ = index_local(tmp_path / "synth")
    cohort = write_cohort_table(table, tmp_path / "cohort.parquet")
    uids = sorted(table.column("SeriesInstanceUID").to_pylist())
    # the worker's own retries of the full disk, without waiting
    config = RunConfig(cluster=ClusterSpec(workers=1, threads=2), progress=False, retries=1, backoff_s=0.0)
    clean = run_cohort(cohort, tmp_path / "clean", config)
    assert clean.done == 2

    out = tmp_path / "full"
    with small_filesystem(tmp_path / "volume", size_mb=8) as volume:
        (volume / "dicom").mkdir()
        out.mkdir()
        (out / "dicom").symlink_to(volume / "dicom")  # the objects go to the small volume
        ballast = fill(volume)
        full = run_cohort(cohort, out, config)
        assert full.complete and (full.done, full.failed) == (0, 2)
        failures = pq.read_table(out / "tables" / "failures.parquet").to_pylist()
        assert sorted(r["SeriesInstanceUID"] for r in failures) == uids
        assert {(r["error_code"], r["transient"], r["stage"]) for r in failures} == {("E_DISK_FULL", True, "convert")}
        assert all("No space left on device" in r["message"] for r in failures), failures
        assert list((out / "dicom").iterdir()) == []  # nothing half-written is left

        ballast.unlink()  # space is freed
        resumed = run_cohort(cohort, out, replace(config, resume=True))
        assert (resumed.skipped, resumed.done, resumed.failed) == (0, 2, 0)
        for name, path in clean.tables.items():
            if name != "runs":
                assert (out / "tables" / f"{name}.parquet").read_bytes() == path.read_bytes(), name
        assert _files(out / "dicom") == _files(tmp_path / "clean" / "dicom")
