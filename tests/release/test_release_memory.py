"""``release build`` and ``verify`` at NLST size: no table, file list or manifest read or held whole (issue 23).

An NLST release lists ~250k files and its cac_series holds 126k rows of 140 columns: held as Python
objects they grew build and verify by ~10 KB per series. Counted, not timed: forbidden whole reads,
tiny batches that must give the same bytes, and tracemalloc's peak against the files listed.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from deepcac2.release import build, build_scan, layout, manifest, scratch
from deepcac2.release.verify import verify_release

N_FILES = 6_000


def _forbidden(what: str):
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError(f"{what}: held whole")

    return refuse


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_reads_and_writes_a_batch_at_a_time(
    run_dir: Path, release_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 2 rows give the bytes of the default batches; cac_series, the lesions, the objects and
    the manifest are never read or listed whole."""
    read_whole = build.table_frame

    def table_frame(root: Path, name: str, required: bool = False) -> object:
        if name in ("cac_series", "cac_lesions"):
            raise AssertionError(f"{name} read whole")
        return read_whole(root, name, required)

    monkeypatch.setattr(build, "table_frame", table_frame)
    monkeypatch.setattr(layout, "find_dicom_objects", _forbidden("the run's objects"))
    monkeypatch.setattr(manifest, "list_files", _forbidden("the release's files"))
    monkeypatch.setattr(manifest, "write_manifest", _forbidden("MANIFEST.csv's entries"))
    monkeypatch.setattr(build_scan, "BATCH_ROWS", 2)
    monkeypatch.setattr(scratch, "ROWS", 3)
    again = build.build_release(run_dir, "1.0.0", tmp_path / "REL", dashboard_patients=4)
    assert _tree(again) == _tree(release_dir)


def test_verify_never_lists_the_files_whole(release_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "read_manifest", _forbidden("MANIFEST.csv"))
    monkeypatch.setattr(manifest, "list_files", _forbidden("the release's files"))
    monkeypatch.setattr(scratch, "ROWS", 3)
    report = verify_release(release_dir)
    assert report.ok, report.lines()


def _many_files(root: Path, n: int) -> None:
    """A release-shaped folder of ``n`` small files under long paths, all in MANIFEST.csv."""
    uid = "1.2.826.0.1.3680043.10.9999.4711.{}"
    paths = [f"figures/{i % 97:02d}/{uid.format(i)}/{uid.format(i)}.png" for i in range(n)]
    root.mkdir()
    for i, rel in enumerate(paths):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"%d" % i)
    manifest.write_manifest_rows(root, (manifest.hash_file(root, p) for p in sorted(paths)))


def test_verify_memory_does_not_grow_with_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest's rows and the walk of the files go to DuckDB a batch at a time: Python's peak stays
    far below what N entries and paths take (~1.8 KB each, held whole before: 10.9 MB for 6,000); the
    allowance is a 1 MiB hashing buffer and 400 bytes a file."""
    _many_files(tmp_path / "few", 10)
    _many_files(tmp_path / "many", N_FILES)
    monkeypatch.setattr(scratch, "ROWS", 500)
    verify_release(tmp_path / "few")  # imports and caches first: they are not what grows
    tracemalloc.start()
    try:
        report = verify_release(tmp_path / "many")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the folder has no provenance or licence: only those statements are reported
    assert report.checked == N_FILES and not report.extra
    assert all(m.startswith("statements: ") for m in report.modified), report.modified
    print(f"peak {peak} bytes for {N_FILES} files")
    assert peak < 2**20 + N_FILES * 400, f"verify peaked at {peak} bytes of Python objects for {N_FILES} files"


def test_the_walk_gives_sorted_orders_without_a_list(tmp_path: Path) -> None:
    """``scratch.walk_files`` is the order of ``sorted()`` on the path strings (MANIFEST.csv's) or on Path
    objects (the run's objects), though '-', '.' and ' ' sort before '/'; links are not followed."""
    names = ["a/x", "a-b/x", "a.txt", "ab/c", "a b", "a/b/c", "a/b-c", "A", "_z", "a!/q", "state/s.json"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "link_dir").symlink_to(tmp_path / "a")
    (tmp_path / "link_file").symlink_to(tmp_path / "A")
    assert list(scratch.walk_files(tmp_path)) == sorted(names)
    by_path = [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path / n for n in names)]
    assert list(scratch.walk_files(tmp_path, by_component=True)) == by_path
    with_links = list(scratch.walk_files(tmp_path, links=True, skip=("state",)))
    assert with_links == sorted([*(n for n in names if not n.startswith("state/")), "link_file"])


def test_build_refuses_one_uid_in_two_files(run_dir: Path, tmp_path: Path) -> None:
    """The objects' duplicate check runs over the scratch database: the first and second file are named."""
    import shutil

    from deepcac2.errors import DeepCACError, ErrorCode

    run = Path(shutil.copytree(run_dir, tmp_path / "RUN", symlinks=True))
    first = next(p for p in sorted(run.rglob("*.dcm")) if "tables" not in p.parts)
    second = run / "zz_copy" / "again.dcm"
    second.parent.mkdir()
    shutil.copyfile(first, second)
    with pytest.raises(DeepCACError) as exc:
        build.build_release(run, "1.0.0", tmp_path / "REL", dashboard_patients=4)
    assert exc.value.code is ErrorCode.E_RELEASE_INPUT
    assert "appears twice" in exc.value.message and str(first) in exc.value.message and str(second) in exc.value.message
