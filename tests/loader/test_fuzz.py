"""Corrupted bytes anywhere in a file: the loader loads or raises DeepCACError, never anything else."""

from __future__ import annotations

import random
import shutil

import pytest

from deepcac2.errors import DeepCACError
from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.stage_values import CTVolume


def _corrupt(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "zero"])
    if kind == "truncate":
        return data[: rng.randrange(0, len(data))]
    buf = bytearray(data)
    # most of a small file is pixels; aim half of the damage at the header (first 1 kB)
    end = 1024 if rng.random() < 0.5 else len(buf)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(0, min(end, len(buf)))
        buf[i] = rng.randrange(256) if kind == "flip" else 0
    return bytes(buf)


@pytest.mark.filterwarnings("ignore")  # pydicom warns loudly about the nonsense it is fed
@pytest.mark.parametrize("seed", range(40))
def test_corrupt_file_never_crashes(series, tmp_path, seed):
    rng = random.Random(seed)
    folder, spec = series(name=f"fuzz{seed}")
    victim = sorted(folder.iterdir())[rng.randrange(spec.n)]
    victim.write_bytes(_corrupt(victim.read_bytes(), rng))
    try:
        vol = load_series(folder)
    except DeepCACError:
        return
    assert isinstance(vol, CTVolume)
    assert vol.shape[1:] == (spec.rows, spec.cols)
    shutil.rmtree(folder)
