"""process.py: the dask-free stage steps turn every problem into a DeepCACError with a stable code."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process
from deepcac2.pipeline.stage_values import CTVolume, Geometry, ModelCard, Prediction, SeriesRef

CARD = ModelCard("stub", "0", None, "MIT", "none")


def _ct(shape=(4, 8, 8)) -> CTVolume:
    return CTVolume(np.zeros(shape, np.int16), Geometry((0.0, 0.0, 0.0), (1.0, 1.0, 2.5)), "1.2.3")


class _Model:
    card = CARD

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def predict(self, ct, anatomy):
        return self.behaviour(ct)


def test_missing_local_folder_is_a_fetch_error(tmp_path):
    with pytest.raises(DeepCACError) as err:
        process.fetch(SeriesRef("1.2.3", location=str(tmp_path / "nope")))
    assert err.value.code is ErrorCode.E_FETCH_FAILED


def test_remote_series_without_a_cache_is_a_fetch_error():
    with pytest.raises(DeepCACError) as err:
        process.fetch(SeriesRef("1.2.3", location="s3://idc-open-data/abc/*"))
    assert err.value.code is ErrorCode.E_FETCH_FAILED
    assert "no fetch cache" in err.value.message


def test_remote_series_is_fetched_and_released_through_the_cache(tmp_path):
    calls = []

    class Cache:
        def get(self, ref):
            calls.append(("get", ref.series_uid))
            return tmp_path

        def release(self, ref):
            calls.append(("release", ref.series_uid))

    ref = SeriesRef("1.2.3", location="s3://idc-open-data/abc/*")
    with pytest.raises(DeepCACError):  # an empty folder does not load...
        process.fetch_and_load(ref, Cache())
    assert calls == [("get", "1.2.3"), ("release", "1.2.3")]  # ...and its files are freed anyway


def test_folder_holding_another_series_is_refused(shared_data):
    folder = next(p.parent for p in sorted((shared_data / "lung-pet-ct-dx").rglob("*.dcm")))
    with pytest.raises(DeepCACError) as err:
        process.load(SeriesRef("1.2.999"), folder)
    # the loader is asked for the cohort's series, so another series in the folder is not it
    assert err.value.code is ErrorCode.E_NO_IMAGES
    assert "1.2.999 is not in the source" in err.value.message


def test_folder_shared_by_several_series_loads_the_one_asked_for(tmp_path, shared_data):
    """A --from-dir location may hold other series too: the cohort's UID picks the right one."""
    import shutil

    series_dirs = sorted({p.parent for p in (shared_data / "lung-pet-ct-dx" / "Lung_Dx-A0001").rglob("*.dcm")})
    assert len(series_dirs) == 2
    for i, d in enumerate(series_dirs):
        for f in d.glob("*.dcm"):
            shutil.copy(f, tmp_path / f"{i}-{f.name}")
    import pydicom

    wanted = str(pydicom.dcmread(next(series_dirs[1].glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID)
    ct = process.load(SeriesRef(wanted), tmp_path)
    assert ct.series_uid == wanted and ct.shape[0] == len(list(series_dirs[1].glob("*.dcm")))


def test_model_exceptions_become_inference_errors():
    def boom(ct):
        raise RuntimeError("cuda kernel failed")

    with pytest.raises(DeepCACError) as err:
        process.infer(_Model(boom), _ct(), None)
    assert err.value.code is ErrorCode.E_INFERENCE and "cuda kernel failed" in err.value.message


def test_gpu_out_of_memory_is_transient():
    class OutOfMemoryError(RuntimeError):  # what torch.cuda raises, by name
        pass

    def oom(ct):
        raise OutOfMemoryError("CUDA out of memory")

    with pytest.raises(DeepCACError) as err:
        process.infer(_Model(oom), _ct(), None)
    assert err.value.code is ErrorCode.E_OUT_OF_MEMORY and err.value.transient


def test_mask_of_the_wrong_shape_is_refused():
    def wrong(ct):
        m = np.zeros((ct.shape[0] + 1, *ct.shape[1:]), bool)
        return Prediction(heart=m, cac=m, card=CARD)

    with pytest.raises(DeepCACError) as err:
        process.infer(_Model(wrong), _ct(), None)
    assert err.value.code is ErrorCode.E_MASK_GEOMETRY


def test_converter_rows_are_taken_from_its_rows_mapping():
    class Converted:
        rows = {"cac_series": [{"SeriesInstanceUID": "1.2.3"}], "cac_lesions": []}

    assert process.table_rows_of(Converted()) == {"cac_series": [{"SeriesInstanceUID": "1.2.3"}], "cac_lesions": []}

    class Empty:
        pass

    with pytest.raises(DeepCACError) as err:
        process.table_rows_of(Empty())
    assert err.value.code is ErrorCode.E_TABLE_WRITE
