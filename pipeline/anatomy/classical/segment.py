"""The classical anatomy of one CT: heart, aorta and pulmonary artery masks on the CT grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.stage_values import CTVolume, Geometry

from . import aorta as aorta_rules
from .aorta import WALL_MM, AortaTrack, descending_chains, extend_root, find_ascending, paint_aorta, paint_arch
from .heart import find_heart
from .orient import orientation_of
from .pulmonary import PulmonaryTrack, find_trunk, paint_pulmonary
from .sections import blood_map, paint_sections
from .thorax import BONE_HU, Thorax, find_thorax

#: the aortic valve lies about this far below the pulmonary bifurcation
ROOT_BELOW_BIFURCATION_MM = 30.0
#: without a pulmonary bifurcation, the heart's top lies this far under the arch's bottom
HEART_BELOW_ARCH_MM = 35.0
#: the root is followed at most this far below the ascending aorta's free (round) part
ROOT_MAX_MM = 80.0
#: the aortic root's disk (``Anatomy.structures["aortic_root"]``, where the rules look for the valve's cusps)
#: is painted from the heart's top down this far (on the phantoms the valve lies 12-30 mm under it) ...
ROOT_DISK_MM = 40.0
#: ... and up this far above it (the valve may lie over a heart's top ended by its area)
ROOT_DISK_ABOVE_MM = 15.0
#: ... with the tracked section's radius grown by this (the sinuses bulge past the tube; the track runs a few
#: millimetres off the valve's centre)
ROOT_DISK_GROW_MM = 2.5
#: the heart's top, the arch and the trunk's window hang on the chain with the highest total score (the
#: superior vena cava on many phantoms): with the aorta's chain they moved and cut coronaries (docs/models.md,
#: "ascend"); the aorta's own chain (the widest) gives the ascending aorta and its root
BOUNDS_BY_SCORE = True


@dataclass
class ClassicalAnatomy:
    """Masks on the CT grid and what was found on the way (canonical low-resolution units)."""

    heart: np.ndarray
    aorta: np.ndarray
    pulmonary_artery: np.ndarray
    #: the aortic root's disk about the heart's top (where the valve lies; not in ``aorta``)
    aortic_root: np.ndarray
    thorax: Thorax
    aorta_track: AortaTrack
    pulmonary_track: PulmonaryTrack
    #: the heart's top slice (canonical view) and what bounded it
    heart_top: int
    bounded_by: str
    notes: tuple[str, ...] = ()


def anatomy_of(ct: CTVolume) -> Anatomy:
    """The ``classical`` provider's ``Anatomy`` of a CT (the provider shim and the model call this)."""
    from deepcac2._version import __version__

    found = classical_anatomy(ct.hu, ct.geometry)
    notes = (*found.notes, "classical anatomy: the heart mask holds the pericardial fat")
    return Anatomy(
        heart=found.heart,
        aorta=found.aorta,
        pulmonary_artery=found.pulmonary_artery & ~found.aorta,
        structures={"aortic_root": found.aortic_root} if found.aortic_root.any() else {},
        provenance=AnatomyProvenance(provider="classical", version=__version__),
        notes=notes,
    )


