"""The reader's notes on the real series (``real_series_notes.json``, next to the tests that check them)."""

from __future__ import annotations

import json
from pathlib import Path

NOTES = Path(__file__).with_name("real_series_notes.json")


def notes_for(name: str) -> dict:
    return json.loads(NOTES.read_text())[name]


def box_mask(shape, boxes) -> object:
    import numpy as np

    m = np.zeros(shape, dtype=bool)
    for k0, k1, j0, j1, i0, i1 in boxes:
        m[k0:k1, j0:j1, i0:i1] = True
    return m
