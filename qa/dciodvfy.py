"""Run dciodvfy (dicom3tools), the validator IDC uses, and parse its findings."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode


@dataclass(frozen=True)
class Validation:
    path: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def dciodvfy_path() -> str:
    exe = shutil.which("dciodvfy")
    if exe is None:
        raise DeepCACError(ErrorCode.E_INTERNAL, "dciodvfy not found: install the Debian package dicom3tools")
    return exe


def validate(path: str | Path, *, timeout: float = 120) -> Validation:
    """Validate one DICOM file. dciodvfy writes its findings to stderr, one per line."""
    proc = subprocess.run([dciodvfy_path(), str(path)], capture_output=True, text=True, timeout=timeout, check=False)
    lines = (proc.stderr + proc.stdout).splitlines()
    errors = tuple(line.strip() for line in lines if line.lstrip().startswith("Error"))
    warnings = tuple(line.strip() for line in lines if line.lstrip().startswith("Warning"))
    return Validation(str(path), errors, warnings)
