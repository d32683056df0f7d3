"""bench/gpu_check.py runs on CPU at tiny size and reports every mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tiny_cpu_gpu_check_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "check.json"
    rc = module.main(["--tiny", "--device", "cpu", "--no-compile", "--repeats", "1", "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert set(result["modes"]) == {"fp32", "bf16"}
    for r in result["modes"].values():
        assert r["s_per_series"] > 0 and r["series_per_s"] > 0
        assert r["dice_vs_fp32"] >= 0.99
    fp32 = result["modes"]["fp32"]
    assert fp32["dice_vs_fp32"] == 1.0 and fp32["voxels_differing_from_fp32"] == 0
    assert fp32["positive_voxels"] > 0  # the decisive random net marks something
    assert fp32["agatston"] > 0 and fp32["agatston_diff_vs_fp32"] == 0 and not fp32["risk_category_changed"]
    bf16 = result["modes"]["bf16"]
    assert bf16["agatston_diff_vs_fp32"] == bf16["agatston"] - fp32["agatston"]
    assert isinstance(bf16["risk_category_changed"], bool)
    out = capsys.readouterr().out
    assert "s/series" in out and "Agatston" in out and "vs fp32" in out
