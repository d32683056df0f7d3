"""Range-checked argument types, and every command refusing an out-of-range count at parse time."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from deepcac2.argtypes import non_negative_float, non_negative_int, positive_float, positive_int


@pytest.mark.parametrize(
    "parse,good,bad",
    [
        (positive_int, ["1", "64"], ["0", "-1", "1.5", "x"]),
        (non_negative_int, ["0", "3"], ["-1", "nan"]),
        (positive_float, ["0.001", "2"], ["0", "-0.5", "nan", "inf"]),
        (non_negative_float, ["0", "3600"], ["-1", "nan", "-inf"]),
    ],
)
def test_ranges(parse, good, bad):
    for text in good:
        assert parse(text) == type(parse(text))(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--cohort", "demo", "--out", "/tmp/x", "--rows", "0"],
        ["load", "x", "--max-slices", "-3"],
        ["fetch", "--cohort", "c", "--cache-dir", "d", "--retries", "-1"],
        ["qa", "x", "--sample", "0"],
        ["release", "build", "x", "--version", "1", "--out", "y", "--dashboard-patients", "-1"],
        ["train", "--batch-size", "0"],
    ],
)
def test_commands_refuse_out_of_range_counts(argv):
    done = subprocess.run([sys.executable, "-m", "deepcac2", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "out of range" in done.stderr, done.stderr
