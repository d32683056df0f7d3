"""Values converted once per distinct raw value: same results as pydicom, never mixed up between slices."""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.pixels.utils import _IMAGE_PIXEL, as_pixel_options

from deepcac2.pipeline.loader import load_series
from deepcac2.pipeline.loader.pixels import PIXEL_OPTION_KEYWORDS, PixelOptions
from deepcac2.pipeline.loader.read import SLICE_KEYWORDS, list_files, read_slice
from deepcac2.pipeline.loader.values import ValueCache


def test_pixel_option_keywords_are_what_pydicom_reads():
    # PixelOptions reuses as_pixel_options for equal values of these keywords: if pydicom
    # ever reads another attribute, equal keys could hide a difference
    assert set(PIXEL_OPTION_KEYWORDS) == {keyword_for_tag(t) for t in _IMAGE_PIXEL}
    assert set(PIXEL_OPTION_KEYWORDS) <= set(SLICE_KEYWORDS)


def test_shared_values_equal_a_fresh_pydicom_read_slice_by_slice(series):
    # every slice differs in position and UID, two slices differ in spacing and rescale
    def vary(k, ds):
        if k in (1, 3):
            ds.PixelSpacing = [0.5, 0.5]
            ds.RescaleIntercept = -1000

    folder, _ = series(mutate=vary, n=6)
    cache = ValueCache()
    for path in list_files(folder):
        _, values = read_slice(path, cache=cache)
        fresh = pydicom.dcmread(path)
        assert values.keys() == {k for k in SLICE_KEYWORDS if k in fresh}
        for keyword, value in values.items():
            assert value == fresh[keyword].value, (path.name, keyword)


def test_pixel_options_are_pydicoms_for_each_distinct_module(series):
    def eight_bit(k, ds):
        if k == 2:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
            ds.PixelData = np.zeros((ds.Rows, ds.Columns), np.uint8).tobytes()

    folder, _ = series(mutate=eight_bit, n=5)
    options, cache = PixelOptions(), ValueCache()
    for path in list_files(folder):
        ds, values = read_slice(path, cache=cache)
        assert options(ds, values) == as_pixel_options(pydicom.dcmread(path))


def test_headers_of_a_load_still_convert_to_their_own_values(series):
    folder, spec = series(n=5)
    vol = load_series(folder)
    for k, header in enumerate(vol.headers):
        np.testing.assert_allclose([float(v) for v in header.ImagePositionPatient], spec.position(k))
        assert header.SOPInstanceUID == vol.instances[k].sop_instance_uid
    # an in-place edit of one header does not reach another
    vol.headers[0].ImageOrientationPatient[0] = 0.5
    assert [float(v) for v in vol.headers[1].ImageOrientationPatient] == list(spec.iop)
