"""Sliding windows: the published start rule, heart-only windows, averaging, coverage."""

from __future__ import annotations

import numpy as np
import torch

from deepcac2.pipeline.models.unet.sliding import heart_windows, predict_mask, predict_windows, window_starts


def test_published_starts_exclude_the_last_position():
    assert window_starts(256, 64, 32) == [0, 32, 64, 96, 128, 160]
    assert window_starts(58, 16, 8) == [0, 8, 16, 24, 32, 40]
    assert window_starts(256, 64, 32, cover_edges=True) == [0, 32, 64, 96, 128, 160, 192]
    assert window_starts(58, 16, 8, cover_edges=True) == [0, 8, 16, 24, 32, 40, 42]
    # an axis exactly one window long has no published start at all
    assert window_starts(16, 16, 8) == []
    assert window_starts(16, 16, 8, cover_edges=True) == [0]


def _union(shape, starts, patch):
    cover = np.zeros(shape, dtype=bool)
    for s in starts:
        cover[tuple(slice(a, a + p) for a, p in zip(s, patch, strict=True))] = True
    return cover


def _random_heart(shape, seed):
    rng = np.random.default_rng(seed)
    heart = np.zeros(shape, dtype=bool)
    for _ in range(3):
        c = [rng.integers(0, n) for n in shape]
        r = [rng.integers(3, max(4, n // 3)) for n in shape]
        grid = np.ogrid[tuple(slice(0, n) for n in shape)]
        heart |= sum(((g - ci) / ri) ** 2 for g, ci, ri in zip(grid, c, r, strict=True)) <= 1
    return heart


def test_windows_touch_heart_and_cover_it_with_cover_edges():
    shape, patch, stride = (256, 256, 58), (64, 64, 16), (32, 32, 8)
    for seed in range(5):
        heart = _random_heart(shape, seed)
        starts = heart_windows(heart, patch, stride, cover_edges=True)
        cover = _union(shape, starts, patch)
        assert cover[heart].all()
        # every window run holds heart; every window left out holds none
        axes = [window_starts(n, p, s, True) for n, p, s in zip(shape, patch, stride, strict=True)]
        every = [(a, b, c) for a in axes[0] for b in axes[1] for c in axes[2]]
        for s in every:
            box = tuple(slice(a, a + p) for a, p in zip(s, patch, strict=True))
            assert heart[box].any() == (s in starts)


def test_published_coverage_misses_exactly_the_far_edges():
    shape, patch, stride = (256, 256, 58), (64, 64, 16), (32, 32, 8)
    heart = np.ones(shape, dtype=bool)
    cover = _union(shape, heart_windows(heart, patch, stride), patch)
    # starts end at 160 (x, y) and 40 (z): voxels from 224 and from slice 56 are never predicted
    assert cover[:224, :224, :56].all()
    assert not cover[224:].any() and not cover[:, 224:].any() and not cover[:, :, 56:].any()


class Echo(torch.nn.Module):
    """Logit = the input value: a window's output shows exactly where it was cut from."""

    def forward(self, x):
        return x


class Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


def test_windows_are_placed_back_where_they_came_from():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(96, 80, 40)).astype(np.float32)
    heart = np.zeros(image.shape, dtype=bool)
    heart[40:60, 30:50, 10:30] = True
    patch, stride = (32, 32, 16), (16, 16, 8)
    prob = predict_windows(Echo(), image, heart, patch=patch, stride=stride, cover_edges=True, batch_size=3)
    cover = _union(image.shape, heart_windows(heart, patch, stride, True), patch)
    expected = np.where(cover, 1 / (1 + np.exp(-image)), 0.0)
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def test_overlaps_are_averaged_and_thresholded_strictly():
    image = np.zeros((64, 64, 32), dtype=np.float32)
    heart = np.ones(image.shape, dtype=bool)
    kw = dict(patch=(32, 32, 16), stride=(16, 16, 8), cover_edges=True)
    prob = predict_windows(Constant(0.0), image, heart, **kw)
    np.testing.assert_allclose(prob, 0.5, atol=1e-7)  # averages of 0.5 stay 0.5
    assert not predict_mask(Constant(0.0), image, heart, threshold=0.5, **kw).any()
    assert predict_mask(Constant(0.01), image, heart, threshold=0.5, **kw).all()


def test_batching_does_not_change_the_result():
    torch.manual_seed(0)
    from deepcac2.pipeline.models.unet.network import UNet3D

    net = UNet3D(features=(2, 4, 8, 16)).eval()
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 32), dtype=np.float32)
    heart = np.zeros(image.shape, dtype=bool)
    heart[20:40, 20:40, 10:20] = True
    kw = dict(patch=(32, 32, 16), stride=(16, 16, 8), cover_edges=True)
    a = predict_windows(net, image, heart, batch_size=1, **kw)
    b = predict_windows(net, image, heart, batch_size=7, **kw)
    np.testing.assert_allclose(a, b, atol=1e-5)
