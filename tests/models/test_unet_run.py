"""``deepcac2 run --weights FILE`` with a checkpoint in the published layout, end to end.

The checkpoint is a bare ``state_dict`` with the published key names (``downs.0.conv.0.weight``,
...), saved as ``vivid-haze-6_model.pt`` like the MHub file; its widths are small (random
weights: the published file is not here) so the run fits a CPU test. The run must crop
around the anatomy stage's heart, in float32, on the TorchIO grid, and say so in its rows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from deepcac2.pipeline.models.unet.network import UNet3D

pytestmark = pytest.mark.slow


def test_run_with_a_published_layout_checkpoint_records_heart_precision_and_grid(tmp_path):
    from deepcac2.pipeline.cohort.select import index_local
    from deepcac2.pipeline.cohort.table import write_cohort as write_cohort_table
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    manifest = write_cohort("chest", tmp_path / "dicom", seed=3, slices=40, rows=256, plaques=2)
    table, _ = index_local(tmp_path / "dicom")
    wanted = manifest.column("SeriesInstanceUID").to_pylist()[:1]
    table = table.filter(pa.compute.is_in(table.column("SeriesInstanceUID"), pa.array(wanted)))
    cohort = write_cohort_table(table, tmp_path / "cohort.parquet")
    torch.manual_seed(0)
    weights = tmp_path / "vivid-haze-6_model.pt"
    torch.save(UNet3D(features=(2, 4, 8, 16)).state_dict(), weights)  # bare state_dict, as published

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepcac2", "run", "--cohort", str(cohort), "--out", str(out)]
    cmd += ["--weights", str(weights), "--anatomy", "classical", "--workers", "1", "--threads", "1", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    rows = pq.read_table(out / "tables" / "cac_series.parquet").to_pylist()
    assert [r["SeriesInstanceUID"] for r in rows] == wanted
    row = rows[0]
    assert row["model_name"] == "deepcac2-unet" and row["model_version"] == "vivid-haze-6_model"
    assert row["model_weights_sha256"] and row["model_id"].startswith("deepcac2-unet:vivid-haze-6_model:")
    description = row["model_description"]
    assert "float32" in description and "bf16" not in description
    assert "TorchIO 0.19.1 grid" in description and "resampled as int16" in description
    assert "anatomy stage's heart" in description and "(256, 256, 58) at (0.7, 0.7, 2.5) mm" in description
    # the heart the crop used: the anatomy stage's, with its provenance
    assert row["anatomy_provider"] == "classical" and row["anatomy_version"]
    config = json.loads(pq.read_table(out / "tables" / "runs.parquet").to_pylist()[0]["config_json"])
    assert config["anatomy"] == "classical" and config["model"]["weights"].endswith("vivid-haze-6_model.pt")
