"""The IDC path end to end: a cohort row naming a TotalSegmentator SEG in a (moto) S3 bucket -> cac_series."""

from __future__ import annotations

import uuid

import pydicom
import pytest

from deepcac2.pipeline import process
from deepcac2.pipeline.cohort.select import index_local_and_explain
from deepcac2.pipeline.cohort.table import cohort_to_refs
from deepcac2.pipeline.models.base import load_model


@pytest.mark.slow
def test_series_with_its_seg_in_the_bucket_runs_through_every_stage(seg_case, s3, s3_endpoint, tmp_path):
    from deepcac2.pipeline.sources import IDCSource, SeriesCache

    table, _, _ = index_local_and_explain(seg_case.root)
    ref = cohort_to_refs(table)[0]
    # the same row as IDC's index would give it: the SEG in the bucket, not on disk
    crdc = str(uuid.uuid4())
    s3.put_object(Bucket="idc-open-data", Key=f"{crdc}/{uuid.uuid4()}.dcm", Body=seg_case.seg.read_bytes())
    uid = str(pydicom.dcmread(seg_case.seg, stop_before_pixels=True).SeriesInstanceUID)
    remote = {"SeriesInstanceUID": uid, "crdc_series_uuid": crdc, "series_aws_url": f"s3://idc-open-data/{crdc}/*",
              "location": None}  # fmt: skip
    ref = type(ref)(**{**ref.__dict__, "params": {**ref.params, "totalseg": [remote]}})
    with SeriesCache(IDCSource(endpoint_url=s3_endpoint), tmp_path / "cache", max_bytes=1 << 30) as cache:
        rows = process.process_series(ref, load_model("classical"), tmp_path / "out", cache=cache)
        assert cache.peak_bytes > 0 and cache.used_bytes == 0  # the SEG's frames were held, then freed
    row = rows["cac_series"][0]
    assert (row["anatomy_provider"], row["anatomy_version"], row["anatomy_seg_uid"]) == (
        "idc-totalsegmentator",
        "TotalSegmentator v1.5.6",
        uid,
    )
    assert row["SeriesInstanceUID"] == seg_case.ct.series_uid
