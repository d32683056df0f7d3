"""Sliding-window inference of the DeepCAC2 U-Net over the preprocessed crop.

Window starts follow the published loop ``range(0, size - patch, stride)``: the last
start is excluded, so with the published 256x256x58 crop, 64x64x16 windows and stride
32x32x8 the last 32 voxels in x and y and the last 2 slices are never predicted (they
stay 0). ``cover_edges=True`` adds the start ``size - patch`` so the whole crop is
covered. Only windows holding at least one heart voxel run. Sigmoid outputs are
averaged where windows overlap and thresholded with ``> threshold``.

The published loop runs one window at a time and sums the windows' float32 outputs in
float64 (``np.sum(out, axis=3) / div``); here windows go through the network in batches and
are summed in float64 in window order. The sums agree exactly unless a voxel's mean lies
within one float64 ulp of the threshold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from deepcac2.errors import DeepCACError, ErrorCode

PATCH_XYZ: tuple[int, int, int] = (64, 64, 16)
STRIDE_XYZ: tuple[int, int, int] = (32, 32, 8)
THRESHOLD = 0.5


def window_starts(size: int, patch: int, stride: int, cover_edges: bool = False) -> list[int]:
    """Start positions along one axis (published rule unless ``cover_edges``)."""
    if size < patch:
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"axis of {size} voxels is smaller than the {patch}-voxel window")
    starts = list(range(0, size - patch, stride))
    if cover_edges and (not starts or starts[-1] + patch < size):
        starts.append(size - patch)
    return starts


def heart_windows(
    heart: np.ndarray, patch: tuple[int, int, int], stride: tuple[int, int, int], cover_edges: bool = False
) -> list[tuple[int, int, int]]:
    """Start corners of the windows that touch the heart (all arrays in the same axis order)."""
    axes = [window_starts(n, p, s, cover_edges) for n, p, s in zip(heart.shape, patch, stride, strict=True)]
    # a summed-area table answers "any heart voxel in this box" in O(1) per window
    sat = np.pad(heart.astype(np.int64), ((1, 0), (1, 0), (1, 0))).cumsum(0).cumsum(1).cumsum(2)
    out = []
    for a in axes[0]:
        for b in axes[1]:
            for c in axes[2]:
                a1, b1, c1 = a + patch[0], b + patch[1], c + patch[2]
                total = (
                    sat[a1, b1, c1]
                    - sat[a, b1, c1]
                    - sat[a1, b, c1]
                    - sat[a1, b1, c]
                    + sat[a, b, c1]
                    + sat[a, b1, c]
                    + sat[a1, b, c]
                    - sat[a, b, c]
                )
                if total > 0:
                    out.append((a, b, c))
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def predict_windows(
    net: torch.nn.Module,
    image: np.ndarray,
    heart: np.ndarray,
    *,
    patch: tuple[int, int, int] = PATCH_XYZ,
    stride: tuple[int, int, int] = STRIDE_XYZ,
    cover_edges: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Averaged sigmoid probabilities over ``image`` (network axis order ``(x, y, z)``).

    Voxels no window covers get probability 0. ``amp_dtype`` (e.g. ``torch.bfloat16``)
    turns on autocast; accumulation is always float64, as in the published code.
    """
    device = torch.device(device)
    starts = heart_windows(heart, patch, stride, cover_edges)
    total = torch.zeros(image.shape, dtype=torch.float64, device=device)
    count = torch.zeros(image.shape, dtype=torch.float64, device=device)
    if not starts:
        return total.cpu().numpy()
    host = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if device.type == "cuda":
        host = host.pin_memory()
    volume = host.to(device, non_blocking=True)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for batch in _batches(starts, batch_size):
            boxes = [tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True)) for start in batch]
            x = torch.stack([volume[box] for box in boxes])[:, None]
            if device.type == "cuda" and len(boxes) < batch_size:
                # a fixed batch shape spares torch.compile and cuDNN a retune for the last batch
                x = torch.cat([x, x.new_zeros((batch_size - len(boxes), *x.shape[1:]))])
            prob = torch.sigmoid(net(x).float())[: len(boxes), 0].double()
            for box, p in zip(boxes, prob, strict=True):
                total[box] += p
                count[box] += 1
    return (total / count.clamp(min=1)).cpu().numpy()


def predict_mask(
    net: torch.nn.Module, image: np.ndarray, heart: np.ndarray, threshold: float = THRESHOLD, **kw
) -> np.ndarray:
    """Binary mask: averaged probability strictly above ``threshold``."""
    return predict_windows(net, image, heart, **kw) > threshold
