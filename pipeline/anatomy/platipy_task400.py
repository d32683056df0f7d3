"""Anatomy provider ``platipy-task400``: the heart the published DeepCAC2 pipeline crops around.

The MHub ``deepcac2`` model finds the heart with PlatiPy's nnU-Net v1 model
``Task400_OPEN_HEART_1FOLD`` (Zenodo record 6585664, CC BY-NC 4.0), through mhubio's
``NNUnetRunner``: ``nnUNet_predict -t Task400_OPEN_HEART_1FOLD -m 3d_lowres`` on the CT's
NIfTI, with nnU-Net's defaults: every fold folder of the model, test-time mirroring on all
three axes, mixed precision on CUDA, step size 0.5. DeepCAC2 then takes every nonzero voxel
of the label map as heart. This provider runs the same command, in a subprocess (nnU-Net
starts process pools, which a daemonic Dask worker may not), on a temporary NIfTI of the
CT, and reads the label map back on the CT grid.

The weights are not shipped (their licence is non-commercial). Download and unzip
``Task400_OPEN_HEART_3d_lowres.zip`` and point ``DEEPCAC2_PLATIPY_TASK400`` at the folder
that holds ``3d_lowres/Task400_OPEN_HEART_1FOLD/nnUNetTrainerV2__nnUNetPlansv2.1`` (MHub's
``WEIGHTS_FOLDER``). The package: ``pip install 'deepcac2[platipy]'`` (``nnunet==1.7.1``).
nnU-Net v1 loads its checkpoints with ``torch.load`` as pickles; the subprocess allows that
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), so use a model folder you trust.

The model gives the heart only: ``aorta`` and ``pulmonary_artery`` are empty, and a note says so.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance

NAME = "platipy-task400"
ENV_FOLDER = "DEEPCAC2_PLATIPY_TASK400"
TASK = "Task400_OPEN_HEART_1FOLD"
MODEL = "3d_lowres"
TRAINER = "nnUNetTrainerV2__nnUNetPlansv2.1"
CHECKPOINT = "model_final_checkpoint.model"
#: nnU-Net's input and output names for one case (mhubio uses the same)
CASE = "VOLUME_001"


def model_root(folder: str | os.PathLike | None) -> Path:
    """The folder holding ``3d_lowres/<task>/<trainer>`` (also accepted: its parent with ``nnUNet/``)."""
    if not folder:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_UNAVAILABLE,
            f"anatomy provider {NAME!r} needs the PlatiPy Task400 model: set {ENV_FOLDER} to the folder holding "
            f"{MODEL}/{TASK}/{TRAINER} (unzip Task400_OPEN_HEART_3d_lowres.zip from Zenodo record 6585664)",
        )
    root = Path(folder).expanduser()
    for candidate in (root, root / "nnUNet"):
        if (candidate / MODEL / TASK / TRAINER / "plans.pkl").is_file():
            return candidate
    raise DeepCACError(
        ErrorCode.E_ANATOMY_UNAVAILABLE,
        f"{ENV_FOLDER}={folder} does not hold the Task400 model: expected {MODEL}/{TASK}/{TRAINER}/plans.pkl "
        "under it (or under its nnUNet/ folder)",
    )


def fold_folders(root: Path) -> list[Path]:
    """The folds nnU-Net will use: every ``fold_*`` folder with a checkpoint, else ``all``."""
    trainer = root / MODEL / TASK / TRAINER
    folds = sorted(p for p in trainer.glob("fold_*") if (p / CHECKPOINT).is_file())
    if not folds and (trainer / "all" / CHECKPOINT).is_file():
        folds = [trainer / "all"]
    if not folds:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_UNAVAILABLE, f"the Task400 model in {trainer} has no fold_*/{CHECKPOINT} (nor all/)"
        )
    return folds


@functools.lru_cache(maxsize=4)
def _weights_digest(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def weights_digest(folds: list[Path]) -> str:
    """SHA-256 over the folds' checkpoints, in fold order (cached by path, size and mtime)."""
    files = tuple(
        (str(p / CHECKPOINT), (p / CHECKPOINT).stat().st_size, (p / CHECKPOINT).stat().st_mtime_ns) for p in folds
    )
    return _weights_digest(files)


def nnunet_version() -> str:
    if importlib.util.find_spec("nnunet") is None:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_UNAVAILABLE,
            f"anatomy provider {NAME!r} needs the nnU-Net v1 package: pip install 'deepcac2[platipy]' (nnunet==1.7.1)",
        )
    try:
        return version("nnunet")
    except PackageNotFoundError:
        return "unknown"


def _write_ct(ct: stage_values.CTVolume, path: Path) -> None:
    img = sitk.GetImageFromArray(ct.hu)
    img.SetOrigin(ct.geometry.origin)
    img.SetSpacing(ct.geometry.spacing)
    img.SetDirection(ct.geometry.direction)
    sitk.WriteImage(img, str(path), useCompression=True)