def classical_anatomy(hu: np.ndarray, geometry: Geometry) -> ClassicalAnatomy:
    """Heart, aorta and pulmonary artery of a (z, y, x) CT in HU (axis-aligned series only)."""
    orient = orientation_of(geometry)
    view = orient.to_canonical(hu)
    th = find_thorax(view, orient.spacing)
    sp = th.spacing
    blood = blood_map(th.hu)
    bone = th.hu >= BONE_HU
    notes: list[str] = []
    # the ascending search, the arch, the trunk's window and the heart's top hang on the best chain beside the
    # spine (the old rule), whichever structure it is; only the aorta mask takes the aorta's own chain
    # (``SKIP_ESOPHAGUS``): on the phantoms the best chain is the esophagus, and from the aorta's chain (it ends
    # 2-12 slices lower and is wider) the arch, and with it the heart's top, fell under coronary calcium
    spine_chain, descending_aorta = descending_chains(th, blood, bone)
    track = AortaTrack(descending=spine_chain)
    aorta_chain = find_ascending(th, blood, bone, track.descending)
    track.ascending = (
        find_ascending(th, blood, bone, track.descending, by_width=False) if BOUNDS_BY_SCORE else aorta_chain
    )
    track.mask, track.arch_slices = paint_arch(th, blood, track)
    free_part = track.ascending
    # follow the root down into the heart (at most ROOT_MAX_MM), then cut it below the bifurcation
    if free_part:
        track.ascending = extend_root(
            th, blood, bone, free_part, free_part[0].z - int(round(ROOT_MAX_MM / sp[0])), min_score=0.2
        )
    trunk = find_trunk(th, blood, bone, track)
    arch_bottom = min(track.arch_slices, default=free_part[-1].z if free_part else th.hu.shape[0] - 1)
    below_arch = arch_bottom - int(round(HEART_BELOW_ARCH_MM / sp[0]))
    # the bifurcation lies under the arch: 15-60 mm below its bottom
    if trunk and arch_bottom - int(round(60.0 / sp[0])) <= trunk[-1].z <= arch_bottom - int(round(15.0 / sp[0])):
        top, bounded_by = trunk[-1].z - 1, "pulmonary bifurcation"
    elif free_part:
        top, bounded_by = below_arch, "aortic arch"
        notes.append("classical anatomy: no pulmonary bifurcation found under the arch; heart bounded by the arch")
        trunk = [s for s in trunk if s.z <= top + 1]
    else:
        top, bounded_by = th.hu.shape[0] - 1, "scan"
        notes.append("classical anatomy: no ascending aorta found; heart not bounded above by the great vessels")
    # the root and the trunk reach down to their valves, about ROOT_BELOW_BIFURCATION_MM under the heart's top
    lowest = top + 1 - int(round(ROOT_BELOW_BIFURCATION_MM / sp[0]))
    track.ascending = [s for s in track.ascending if s.z >= lowest or s in free_part]
    trunk = [s for s in trunk if s.z >= lowest]
    if aorta_rules.SKIP_ESOPHAGUS:
        track.descending = descending_aorta
    aorta = paint_aorta(th, track)
    pulmonary = paint_pulmonary(th, blood, trunk, aorta)
    heart, found_top, why = find_heart(th, aorta | pulmonary, top if bounded_by != "scan" else None)
    if why == "area" and bounded_by != "scan":
        notes.append(f"classical anatomy: the {bounded_by} bound (slice {top}) lies too low; heart ended by its area")
        bounded_by = "area"
    top = found_top
    # below the heart's top the root and the trunk are followed only to cut them out of the heart:
    # their position there is a guess, and the left main runs between them
    aorta[: top + 1] &= paint_sections(th.hu.shape, track.descending, sp, WALL_MM)[: top + 1]
    pulmonary[: top + 1] = False
    # the aorta's root's disk from the chain's free part down (the chain itself is not added to ``aorta``
    # above the heart's top: its border there made ascending-wall calcium an ostial plaque on 2009)
    lo, hi = top - int(round(ROOT_DISK_MM / sp[0])), top + int(round(ROOT_DISK_ABOVE_MM / sp[0]))
    disk = [r for r in root_track(th, blood, bone, aorta_chain) if lo <= r.z <= hi]
    root_disk = paint_sections(th.hu.shape, disk, sp, ROOT_DISK_GROW_MM) & ~aorta

    def full(mask: np.ndarray) -> np.ndarray:
        return orient.from_canonical(th.upsample(mask, view.shape))

    return ClassicalAnatomy(
        heart=full(heart),
        aorta=full(aorta),
        pulmonary_artery=full(pulmonary & ~aorta),
        aortic_root=full(root_disk),
        thorax=th,
        aorta_track=track,
        pulmonary_track=PulmonaryTrack(trunk=trunk),
        heart_top=top,
        bounded_by=bounded_by,
        notes=tuple(notes),
    )


def root_track(th: Thorax, blood: np.ndarray, bone: np.ndarray, chain: list) -> list:
    """The aorta's chain followed down into the heart (at most ``ROOT_MAX_MM``): its root."""
    if not chain:
        return []
    lowest = chain[0].z - int(round(ROOT_MAX_MM / th.spacing[0]))
    return extend_root(th, blood, bone, chain, lowest, min_score=0.2)


def localise_heart(hu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The classical heart mask alone (bool, same shape as ``hu``)."""
    return classical_anatomy(hu, geometry).heart
