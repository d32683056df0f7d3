"""Output directory state: lock, atomic fragments, identity checks, deterministic tables."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.store import LOCK_NAME, Fragment, OutputStore


def test_second_store_on_same_dir_is_refused(tmp_path):
    with OutputStore(tmp_path):
        with pytest.raises(DeepCACError) as err:
            OutputStore(tmp_path).acquire()
        assert err.value.code is ErrorCode.E_OUTPUT_LOCKED
        assert str(os.getpid()) in err.value.message
    # released on exit: a new run may take it
    with OutputStore(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_of_dead_process_is_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with OutputStore(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_lock_held_on_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "some-other-host"}))
    with pytest.raises(DeepCACError) as err:
        OutputStore(tmp_path).acquire()
    assert err.value.code is ErrorCode.E_OUTPUT_LOCKED
    assert "some-other-host" in err.value.message


def test_fresh_run_refuses_existing_results_unless_resume_or_overwrite(tmp_path):
    with OutputStore(tmp_path) as store:
        store.check_identity({"cohort": "a"}, resume=False, overwrite=False)
        store.commit(Fragment("1.2.3", "done", None, {"t": [{"x": 1}]}))
        with pytest.raises(DeepCACError) as err:
            store.check_identity({"cohort": "a"}, resume=False, overwrite=False)
        assert err.value.code is ErrorCode.E_OUTPUT_EXISTS
        with pytest.raises(DeepCACError) as err:
            store.check_identity({"cohort": "b"}, resume=True, overwrite=False)
        assert "cohort" in err.value.message
        store.check_identity({"cohort": "a"}, resume=True, overwrite=False)
        assert set(store.committed()) == {"1.2.3"}
        store.check_identity({"cohort": "b"}, resume=False, overwrite=True)
        assert store.committed() == {}


def test_commit_leaves_no_temporary_files_and_overwrites_in_place(tmp_path):
    store = OutputStore(tmp_path)
    store.commit(Fragment("1.2.3", "failed", "E_FETCH_TRANSIENT", {"failures": []}))
    store.commit(Fragment("1.2.3", "done", None, {"t": [{"x": 2}]}))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.fragment_path("1.2.3")]
    (only,) = store.fragments()
    assert only.status == "done" and only.rows == {"t": [{"x": 2}]}


def test_transient_failures_are_retried_on_resume_permanent_ones_not():
    assert Fragment("a", "failed", "E_WORKER_LOST", {}).retry_on_resume
    assert not Fragment("a", "failed", "E_NO_IMAGES", {}).retry_on_resume
    assert not Fragment("a", "done", None, {}).retry_on_resume


def test_rows_that_cannot_be_stored_are_a_table_error(tmp_path):
    with pytest.raises(DeepCACError) as err:
        OutputStore(tmp_path).commit(Fragment("1.2.3", "done", None, {"t": [{"x": object()}]}))
    assert err.value.code is ErrorCode.E_TABLE_WRITE


def _failure(uid: str, code: str) -> dict:
    return {
        "SeriesInstanceUID": uid,
        "stage": "load",
        "error_code": code,
        "message": f"bad {uid}",
        "attempts": 1,
        "transient": False,
        "detail_json": None,
        "toolkit_version": "0.1.0",
    }


def test_tables_are_byte_identical_whatever_the_commit_order(tmp_path):
    uids = [f"1.2.{i}" for i in range(40)]

    def build(root, order):
        store = OutputStore(root)
        for uid in order:
            if uid.endswith("7"):
                store.commit(Fragment(uid, "failed", "E_NO_IMAGES", {"failures": [_failure(uid, "E_NO_IMAGES")]}))
            else:
                store.commit(Fragment(uid, "done", None, {"extra": [{"SeriesInstanceUID": uid, "n": len(uid)}]}))
        return store.assemble(uids, ["failures"])

    a = build(tmp_path / "a", uids)
    shuffled = list(uids)
    random.Random(1).shuffle(shuffled)
    b = build(tmp_path / "b", shuffled)
    assert set(a) == {"failures", "extra"}
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    failures = pq.read_table(a["failures"]).to_pylist()
    assert sorted(r["SeriesInstanceUID"] for r in failures) == sorted(u for u in uids if u.endswith("7"))
    assert pq.read_table(a["extra"]).num_rows == len(uids) - len(failures)


def test_assembly_only_takes_the_cohort_series(tmp_path):
    store = OutputStore(tmp_path)
    for uid in ("1.1", "1.2"):
        store.commit(Fragment(uid, "done", None, {"extra": [{"SeriesInstanceUID": uid}]}))
    out = store.assemble(["1.2"])
    assert pq.read_table(out["extra"]).column("SeriesInstanceUID").to_pylist() == ["1.2"]
