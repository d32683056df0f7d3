"""Any orientation, any spacing: every slice lands where its ImagePositionPatient says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from deepcac2.pipeline.loader import load_series

from .factory import Spec, write_series


@settings(max_examples=20, deadline=None)
@given(
    quaternion=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
    dz=st.floats(0.5, 10.0),
    spacing=st.tuples(st.floats(0.3, 2.0), st.floats(0.3, 2.0)),
    origin=st.tuples(*[st.floats(-500, 500)] * 3),
)
def test_any_orientation(quaternion, dz, spacing, origin):
    rot = Rotation.from_quat(quaternion).as_matrix()
    iop = tuple(float(v) for v in np.r_[rot[:, 0], rot[:, 1]])
    spec = Spec(n=5, rows=8, cols=12, iop=iop, dz=dz, pixel_spacing=spacing, origin=origin)
    with tempfile.TemporaryDirectory() as tmp:
        write_series(Path(tmp), spec)
        vol = load_series(tmp)
    g = vol.geometry
    np.testing.assert_allclose(g.direction_matrix, rot, atol=1e-6)
    for k in range(spec.n):
        np.testing.assert_allclose(g.index_to_lps([0, 0, k]), spec.position(k), atol=1e-3)
        np.testing.assert_array_equal(vol.hu[k], spec.stored(k).astype(np.int32) + int(spec.intercept))
    # one step along i is one column spacing along the row cosine
    np.testing.assert_allclose(g.index_to_lps([1, 0, 0]) - g.index_to_lps([0, 0, 0]), spacing[1] * rot[:, 0], atol=1e-6)
