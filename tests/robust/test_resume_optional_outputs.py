"""``--resume`` does again a series whose review picture (an optional output) failed, e.g. on a full
disk, so a resumed run equals a clean one. On the old code the series was committed as done and
``--resume`` kept it, flag and missing picture included.
"""

from __future__ import annotations

import errno
from dataclasses import replace

import pyarrow.parquet as pq

from deepcac2.pipeline import process
from deepcac2.pipeline.dev import fake_stages as fake
from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
from deepcac2.pipeline.orchestrate.run import RunConfig, run_series
from deepcac2.pipeline.orchestrate.store import OutputStore, optional_outputs_failed
from deepcac2.pipeline.stage_values import SeriesRef

FLAG = "review_picture_failed"


def _refs(flagged: int | None = None) -> list[SeriesRef]:
    return [
        SeriesRef(f"1.2.826.0.1.3680043.11.{i}", params={"optional_fail": FLAG} if i == flagged else {})
        for i in range(4)
    ]


def test_resume_redoes_a_series_whose_optional_output_failed(scheduler, tmp_path):
    config = RunConfig(cluster=ClusterSpec(scheduler=scheduler), progress=False)
    clean = run_series(_refs(), tmp_path / "clean", config, stages=fake.STAGES)
    hit = run_series(_refs(flagged=1), tmp_path / "hit", config, stages=fake.STAGES)
    assert hit.complete and hit.done == 4  # the series' results stand: done, not failed
    flagged = _refs()[1].series_uid
    assert OutputStore(tmp_path / "hit").committed()[flagged].incomplete == (FLAG,)
    # space is back (the stand-in no longer fails): --resume does that series, and only it, again
    resumed = run_series(_refs(), tmp_path / "hit", replace(config, resume=True), stages=fake.STAGES)
    assert (resumed.skipped, resumed.done, resumed.failed) == (3, 1, 0)
    assert OutputStore(tmp_path / "hit").committed()[flagged].incomplete == ()
    for name, path in clean.tables.items():
        if name != "runs":
            assert (tmp_path / "hit" / "tables" / f"{name}.parquet").read_bytes() == path.read_bytes(), name
    rows = pq.read_table(tmp_path / "hit" / "tables" / "fake_series.parquet").to_pylist()
    assert all(not r.get("qa_flags") for r in rows)


def test_a_review_picture_that_fails_on_a_full_disk_flags_the_series_for_resume(monkeypatch, tmp_path):
    """The real stage's flag is one the run recognises (process.OPTIONAL_OUTPUT_FAILED)."""
    import deepcac2.pipeline.convert.review_picture as review_picture

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(review_picture, "render_series_png", full_disk)

    class CT:
        series_uid = "1.2.3"

    rows = {"cac_series": [{"SeriesInstanceUID": "1.2.3", "qa_flags": []}]}
    process.render_review_picture(CT(), None, tmp_path / "review.png", rows)
    assert rows["cac_series"][0]["qa_flags"] == [FLAG]
    assert optional_outputs_failed(rows) == (FLAG,)
    assert optional_outputs_failed({"cac_series": [{"qa_flags": ["heart_at_scan_edge"]}]}) == ()
