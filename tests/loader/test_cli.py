"""``deepcac2 load``: geometry and notes on success, code and non-zero exit on error."""

from __future__ import annotations

import json

from deepcac2.cli import main


def test_cli_json_success(series, capsys):
    folder, spec = series()
    assert main(["load", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["shape_zyx"] == [spec.n, spec.rows, spec.cols]
    assert out["spacing_xyz"] == [spec.pixel_spacing[1], spec.pixel_spacing[0], spec.dz]
    assert out["hu_min"] == spec.stored(0).min() + spec.intercept
    assert out["hu_max"] == spec.stored(spec.n - 1).max() + spec.intercept


def test_cli_error_code_and_exit(series, capsys):
    folder, _ = series(n=3)
    assert main(["load", str(folder)]) != 0
    assert "E_TOO_FEW_SLICES" in capsys.readouterr().err
    assert main(["load", str(folder), "--json"]) != 0
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "E_TOO_FEW_SLICES"
    assert main(["load", str(folder), "--min-slices", "3"]) == 0
    assert "nothing dropped" in capsys.readouterr().out


def test_cli_options_reach_the_loader(series, capsys):
    folder, _ = series(n=8)
    next(p for p in folder.iterdir() if p.stem.endswith("_4")).unlink()
    assert main(["load", str(folder), "--json"]) != 0
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "E_GEOMETRY_GAP"
    assert main(["load", str(folder), "--json", "--gap", "resample"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape_zyx"][0] == 8
    assert any("resampled" in n for n in out["notes"])
