"""The whole chain through a bucket: ``run --out s3://`` -> ``qa`` -> ``release build`` -> ``release verify``.

Real stages on one synthetic chest, on a worker process that reaches the bucket (moto in
server mode on loopback) through the standard AWS variables, with no folder shared with
the client. The run's tables must be the bytes of the same run written to a local folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepcac2.cli import main
from deepcac2.location import Remote

pytestmark = pytest.mark.slow

BUCKET = "deepcac2-chain"


@pytest.fixture(scope="module")
def chain_bucket(aws_env, s3):
    s3.create_bucket(Bucket=BUCKET)
    return aws_env


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """One small synthetic chest with two plaques (the vendor matrix's), as ``deepcac2 cohort --from-dir`` makes it."""
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    root = tmp_path_factory.mktemp("chain")
    write_cohort("chest", root / "synth", seed=0, slices=40, rows=256, plaques=2)
    table, _ = index_local(root / "synth")
    return write_cohort_table(table, root / "cohort.parquet")


def _run(cohort: Path, out: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "deepcac2", "run", "--cohort", str(cohort), "--out", out, "--anatomy", "classical"]
    cmd += ["--conventions", "deepcac", "--workers", "1", "--threads", "2", "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_a_run_in_a_bucket_passes_qa_and_builds_a_release_that_verifies(chain_bucket, cohort, tmp_path, capsys):
    run = f"s3://{BUCKET}/nlst/run"
    done = _run(cohort, run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{run}/tables/cac_series.parquet" in done.stderr  # the summary names the bucket, not a scratch folder
    local = tmp_path / "run"
    done_local = _run(cohort, str(local))
    assert done_local.returncode == 0, done_local.stderr[-3000:]

    bucket = Remote.parse(run)
    for table in sorted(p.name for p in (local / "tables").glob("*.parquet")):
        if table != "runs.parquet":  # the one table that lists each run (ids, times)
            assert bucket.read_bytes(f"tables/{table}") == (local / "tables" / table).read_bytes(), table
    objects = sorted(p.relative_to(local).as_posix() for p in (local / "dicom").rglob("*") if p.is_file())
    assert objects and bucket.files("dicom") == objects
    for name in objects:  # the worker wrote the same SEG/SR bytes into the bucket
        assert bucket.read_bytes(name) == (local / name).read_bytes(), name

    capsys.readouterr()
    assert main(["qa", run, "--cohort", str(cohort)]) == 0
    assert bucket.exists("qa/checks.parquet") and bucket.exists("qa/report.html")
    assert f"report: {run}/qa/report.html" in capsys.readouterr().out  # not the local copy, gone by now

    release = f"s3://{BUCKET}/nlst/release-0.0.1"
    assert main(["release", "build", run, "--version", "0.0.1", "--out", release]) == 0
    assert Remote.parse(release).exists("MANIFEST.csv")
    assert f"release 0.0.1 built in {release}\n" in capsys.readouterr().out
    assert main(["release", "verify", release]) == 0
    # the same run's release can be built to a local folder too, and verifies there
    assert main(["release", "build", run, "--version", "0.0.1", "--out", str(tmp_path / "rel")]) == 0
    assert main(["release", "verify", str(tmp_path / "rel")]) == 0

    # a release into a prefix that holds one is refused without --overwrite, as on disk; with it, replaced
    manifest = Remote.parse(release).read_bytes("MANIFEST.csv")
    assert main(["release", "build", run, "--version", "0.0.2", "--out", release]) == 3
    assert Remote.parse(release).read_bytes("MANIFEST.csv") == manifest  # untouched
    assert main(["release", "build", run, "--version", "0.0.2", "--out", release, "--overwrite"]) == 0
    assert main(["release", "verify", release]) == 0

    # verify reads what the bucket holds: one damaged object fails it
    damaged = next(n for n in Remote.parse(release).files() if n.endswith(".dcm"))
    Remote.parse(release).write_bytes(damaged, Remote.parse(release).read_bytes(damaged) + b"\0")
    assert main(["release", "verify", release]) == 1
