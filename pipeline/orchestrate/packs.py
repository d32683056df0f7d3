"""Fragment packs: many committed fragments in one bucket object, so a resume is a few GETs, not 129k.

A run into a bucket puts each fragment as it is committed (one PUT: a crash loses at most
the series in flight). Every ``PACK_EVERY`` fragments, and when the run stops, the client
puts the fragments put since the last pack as one object ``state/packs/<seq>.tar.zst`` (their
bytes verbatim, and an index of their SHA-256 as the last member), and only once that PUT
has succeeded deletes the loose objects it holds. A crash between the two leaves both,
with the same bytes; a resume reads the packs in ``seq`` order and then the loose
fragments, the later copy of a series replacing the earlier, so the local mirror is
rebuilt exactly. A pack that cannot be read whole, or whose bytes differ from its index,
is ``E_RUN_STATE_DAMAGED``: never a series silently lost.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import FRAGMENT_PACKS
from deepcac2.writable import output_error

T = TypeVar("T")
#: fragments per pack: 129,147 series make ~65 packs (a resume GETs those, not 129k objects)
PACK_EVERY = 2000
#: the last member of a pack: fragment name -> SHA-256 of its bytes (a pack cut short has none)
INDEX = "INDEX.json"
#: a fragment's name under ``state/series/``: ``ab/<sha1>.json`` (nothing else is written out of a pack)
_FRAGMENT = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{40}\.json$")
#: packs downloaded and unpacked ahead of the one being written (each ~60 MiB unpacked at 2,000 fragments)
PREFETCH = 3
_PACK = re.compile(r"^(\d{8})\.tar\.zst$")


def pack_name(seq: int) -> str:
    """The object name of the ``seq``-th pack (zero-padded: name order is pack order)."""
    return f"{FRAGMENT_PACKS}/{seq:08d}.tar.zst"


def pack_seq(name: str) -> int | None:
    """The sequence number of a pack's object name (relative to the run), None for anything else."""
    match = _PACK.match(name.rsplit("/", 1)[-1]) if name.startswith(FRAGMENT_PACKS + "/") else None
    return int(match.group(1)) if match else None


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644  # mtime 0, no owner: the pack's bytes depend on the fragments only
    tar.addfile(info, io.BytesIO(data))


def write_pack(series_dir: Path, names: list[str], target: Path) -> None:
    """Write the fragments ``names`` (relative to ``series_dir``) verbatim into the pack ``target``.

    A tar (``tar --zstd -xf`` reads it), zstd-compressed through pyarrow: 4x faster to
    unpack than gzip, and smaller, so a resume of NLST is bound by the local writes.
    """
    index = {}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:") as tar:
        for name in sorted(names):
            data = (series_dir / name).read_bytes()
            index[name] = hashlib.sha256(data).hexdigest()
            _member(tar, name, data)
        _member(tar, INDEX, json.dumps(index, sort_keys=True).encode())
    with pa.CompressedOutputStream(str(target), "zstd") as out:
        out.write(raw.getbuffer())


def damaged(where: str, why: str) -> DeepCACError:
    return DeepCACError(
        ErrorCode.E_RUN_STATE_DAMAGED,
        f"the fragment pack {where} cannot be read whole ({why}); the run's committed series are not resumed "
        "without it: restore the object, or --overwrite to start again",
        pack=where,
    )


def unpack(data: bytes, where: str) -> list[tuple[str, bytes]]:
    """The fragments of the pack ``data`` (its object's bytes), name and bytes, in pack order.

    Every byte is checked against the index, and every name in the index must be there: a
    pack cut short, altered or foreign is ``E_RUN_STATE_DAMAGED``.
    """
    members: list[tuple[str, bytes]] = []
    seen: dict[str, str] = {}
    index = None
    try:
        raw = pa.CompressedInputStream(pa.BufferReader(data), "zstd").read()
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is None or index is not None:
                    raise damaged(where, f"unexpected member {member.name!r}")
                body = handle.read()
                if member.name == INDEX:
                    index = json.loads(body)
                    continue
                if not _FRAGMENT.match(member.name) or member.name in seen:
                    raise damaged(where, f"unexpected member {member.name!r}")
                seen[member.name] = hashlib.sha256(body).hexdigest()
                members.append((member.name, body))
    except DeepCACError:
        raise
    except (tarfile.TarError, EOFError, pa.ArrowException, ValueError, OSError) as exc:
        raise damaged(where, f"{type(exc).__name__}: {exc}") from exc
    if index is None:
        raise damaged(where, "no index: the pack was cut short")
    if index != seen:
        raise damaged(where, "its fragments differ from its index")
    return members


def write_members(series_dir: Path, members: list[tuple[str, bytes]]) -> None:
    """Write unpacked fragments under ``series_dir`` (the local mirror's ``state/series/``)."""
    try:
        for folder in {name.split("/", 1)[0] for name, _ in members}:
            (series_dir / folder).mkdir(parents=True, exist_ok=True)
        for name, body in members:
            (series_dir / name).write_bytes(body)
    except OSError as exc:  # the local mirror's disk, not the pack
        raise output_error(exc, str(series_dir)) from exc


def read_pack(path: Path, series_dir: Path, where: str) -> list[str]:
    """Write each fragment of the pack file ``path`` under ``series_dir``; returns their names."""
    members = unpack(path.read_bytes(), where)
    write_members(series_dir, members)
    return sorted(name for name, _ in members)


def ahead(fetch: Callable[[str], T], names: list[str], n: int) -> Iterator[T]:
    """``fetch(name)`` of each name, in order, up to ``n`` of them running at once in threads.

    Downloading and unpacking (zstd and socket reads release the GIL) overlap the caller's
    writes; at most ``n + 1`` packs are held in memory, however many the run has.
    """
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="deepcac2-pack") as pool:
        pending: deque[Future[T]] = deque()
        for name in names:
            pending.append(pool.submit(fetch, name))
            if len(pending) > n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
