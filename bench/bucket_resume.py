"""Resume start of a run into a bucket (issue 23): loose fragments (one object per series) vs fragment packs.

For each size K, K stand-in fragments (``standin_rows``; 2 % failed, as stage ``scale``) are
committed through a real bucket ``OutputStore`` into a moto server on loopback, twice: once
as before packs (``BucketMirror.pack`` a no-op: one loose object per series) and once with
packs (``packs.PACK_EVERY``). Then a resume start is timed: ``acquire`` (lock, list
``state/``, download, unpack into the local mirror) and ``committed()`` (the statuses).
The per-series slope between the two sizes projects 129,147 series.

    .venv/bin/python -m bench.bucket_resume 2000 20000      # prints one JSON line per size and mode
    BENCH_MODES=packed .venv/bin/python -m bench.bucket_resume 2000 20000   # one mode
    BENCH_MODES=built .venv/bin/python -m bench.bucket_resume 129147        # packs built directly, no commits
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

NLST = 129_147
TARGET_RESUME_S = 60.0
FAILED_EVERY = 50
BUCKET = "bench-resume"


def _moto() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def _fragment(i: int, uid: str):
    from deepcac2.pipeline.dev.standin_rows import series_rows
    from deepcac2.pipeline.orchestrate.store import Fragment

    if i % FAILED_EVERY == FAILED_EVERY - 1:
        row = {"SeriesInstanceUID": uid, "stage": "load", "error_code": "E_NO_IMAGES", "message": "stand-in"}
        return Fragment(uid, "failed", "E_NO_IMAGES", {"failures": [row]})
    return Fragment(uid, "done", None, series_rows(uid, f"P{i // 5:06d}", study_year=(i // 2) % 3))


def measure(k: int, packed: bool) -> dict[str, float]:
    from deepcac2.location import STATE_DIR, Remote
    from deepcac2.pipeline.orchestrate import packs
    from deepcac2.pipeline.orchestrate.bucket import BucketMirror
    from deepcac2.pipeline.orchestrate.store import OutputStore

    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
    real_pack = BucketMirror.pack
    if not packed:  # the bucket as before packs: one loose object per series
        BucketMirror.pack = lambda self: None  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        with OutputStore(url) as store:
            for i in range(k):
                store.commit(_fragment(i, f"1.2.826.0.1.3680043.10.9998.{i}"))
        commit_s = time.perf_counter() - t0
    finally:
        BucketMirror.pack = real_pack  # type: ignore[method-assign]
    objects = Remote.parse(url).files(STATE_DIR)
    t0 = time.perf_counter()
    store = OutputStore(url)
    store.acquire()
    pulled_s = time.perf_counter() - t0
    statuses = store.committed()
    resume_s = time.perf_counter() - t0
    assert len(statuses) == k, len(statuses)
    store.bucket.finish(put=False)  # nothing changed: give the lock back, drop the mirror
    return {
        "series": k,
        "packed": packed,
        "pack_every": packs.PACK_EVERY,
        "objects_in_state": len(objects),
        "commit_s": round(commit_s, 2),
        "resume_pull_s": round(pulled_s, 2),
        "resume_start_s": round(resume_s, 2),
    }


def measure_built(k: int) -> dict[str, float]:
    """Resume start of k series whose packs are built directly, not committed (a full-size run takes hours here):
    2,000 stand-in fragments, each packed under k / 2,000 new names (same bytes: same unpack and write cost)."""
    import hashlib
    import io
    import tarfile

    import pyarrow as pa

    from deepcac2.location import Remote
    from deepcac2.pipeline.orchestrate import packs
    from deepcac2.pipeline.orchestrate.store import OutputStore

    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
    remote = Remote.parse(url)
    with tempfile.TemporaryDirectory(prefix="bench-built-") as tmp, OutputStore(tmp) as local:
        for i in range(packs.PACK_EVERY):
            local.commit(_fragment(i, f"1.2.826.0.1.3680043.10.9997.{i}"))
        bodies = [p.read_bytes() for p in sorted(local.series_dir.rglob("*.json"))]
    t0 = time.perf_counter()
    seq, done = 0, 0
    while done < k:
        seq += 1
        raw, index = io.BytesIO(), {}
        with tarfile.open(fileobj=raw, mode="w:") as tar:
            for body in bodies[: k - done]:
                h = hashlib.sha1(f"{seq}.{done}".encode()).hexdigest()
                name = f"{h[:2]}/{h}.json"
                index[name] = hashlib.sha256(body).hexdigest()
                packs._member(tar, name, body)
                done += 1
            packs._member(tar, packs.INDEX, json.dumps(index, sort_keys=True).encode())
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            out.write(raw.getbuffer())
        remote.write_bytes(packs.pack_name(seq), sink.getvalue().to_pybytes())
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = OutputStore(url)
    store.acquire()
    pulled_s = time.perf_counter() - t0
    files = sum(1 for _ in store._fragment_paths())
    t1 = time.perf_counter()
    store.committed()
    resume_s = pulled_s + time.perf_counter() - t1
    assert files == k, files
    store.bucket.finish(put=False)
    return {
        "series": k,
        "packed": "built",
        "packs": seq,
        "build_s": round(build_s, 1),
        "resume_pull_s": round(pulled_s, 2),
        "resume_start_s": round(resume_s, 2),
    }


def main(sizes: list[int]) -> None:
    proc, endpoint = _moto()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        runs = {}
        modes = os.environ.get("BENCH_MODES", "loose,packed").split(",")  # "packed" alone reruns one mode
        if modes == ["built"]:  # packs made directly at full size: BENCH_MODES=built ... 129147
            for k in sizes:
                print(json.dumps(measure_built(k)), flush=True)
            return
        for packed in [m == "packed" for m in modes]:
            for k in sizes:
                runs[packed, k] = figures = measure(k, packed)
                print(json.dumps(figures), flush=True)
            small, big = min(sizes), max(sizes)
            if big > small:
                a, b = runs[packed, small]["resume_start_s"], runs[packed, big]["resume_start_s"]
                per = (b - a) / (big - small)
                projected = b + per * (NLST - big)
                print(
                    json.dumps(
                        {
                            "packed": packed,
                            "per_series_ms": round(per * 1000, 3),
                            "projected_129k_resume_start_s": round(projected, 1),
                            "target_s": TARGET_RESUME_S,
                            "met": projected < TARGET_RESUME_S,
                        }
                    ),
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 20000])
