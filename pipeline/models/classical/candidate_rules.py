"""Coronary calcium candidates and the named rules that sort them, from any provider's anatomy.

Candidates are the 26-connected components of ``HU >= threshold`` that reach the
search region: the heart dilated by the pericardial shell, the aortic root (aorta near
the heart, where the ostia are) dilated the same, and the aorta and pulmonary artery
dilated by the wall margin (aortic calcium is reported, so all of it is a candidate).
Each component gets the first rule that fits it, in this order:

==============  ==========================================================================
rule            rejects
==============  ==========================================================================
``noise``       not significant against the image noise on either of two tests. Its excess
                over the threshold, ``(mean HU - threshold) x sqrt(voxels) / noise SD``, is
                under ``min_significance``; and its peak stands less than ``z`` noise SDs
                above its local background (the ``background_quantile`` of the HU 1-3 mm
                around it: an upper quantile, so noise on the myocardium at the epicardial
                fat is measured against the muscle). ``z`` is the level that pure noise
                exceeds with probability ``noise_alpha`` anywhere in the search region
                (Bonferroni over its voxels: about 5.3 SD over a million). Speckle is the
                noise's own maxima: it passes the first test at 2.5-3.4 on 35 HU chests, so
                that test must be stricter than a single component's significance, and it
                stays under the second; a small plaque in the epicardial fat (a few hundred
                HU on fat at -100) passes the second however little of it reaches the
                threshold (partial volume on thick slices). The noise SD is a robust
                estimate in the heart
``valve``       valves and annulus: the centroid lies deeper than ``valve_depth_mm`` inside
                the heart and the aortic root, counted from their outside and from any fat
                (coronaries run in the epicardial fat; the aortic valve sits in the middle of
                the root, the mitral annulus in the heart's muscle); or its centroid lies deeper than
                ``valve_soft_depth_mm`` from any fat or air, farther than ``root_mm`` from the
                aorta, within the shell and not bone (an aortic root the anatomy left out of
                heart and aorta is still blood and muscle); or, where the anatomy gives the root's
                disk (``aortic_root``), its centroid lies in it and at most
                ``valve_root_fat_fraction`` of its 1-3 mm surroundings is fat (a cusp in the root's
                blood, however far the disk runs off the valve's centre; the left main is in fat)
``aortic``      at least ``wall_fraction`` of its voxels lie within ``wall_margin_mm`` of the
                aorta. **Except** the coronary ostia and the left main: at the aortic root
                (aorta within ``root_mm`` of the heart), a component with less than
                ``wall_fraction`` of its voxels inside the aorta (grown by
                ``root_tolerance_mm``) leaves the aorta and is left to the other rules; a
                component is at the root when its nearest aorta is root. Calcium inside the
                root (at least ``wall_fraction``) is the aortic valve and annulus (``valve``).
                These components make ``Prediction.aortic`` (thoracic aortic calcium), with
                the voxels of an ostial plaque that lie inside the given aorta mask: coronary
                calcium is never inside the aorta it was given (QA blocks on it)
``pulmonary``   at least ``wall_fraction`` of its voxels inside the pulmonary artery (not
                grown: the left main runs just behind the trunk, within a millimetre), and
                either outside the coronary corridor (its nearest voxel more than
                ``pa_corridor_mm`` from the heart and from the aortic root) or clearly inside
                the artery (its voxels on average ``pa_lumen_mm`` or more inside the mask).
                The coronaries leave the root's sinuses; the left main and proximal LAD run
                right under the trunk, against the heart, the proximal RCA between the trunk's
                outflow and the right atrium, and a segmentation's border there wanders by a
                millimetre or two over them; coronary calcium there is common, calcium in the
                pulmonary artery wall is rare. So a component at the mask's border in the
                coronary corridor is not the artery's: the label at a border is not trusted
``bone``        at least ``wall_fraction`` of its voxels in a bone structure of the anatomy
                (vertebrae, ribs, sternum, costal cartilage; grown by ``bone_margin_mm``),
                or larger than ``max_lesion_ml`` (pieces of sternum, ribs and spine; measured
                on the whole volume when the search box cuts the component), or embedded:
                ``embedded_fraction`` of its surroundings (1-3 mm out) at ``embedded_hu`` or
                more (costal cartilage, which IDC's TotalSegmentator v1 does not segment)
``shell``       more than half of its voxels outside the pericardial shell: the heart grown
                by ``shell_mm`` and the aortic root grown by ``root_shell_mm`` (a heart mask
                that holds the pericardial fat gets the narrower ``shell_with_fat_mm``; the root's
                mask never holds fat, and the proximal coronaries cross the fat in front of it).
                Such a mask holds mediastinal fat above and behind the heart's base too (nodes, a
                descending aorta it missed): with ``chambers_shell_mm`` set, the shell is also at
                most that far from the heart's blood and muscle (``heart_wall_distance``) or
                within the root's shell: coronaries run on the heart's surface
``chest_wall``  the thoracic cage's wall: at least ``wall_fraction`` of its voxels lie within
                ``cage_wall_mm`` of the outside of the cage's envelope and nearer to it than
                to the heart. The envelope is, per slice, the convex hull of the bone (``HU >=
                cage_bone_hu`` on ~2 mm block means, which noise does not reach, and the
                anatomy's bone structures): ribs, sternum, spine. The costal cartilage joins the
                ribs' ends to the sternum along that hull, so its calcium lies in the ring;
                coronary calcium lies on the heart, inside the cage's wall (IDC's
                TotalSegmentator v1 has no sternum or costal cartilage, and on noisy images
                cartilage calcium is joined through the cartilage into components that the
                ``bone`` rule's embedded test misses)
``annulus``     mitral annular calcification (MAC): a band along the left atrioventricular
                ring, deep to the fat plane where the LCX runs. At least ``annulus_min_mm3``,
                at least ``annulus_min_length_mm`` long (its principal axis), behind and left
                of the heart's middle (the heart's median voxel, LPS), and set in soft tissue
                (annulus, myocardium, blood), not fat: at least ``annulus_soft_fraction`` of
                the voxels 1-3 mm around it are soft tissue (-30 to 130 HU) and fewer are fat.
                Coronary plaques are small and sit in the epicardial fat; a single coronary
                component this large is a long calcified segment lying in its groove's fat
==============  ==========================================================================

What no rule rejects is coronary calcium. ``valve`` and ``annulus`` calcium is reported in
its own masks: aortic valve calcium (``valve`` at the aortic root) and mitral annular
calcification (``annulus``, and ``valve`` deep in the heart away from the root). Counts
are of voxels at or above the threshold, per rule, per series. All distances are in millimetres on the CT grid, so
the rules need no orientation and work with any axis order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .measures import (
    _band_length,
    _box,
    _Distances,
    _exact_near_root,
    _fill,
    _in_front,
    _lps,
    _spacing_zyx,
    _surroundings,
    _whole_sizes,
    cage_depth,
    family_level,
    heart_wall_distance,
    local_peak_background,
)

#: rule names in the order they are tried; ``Prediction``/``cac_series`` count rejections by these
RULES: tuple[str, ...] = ("noise", "valve", "aortic", "pulmonary", "bone", "shell", "chest_wall", "annulus")
#: optional anatomy structures the bone rule uses when the provider has them
BONE_STRUCTURES: tuple[str, ...] = ("vertebrae", "ribs", "sternum", "costal_cartilage")


@dataclass(frozen=True)
class RuleSettings:
    threshold_hu: float = 130.0
    #: coronary calcium lies within this shell around the heart (chambers and myocardium) ...
    shell_mm: float = 10.0
    #: ... or within this one around a heart mask that already holds the pericardial fat
    shell_with_fat_mm: float = 5.0
    #: ... and within this one around the aortic root (a vessel's mask, whatever the heart's holds: the
    #: coronaries leave its sinuses and cross the fat in front of it)
    root_shell_mm: float = 10.0
    #: a heart mask that holds the pericardial fat (and, above the heart's base, mediastinal fat, nodes
    #: and vessels) is also measured from its blood and muscle: calcium must lie within this of them
    #: (None: not measured; ``ClassicalModel`` sets ``shell_mm`` for such masks) ...
    chambers_shell_mm: float | None = None
    #: ... found by eroding the blood and muscle this far (the esophagus and nodes drop out)
    chambers_erode_mm: float = 8.0
    #: the aortic and pulmonary wall: calcium within this margin of the vessel mask is the vessel's
    wall_margin_mm: float = 2.0
    #: share of a component's voxels that must lie in a structure (vessel wall, bone) to be its
    wall_fraction: float = 0.5
    #: the aortic root: aorta voxels within this distance of the heart
    root_mm: float = 10.0
    #: at the root, calcium counts as aortic only with ``wall_fraction`` inside the aorta grown by this
    root_tolerance_mm: float = 1.0
    #: the root lies in front of this quantile of the heart's voxels (front to back); the
    #: descending aorta, pressed against the left atrium, lies behind nearly all of them
    root_front_fraction: float = 0.75
    valve_depth_mm: float = 6.0
    #: ... or this deep in soft tissue (from any fat and air), within the shell and not bone: valves and
    #: annulus lie in blood and muscle, coronaries in the epicardial fat
    valve_soft_depth_mm: float = 8.0
    #: the aortic valve where the anatomy gives the root's disk apart from its aorta (``aortic_root``, the
    #: classical anatomy's tracked root, which may run a few millimetres off the valve's centre): a component
    #: whose centroid lies in that disk and that is set in blood and muscle, at most this share of its 1-3 mm
    #: surroundings fat (the cusps lie in the root's blood; the left main and its ostial plaques in fat)
    valve_root_fat_fraction: float = 0.2
    #: mitral annular calcification: a band at least this large and long, set in soft tissue
    #: (this share of its 1-3 mm surroundings at -30 to 130 HU, and more than is fat)
    annulus_min_mm3: float = 100.0
    annulus_min_length_mm: float = 15.0
    annulus_soft_fraction: float = 0.5
    #: the coronary corridor under the pulmonary trunk: calcium whose nearest voxel lies within this
    #: of the heart or the aortic root is not the artery's unless it lies clearly inside its mask ...
    pa_corridor_mm: float = 8.0
    #: ... its voxels on average at least this deep inside it (a segmentation's border wanders ~1-2 mm)
    pa_lumen_mm: float = 3.0
    fat_hu: tuple[float, float] = (-250.0, -30.0)
    #: noise: a component's excess over the threshold this significant is calcium (speckle, the
    #: noise's maxima, reaches 3.4 on 35 HU chests: tuned on seeds 0-19 and 2000-2019) ...
    min_significance: float = 4.0
    #: ... and so is one whose peak exceeds its local background (this quantile of its 1-3 mm
    #: surroundings) by more than pure noise reaches anywhere in the search region at this level
    background_quantile: float = 0.9
    noise_alpha: float = 0.05
    max_lesion_ml: float = 5.0
    bone_margin_mm: float = 2.0
    #: calcium with ``embedded_fraction`` of its surroundings (1-3 mm out) at or above ``embedded_hu``
    #: is embedded in cartilage or bone; coronary calcium sits in fat and blood
    embedded_hu: float = 90.0
    embedded_fraction: float = 0.1
    #: the thoracic cage's wall: calcium this close to the outside of the cage's envelope (and nearer
    #: to it than to the heart) is in the chest wall (sternum about 12 mm thick, cartilage about 10)
    cage_wall_mm: float = 15.0
    #: bone for the cage's envelope: block means (about 2 mm) at or above this
    cage_bone_hu: float = 200.0
    #: the envelope at a slice holds the bone within this distance along the slice axis (ribs are oblique)
    cage_reach_mm: float = 15.0


@dataclass
class RuleResult:
    """Masks on the CT grid and what each rule removed (voxels >= threshold)."""

    cac: np.ndarray
    aortic: np.ndarray
    #: aortic valve calcium (``valve`` at the aortic root) and mitral annular calcification
    #: (``annulus``, and ``valve`` deep in the heart): reported, not coronary
    aortic_valve: np.ndarray | None = None
    mitral_annular: np.ndarray | None = None
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    #: the robust noise SD (HU) the noise rule used
    noise_sd: float = 0.0
    #: uint8 map of what became of each candidate voxel: 0 not a candidate, 1 coronary,
    #: 2 + the index in ``RULES`` of the rule that rejected it (for pictures and tests)
    rule_map: np.ndarray | None = None


def _pulmonary_owned(
    labels: np.ndarray,
    n: int,
    touching: np.ndarray,
    inside: np.ndarray,
    near_corridor: np.ndarray,
    dist: _Distances,
    pa: np.ndarray,
    s: RuleSettings,
) -> np.ndarray:
    """Per component, whether the pulmonary artery owns it (the ``pulmonary`` rule).

    ``inside``: at least ``wall_fraction`` of its voxels in the artery's mask. Of those, a
    component in the coronary corridor (its nearest voxel within ``pa_corridor_mm`` of the
    heart or of the aortic root, ``near_corridor``: the coronaries leave the root's sinuses,
    the left main and proximal LAD run under the trunk, the proximal RCA between the trunk's
    outflow and the right atrium) is the artery's only when it lies clearly inside the mask
    (mean depth ``pa_lumen_mm`` or more), not at a border that wanders over the corridor.
    """
    owned = np.zeros(n + 1, dtype=bool)
    ask = touching[inside[touching]]
    if ask.size == 0:
        return owned
    nearest = np.asarray(ndi.minimum(near_corridor, labels, index=ask), dtype=float)
    depth = np.asarray(ndi.mean(dist.to(~pa), labels, index=ask), dtype=float)
    owned[ask] = (nearest > s.pa_corridor_mm) | (depth >= s.pa_lumen_mm)
    return owned


def noise_sd(hu: np.ndarray, heart: np.ndarray) -> float:
    """Robust noise SD (HU) of the heart's blood and muscle: 1.4826 x MAD, at least 1 HU."""
    values = hu[heart & (hu > -30) & (hu < 300)][::3].astype(np.float64)
    if values.size < 100:
        return 1.0
    mad = float(np.median(np.abs(values - np.median(values))))
    return max(1.4826 * mad, 1.0)


