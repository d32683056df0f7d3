"""Output paths checked before the work starts, and OS errors on them as coded errors.

Every command that writes checks its output path first (``run --out``, ``cohort -o``,
``query --out``, ``release build --out``, ...): a read-only file system, a folder owned by
someone else or a file in the way is ``E_OUTPUT_UNWRITABLE`` with the path, at once, not a
traceback after an hour of work. A write that fails later for lack of space is
``E_DISK_FULL`` (transient: ``run --resume`` writes it again once space is freed).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode, disk_full


def output_error(exc: OSError, what: str) -> DeepCACError:
    """An OSError on an output as a coded error: E_DISK_FULL when space ran out, else E_OUTPUT_UNWRITABLE."""
    code = ErrorCode.E_DISK_FULL if disk_full(exc) is not None else ErrorCode.E_OUTPUT_UNWRITABLE
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in what else ""
    return DeepCACError(code, f"cannot write {what}{where}: {exc.strerror or exc}", path=exc.filename or what)


def _probe(folder: Path, what: str) -> None:
    """Create the folder (and parents) and a temporary file in it: the honest test, root or not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".deepcac2-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise output_error(exc, what) from exc


def writable_dir(path: str | os.PathLike[str], what: str = "the output folder") -> Path:
    """``path`` as a folder this process can create files in (created if missing), else E_OUTPUT_UNWRITABLE."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DeepCACError(ErrorCode.E_OUTPUT_UNWRITABLE, f"cannot write {what}: {folder} is a file, not a folder")
    _probe(folder, f"{what} {folder}")
    return folder


def writable_file(path: str | os.PathLike[str], what: str = "the output file") -> Path:
    """``path`` as a file this process can write (its folder created if missing), else E_OUTPUT_UNWRITABLE."""
    target = Path(path)
    if target.is_dir():
        raise DeepCACError(ErrorCode.E_OUTPUT_UNWRITABLE, f"cannot write {what}: {target} is a folder")
    if target.exists() and not os.access(target, os.W_OK):
        raise DeepCACError(ErrorCode.E_OUTPUT_UNWRITABLE, f"cannot write {what}: {target} is read-only")
    _probe(target.parent, f"{what} {target}")
    return target


def write_atomic(path: str | os.PathLike[str], write: Callable[[str], object], *, mode: int = 0o600) -> Path:
    """Call ``write(tmp_path)`` beside ``path``, flush it to disk, then rename it onto ``path``.

    Readers never see half a file, and a crash or power loss after the rename cannot leave
    an empty or torn one (the data is fsync'ed before the rename makes it visible). ``mode``:
    the new file's permissions before the umask (0o600, as ``mkstemp``; 0o666, as ``open``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file_beside(path, mode)
    try:
        write(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _new_file_beside(path: Path, mode: int) -> str:
    """A new, empty file with a random name in ``path``'s folder (never an existing one: O_EXCL)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
        except FileExistsError:
            continue
        return str(tmp)
