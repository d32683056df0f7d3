"""Calcified plaques inserted into real chest CT: recall where no expert truth exists (issue 21).

A measurement tool, not run-path code. On a real chest, a reader writes where the
coronary arteries run (points in LPS mm, ``tests/models/coronary_paths.json``, read off
the image) and where non-coronary calcium would lie (aortic wall, aortic valve, mitral
annulus, costal cartilage, a lymph node). Small calcified plaques are inserted at those
points, partial-volume realistic on the CT grid: each voxel becomes the mix of its own HU
and the plaque's material HU in the share of the voxel the plaque fills (sampled on a
sub-voxel grid). The classical chain then runs on the chest with its inserts, and each
insert is scored on its own voxels under the ``literature`` convention (2-D lesions per
slice, 130 HU): the Agatston the model counts of it against the Agatston it has in the
image. An insert whose voxels never reach 130 HU (a small plaque on thick slices) has no
Agatston to count and is reported as invisible.

Targets (issue 21): coronary inserts counted at >= 95% of the inserted Agatston, every
visible insert of >= 5 mm3 counted, and no distractor voxel counted as coronary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from deepcac2.pipeline import stage_values

#: the reader's coronary paths and distractor sites, beside the tests that check them
SITES_JSON = Path(__file__).resolve().parents[1] / "tests" / "models" / "coronary_paths.json"
VESSELS = ("LM", "LAD", "LCX", "RCA", "PDA")
DISTRACTORS = ("aortic_wall", "aortic_valve", "mitral_annulus", "costal_cartilage", "lymph_node")
#: coronary plaques, cycled along each vessel: (volume mm3, material HU). The image HU of a
#: plaque is its material's mixed with the fat around it in each voxel (partial volume): small
#: dense plaques peak at a few hundred HU on 3-5 mm slices, large soft ones at their material's
CORONARY_PLAQUES: tuple[tuple[float, float], ...] = (
    (5.0, 1000.0), (1.5, 1400.0), (12.0, 700.0), (30.0, 450.0), (3.0, 1200.0), (8.0, 900.0), (20.0, 300.0)
)  # fmt: skip
#: distractors: (volume mm3, material HU); the mitral annulus is a band along its points
DISTRACTOR_PLAQUES: dict[str, tuple[float, float]] = {
    "aortic_wall": (20.0, 700.0),
    "aortic_valve": (25.0, 700.0),
    "mitral_annulus": (250.0, 700.0),
    "costal_cartilage": (20.0, 500.0),
    "lymph_node": (30.0, 600.0),
}
SCORE_CONVENTION = "literature"
MIN_COUNTED_MM3 = 5.0
MIN_AGATSTON_SHARE = 0.95


@dataclass(frozen=True)
class Insert:
    """One inserted plaque: a sphere at ``centre`` or, with several points, a tube (band) along them."""

    name: str
    group: str  # a vessel (``VESSELS``) or a distractor site (``DISTRACTORS``)
    coronary: bool
    points_lps: tuple[tuple[float, float, float], ...]
    volume_mm3: float
    material_hu: float


@dataclass
class InsertResult:
    insert: Insert
    voxels: int  # voxels >= 130 HU after insertion
    peak_hu: float
    agatston: float  # of the insert in the image
    counted: float  # of the insert in the model's coronary mask
    coronary_voxels: int
    where: str  # what the model made of most of its voxels (coronary, aortic, mitral_annular, ...)

    @property
    def visible(self) -> bool:
        return self.voxels > 0 and self.agatston > 0


@dataclass
class ChestResult:
    chest: str
    inserts: list[InsertResult] = field(default_factory=list)
    seconds: float = 0.0
    #: the model's prediction on the chest with its inserts, and the inserts' label map (for tests)
    prediction: stage_values.Prediction | None = None
    labels: np.ndarray | None = None

    def coronary(self, vessel: str | None = None) -> list[InsertResult]:
        return [r for r in self.inserts if r.insert.coronary and (vessel is None or r.insert.group == vessel)]

    def share(self, vessel: str | None = None) -> float:
        rs = self.coronary(vessel)
        total = sum(r.agatston for r in rs)
        return sum(r.counted for r in rs) / total if total > 0 else float("nan")

    def missed(self, vessel: str | None = None) -> list[InsertResult]:
        """Visible coronary inserts of >= MIN_COUNTED_MM3 not (fully enough) counted."""
        return [
            r
            for r in self.coronary(vessel)
            if r.visible and r.insert.volume_mm3 >= MIN_COUNTED_MM3 and r.counted < MIN_AGATSTON_SHARE * r.agatston
        ]

    def distractor_coronary_voxels(self) -> int:
        return sum(r.coronary_voxels for r in self.inserts if not r.insert.coronary)


def load_sites(chest: str, path: Path = SITES_JSON) -> dict:
    return json.loads(Path(path).read_text())[chest]


def inserts_for(chest: str, path: Path = SITES_JSON) -> list[Insert]:
    """The chest's inserts: plaques cycled along each vessel's points, one per distractor site."""
    sites = load_sites(chest, path)
    out: list[Insert] = []
    n = 0
    for vessel in VESSELS:
        for p in sites["coronary"].get(vessel, []):
            vol, hu = CORONARY_PLAQUES[n % len(CORONARY_PLAQUES)]
            n += 1
            out.append(Insert(f"{vessel}-{len(out)}", vessel, True, (tuple(p),), vol, hu))
    for group in DISTRACTORS:
        for p in sites["distractors"].get(group, []):
            vol, hu = DISTRACTOR_PLAQUES[group]
            pts = tuple(tuple(q) for q in p) if isinstance(p[0], list) else (tuple(p),)
            out.append(Insert(f"{group}-{len(out)}", group, False, pts, vol, hu))
    return out


def _fraction(
    geometry: stage_values.Geometry, shape, ins: Insert, sub: int = 2
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The share of each voxel (in a box) the insert fills, sampled on a sub-voxel grid (pitch <= 0.25 mm)."""
    pts = np.asarray(ins.points_lps, dtype=float)
    if len(pts) == 1:
        radius = (3.0 * ins.volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    else:  # a tube with round ends of this volume along the polyline: pi r^2 L + 4/3 pi r^3 = V
        length = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())
        roots = np.roots([4.0 / 3.0 * np.pi, np.pi * length, 0.0, -ins.volume_mm3])
        radius = float(max(r.real for r in roots if abs(r.imag) < 1e-9 and r.real > 0))
    sp = np.asarray(geometry.spacing, dtype=float)
    ijk = geometry.lps_to_index(pts)
    reach = radius / sp + 1.0
    lo = np.floor(ijk.min(axis=0) - reach).astype(int)
    hi = np.ceil(ijk.max(axis=0) + reach).astype(int) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [shape[2], shape[1], shape[0]])
    pitch = max(min(0.25, radius / 6.0), 0.1)  # fine enough for a 1.5 mm3 plaque, not a hair-thin band
    subs = [max(sub, int(np.ceil(s / pitch))) for s in sp]
    offs = [(np.arange(n) + 0.5) / n - 0.5 for n in subs]
    axes = [np.add.outer(np.arange(lo[a], hi[a]), offs[a]).ravel() for a in range(3)]
    gi, gj, gk = np.meshgrid(*axes, indexing="ij")
    lps = geometry.index_to_lps(np.stack([gi, gj, gk], axis=-1))
    if len(pts) == 1:
        inside = np.linalg.norm(lps - pts[0], axis=-1) <= radius
    else:
        d = np.full(lps.shape[:-1], np.inf)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            ab = b - a
            t = np.clip(((lps - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
            d = np.minimum(d, np.linalg.norm(lps - (a + t[..., None] * ab), axis=-1))
        inside = d <= radius
    n = [hi[a] - lo[a] for a in range(3)]
    f = inside.reshape(n[0], subs[0], n[1], subs[1], n[2], subs[2]).mean(axis=(1, 3, 5))  # (i, j, k)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return box, f.transpose(2, 1, 0)


def insert_plaques(ct: stage_values.CTVolume, inserts: list[Insert]) -> tuple[stage_values.CTVolume, np.ndarray]:
    """The CT with the plaques in, and a label map (1 + index in ``inserts``) of the voxels each fills."""
    hu = ct.hu.astype(np.float32)
    labels = np.zeros(ct.shape, dtype=np.int16)
    for n, ins in enumerate(inserts):
        box, f = _fraction(ct.geometry, ct.shape, ins)
        hu[box] = hu[box] * (1.0 - f) + ins.material_hu * f
        labels[box][f > 0] = n + 1
    out = np.clip(np.rint(hu), np.iinfo(ct.hu.dtype).min, np.iinfo(ct.hu.dtype).max).astype(ct.hu.dtype)
    return replace(ct, hu=out), labels


def _where(pred: stage_values.Prediction, rule_map: np.ndarray | None, voxels: np.ndarray) -> str:
    """What the model made of most of ``voxels``: coronary, a reported calcium, or the rule that rejected it."""
    from deepcac2.pipeline.models.classical.candidate_rules import RULES

    counts = {"coronary": int((pred.cac & voxels).sum())}
    for name in ("aortic", "aortic_valve", "mitral_annular"):
        m = getattr(pred, name)
        counts[name] = int((m & voxels).sum()) if m is not None else 0
    best = max(counts, key=counts.get)
    if counts[best] > 0 or rule_map is None:
        return best if counts[best] > 0 else "not a candidate"
    codes = np.bincount(rule_map[voxels], minlength=2 + len(RULES))
    codes[:2] = 0
    return f"rejected: {RULES[int(codes.argmax()) - 2]}" if codes.any() else "not a candidate"


def measure(chest: str, ct: stage_values.CTVolume, model=None, inserts: list[Insert] | None = None) -> ChestResult:
    """Insert the chest's plaques, run ``model`` (the default classical chain), score each insert."""
    import time

    from deepcac2.pipeline.models.classical.model import ClassicalModel
    from deepcac2.pipeline.scoring.engine import score_series

    model = model or ClassicalModel()
    inserts = inserts if inserts is not None else inserts_for(chest)
    inserted, labels = insert_plaques(ct, inserts)
    t0 = time.perf_counter()
    analysed = model.analyse(inserted)
    pred, rule_map = analysed.prediction, getattr(analysed, "rule_map", None)
    out = ChestResult(chest, seconds=time.perf_counter() - t0, prediction=pred, labels=labels)
    for n, ins in enumerate(inserts):
        own = labels == n + 1
        bright = own & (inserted.hu >= 130)
        kw = {"convention": SCORE_CONVENTION}
        agatston = score_series(inserted.hu, inserted.geometry, own, **kw).agatston if bright.any() else 0.0
        counted = score_series(inserted.hu, inserted.geometry, own & pred.cac, **kw).agatston if bright.any() else 0.0
        out.inserts.append(
            InsertResult(
                ins, int(bright.sum()), float(inserted.hu[own].max()), float(agatston), float(counted),
                int((bright & pred.cac).sum()), _where(pred, rule_map, bright),
            )
        )  # fmt: skip
    return out


def native_overlap(ct: stage_values.CTVolume, inserts: list[Insert]) -> dict[str, int]:
    """Voxels >= 130 HU already in the image where each insert goes (a reading should avoid native calcium)."""
    out = {}
    for ins in inserts:
        box, f = _fraction(ct.geometry, ct.shape, ins)
        out[ins.name] = int(((ct.hu[box] >= 130) & (f > 0)).sum())
    return out


def table(results: list[ChestResult]) -> list[str]:
    """Markdown rows: per chest and vessel, inserted and counted Agatston, misses, distractors."""
    rows = [
        "| chest | site | inserts (visible) | inserted Agatston | counted | share | missed >= 5 mm3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in results:
        for v in (*VESSELS, None):
            rs = c.coronary(v)
            if not rs:
                continue
            ins = sum(r.agatston for r in rs)
            cnt = sum(r.counted for r in rs)
            rows.append(
                f"| {c.chest} | {v or 'all coronary'} | {len(rs)} ({sum(r.visible for r in rs)}) | {ins:.1f} | "
                f"{cnt:.1f} | {cnt / ins if ins else float('nan'):.3f} | {len(c.missed(v))} |"
            )
        for r in (r for r in c.inserts if not r.insert.coronary):
            rows.append(
                f"| {c.chest} | {r.insert.group} (distractor) | 1 ({int(r.visible)}) | {r.agatston:.1f} | "
                f"{r.counted:.1f} coronary | -> {r.where} | {r.coronary_voxels} voxels coronary |"
            )
    return rows


def draw(chest: str, ct: stage_values.CTVolume, out: Path, path: Path = SITES_JSON, half_mm: float = 45.0) -> Path:
    """A PNG of every site on its axial slice (window 40/400, >= 130 HU tinted): the reading to check by eye.

    ``python -m bench.insertion draw LUNG1-001 out.png`` (with DEEPCAC2_SHARED_DATA set).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inserts = inserts_for(chest, path)
    cols = 6
    rows = (len(inserts) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows))
    sp = ct.geometry.spacing
    for ax, ins in zip(np.atleast_1d(axes).ravel(), inserts, strict=False):
        i, j, k = (int(round(v)) for v in ct.geometry.lps_to_index(np.asarray(ins.points_lps[0])))
        hi, hj = int(half_mm / sp[0]), int(half_mm / sp[1])
        j0, i0 = max(j - hj, 0), max(i - hi, 0)
        img = ct.hu[k, j0 : j + hj, i0 : i + hi].astype(float)
        rgb = np.repeat(np.clip((img + 160.0) / 400.0, 0, 1)[..., None], 3, axis=2)
        rgb[img >= 130] = rgb[img >= 130] * 0.5 + np.array([0.5, 0.5, 0.0])
        ax.imshow(rgb)
        for p in ins.points_lps:
            pi, pj, _ = ct.geometry.lps_to_index(np.asarray(p))
            ax.plot(pi - i0, pj - j0, "o", mfc="none", mec="r" if ins.coronary else "c", ms=9, mew=1.2)
        ax.set_title(f"{ins.name} k={k}", fontsize=7)
        ax.axis("off")
    for ax in np.atleast_1d(axes).ravel()[len(inserts) :]:
        ax.axis("off")
    fig.suptitle(f"{chest}: coronary sites (red) and distractors (cyan); patient left on the right", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


if __name__ == "__main__":  # python -m bench.insertion draw CHEST OUT.png
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models"))
    from conftest import REAL_SERIES, read_ct  # the tests' reader: SimpleITK, independent of our loader

    _, what, chest, out_png = sys.argv
    base = Path(os.environ.get("DEEPCAC2_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    print(draw(chest, read_ct(base / REAL_SERIES[chest]), Path(out_png)))