def apply_rules(
    hu: np.ndarray,
    spacing_xyz,
    heart: np.ndarray,
    aorta: np.ndarray,
    pulmonary: np.ndarray,
    bone: np.ndarray | None = None,
    settings: RuleSettings = RuleSettings(),  # noqa: B008 - frozen dataclass
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    root_disk: np.ndarray | None = None,
) -> RuleResult:
    """Sort the calcium around ``heart`` into coronary, aortic and rejected-by-rule (all masks on the CT grid).

    ``bone`` is the union of the anatomy's bone structures, or None when the provider has
    none (then only the size test finds bone). ``root_disk`` is the anatomy's ``aortic_root``
    (the root's disk outside its aorta mask), or None. ``direction`` is the CT's direction matrix
    (row-major, columns = index axes in LPS): the aortic root is told from the descending
    aorta by lying in front of the heart's back.
    """
    s = settings
    sp = _spacing_zyx(spacing_xyz)
    result = RuleResult(cac=np.zeros(hu.shape, dtype=bool), aortic=np.zeros(hu.shape, dtype=bool))
    if not heart.any():
        return result
    # work in a box around everything the rules look at
    reach = max(s.shell_mm, s.wall_margin_mm) + 5.0
    box = _box(heart | aorta | pulmonary, tuple(int(np.ceil(reach / v)) for v in sp))
    sub = hu[box]
    h, a, p = heart[box], aorta[box], pulmonary[box]
    b = bone[box] if bone is not None else None
    dist = _Distances(sub.shape, sp)
    # bright calcium may be left out of a provider's masks: fill the holes it leaves
    h, a, p = (_fill(m) for m in (h, a, p))
    near_heart = dist.to(h)
    root = a & (near_heart <= s.root_mm) & _in_front(h, sp, direction, box, s.root_front_fraction)
    to_root = dist.to(root)
    # the root is a vessel's mask, never holding the pericardial fat: its shell stays ``root_shell_mm``
    shell = (near_heart <= s.shell_mm) | (to_root <= s.root_shell_mm)
    search = shell  # candidates: what reaches the shell of the mask (the rules below sort them)
    if s.chambers_shell_mm is not None:
        # on the heart's surface: the heart mask's fat reaches into the mediastinum above and behind
        # the heart's base (subcarinal and hilar nodes, the descending aorta), far from its chambers
        to_chambers = heart_wall_distance(sub, h, dist, s.chambers_erode_mm)
        shell = shell & ((to_chambers <= s.chambers_shell_mm) | (to_root <= s.root_shell_mm))
    to_aorta = dist.to(a)
    aorta_wall = to_aorta <= s.wall_margin_mm
    root_wall = _exact_near_root(a, root, to_aorta, sp, s.root_tolerance_mm, s.root_mm + 20.0)
    pa_wall = p  # inside only: the left main runs just behind the trunk, within a millimetre
    region = search | aorta_wall | pa_wall
    bright = sub >= s.threshold_hu
    labels, n = ndi.label(bright, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return result
    total = np.bincount(labels.ravel(), minlength=n + 1)
    whole = _whole_sizes(hu >= s.threshold_hu, box, labels, total)
    touching = np.flatnonzero(np.bincount(labels[region].ravel(), minlength=n + 1)[1:]) + 1

    def share(mask: np.ndarray) -> np.ndarray:
        return np.bincount(labels[mask].ravel(), minlength=n + 1) / np.maximum(total, 1)

    in_shell, in_aorta, in_root_aorta, in_pa = share(shell), share(aorta_wall), share(root_wall), share(pa_wall)
    in_bone = share(dist.within(b, s.bone_margin_mm)) if b is not None and b.any() else np.zeros(n + 1)
    corridor = np.minimum(near_heart, to_root)  # the coronaries run from the root's sinuses along the heart
    pa_own = _pulmonary_owned(labels, n, touching, in_pa >= s.wall_fraction, corridor, dist, p, s)
    result.noise_sd = noise_sd(sub, h)
    mean = np.bincount(labels.ravel(), weights=sub.ravel().astype(np.float64), minlength=n + 1) / np.maximum(total, 1)
    significance = (mean - s.threshold_hu) * np.sqrt(total) / result.noise_sd
    peak, background = local_peak_background(sub, labels, sp, touching, s.background_quantile, s.threshold_hu)
    contrast = np.zeros(n + 1)
    contrast[touching] = (peak - background) / result.noise_sd
    noise_z = family_level(int(region.sum()), s.noise_alpha)
    # depth inside the heart and the aortic root, from their outside and from fat layers of 2+ blocks
    fat = dist.fat(sub, s.fat_hu)
    depth = dist.to(~(h | root) | fat)
    # depth in soft tissue alone: from fat and air, whatever the masks say (an aortic root the anatomy
    # left out of both heart and aorta still has blood and muscle around its valve, no fat)
    soft_depth = dist.to(fat | (sub < s.fat_hu[0]))
    centroids = ndi.center_of_mass(bright, labels, index=touching)
    # the component's nearest aorta is the root's (the left main runs a few millimetres from it)
    at_root = to_root <= to_aorta + 1.0
    voxel_ml = float(np.prod(sp)) / 1000.0
    embedded, soft_share, fat_share = _surroundings(
        sub, labels, bright, sp, n, ((s.embedded_hu, np.inf), (-30.0, s.threshold_hu), s.fat_hu)
    )
    # behind and left of the heart's middle (LPS: y grows backwards, x leftwards): the mitral annulus's side
    middle = np.median(_lps(np.argwhere(h), box, sp, direction), axis=0)
    volume_mm3 = total * float(np.prod(sp))
    candidates = np.isin(labels, touching)
    in_cage = cage_depth(hu, sp, box, candidates, bone, s.cage_bone_hu, s.cage_reach_mm, heart=h)
    wall = candidates & (in_cage <= s.cage_wall_mm) & (in_cage < near_heart)
    in_wall = share(wall)
    in_disk = np.zeros(sub.shape, dtype=bool) if root_disk is None else root_disk[box]
    kind = np.zeros(n + 1, dtype=np.uint8)  # see RuleResult.rule_map
    valve_at_root: list[int] = []
    for lab, c in zip(touching, centroids, strict=True):
        centre = tuple(int(round(v)) for v in c)
        rule = None
        if significance[lab] < s.min_significance and contrast[lab] < noise_z:
            rule = "noise"
        elif in_disk[centre] and fat_share[lab] <= s.valve_root_fat_fraction:
            rule = "valve"  # a cusp in the root's blood (the left main leaves through the fat)
            valve_at_root.append(lab)
        elif (
            depth[centre] > s.valve_depth_mm
            or (at_root[centre] and in_root_aorta[lab] >= s.wall_fraction)
            or (
                soft_depth[centre] > s.valve_soft_depth_mm
                and to_aorta[centre] > s.root_mm  # near the aorta mask, the root test above decides
                and in_shell[lab] >= 0.5
                and in_bone[lab] < s.wall_fraction
                and embedded[lab] < s.embedded_fraction
                and whole[lab] * voxel_ml <= s.max_lesion_ml
            )
        ):
            rule = "valve"  # deep in the heart (mitral annulus), or in the aortic root (valve, annulus)
            if at_root[centre] and in_root_aorta[lab] >= s.wall_fraction:
                valve_at_root.append(lab)
        elif in_aorta[lab] >= s.wall_fraction and not at_root[centre]:
            rule = "aortic"
        elif pa_own[lab]:  # inside the artery, not at its border in the coronary corridor
            rule = "pulmonary"
        elif (
            in_bone[lab] >= s.wall_fraction
            or whole[lab] * voxel_ml > s.max_lesion_ml
            or embedded[lab] >= s.embedded_fraction
        ):
            rule = "bone"
        elif in_shell[lab] < 0.5:
            rule = "shell"
        elif in_wall[lab] >= s.wall_fraction:
            rule = "chest_wall"
        elif (
            volume_mm3[lab] >= s.annulus_min_mm3
            and soft_share[lab] >= s.annulus_soft_fraction
            and soft_share[lab] > fat_share[lab]
            and np.all(_lps(np.array([c]), box, sp, direction)[0, :2] > middle[:2])
            and _band_length(labels, lab, sp) >= s.annulus_min_length_mm
        ):
            rule = "annulus"  # mitral annular calcification: a band deep to the left AV groove's fat
        kind[lab] = 1 if rule is None else 2 + RULES.index(rule)
        if rule is not None:
            result.rejected[rule] += int(total[lab])
    rule_map = kind[labels]
    # the given aorta holds no coronary calcium: where an ostial plaque reaches into the mask
    # (a provider's border wanders by a voxel or two), that part is the aortic wall's
    ostial = (rule_map == 1) & a
    rule_map[ostial] = 2 + RULES.index("aortic")
    result.rejected["aortic"] += int(ostial.sum())
    result.rule_map = np.zeros(hu.shape, dtype=np.uint8)
    result.rule_map[box] = rule_map
    result.cac = result.rule_map == 1
    result.aortic = result.rule_map == 2 + RULES.index("aortic")
    valves = result.rule_map == 2 + RULES.index("valve")
    result.aortic_valve = np.zeros(hu.shape, dtype=bool)
    result.aortic_valve[box] = np.isin(labels, valve_at_root) & valves[box]
    result.mitral_annular = (result.rule_map == 2 + RULES.index("annulus")) | (valves & ~result.aortic_valve)
    return result
