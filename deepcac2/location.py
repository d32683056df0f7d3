"""Where outputs live: a local folder, or a prefix in an object store (``s3://``, ``gs://``), and the names in a run folder.

A cloud Dask cluster has no shared filesystem, so ``run --out``, ``qa``, ``release build``
and ``release verify`` also take a bucket URL. Object stores are reached through fsspec
(``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``: the ``cloud`` extra), with the stores' own
credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL``,
``GOOGLE_APPLICATION_CREDENTIALS``).

An object store has no rename, but one PUT is atomic: an object is there whole or not at
all (a multipart upload appears when it completes). So a file written to a bucket is
written to a local scratch file first and then put in one piece. The run lock is a
conditional PUT (fsspec's ``mode="create"``: S3's ``If-None-Match: *``, tested against moto; on
GCS, gcsfs's own, not tested here): of two runs that take it at once, exactly one wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepcac2.errors import DeepCACError, ErrorCode

# -- the names inside a run folder (``store.py`` describes the layout) ------------------------
TABLES_DIR = "tables"
STATE_DIR = "state"
LOGS_DIR = "logs"
QA_DIR = "qa"
DICOM_DIR = "dicom"
COHORT_FILE = "cohort.parquet"
LOCK_FILE = ".deepcac2-run.lock"
#: what the folder was made with (model, conventions, cohort by content): checked on --resume
RUN_FILE = f"{STATE_DIR}/run.json"
#: QA's results, in ``QA_DIR``
QA_CHECKS = "checks.parquet"
#: fragments, one per committed series: what qa and release never read
FRAGMENTS = f"{STATE_DIR}/series"
#: in a bucket, committed fragments packed many to an object (``pipeline/orchestrate/packs.py``)
FRAGMENT_PACKS = f"{STATE_DIR}/packs"
#: what ``deepcac2 qa`` writes into its folder (``RUN_DIR/qa``), and nothing else
QA_FILES = (QA_CHECKS, "report.html", "review_sheet.csv")
#: one record per run, for the runs table
RUN_RECORDS = f"{STATE_DIR}/runs"
#: the DICOM objects' creation stamp of the folder (``dicomout/reproducible.py``), kept for --resume
CREATED_STAMP = f"{STATE_DIR}/created"
#: the folders of a run that hold no DICOM object of ours
NOT_OBJECTS = (TABLES_DIR, QA_DIR, STATE_DIR, LOGS_DIR)

#: URL scheme -> the fsspec package that serves it
SCHEMES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")


def is_url(value: Any) -> bool:
    """Whether ``value`` names an object-store location (``scheme://...``) rather than a local path."""
    return isinstance(value, str) and _URL.match(value) is not None


def _filesystem(scheme: str, code: ErrorCode) -> Any:
    package = SCHEMES.get(scheme.lower())
    if package is None:
        raise DeepCACError(
            code, f"{scheme}:// is not a supported output location: use a local folder, s3://... or gs://..."
        )
    try:
        import fsspec

        return fsspec.filesystem(scheme.lower())
    except ImportError as exc:
        raise DeepCACError(
            code,
            f"{scheme}:// locations need the {package} package: pip install 'deepcac2[cloud]' ({exc})",
            package=package,
        ) from exc


def _error(code: ErrorCode, what: str, exc: BaseException) -> DeepCACError:
    return DeepCACError(code, f"{what}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Remote:
    """A prefix in an object store; paths below it are ``/``-separated and relative."""

    url: str
    fs: Any
    #: the code of a failure here (E_OUTPUT_UNWRITABLE for outputs; E_QA_INPUT, E_RELEASE_INPUT for inputs)
    code: ErrorCode = ErrorCode.E_OUTPUT_UNWRITABLE

    @classmethod
    def parse(cls, url: str, code: ErrorCode = ErrorCode.E_OUTPUT_UNWRITABLE) -> Remote:
        match = _URL.match(url)
        if match is None:
            raise DeepCACError(code, f"{url} is not a URL (s3://bucket/prefix or gs://bucket/prefix)")
        scheme, rest = match.groups()
        rest = "/".join(part for part in rest.split("/") if part)  # "b//run/" is the prefix "b/run"
        if not rest:
            raise DeepCACError(code, f"{url} names no bucket: use {scheme}://bucket/prefix")
        return cls(f"{scheme.lower()}://{rest}", _filesystem(scheme, code), code)

    @property
    def _root(self) -> str:
        return self.url.split("://", 1)[1]

    def path(self, rel: str = "") -> str:
        """The fsspec path of ``rel`` (no scheme)."""
        return f"{self._root}/{rel}".rstrip("/") if rel else self._root

    def uri(self, rel: str = "") -> str:
        """The URL of ``rel``, as shown to people and written to logs."""
        return f"{self.url}/{rel}".rstrip("/") if rel else self.url

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(...)``; a store's error (no credentials, access denied, no such bucket) becomes ``self.code``.

        FileNotFoundError (an object absent) and FileExistsError (a conditional PUT refused) pass
        through for the callers that expect them; ``_put`` turns them into codes for writes.
        """
        try:
            return fn(*args, **kwargs)
        except (DeepCACError, FileNotFoundError, FileExistsError):
            raise
        except Exception as exc:  # noqa: BLE001 - botocore/gcsfs errors have no common base but Exception
            raise _error(self.code, f"{what} {self.uri()}", exc) from exc

    def _put(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        """A write: an absent object is no reason to fail one, so FileNotFoundError means no bucket."""
        try:
            self._call(what, fn, *args, **kwargs)
        except FileNotFoundError as exc:
            raise _error(self.code, f"{what} {self.uri()} (does the bucket exist?)", exc) from exc

    # -- one object ---------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        self.fs.invalidate_cache()  # other processes (workers, another run) write here too
        return bool(self._call("cannot reach", self.fs.exists, self.path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        return self._call("cannot read", self.fs.cat_file, self.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Put ``data`` as one object (atomic: readers see the old object or the new one, never half)."""
        self._put(f"cannot write {rel} to", self.fs.pipe_file, self.path(rel), data)

    def create(self, rel: str, data: bytes) -> bool:
        """Put ``data`` only if no object ``rel`` exists (a conditional PUT); False when one does."""
        try:
            self._put(f"cannot create {rel} in", self.fs.pipe_file, self.path(rel), data, mode="create")
        except FileExistsError:
            return False
        return True

    def put_file(self, local: Path, rel: str) -> None:
        self._put(f"cannot upload {local} to", self.fs.put_file, str(local), self.path(rel))

    def delete(self, rel: str) -> None:
        """Delete one object; none there is no error (S3's DELETE does not say whether there was one)."""
        try:
            self._call("cannot delete from", self.fs.rm_file, self.path(rel))
        except FileNotFoundError:
            pass

    # -- prefixes ("folders") -------------------------------------------------------------------
    def files(self, rel: str = "") -> list[str]:
        """Every object under ``rel``, as paths relative to this prefix, sorted."""
        base = self.path(rel)
        self.fs.invalidate_cache()  # a listing cached before the workers wrote would hide their objects
        try:
            found = self._call("cannot list", self.fs.find, base)
        except FileNotFoundError:
            return []
        root = self.path() + "/"
        return sorted(p[len(root) :] for p in found if p.startswith(root))

    def entries(self, rel: str) -> list[str]:
        """The names directly under ``rel`` (objects and sub-prefixes), sorted."""
        prefix = f"{rel.strip('/')}/" if rel else ""
        return sorted({f[len(prefix) :].split("/", 1)[0] for f in self.files(rel) if f.startswith(prefix)})

    def delete_tree(self, rel: str) -> bool:
        found = [self.path(f) for f in self.files(rel)]
        if found:
            self._call("cannot delete from", self.fs.rm, found)
        self.fs.invalidate_cache()
        return bool(found)

    def upload_tree(self, local: Path, rel: str = "") -> list[str]:
        """Put every file under the local folder ``local`` below ``rel``; returns the relative paths put.

        One call for all of them: s3fs and gcsfs put them concurrently (a series' objects, a release).
        """
        files = sorted(p for p in Path(local).rglob("*") if p.is_file())
        put = [
            f"{rel.strip('/')}/{p.relative_to(local).as_posix()}" if rel else p.relative_to(local).as_posix()
            for p in files
        ]
        if files:
            self._put(f"cannot upload {local} to", self.fs.put, [str(p) for p in files], [self.path(n) for n in put])
        return put

    def mirror(self, local: Path) -> tuple[list[str], list[str]]:
        """Make the prefix hold exactly the files of ``local``: put each, then delete the objects not there."""
        put = self.upload_tree(local)
        gone = [name for name in self.files() if name not in set(put)]
        for name in gone:
            self.delete(name)
        return put, gone

    def delete_many(self, names: list[str]) -> None:
        """Delete the objects ``names`` (relative paths) in one call (S3: up to 1,000 per request)."""
        if names:
            self._call("cannot delete from", self.fs.rm, [self.path(n) for n in names])

    def download(self, names: list[str], targets: list[Path]) -> None:
        """Copy the objects ``names`` to the local files ``targets``, in one call: s3fs and gcsfs get them concurrently."""
        for folder in {Path(t).parent for t in targets}:
            folder.mkdir(parents=True, exist_ok=True)
        if names:
            self._call("cannot download from", self.fs.get, [self.path(n) for n in names], [str(t) for t in targets])

    def download_tree(self, rel: str, local: Path, skip: tuple[str, ...] = ()) -> list[str]:
        """Copy every object under ``rel`` (but those under a prefix of ``skip``) into ``local``, concurrently."""
        prefix = f"{rel.strip('/')}/" if rel else ""
        got = [n for n in self.files(rel) if not any(n == s or n.startswith(s.rstrip("/") + "/") for s in skip)]
        self.download(got, [Path(local) / name[len(prefix) :] for name in got])
        return got


#: what qa and release never read from a run: fragments (8 GB for NLST) loose or packed, logs, the lock
NOT_READ_AFTER_RUN = (FRAGMENTS, FRAGMENT_PACKS, LOGS_DIR, LOCK_FILE)


def staged(value: str | os.PathLike[str], folder: Path, code: ErrorCode, skip: tuple[str, ...] = ()) -> Path:
    """``value`` as a local folder: a bucket prefix is downloaded into ``folder`` (but ``skip``), a path returned as is."""
    if not is_url(value):
        return Path(value)
    remote = Remote.parse(str(value), code)
    if not remote.download_tree("", folder, skip=skip):
        raise DeepCACError(code, f"{remote.uri()} holds no objects: is it the right URL?")
    return Path(folder)


def local_copy(value: str | os.PathLike[str], folder: Path, code: ErrorCode) -> Path:
    """``value`` as a local path: a URL of one object is downloaded into ``folder``, a local path returned as is."""
    if not is_url(value):
        return Path(value)
    text = str(value)
    parent, _, name = text.rstrip("/").rpartition("/")
    remote = Remote.parse(parent, code)
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.write_bytes(remote.read_bytes(name))
    except FileNotFoundError as exc:
        raise DeepCACError(code, f"{text} does not exist") from exc
    return target


def shown_as(args: Any) -> Callable[[object], str]:
    """How to name an output path to the user: its URL when a local copy stands in for a bucket (``shown_out``)."""
    local, url = getattr(args, "shown_out", None) or ("", "")

    def shown(path: object) -> str:
        text = str(path)
        return url + text[len(local) :] if local and text.startswith(local) else text

    return shown


def renamed(exc: DeepCACError, *pairs: tuple[object, object]) -> DeepCACError:
    """``exc`` with each local copy's path in its message replaced by the URL it stands for."""
    message = exc.message
    for local, url in pairs:
        if is_url(url):
            message = message.replace(str(local), str(url))
    return DeepCACError(exc.code, message, **exc.detail)


def clear_qa(qa_dir: Path) -> None:
    """Remove the QA a run's folder holds (``run --overwrite``: it checked results that are gone).

    Only the files QA writes are removed (:data:`QA_FILES` and ``images/*.png``); anything else stays.
    """
    for name in QA_FILES:
        (qa_dir / name).unlink(missing_ok=True)
    images = qa_dir / "images"
    if images.is_dir() and not images.is_symlink():
        for png in images.glob("*.png"):
            png.unlink()
