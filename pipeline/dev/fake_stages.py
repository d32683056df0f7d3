"""Trivial stand-in stages, to test and benchmark the orchestration alone.

A series' ``params`` steer what happens to it:

* ``{"fail": "E_NO_IMAGES"}``: the load step raises that DeepCACError;
* ``{"anatomy_fail": "E_ANATOMY_MISMATCH"}``: the anatomy step raises that DeepCACError;
* ``{"transient": n}``: the load step fails with E_FETCH_TRANSIENT the first n times in a process;
* ``{"work_s": 0.2}``: each CPU stage sleeps that long (to stand for waiting on I/O);
* ``{"spin_s": 0.2}``: each CPU stage computes that long (to stand for CPU work, benchmarks);
* ``{"payload_kb": 64}``: the loaded value carries that many KiB (memory tests);
* ``{"crash": true}``: the load step kills its worker process (a poison series);
* ``{"crash_once": PATH}``: the load step kills its worker process if PATH does not exist yet,
  creating it first (one worker lost mid-series, exactly once);
* ``{"hang_s": 600}``: the load step blocks that long (a hung decoder or fetch);
* ``{"infer_hang_s": 600}``: the inference step blocks that long (a hung model);
* ``{"write_dicom": true}``: the last step writes ``<out_dir>/<uid>/seg.dcm`` (a stand-in object);
* ``{"finish_fail": "E_SR_WRITE"}``: the last step raises that code, after writing when asked to;
* ``{"optional_fail": "review_picture_failed"}``: the series is done, its row flagged so (an
  optional output failed, as the real review picture does on a full disk).

Parameters can also come from a JSON file ``{series_uid: {...}}`` named by the environment
variable ``DEEPCAC2_FAKE_PLAN`` (a cohort Parquet cannot carry them to a ``deepcac2 run``).

The result rows are a pure function of the series uid, so the tables of two runs can be
compared byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.tasks import Stages
from deepcac2.pipeline.stage_values import SeriesRef

_transient_seen: Counter[str] = Counter()


def expected_agatston(series_uid: str) -> float:
    """The score the fake pipeline reports for a series (tests derive it independently too)."""
    return int(hashlib.sha256(series_uid.encode()).hexdigest()[:6], 16) / 1000.0


def _plan() -> dict[str, dict[str, Any]]:
    path = os.environ.get("DEEPCAC2_FAKE_PLAN")
    if not path or not os.path.exists(path):
        return {}
    return _read_plan(path, os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_plan(path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    return json.loads(Path(path).read_text())


def params_of(ref: SeriesRef) -> dict[str, Any]:
    return {**_plan().get(ref.series_uid, {}), **(ref.params or {})}


def _work(params: dict[str, Any]) -> None:
    time.sleep(float(params.get("work_s", 0.0)))
    end = time.thread_time() + float(params.get("spin_s", 0.0))
    while time.thread_time() < end:  # CPU time of this thread: fair however loaded the machine is
        sum(range(10_000))  # some arithmetic between clock reads (each read is a system call)


def _first_to_create(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def fetch_load(ref: SeriesRef, cache: Any) -> dict[str, Any]:
    params = params_of(ref)
    _work(params)
    if params.get("crash"):
        os._exit(17)
    if params.get("crash_once") and _first_to_create(params["crash_once"]):
        os._exit(17)
    time.sleep(float(params.get("hang_s", 0.0)))
    if params.get("fail"):
        raise DeepCACError(ErrorCode(params["fail"]), f"fake failure for {ref.series_uid}")
    if _transient_seen[ref.series_uid] < int(params.get("transient", 0)):
        _transient_seen[ref.series_uid] += 1
        raise DeepCACError(ErrorCode.E_FETCH_TRANSIENT, "fake transient fetch error")
    payload = b"\0" * (1024 * int(params.get("payload_kb", 0)))
    return {"uid": ref.series_uid, "payload": payload, "infer_hang_s": float(params.get("infer_hang_s", 0.0))}


def anatomy(ref: SeriesRef, loaded: dict[str, Any], name: str, cache: Any) -> dict[str, Any]:
    params = params_of(ref)
    if params.get("anatomy_fail"):
        raise DeepCACError(ErrorCode(params["anatomy_fail"]), f"fake anatomy failure for {ref.series_uid}")
    return {"provider": name}


def infer(model: Any, loaded: dict[str, Any], anatomy: dict[str, Any]) -> dict[str, Any]:
    time.sleep(float(loaded.get("infer_hang_s", 0.0)))
    return {"uid": loaded["uid"], "score": expected_agatston(loaded["uid"])}


def finish(
    ref: SeriesRef, loaded: dict[str, Any], predicted: dict[str, Any], out_dir: Path, conventions: tuple[str, ...]
) -> dict[str, list[dict[str, Any]]]:
    params = params_of(ref)
    _work(params)
    if params.get("write_dicom"):
        folder = Path(out_dir) / ref.series_uid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "seg.dcm").write_bytes(f"fake SEG of {ref.series_uid}".encode())
    if params.get("finish_fail"):
        raise DeepCACError(ErrorCode(params["finish_fail"]), f"fake failure after the objects of {ref.series_uid}")
    series = {"SeriesInstanceUID": ref.series_uid, "PatientID": ref.patient_id, "agatston": predicted["score"]}
    if params.get("optional_fail"):
        series["qa_flags"] = [params["optional_fail"]]
    lesions = [
        {"SeriesInstanceUID": ref.series_uid, "lesion_id": i, "convention": c} for i, c in enumerate(conventions)
    ]
    return {"fake_series": [series], "fake_lesions": lesions}


def load_model(spec: Any) -> object:
    if spec.name == "missing":
        raise DeepCACError(ErrorCode.E_MODEL_UNKNOWN, "fake: unknown model 'missing'")
    return object()


#: warms only pydicom: enough to test that a (re)started worker imports before its first task, and quick
STAGES = Stages(
    fetch_load=fetch_load, anatomy=anatomy, infer=infer, finish=finish, load_model=load_model, warm=("pydicom",)
)
#: the same, but the first worker to set up the run's plugin dies in it when DEEPCAC2_FAKE_CRASH_ONCE names
#: a file that does not exist yet (see ``fake_crash``): a worker lost while the plugin is registered
STAGES_CRASH_IN_SETUP = replace(STAGES, warm=("pydicom", "deepcac2.pipeline.dev.fake_crash"))
