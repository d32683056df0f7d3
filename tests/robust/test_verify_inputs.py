"""Input identity by content (``--verify-inputs``) and the re-check of finished series on ``--resume``.

On the old code the fingerprint was file metadata only: a pixel edit with size and mtime restored
was scored silently, ``--resume`` on a finished run never looked at the inputs again, and a null
fingerprint skipped the check.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.loader.read import folder_fingerprint
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.inputs import CONTENT, content_fingerprint
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import OutputStore
from deepcac2.pipeline.sources.local import FINGERPRINT
from deepcac2.pipeline.stage_values import SeriesRef


def _series(root: Path, n: int = 3) -> list[SeriesRef]:
    """``n`` local series folders of three small 'slices' each, with the cohort's metadata fingerprint."""
    refs = []
    for i in range(n):
        folder = root / f"s{i}"
        folder.mkdir(parents=True)
        for k in range(3):
            (folder / f"{k}.dcm").write_bytes(bytes([i, k]) * 512)
        uid = f"1.2.826.0.1.3680043.12.{i}"
        refs.append(SeriesRef(uid, location=str(folder), params={FINGERPRINT: folder_fingerprint(folder)}))
    return refs


def _edit_keeping_size_and_time(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # one pixel byte
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _failures(out: Path) -> dict[str, dict]:
    return {r["SeriesInstanceUID"]: r for r in pq.read_table(out / "tables" / "failures.parquet").to_pylist()}


def test_a_pixel_edit_with_size_and_time_restored_is_caught_on_resume(scheduler, tmp_path):
    refs = _series(tmp_path / "data")
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, verify_inputs=True)
    first = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
    assert first.complete and first.done == 3
    kept = OutputStore(tmp_path / "out").committed()
    assert kept[refs[1].series_uid].inputs == content_fingerprint(refs[1].location)
    edited = Path(refs[1].location) / "2.dcm"
    _edit_keeping_size_and_time(edited)
    assert folder_fingerprint(refs[1].location) == refs[1].params[FINGERPRINT], "metadata cannot see it"
    # --resume on a finished run checks the inputs again
    again = run_series(refs, tmp_path / "out", replace(config, resume=True), stages=fake.STAGES)
    assert again.complete and (again.skipped, again.done, again.failed) == (2, 0, 1)
    failure = _failures(tmp_path / "out")[refs[1].series_uid]
    assert failure["error_code"] == "E_INPUT_CHANGED" and not failure["transient"]
    assert "SHA-256 of its files" in failure["message"] and "--rescan" in failure["message"]
    done = pq.read_table(tmp_path / "out" / "tables" / "fake_series.parquet").column("SeriesInstanceUID")
    assert refs[1].series_uid not in done.to_pylist()
    log = [json.loads(x) for p in (tmp_path / "out" / "logs").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert [e["series"] for e in log if e["event"] == "inputs_changed"] == [[refs[1].series_uid]]
    # --rescan --retry-failed E_INPUT_CHANGED scores it as it is now
    rescan = replace(config, rescan=True, retry_codes=frozenset({"E_INPUT_CHANGED"}))
    third = run_series(refs, tmp_path / "out", rescan, stages=fake.STAGES)
    assert (third.done, third.failed) == (1, 0) and _failures(tmp_path / "out") == {}
    assert OutputStore(tmp_path / "out").committed()[refs[1].series_uid].inputs == content_fingerprint(edited.parent)


def test_resume_rechecks_the_metadata_fingerprint_even_without_verify_inputs(scheduler, tmp_path):
    refs = _series(tmp_path / "data")
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False)
    run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
    (Path(refs[0].location) / "3.dcm").write_bytes(b"a slice added after the run")
    again = run_series(refs, tmp_path / "out", replace(config, resume=True), stages=fake.STAGES)
    assert (again.skipped, again.failed) == (2, 1)
    assert _failures(tmp_path / "out")[refs[0].series_uid]["error_code"] == "E_INPUT_CHANGED"


def test_verify_inputs_refuses_local_series_without_a_fingerprint(scheduler, tmp_path):
    refs = _series(tmp_path / "data")
    refs[2] = replace(refs[2], params={})
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, verify_inputs=True)
    with pytest.raises(DeepCACError) as err:
        run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_COHORT_INVALID and refs[2].series_uid in err.value.message
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_a_content_fingerprint_from_the_cohort_is_checked_before_the_first_load(scheduler, tmp_path):
    """When the cohort carries a content fingerprint (``content_fingerprint``), an edit made between the
    cohort and the first run, size and time restored, is E_INPUT_CHANGED instead of being scored."""
    refs = _series(tmp_path / "data")
    refs = [replace(r, params={**r.params, CONTENT: content_fingerprint(r.location)}) for r in refs]
    _edit_keeping_size_and_time(Path(refs[0].location) / "0.dcm")
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, verify_inputs=True, retries=0)
    summary = run_series(refs, tmp_path / "out", config, stages=fake.STAGES)
    assert (summary.done, summary.failed) == (2, 1)
    failure = _failures(tmp_path / "out")[refs[0].series_uid]
    assert failure["error_code"] == "E_INPUT_CHANGED" and "since the cohort was made" in failure["message"]
