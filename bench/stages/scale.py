"""An NLST-size run, end to end, at 10k..129k series (issue 23): how each figure grows.

Each size runs in a fresh process (``scale_run``, whose doc lists the steps): a stand-in cohort
through the real Dask scheduler (a local cluster, stand-in stages with realistic rows and tiny
SEG/SR objects), the real ``OutputStore`` and assembly, then ``deepcac2 qa``, ``release build``,
``release verify`` and ``query`` as commands. Reported per size: each step's time, the client's
peak RSS (the run's process: cohort, scheduler, commits and assembly), each command's peak RSS,
scheduler throughput, the sizes of tables, manifest and release; then the growth of each figure
from the smallest size to the largest.

    python -m bench.run --only scale [--quick]     # quick: 2k and 10k; full: 10k and 129,147
    DEEPCAC2_SCALE_SIZES=10000,40000,129147 ...     # other sizes
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.context import BenchContext, Result

NLST = 129_147
FULL = (10_000, NLST)
QUICK = (2_000, 10_000)
TARGET_RSS_GIB = 2.0
TARGET_ASSEMBLY_S = 600.0
TARGET_RESUME_S = 60.0
#: figure -> (label, unit) of the growth table
GROWTH = {
    "series_per_s": ("scheduler throughput", "series/s"),
    "run_rss_mib": ("client peak RSS", "MiB"),
    "scheduling_rss_mib": ("client peak RSS before assembly", "MiB"),
    "assembly_s": ("assembly", "s"),
    "resume_start_s": ("resume start", "s"),
    "qa_s": ("qa", "s"),
    "qa_rss_mib": ("qa peak RSS", "MiB"),
    "build_s": ("release build", "s"),
    "build_rss_mib": ("release build peak RSS", "MiB"),
    "verify_s": ("release verify", "s"),
    "verify_rss_mib": ("release verify peak RSS", "MiB"),
    "query_s": ("query", "s"),
    "tables_mib": ("tables", "MiB"),
    "manifest_mib": ("MANIFEST.csv", "MiB"),
    "release_mib": ("release", "MiB"),
}


def _sizes(ctx: BenchContext) -> tuple[int, ...]:
    env = os.environ.get("DEEPCAC2_SCALE_SIZES")
    if env:
        return tuple(int(x) for x in env.split(","))
    return QUICK if ctx.quick else FULL


def size_results(n: int, f: dict[str, Any]) -> list[Result]:
    """The figures of one size as results, targets marked."""
    tables = {k[len("table_") : -len("_mib")]: v for k, v in f.items() if k.startswith("table_")}
    f["tables_mib"] = sum(tables.values())
    detail = ", ".join(f"{t} {v:.1f} MiB" for t, v in sorted(tables.items()))
    qa_failed = ", ".join(f"{c} x{k}" for c, k in f.get("qa_blocking_failed", {}).items()) or "none"
    out = [
        Result("scale", f"{n:,}: scheduler throughput", f["series_per_s"], "series/s",
               detail=f"{f['done']:,} done, {f['failed']:,} failed; cluster start {f['cluster_start_s']:.1f} s"),
        Result("scale", f"{n:,}: client peak RSS (run, assembly incl.)", f["run_rss_mib"] / 1024, "GiB",
               f"< {TARGET_RSS_GIB:.0f}", f["run_rss_mib"] / 1024 < TARGET_RSS_GIB,
               detail=f"{f['scheduling_rss_mib']:.0f} MiB before assembly{_timeline(f)}"),
        Result("scale", f"{n:,}: assembly", f["assembly_s"], "s", f"< {TARGET_ASSEMBLY_S:.0f}",
               f["assembly_s"] < TARGET_ASSEMBLY_S, detail=detail),
    ]  # fmt: skip
    if "resume_start_s" in f:
        out.append(Result("scale", f"{n:,}: resume start (cohort checked and planned)", f["resume_start_s"], "s",
                          f"< {TARGET_RESUME_S:.0f}", f["resume_start_s"] < TARGET_RESUME_S,
                          detail=f"committed() alone {f['resume_read_s']:.1f} s"))  # fmt: skip
    if "qa_s" in f:
        out.append(Result("scale", f"{n:,}: qa", f["qa_s"], "s",
                          detail=f"peak RSS {f['qa_rss_mib']:.0f} MiB; blocking failures on stand-ins: {qa_failed}"))  # fmt: skip
    for step in ("build", "verify", "query"):
        if f"{step}_s" in f:
            note = f.get(f"{step}_last", "") if f.get(f"{step}_exit") else ""
            out.append(Result("scale", f"{n:,}: release {step}" if step != "query" else f"{n:,}: query",
                              f[f"{step}_s"], "s", detail=f"exit {f[f'{step}_exit']}, peak RSS "
                              f"{f[f'{step}_rss_mib']:.0f} MiB {note}".strip()))  # fmt: skip
    if "release_mib" in f:
        out.append(Result("scale", f"{n:,}: release size", f["release_mib"], "MiB",
                          detail=f"MANIFEST.csv {f['manifest_mib']:.1f} MiB, tables {f['tables_mib']:.1f} MiB"))  # fmt: skip
    if "fragments_mib" in f:
        out.append(
            Result("scale", f"{n:,}: run state", f["fragments_mib"], "MiB", detail=f"dicom {f['dicom_mib']:.0f} MiB")
        )
    return out


def _timeline(f: dict[str, Any]) -> str:
    """The client's RSS as the series finish (the growth within one run), first, middle and last sample."""
    samples = sorted((int(k), v) for k, v in f.get("client_rss_by_series", {}).items())
    if not samples:
        return ""
    picked = [samples[0], samples[len(samples) // 2], samples[-1]]
    return "; RSS at " + ", ".join(f"{n:,} series {v:.0f} MiB" for n, v in picked)


def growth_results(runs: dict[int, dict[str, Any]]) -> list[Result]:
    small, big = min(runs), max(runs)
    out = []
    for key, (label, unit) in GROWTH.items():
        if key in runs[small] and key in runs[big] and runs[small][key]:
            a, b = runs[small][key], runs[big][key]
            out.append(Result("scale", f"growth {small:,} -> {big:,} ({big / small:.1f}x): {label}", b / a, "x",
                              detail=f"{a:.2f} -> {b:.2f} {unit}"))  # fmt: skip
    return out


def run(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    runs = {}
    for n in _sizes(ctx):
        work = ctx.work / f"scale-{n}"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.stages.scale_run", str(n), str(work)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        shutil.rmtree(work, ignore_errors=True)
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise RuntimeError(f"scale {n}: no figures (exit {proc.returncode}): {proc.stderr[-2000:]}")
        runs[n] = lines[-1].get("partial", lines[-1])  # a size that failed part way keeps its figures so far
        results += size_results(n, runs[n])
        if proc.returncode:
            error = (proc.stderr.strip().splitlines() or [""])[-1][:300]
            results.append(Result("scale", f"{n:,}: stopped after its last reported step", proc.returncode, "exit",
                                  detail=error))  # fmt: skip
    if len(runs) >= 2:
        results += growth_results(runs)
    return results
