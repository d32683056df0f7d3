"""Where ``release build`` may write, and what ``--overwrite`` may remove there.

Rules (``E_OUTPUT_NOT_OURS`` when broken, before anything is written or removed):

* ``--out`` is never the run folder, a folder inside it, or a folder that contains it:
  a release there would replace, or be read back as, the run it packages.
* ``--out`` is never a run folder (it holds ``state/run.json``): a run is not a release.
* ``--overwrite`` replaces only a release this tool built: a folder with ``MANIFEST.csv``
  and a ``provenance.json`` that names deepcac2 as its toolkit. It removes exactly the files
  the manifest lists, the manifest and the files outside it (the dataset card, and for
  releases built before the card was sealed, ``provenance.json`` and ``zenodo.json``), then
  the folders left empty. Any other file in the folder (or a symbolic link) makes it refuse,
  so nothing it did not make is ever deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import LOCK_FILE, RUN_FILE
from deepcac2.release import manifest

#: what marks a run folder (``pipeline/orchestrate/store.py``)
RUN_MARKERS = (RUN_FILE, LOCK_FILE)
#: files a release holds beside those its manifest lists (older layouts included)
UNLISTED = (manifest.MANIFEST_NAME, "DATASET_CARD.md", "provenance.json", "zenodo.json")


def _refuse(message: str, **detail: object) -> DeepCACError:
    return DeepCACError(ErrorCode.E_OUTPUT_NOT_OURS, message, **detail)


def _nested(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_placement(out: Path, run_dir: Path) -> None:
    """Refuse an ``--out`` that is, holds or sits inside the run, or is any run folder."""
    out_r, run_r = out.resolve(), run_dir.resolve()
    if _nested(out_r, run_r):
        raise _refuse(
            f"--out {out} and the run folder {run_dir} are the same folder or one holds the other: "
            "write the release to a separate folder",
            out=str(out),
            run_dir=str(run_dir),
        )
    if any((out / m).exists() for m in RUN_MARKERS):
        raise _refuse(f"--out {out} is a run folder (it has {RUN_MARKERS[0]}), not a release", out=str(out))


def is_release(folder: Path) -> bool:
    """A release this tool built: MANIFEST.csv, and provenance.json naming deepcac2 as the toolkit."""
    try:
        prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    toolkit = prov.get("toolkit") if isinstance(prov, dict) else None
    return (
        (folder / manifest.MANIFEST_NAME).is_file() and isinstance(toolkit, dict) and toolkit.get("name") == "deepcac2"
    )


def _present(folder: Path) -> list[str]:
    """Every file and symbolic link under ``folder`` (links not followed), relative POSIX paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            found.append((Path(dirpath) / name).relative_to(folder).as_posix())
    return sorted(found)


def clear_release(out: Path) -> None:
    """Remove the release in ``out`` for ``--overwrite``: only its own files (see the module doc)."""
    if not is_release(out):
        raise _refuse(
            f"--overwrite refused: {out} is not a release built by deepcac2 (no MANIFEST.csv and provenance.json "
            "naming it); nothing was removed: empty it or choose another --out",
            out=str(out),
        )
    try:
        listed = {e.path for e in manifest.read_manifest(out)}
    except (ValueError, KeyError) as exc:
        raise _refuse(f"--overwrite refused: {out}/{manifest.MANIFEST_NAME} is unreadable ({exc})") from exc
    ours = listed | set(UNLISTED)
    present = _present(out)
    foreign = [p for p in present if p not in ours or (out / p).is_symlink()]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise _refuse(
            f"--overwrite refused: {out} holds {len(foreign)} file(s) its release manifest does not list ({shown}); "
            "nothing was removed: move them away or choose another --out",
            out=str(out),
            count=len(foreign),
        )
    for rel in present:
        (out / rel).unlink()
    for dirpath, _, _ in sorted(os.walk(out), key=lambda w: -len(Path(w[0]).parts)):
        if Path(dirpath) != out and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()
