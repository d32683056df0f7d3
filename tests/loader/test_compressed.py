"""Compressed transfer syntaxes decode (through pydicom's plugins) to the same HU as uncompressed."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from deepcac2.pipeline.loader import load_series

from .factory import expected_hu


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_compressed_series(series, syntax, signed):
    folder, spec = series(mutate=lambda k, ds: ds.compress(syntax), signed=signed, n=5)
    vol = load_series(folder)
    assert vol.shape == (spec.n, spec.rows, spec.cols)
    assert all(h.file_meta.TransferSyntaxUID == syntax for h in vol.headers)
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], expected_hu(spec, k))


def test_deflated_series(series):
    # deflated files are inflated by pydicom while reading: no file offsets apply to their Pixel Data
    folder, spec = series(
        mutate=lambda k, ds: setattr(ds.file_meta, "TransferSyntaxUID", DeflatedExplicitVRLittleEndian)
    )
    vol = load_series(folder)
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], expected_hu(spec, k))


def test_deflated_large_slices(series):
    folder, spec = series(
        rows=256,
        cols=256,
        mutate=lambda k, ds: setattr(ds.file_meta, "TransferSyntaxUID", DeflatedExplicitVRLittleEndian),
    )
    vol = load_series(folder)
    np.testing.assert_array_equal(vol.hu[-1], expected_hu(spec, spec.n - 1))
