"""A tiny nnU-Net v1 model folder in the Task400 layout, made with nnU-Net's own trainer and plans format.

``3d_lowres/Task400_OPEN_HEART_1FOLD/nnUNetTrainerV2__nnUNetPlansv2.1/{plans.pkl, fold_N/...}``
as the PlatiPy zip holds it. The networks are nnU-Net's Generic_UNet (4 base features, two
poolings) whose last decoder block is set to output 1 everywhere and whose 1x1 head turns
that into a fixed heart-minus-background logit per fold. So the ensemble's heart is every
voxel nnU-Net predicts on, which is the bounding box of the nonzero input (nnU-Net crops to
it): the tests can tell exactly where the label map must land on the CT grid.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

TRAINER = Path("3d_lowres") / "Task400_OPEN_HEART_1FOLD" / "nnUNetTrainerV2__nnUNetPlansv2.1"


def _plans() -> dict:
    stage = {
        "batch_size": 2,
        "num_pool_per_axis": [2, 2, 2],
        "patch_size": np.array([16, 32, 32]),
        "median_patient_size_in_voxels": np.array([40, 120, 120]),
        "current_spacing": np.array([5.0, 2.8, 2.8]),
        "original_spacing": np.array([2.5, 0.7, 0.7]),
        "do_dummy_2D_data_aug": False,
        "pool_op_kernel_sizes": [[2, 2, 2], [2, 2, 2]],
        "conv_kernel_sizes": [[3, 3, 3]] * 3,
    }
    ct = {"mean": 30.0, "sd": 150.0, "percentile_00_5": -1000.0, "percentile_99_5": 1000.0}
    return {
        "num_stages": 2,
        "num_modalities": 1,
        "modalities": {0: "CT"},
        "normalization_schemes": {0: "CT"},
        "dataset_properties": {"intensityproperties": {0: {**ct, "median": 30.0, "min": -1024.0, "max": 3000.0}}},
        "num_classes": 1,
        "all_classes": [1],
        "base_num_features": 4,
        "use_mask_for_norm": {0: False},
        "keep_only_largest_region": None,
        "min_region_size_per_class": None,
        "min_size_per_class": None,
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "data_identifier": "nnUNetData_plans_v2.1",
        "plans_per_stage": {0: stage, 1: {**stage, "current_spacing": np.array([2.5, 0.7, 0.7])}},
        "preprocessor_name": "GenericPreprocessor",
        "conv_per_stage": 2,
        "original_spacings": [np.array([2.5, 0.7, 0.7])],
        "original_sizes": [np.array([64, 512, 512])],
        "list_of_npz_files": [],
    }


def make_model_folder(root: Path, logit_gaps: tuple[float, ...] = (6.0, 2.0), fold_names=None) -> Path:
    """Write the folder; fold ``i`` predicts heart with logit gap ``logit_gaps[i]`` everywhere."""
    pytest.importorskip("nnunet")
    import torch
    from nnunet.training.network_training.nnUNetTrainerV2 import nnUNetTrainerV2

    trainer_dir = root / TRAINER
    trainer_dir.mkdir(parents=True, exist_ok=True)
    with open(trainer_dir / "plans.pkl", "wb") as f:
        pickle.dump(_plans(), f)
    for fold, gap in enumerate(logit_gaps):
        tr = nnUNetTrainerV2(
            str(trainer_dir / "plans.pkl"), fold, output_folder=str(trainer_dir), dataset_directory=str(root / "none"),
            batch_dice=True, stage=0, unpack_data=False, deterministic=False, fp16=False,
        )  # fmt: skip
        tr.initialize(training=False)
        with torch.no_grad():
            last = tr.network.conv_blocks_localization[-1][-1].blocks[-1]
            last.instnorm.weight.zero_()
            last.instnorm.bias.fill_(1.0)
            head = tr.network.seg_outputs[-1]
            head.weight.zero_()
            head.weight[1] = gap / head.weight.shape[1]
        tr.save_checkpoint(str(trainer_dir / f"fold_{fold}" / "model_final_checkpoint.model"))
    for old, new in (fold_names or {}).items():
        (trainer_dir / old).rename(trainer_dir / new)
    return root
