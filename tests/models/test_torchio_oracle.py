"""Our U-Net pipeline against the published one run with TorchIO 0.19.1 itself (``torchio_reference``).

Required: identical network input arrays (bit for bit), identical heart crops, crop
affines and window lists, and identical masks on the CT grid with a fixed network, on
synthetic chests (head-first, feet-first, non-square pixels, float and integer CT, a heart
against the volume edge, spacings whose ratio makes nearest-neighbour ties) and on real CT.
Most cases use a small grid (same code, same arithmetic) to stay fast; the published
0.7x0.7x2.5 mm, 256x256x58 configuration runs on a synthetic and two real series (slow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from deepcac2.pipeline.models.unet import preprocess as pp
from deepcac2.pipeline.models.unet.model import InferenceOptions, UNetModel
from deepcac2.pipeline.models.unet.sliding import heart_windows
from deepcac2.pipeline.stage_values import CTVolume, Geometry, ModelCard
from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest, random_plaques

ref = pytest.importorskip("torchio_reference")

SMALL = dict(spacing=(1.2, 1.2, 3.0), shape=(96, 96, 32), patch=(32, 32, 8), stride=(16, 16, 4))
PUBLISHED = dict(spacing=pp.SPACING_XYZ, shape=pp.SHAPE_XYZ, patch=(64, 64, 16), stride=(32, 32, 8))


class ThresholdNet(torch.nn.Module):
    """A fixed network: a 3x3x3 smoothing of the input, thresholded hard (logits of +-hundreds).

    Its output depends on the window edges (zero padding), so overlapping windows disagree
    near their borders and the averaging is exercised, not only the coverage.
    """

    def __init__(self, level: float = 0.6):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)
        w = torch.zeros(1, 1, 3, 3, 3)
        w[0, 0, 1, 1, 1], w[0, 0, 0, 1, 1], w[0, 0, 2, 1, 1] = 0.5, 0.25, 0.25
        with torch.no_grad():
            self.conv.weight.copy_(w)
        self.level = level

    def forward(self, x):
        return 1e4 * (self.conv(x) - self.level)


@dataclass
class Case:
    hu: np.ndarray
    heart: np.ndarray
    geometry: Geometry


def _chest(seed: int, rows: int, pixel: float, slices: int, increment: float) -> Case:
    spec = ChestSpec(
        seed=seed,
        rows=rows,
        cols=rows,
        n_slices=slices,
        pixel_spacing_mm=pixel,
        slice_thickness_mm=increment,
        slice_increment_mm=increment,
        noise_sd_hu=20.0,
        plaques=random_plaques(np.random.default_rng(seed), 3),
    )
    ph = build_chest(spec)
    return Case(ph.hu, ph.heart, ph.geometry)


def feet_first(case: Case) -> Case:
    """The same patient written feet-first: rows run right-to-left, slices head-to-feet."""
    nz, ny, nx = case.hu.shape
    g = case.geometry
    far = g.index_to_lps(np.array([nx - 1, 0, nz - 1], dtype=float))
    direction = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    geometry = Geometry(tuple(float(v) for v in far), g.spacing, direction)
    return Case(np.ascontiguousarray(case.hu[::-1, :, ::-1]), np.ascontiguousarray(case.heart[::-1, :, ::-1]), geometry)


def respaced(case: Case, spacing: tuple[float, float, float]) -> Case:
    """The same arrays on other voxel sizes (non-square pixels, other slice spacings)."""
    return Case(case.hu, case.heart, Geometry(case.geometry.origin, spacing, case.geometry.direction))


@pytest.fixture(scope="module")
def small_chest() -> Case:
    return _chest(3, 192, 1.5, 36, 4.0)


def _cases(base: Case) -> dict[str, Case]:
    edge = Case(base.hu[:, :, :110], base.heart[:, :, :110], base.geometry)  # heart against the volume edge
    return {
        "head-first": base,
        "feet-first": feet_first(base),
        "non-square pixels": respaced(base, (1.3, 1.7, 4.0)),
        "feet-first, non-square": feet_first(respaced(base, (1.7, 1.3, 4.0))),
        "spacing 2x the grid (nearest ties)": respaced(base, (2.4, 2.4, 6.0)),
        "heart at the volume edge (padding)": edge,
    }


def _compare_preprocessing(case: Case, cfg: dict, tmp_path, dtype: str = "int16") -> tuple[pp.Preprocessed, object]:
    hu = case.hu if dtype == "int16" else case.hu.astype(np.float32)
    ct_path = ref.write_nifti(hu, case.geometry, tmp_path / "ct.nii.gz")
    heart_path = ref.write_nifti(case.heart.astype(np.uint8), case.geometry, tmp_path / "heart.nii.gz")
    run = ref.preprocess(ct_path, heart_path, cfg["spacing"], cfg["shape"], cfg["patch"], cfg["stride"])
    pre = pp.preprocess(case.hu, case.geometry, case.heart, cfg["spacing"], cfg["shape"], resample_dtype=dtype)
    ours = pp.to_network_order(pre.image)
    assert ours.dtype == run.image_xyz.dtype == np.float32
    np.testing.assert_array_equal(ours, run.image_xyz)
    np.testing.assert_array_equal(pp.to_network_order(pre.heart), run.heart_xyz > 0)
    np.testing.assert_array_equal(pre.affine, run.transformed.image.affine)
    assert heart_windows(pp.to_network_order(pre.heart), cfg["patch"], cfg["stride"]) == run.windows
    assert run.windows  # the comparison covered windows that run
    return pre, run


def _model(net: torch.nn.Module, cfg: dict, dtype: str = "int16", batch_size: int = 16) -> UNetModel:
    options = InferenceOptions(
        patch_xyz=cfg["patch"],
        stride_xyz=cfg["stride"],
        spacing_xyz=cfg["spacing"],
        shape_xyz=cfg["shape"],
        resample_dtype=dtype,
        batch_size=batch_size,
    )
    return UNetModel(net=net, card=ModelCard("oracle", "0", None, "MIT", "none"), options=options)


def _compare_masks(case: Case, cfg: dict, run, dtype: str = "int16") -> np.ndarray:
    net = ThresholdNet().eval()
    ct = CTVolume(hu=case.hu, geometry=case.geometry, series_uid="oracle")
    ours = _model(net, cfg, dtype).predict_cac(ct, case.heart)
    theirs = ref.predict(net, run, cfg["patch"]) > 0
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < ours.sum() < ours.size  # the mask says something
    return ours


@pytest.mark.parametrize(
    "name",
    [
        "head-first",
        "feet-first",
        "non-square pixels",
        "feet-first, non-square",
        "spacing 2x the grid (nearest ties)",
        "heart at the volume edge (padding)",
    ],
)
def test_same_arrays_windows_and_masks_as_torchio(small_chest, name, tmp_path):
    case = _cases(small_chest)[name]
    pre, run = _compare_preprocessing(case, SMALL, tmp_path)
    if name.startswith("heart at the volume edge"):
        assert any(pre.padding), "this case must pad"
    _compare_masks(case, SMALL, run)


def test_float_ct_matches_torchio_and_differs_from_integer_resampling(small_chest, tmp_path):
    pre_f, run = _compare_preprocessing(small_chest, SMALL, tmp_path, dtype="float32")
    _compare_masks(small_chest, SMALL, run, dtype="float32")
    pre_i = pp.preprocess(small_chest.hu, small_chest.geometry, small_chest.heart, SMALL["spacing"], SMALL["shape"])
    assert not np.array_equal(pre_i.image, pre_f.image)  # the pixel type is a real choice


@pytest.mark.slow
def test_batching_gives_the_published_one_window_at_a_time_mask(small_chest, tmp_path):
    """A random (untrained) U-Net: batches of 16 against one window per pass, as the reference runs."""
    from deepcac2.pipeline.models.unet.network import UNet3D

    torch.manual_seed(0)
    net = UNet3D(features=(4, 8, 16)).eval()  # three poolings fit the 8-slice windows
    with torch.no_grad():
        net.final_conv.weight.mul_(50.0)  # logits away from 0, so a mask appears
    ct = CTVolume(hu=small_chest.hu, geometry=small_chest.geometry, series_uid="oracle")
    one = _model(net, SMALL, batch_size=1).predict_cac(ct, small_chest.heart)
    many = _model(net, SMALL, batch_size=16).predict_cac(ct, small_chest.heart)
    _, run = _compare_preprocessing(small_chest, SMALL, tmp_path)
    theirs = ref.predict(net, run, SMALL["patch"]) > 0
    np.testing.assert_array_equal(one, theirs)
    # batching may move float32 results by an ulp; count, and keep it rare
    assert (many != theirs).sum() <= max(1, theirs.sum() // 1000)


@pytest.mark.slow
def test_published_configuration_on_a_synthetic_chest(tmp_path):
    case = _chest(5, 512, 0.7, 56, 2.5)
    for name, c in (("head-first", case), ("feet-first", feet_first(case))):
        _, run = _compare_preprocessing(c, PUBLISHED, tmp_path)
        assert run.image_xyz.shape == PUBLISHED["shape"], name
        _compare_masks(c, PUBLISHED, run)


def _central_heart(ct: CTVolume) -> np.ndarray:
    """A fixed heart-sized box in the middle of the chest (the heart's source does not matter here)."""
    heart = np.zeros(ct.shape, dtype=bool)
    nz, ny, nx = ct.shape
    centre = np.array([nx / 2, ny * 0.55, nz / 2])
    half = np.array([60.0, 50.0, 55.0]) / np.array(ct.geometry.spacing)
    lo = np.maximum(np.floor(centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre + half).astype(int), [nx, ny, nz])
    heart[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]] = True
    return heart


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("series", ["A0001-B", "A0002-B40f"])
def test_published_configuration_on_real_ct(real_series_path, series, tmp_path):
    """Real series (5 and 8 mm slices, 0.84 and 0.7 mm pixels) as our loader reads them."""
    from deepcac2.pipeline.loader import load_series

    ct = load_series(real_series_path(series))
    case = Case(ct.hu, _central_heart(ct), ct.geometry)
    _, run = _compare_preprocessing(case, PUBLISHED, tmp_path)
    _compare_masks(case, PUBLISHED, run)
