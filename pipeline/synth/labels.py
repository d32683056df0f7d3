"""Label values of the synthetic phantoms and the HU of each tissue.

The values are stable: they are documented in ``docs/synth.md`` and used by other
engineers to train and test models.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """``Phantom.anatomy`` values."""

    AIR = 0
    FAT = 1  # subcutaneous and mediastinal fat
    MUSCLE = 2
    LUNG = 3
    LUNG_VESSEL = 4
    CORTICAL_BONE = 5
    CANCELLOUS_BONE = 6
    MYOCARDIUM = 7
    BLOOD = 8  # blood not in a named chamber (chests label each chamber since synth 2: 24-27)
    PERICARDIAL_FAT = 9
    LIVER = 10
    SOFT_TISSUE = 11  # upper abdomen, spinal canal, discs
    CORONARY = 12  # coronary artery lumen (blood)
    AORTA = 13  # aortic wall and lumen (blood)
    CAC = 14  # coronary calcified plaque (HU from the plaque spec)
    DISTRACTOR_CALCIUM = 15  # aortic wall, valve, mitral annulus calcium (HU from the distractor)
    AIRWAY = 16  # trachea and main bronchi
    WATER = 17  # QRM phantom body
    QRM_INSERT = 18  # QRM calcium insert (HU from the density)
    QRM_ROD = 19  # QRM calibration rod (HU from the density)
    PULMONARY_ARTERY = 20  # pulmonary trunk and its left and right branches (blood)
    ESOPHAGUS = 21
    COSTAL_CARTILAGE = 22  # uncalcified; its calcified parts are distractor calcium
    LYMPH_NODE = 23  # mediastinal and hilar nodes; their calcified parts are distractor calcium
    LEFT_VENTRICLE = 24  # blood of each heart chamber (the myocardium is MYOCARDIUM)
    RIGHT_VENTRICLE = 25
    LEFT_ATRIUM = 26
    RIGHT_ATRIUM = 27
    SUPERIOR_VENA_CAVA = 28  # great-vessel chests only (blood)
    ARCH_BRANCH = 29  # brachiocephalic trunk, left common carotid and left subclavian arteries (blood)


class Distractor(IntEnum):
    """``Phantom.distractors`` values: dense things that are not coronary calcium."""

    AORTIC_WALL = 1
    AORTIC_VALVE = 2
    MITRAL_ANNULUS = 3
    BONE_NEAR_HEART = 4
    CALIBRATION_ROD = 5  # QRM phantom only
    # great-vessel chests (ChestSpec.great_vessels); AORTIC_WALL is then the descending aorta's wall
    ASCENDING_AORTA_WALL = 6
    AORTIC_ARCH_WALL = 7
    LYMPH_NODE_CALCIUM = 8  # calcified mediastinal or hilar lymph node
    COSTAL_CARTILAGE_CALCIUM = 9


#: what each distractor is, by structure group (for truth summaries and tests)
DISTRACTOR_GROUP: dict[Distractor, str] = {
    Distractor.AORTIC_WALL: "aortic",
    Distractor.ASCENDING_AORTA_WALL: "aortic",
    Distractor.AORTIC_ARCH_WALL: "aortic",
    Distractor.AORTIC_VALVE: "valvular",
    Distractor.MITRAL_ANNULUS: "valvular",
    Distractor.LYMPH_NODE_CALCIUM: "nodal",
    Distractor.BONE_NEAR_HEART: "bone",
    Distractor.COSTAL_CARTILAGE_CALCIUM: "bone",
    Distractor.CALIBRATION_ROD: "phantom",
}


#: Nominal HU per tissue (noise-free). CAC, distractor calcium and QRM inserts carry their own HU.
TISSUE_HU: dict[Tissue, int] = {
    Tissue.AIR: -1000,
    Tissue.FAT: -100,
    Tissue.MUSCLE: 50,
    Tissue.LUNG: -850,
    Tissue.LUNG_VESSEL: 40,
    Tissue.CORTICAL_BONE: 800,
    Tissue.CANCELLOUS_BONE: 250,
    Tissue.MYOCARDIUM: 45,
    Tissue.BLOOD: 38,
    Tissue.PERICARDIAL_FAT: -100,
    Tissue.LIVER: 60,
    Tissue.SOFT_TISSUE: 30,
    Tissue.CORONARY: 38,
    Tissue.AORTA: 40,
    Tissue.CAC: 0,
    Tissue.DISTRACTOR_CALCIUM: 0,
    Tissue.AIRWAY: -990,
    Tissue.WATER: 0,
    Tissue.QRM_INSERT: 0,
    Tissue.QRM_ROD: 0,
    Tissue.PULMONARY_ARTERY: 38,
    Tissue.ESOPHAGUS: 35,
    Tissue.COSTAL_CARTILAGE: 110,
    Tissue.LYMPH_NODE: 35,
    Tissue.LEFT_VENTRICLE: 38,
    Tissue.RIGHT_VENTRICLE: 38,
    Tissue.LEFT_ATRIUM: 38,
    Tissue.RIGHT_ATRIUM: 38,
    Tissue.SUPERIOR_VENA_CAVA: 38,
    Tissue.ARCH_BRANCH: 40,
}


def hu_lut() -> np.ndarray:
    """A 256-entry int16 lookup table: ``hu = hu_lut()[anatomy]``."""
    lut = np.zeros(256, dtype=np.int16)
    for tissue, hu in TISSUE_HU.items():
        lut[int(tissue)] = hu
    return lut
