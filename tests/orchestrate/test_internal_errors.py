"""E_INTERNAL is explained: the failure names the stage that raised and keeps the traceback."""

from __future__ import annotations

import json

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.records import failure_row
from deepcac2.pipeline.orchestrate.tasks import Failure, Policy, Stages, fetch_load_task, finish_task, infer_task
from deepcac2.pipeline.stage_values import SeriesRef

POLICY = Policy(out_dir="/nonexistent", conventions=("deepcac",), retries=0, backoff_s=0.0)


def _broken_sr_writer(*_args):
    raise ValueError("BytesLengthException stand-in")


def finish_failing_in_convert(ref, loaded, predicted, out_dir, conventions):
    """Scoring succeeds; the converter (as the SR writer did) raises a plain exception."""
    with process.in_stage("score"):
        pass
    with process.in_stage("convert"):
        _broken_sr_writer(ref)


def finish_failing_on_purpose(ref, loaded, predicted, out_dir, conventions):
    with process.in_stage("convert"):
        raise DeepCACError(ErrorCode.E_SR_WRITE, "refused on purpose")


def _chain(stages: Stages) -> Failure:
    ref = SeriesRef("1.2.99")
    loaded = fetch_load_task(ref, stages, POLICY)
    out = finish_task(ref, loaded, infer_task(ref, loaded, stages, POLICY), stages, POLICY)
    assert isinstance(out, Failure)
    return out


def test_unexpected_exception_names_its_stage_and_keeps_the_traceback():
    stages = Stages(
        fetch_load=fake.fetch_load, anatomy=fake.anatomy, infer=fake.infer, finish=finish_failing_in_convert
    )
    failure = _chain(stages)
    assert failure.code == ErrorCode.E_INTERNAL.value
    assert failure.stage == "convert"  # the task's code-based guess said "score"
    detail = json.loads(failure_row(failure)["detail_json"])
    assert "Traceback (most recent call last)" in detail["traceback"]
    assert "_broken_sr_writer" in detail["traceback"] and detail["exception"] == "ValueError"


def test_deliberate_error_keeps_no_traceback():
    stages = Stages(
        fetch_load=fake.fetch_load, anatomy=fake.anatomy, infer=fake.infer, finish=finish_failing_on_purpose
    )
    failure = _chain(stages)
    assert (failure.code, failure.stage) == (ErrorCode.E_SR_WRITE.value, "convert")
    assert "traceback" not in failure.detail


def test_wrapped_library_error_keeps_the_cause_traceback():
    from deepcac2.pipeline.orchestrate.tasks import unexpected_traceback

    try:
        try:
            int("x")
        except ValueError as exc:
            raise DeepCACError(ErrorCode.E_SEG_WRITE, "highdicom refused the SEG") from exc
    except DeepCACError as wrapped:
        tb = unexpected_traceback(wrapped)
    assert tb is not None and "invalid literal" in tb and "E_SEG_WRITE" in tb


def test_a_crash_in_the_real_sr_writer_is_a_convert_failure(monkeypatch, tmp_path):
    """The real score-and-convert step, its SR writer crashing as it did on Philips headers."""
    from convert import synthetic

    from deepcac2.pipeline.convert import series
    from deepcac2.pipeline.orchestrate.tasks import _attempt

    def crash(*_args, **_kwargs):
        raise ValueError("Expected total bytes to be an even multiple of bytes per value")

    monkeypatch.setattr(series, "build_sr", crash)
    ct = synthetic.ct_volume(synthetic.ct_datasets())
    ref = SeriesRef(ct.series_uid)
    out = _attempt(
        "score_convert", ref, POLICY, process.score_and_convert, ref, ct, synthetic.prediction(ct.shape), tmp_path,
        ("deepcac",),
    )  # fmt: skip
    assert isinstance(out, Failure)
    assert (out.code, out.stage) == (ErrorCode.E_INTERNAL.value, "convert")
    assert "in crash" in out.detail["traceback"] and "convert_series" in out.detail["traceback"]
