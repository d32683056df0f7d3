"""``--resume`` recognises its inputs by content: weights by SHA-256, the cohort by its hash.

On the old code the weights were recognised by file name and size, so a different file with
the same name and size (and even the same modification time) resumed silently.
"""

from __future__ import annotations

import os

import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.models.base import ModelSpec
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.stage_values import SeriesRef, sha256_file

REFS = [SeriesRef(f"1.2.826.0.1.3680043.22.{i}") for i in range(3)]


def _config(scheduler: str, weights: str, **kw) -> RunConfig:
    return RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, model=ModelSpec(weights=weights), **kw)


def test_swapped_weights_with_the_same_name_size_and_time_refuse_resume(scheduler, tmp_path):
    weights = tmp_path / "vivid-haze-6_model.pt"
    weights.write_bytes(b"A" * 4096)
    first = run_series(REFS, tmp_path / "out", _config(scheduler, str(weights)), stages=fake.STAGES)
    assert first.complete
    st = weights.stat()
    weights.write_bytes(b"B" * 4096)  # same name, same size ...
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same modification time
    with pytest.raises(DeepCACError) as err:
        run_series(REFS, tmp_path / "out", _config(scheduler, str(weights), resume=True), stages=fake.STAGES)
    assert err.value.code is ErrorCode.E_RESUME_MISMATCH
    assert "model" in err.value.message and "weights_sha256" in err.value.message, err.value.message
    assert sha256_file(str(weights))[:12] in err.value.message
    # the original content under another name resumes: identity is the content, not the name
    moved = tmp_path / "renamed.pt"
    moved.write_bytes(b"A" * 4096)
    again = run_series(REFS, tmp_path / "out", _config(scheduler, str(moved), resume=True), stages=fake.STAGES)
    assert again.complete and again.skipped == len(REFS)


def test_a_cohort_with_other_content_refuses_resume(scheduler, tmp_path):
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False)
    run_series(REFS, tmp_path, config, stages=fake.STAGES, identity={"cohort_sha256": "a" * 64})
    with pytest.raises(DeepCACError) as err:
        resumed = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False, resume=True)
        run_series(REFS, tmp_path, resumed, stages=fake.STAGES, identity={"cohort_sha256": "b" * 64})
    assert err.value.code is ErrorCode.E_RESUME_MISMATCH
    assert "cohort_sha256" in err.value.message and "aaaaaaaaaaaa..." in err.value.message
