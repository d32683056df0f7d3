"""Every command that writes checks its output path before any work: E_OUTPUT_UNWRITABLE, exit 3, no traceback.

The inputs named here do not exist: had the command started its work (training, loading a
series, reading a cohort) it would fail with another code, so the code proves the order.
"""

from __future__ import annotations

import pytest

from deepcac2.cli import main as cli_main

COMMANDS = {
    "synth": ["synth", "--cohort", "chest", "--out", "{out}"],
    "train": ["train", "--out", "{out}"],
    "infer": ["infer", "--ct", "{missing}", "--out", "{out}"],
    "score": ["score", "--ct", "{missing}", "--mask", "{missing}/m.nrrd", "--out", "{out}.json"],
    "convert": ["convert", "--ct", "{missing}", "--cac", "{missing}/m.nrrd", "--out", "{out}"],
    "evaluate": ["evaluate", "--pred", "{missing}/p.parquet", "--ref", "{missing}/r.parquet", "--out", "{out}"],
    "fetch": ["fetch", "--cohort", "{missing}/c.parquet", "--dest", "{out}", "--source", "local"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unwritable_output_is_refused_before_any_work(name, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    fill = {"out": str(blocker / "out"), "missing": str(tmp_path / "missing")}
    argv = [a.format(**fill) for a in COMMANDS[name]]
    assert cli_main(argv) == 3
    err = capsys.readouterr().err
    assert f"deepcac2 {name}: error E_OUTPUT_UNWRITABLE: cannot write the" in err, err
    assert "Traceback" not in err