def _read_labels(path: Path, ct: stage_values.CTVolume) -> np.ndarray:
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"cannot read nnU-Net's label map {path}: {exc}") from exc
    labels = sitk.GetArrayFromImage(img)
    tol = 1e-3 * min(ct.geometry.spacing)
    same = labels.shape == ct.shape and all(
        np.allclose(a, b, atol=tol)
        for a, b in ((img.GetOrigin(), ct.geometry.origin), (img.GetSpacing(), ct.geometry.spacing))
    )
    if not same or not np.allclose(img.GetDirection(), ct.geometry.direction, atol=1e-5):
        raise DeepCACError(
            ErrorCode.E_ANATOMY_GEOMETRY,
            f"nnU-Net's label map {labels.shape} at {img.GetOrigin()} is not on the CT grid {ct.shape} at {ct.geometry.origin}",
            series=ct.series_uid,
        )
    return labels


@dataclass
class PlatipyTask400:
    """The published heart model, run by nnU-Net v1 in a subprocess."""

    name: str = NAME
    #: the model folder; None reads ``DEEPCAC2_PLATIPY_TASK400`` at each call
    folder: str | None = None
    #: test-time mirroring (nnUNet_predict's default; MHub did not turn it off)
    tta: bool = True
    #: nnUNet_predict's default (fp16 autocast on CUDA; nothing on CPU)
    mixed_precision: bool = True
    timeout_s: float = 3600.0
    #: nnU-Net's output of the last run (for diagnostics and tests)
    last_log: str = ""

    def covers(self, ref: stage_values.SeriesRef) -> bool:
        """Any CT series: the model runs on the pixels (missing weights are an error of ``anatomy``)."""
        return True

    def command(self, in_dir: Path, out_dir: Path, folds: list[Path]) -> list[str]:
        cmd = [sys.executable, "-m", "nnunet.inference.predict_simple", "-i", str(in_dir), "-o", str(out_dir)]
        cmd += ["-t", TASK, "-m", MODEL, "--num_threads_preprocessing", "1", "--num_threads_nifti_save", "1"]
        if [p.name for p in folds] == ["all"]:
            cmd += ["-f", "all"]  # nnU-Net looks for fold_* only unless told
        if not self.tta:
            cmd.append("--disable_tta")
        if not self.mixed_precision:
            cmd.append("--disable_mixed_precision")
        return cmd

    def anatomy(self, ref: stage_values.SeriesRef, ct: stage_values.CTVolume, *, cache: Any = None) -> Anatomy:
        nn_version = nnunet_version()
        root = model_root(self.folder or os.environ.get(ENV_FOLDER))
        folds = fold_folders(root)
        with tempfile.TemporaryDirectory(prefix="deepcac2-task400-") as tmp:
            tmp_path = Path(tmp)
            in_dir, out_dir, results = tmp_path / "in", tmp_path / "out", tmp_path / "results"
            for d in (in_dir, out_dir, results):
                d.mkdir()
            (results / "nnUNet").symlink_to(root.resolve(), target_is_directory=True)
            _write_ct(ct, in_dir / f"{CASE}_0000.nii.gz")
            env = {**os.environ, "RESULTS_FOLDER": str(results), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
            try:
                run = subprocess.run(
                    self.command(in_dir, out_dir, folds),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout_s,
                )
            except subprocess.TimeoutExpired as exc:
                raise DeepCACError(
                    ErrorCode.E_TIMEOUT, f"nnU-Net Task400 took over {self.timeout_s:.0f} s", series=ct.series_uid
                ) from exc
            self.last_log = run.stdout + run.stderr
            out = out_dir / f"{CASE}.nii.gz"
            if run.returncode != 0 or not out.is_file():
                raise DeepCACError(
                    ErrorCode.E_ANATOMY_UNAVAILABLE,
                    f"nnU-Net Task400 failed (exit {run.returncode}): {self.last_log[-600:]}",
                    series=ct.series_uid,
                )
            heart = _read_labels(out, ct) > 0
        if not heart.any():
            raise DeepCACError(ErrorCode.E_ANATOMY_SEGMENTS, "nnU-Net Task400 found no heart", series=ct.series_uid)
        digest = weights_digest(folds)
        fold_names = ",".join(p.name for p in folds)
        provenance = AnatomyProvenance(
            provider=NAME,
            version=f"nnU-Net {nn_version} {TASK} {MODEL} folds={fold_names} tta={'on' if self.tta else 'off'} "
            f"weights sha256:{digest[:16]}",
        )
        empty = np.zeros(ct.shape, dtype=bool)
        return Anatomy(
            heart=heart,
            aorta=empty,
            pulmonary_artery=empty.copy(),
            provenance=provenance,
            notes=(f"anatomy: {NAME} segments the heart only (no aorta or pulmonary artery)",),
        )


def build() -> PlatipyTask400:
    """Entry point (group ``deepcac2.anatomy``)."""
    return PlatipyTask400()
