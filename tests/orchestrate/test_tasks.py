"""Task bodies without Dask: retries, failure pass-through, error codes."""

from __future__ import annotations

import hashlib

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.tasks import (
    Done,
    Failure,
    Policy,
    Stages,
    _attempt,
    fetch_load_task,
    finish_task,
    infer_task,
)
from deepcac2.pipeline.stage_values import SeriesRef

POLICY = Policy(out_dir="/nonexistent", conventions=("deepcac", "canon"), retries=2, backoff_s=0.0)


def _chain(ref: SeriesRef, stages: Stages = fake.STAGES, policy: Policy = POLICY):
    loaded = fetch_load_task(ref, stages, policy)
    predicted = infer_task(ref, loaded, stages, policy)
    return finish_task(ref, loaded, predicted, stages, policy)


def test_good_series_gives_rows_and_timings():
    out = _chain(SeriesRef("1.2.3", patient_id="P1"))
    assert isinstance(out, Done)
    expected = int(hashlib.sha256(b"1.2.3").hexdigest()[:6], 16) / 1000.0
    assert out.rows["fake_series"] == [{"SeriesInstanceUID": "1.2.3", "PatientID": "P1", "agatston": expected}]
    assert [r["convention"] for r in out.rows["fake_lesions"]] == ["deepcac", "canon"]
    assert set(out.timings) == {"fetch_load", "anatomy", "infer", "score_convert"}


def test_permanent_error_is_not_retried_and_passes_through_later_stages():
    out = _chain(SeriesRef("1.2.4", params={"fail": "E_GEOMETRY_TILT"}))
    assert out == Failure("1.2.4", "load", "E_GEOMETRY_TILT", "fake failure for 1.2.4", attempts=1)


@pytest.mark.parametrize(
    ("task", "code", "stage"),
    [
        ("fetch_load", ErrorCode.E_FETCH_TRANSIENT, "fetch"),
        ("fetch_load", ErrorCode.E_TRUNCATED_PIXELS, "load"),
        ("anatomy", ErrorCode.E_ANATOMY_MISMATCH, "anatomy"),
        ("infer", ErrorCode.E_NO_HEART, "infer"),
        ("score_convert", ErrorCode.E_SCORING, "score"),
        ("score_convert", ErrorCode.E_SEG_WRITE, "convert"),
    ],
)
def test_failures_name_the_stage_within_a_task(task, code, stage):
    from deepcac2.pipeline.orchestrate.tasks import stage_of

    assert stage_of(task, code) == stage


def test_anatomy_failure_is_recorded_at_the_anatomy_stage_and_skips_inference():
    out = _chain(SeriesRef("1.2.41", params={"anatomy_fail": "E_ANATOMY_GEOMETRY"}))
    assert out == Failure("1.2.41", "anatomy", "E_ANATOMY_GEOMETRY", "fake anatomy failure for 1.2.41", attempts=1)


def test_the_run_anatomy_choice_reaches_the_anatomy_step_and_inference():
    seen = []

    def infer(model, loaded, anatomy):
        seen.append(anatomy)
        return fake.infer(model, loaded, anatomy)

    stages = Stages(fetch_load=fake.fetch_load, anatomy=fake.anatomy, infer=infer, finish=fake.finish)
    policy = Policy(out_dir="/x", anatomy="classical")
    assert isinstance(_chain(SeriesRef("1.2.42"), stages, policy), Done)
    assert seen == [{"provider": "classical"}]


def test_transient_error_is_retried_up_to_the_limit():
    ok = _chain(SeriesRef("1.2.5", params={"transient": 2}))
    assert isinstance(ok, Done)
    out = _chain(SeriesRef("1.2.6", params={"transient": 5}))
    assert isinstance(out, Failure)
    assert (out.code, out.attempts, out.transient) == ("E_FETCH_TRANSIENT", POLICY.retries + 1, True)


def test_backoff_doubles(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("deepcac2.pipeline.orchestrate.tasks.time.sleep", sleeps.append)

    def always_transient():
        raise DeepCACError(ErrorCode.E_TIMEOUT, "slow")

    policy = Policy(out_dir="/x", retries=3, backoff_s=0.5)
    out = _attempt("fetch", SeriesRef("1.9"), policy, always_transient)
    assert isinstance(out, Failure) and out.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_unexpected_exception_becomes_internal_error_with_its_text():
    def broken(*_):
        raise ZeroDivisionError("division by zero")

    stages = Stages(fetch_load=fake.fetch_load, anatomy=fake.anatomy, infer=broken, finish=fake.finish)
    out = _chain(SeriesRef("1.2.7"), stages)
    assert isinstance(out, Failure)
    assert (out.stage, out.code) == ("infer", "E_INTERNAL")
    assert "ZeroDivisionError" in out.message


def test_error_detail_is_kept():
    def picky(ref, cache):
        raise DeepCACError(ErrorCode.E_TOO_FEW_SLICES, "only 3 slices", slices=3)

    out = fetch_load_task(SeriesRef("1.2.8"), Stages(fetch_load=picky), POLICY)
    assert isinstance(out, Failure) and out.detail == {"slices": "3"}


def test_model_that_cannot_load_fails_the_infer_step():
    from deepcac2.pipeline.models.base import ModelSpec
    from deepcac2.pipeline.orchestrate.plugin import PipelinePlugin

    plugin = PipelinePlugin(ModelSpec(name="missing"))
    with pytest.raises(DeepCACError) as err:
        plugin.model(fake.STAGES)
    assert err.value.code is ErrorCode.E_MODEL_UNKNOWN
    # remembered: a second series does not try to load it again
    calls = []
    stages = Stages(load_model=lambda *a: calls.append(a))
    with pytest.raises(DeepCACError):
        plugin.model(stages)
    assert calls == []
