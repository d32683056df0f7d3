"""A deliberately simple second Agatston implementation, for tests only.

Plain Python loops and flood fills over lists; classic 130/200/300/400 thresholds; no
numpy tricks and nothing shared with the engine, so that the two can disagree.
"""

from __future__ import annotations


def _neighbours(dims: int, connectivity: int) -> list[tuple[int, int, int]]:
    out = []
    for dz in (-1, 0, 1) if dims == 3 else (0,):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                steps = abs(dz) + abs(dy) + abs(dx)
                if steps == 0:
                    continue
                # 4/6: face neighbours only; 18: faces and edges; 8/26: all
                if connectivity in (4, 6) and steps > 1:
                    continue
                if connectivity == 18 and steps > 2:
                    continue
                out.append((dz, dy, dx))
    return out


def _components(voxels: set, steps: list) -> list[list[tuple[int, int, int]]]:
    seen: set = set()
    comps = []
    for start in sorted(voxels):
        if start in seen:
            continue
        seen.add(start)
        stack, comp = [start], []
        while stack:
            v = stack.pop()
            comp.append(v)
            for d in steps:
                w = (v[0] + d[0], v[1] + d[1], v[2] + d[2])
                if w in voxels and w not in seen:
                    seen.add(w)
                    stack.append(w)
        comps.append(comp)
    return comps


def _weight(peak: float) -> int:
    if peak >= 400:
        return 4
    if peak >= 300:
        return 3
    if peak >= 200:
        return 2
    return 1


def _mapped(hu, mask, convention):
    """Whole in-slice components of voxels over 130 HU that share a voxel with the mask."""
    nz, ny, nx = len(hu), len(hu[0]), len(hu[0][0])
    out = [[[False] * nx for _ in range(ny)] for _ in range(nz)]
    for z in range(nz):
        over = {
            (z, y, x)
            for y in range(ny)
            for x in range(nx)
            if (hu[z][y][x] >= 130 if convention.inclusive else hu[z][y][x] > 130)
        }
        for comp in _components(over, _neighbours(2, convention.connectivity)):
            if any(mask[v[0]][v[1]][v[2]] for v in comp):
                for v in comp:
                    out[v[0]][v[1]][v[2]] = True
    return out


def reference_score(hu, mask, spacing, convention, slice_thickness=None):
    """(agatston, volume_mm3, lesion_count) for a thresholded convention (no rounding, no resampling)."""
    sx, sy, sz = spacing
    nz, ny, nx = len(hu), len(hu[0]), len(hu[0][0])
    if getattr(convention, "mapped_mask", False):
        mask = _mapped(hu, mask, convention)
    cands = set()
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                value = float(hu[z][y][x])
                passes = value >= 130 if convention.inclusive else value > 130
                if mask[z][y][x] and (passes or not convention.mask_threshold):
                    cands.add((z, y, x))
    factor = (sz if convention.slice_factor == "increment" else slice_thickness) / 3.0
    kept: list[tuple[int, int, int]] = []
    agatston = 0.0
    if convention.dims == 2:
        for comp in _components(cands, _neighbours(2, convention.connectivity)):
            area = len(comp) * sx * sy
            if convention.min_pixels is not None and len(comp) < convention.min_pixels:
                continue
            if convention.min_area_mm2 is not None and not area > convention.min_area_mm2 + 1e-9:
                continue
            agatston += area * _weight(max(float(hu[z][y][x]) for z, y, x in comp)) * factor
            kept.extend(comp)
        grouping = 26 if convention.connectivity == 8 else 6
        lesions = _components(set(kept), _neighbours(3, grouping))
    else:
        lesions = []
        for comp in _components(cands, _neighbours(3, convention.connectivity)):
            if convention.min_volume_mm3 is not None and len(comp) * sx * sy * sz < convention.min_volume_mm3 - 1e-9:
                continue
            lesions.append(comp)
            kept.extend(comp)
            for z in {v[0] for v in comp}:
                in_slice = [v for v in comp if v[0] == z]
                peak = max(float(hu[v[0]][v[1]][v[2]]) for v in in_slice)
                agatston += len(in_slice) * sx * sy * _weight(peak) * factor
    return agatston, len(kept) * sx * sy * sz, len(lesions)
