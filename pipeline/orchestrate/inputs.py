"""Input checks of a run: the content fingerprint (``--verify-inputs``) and the re-check on ``--resume``.

The cohort's ``source_fingerprint`` is file metadata (names, sizes, times): cheap, and blind
to an edit that restores size and time. ``--verify-inputs`` adds a content fingerprint:
the SHA-256 of every byte of every file the loader lists under the series' folder (so of
its pixel data and of the headers that turn it into HU), taken on the worker when the
series is loaded and kept in its committed fragment.

``--resume`` checks the inputs of the series already done again, even on a finished run:
their folder against the cohort's ``source_fingerprint``, and with ``--verify-inputs`` their
content against the fingerprint taken when they were scored. A series whose input changed
is ``E_INPUT_CHANGED`` (its results and objects are dropped), or, with ``--rescan``, run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.orchestrate.tasks import Failure, stage_of
from deepcac2.pipeline.sources.local import FINGERPRINT
from deepcac2.pipeline.stage_values import SeriesRef

#: the SeriesRef.params key of a content fingerprint taken when the cohort was made (a cohort column, when
#: the cohort records one): with --verify-inputs a series whose content differs is E_INPUT_CHANGED
CONTENT = "content_fingerprint"


def content_fingerprint(folder: str | Path) -> str:
    """``"<files>:<sha256>"`` over the relative path and every byte of each file the loader would list."""
    from deepcac2.pipeline.loader.read import walk_files

    root = Path(folder)
    digest = hashlib.sha256()
    files = walk_files(root)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        digest.update(b"\n")
    return f"{len(files)}:{digest.hexdigest()}"


def check_content(ref: SeriesRef, now: str) -> None:
    """E_INPUT_CHANGED when the cohort recorded a content fingerprint for ``ref`` and ``now`` differs."""
    recorded = (ref.params or {}).get(CONTENT)
    if recorded and recorded != now:
        raise DeepCACError(
            ErrorCode.E_INPUT_CHANGED,
            f"the content of series {ref.series_uid} in {ref.location} changed since the cohort was made "
            f"(SHA-256 of its files {_short(now)} now, {_short(recorded)} then); make the cohort again, "
            "or pass --rescan to load it as it is",
            series=ref.series_uid,
            recorded=recorded,
            found=now,
        )


def is_local(ref: SeriesRef) -> bool:
    return bool(ref.location) and "://" not in str(ref.location) and Path(str(ref.location)).is_dir()


def changed_since_scored(
    refs: Sequence[SeriesRef], scored: dict[str, str | None], *, content: bool, threads: int = 8
) -> list[Failure]:
    """E_INPUT_CHANGED failures for the series of ``refs`` (done before) whose local input changed.

    ``scored`` maps each to the content fingerprint taken when it was scored (None: none was).
    The metadata fingerprint is compared with the cohort's always; the content with
    ``scored`` when ``content`` (a series scored without one is changed: nothing vouches for it).
    """
    from deepcac2.pipeline.loader.read import folder_fingerprint

    local = [r for r in refs if is_local(r)]

    def check(ref: SeriesRef) -> Failure | None:
        folder = Path(str(ref.location))
        recorded = (ref.params or {}).get(FINGERPRINT)
        if recorded and folder_fingerprint(folder) != recorded:
            why = "its files' names, sizes or times differ from the cohort's record"
        elif content and (now := content_fingerprint(folder)) != scored.get(ref.series_uid):
            then = scored.get(ref.series_uid)
            why = (
                f"the SHA-256 of its files is {_short(now)} now, {_short(then)} when it was scored"
                if then
                else "it was scored without a content fingerprint (a run without --verify-inputs)"
            )
        else:
            return None
        message = (
            f"the input of series {ref.series_uid} in {folder} changed since it was scored: {why}; "
            "make the cohort again, or pass --rescan to score it as it is now"
        )
        code = ErrorCode.E_INPUT_CHANGED
        return Failure(ref.series_uid, stage_of("fetch_load", code), code.value, message, 1, {"folder": str(folder)})

    with ThreadPoolExecutor(max(1, threads)) as pool:  # reading and hashing release the GIL
        return [f for f in pool.map(check, local) if f is not None]


def _short(fingerprint: str | None) -> str:
    if not fingerprint:
        return "none"
    files, _, digest = fingerprint.partition(":")
    return f"{digest[:12]}... ({files} files)"
