"""`make bench`: run every stage benchmark and write BENCHMARKS.md.

    python -m bench.run [--quick] [--out BENCHMARKS.md] [--only load,scoring]

A stage whose code is missing or fails is reported as not measured, with the reason,
never silently dropped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.context import BenchContext, Result

STAGES = [
    "synth",
    "load",
    "anatomy",
    "scoring",
    "inference",
    "calcium",
    "calcium_borders",
    "insertion",
    "convert",
    "pipeline",
    "scale",
]
REPO = Path(__file__).resolve().parents[1]

#: NLST projection inputs (documented in BENCHMARKS.md)
NLST_SERIES = 127_776
GPU_HOUR_USD = 2.50  # an on-demand H100-class GPU hour; change with --gpu-hour-usd


def machine() -> dict[str, str]:
    import numpy
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        info["torch"] = "not installed"
    return info


def run_stage(name: str, ctx: BenchContext) -> tuple[list[Result], str | None]:
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.stages.{name}")
        results = module.run(ctx)
    except Exception as exc:  # a broken stage must not hide the others
        traceback.print_exc()
        return [], f"{type(exc).__name__}: {exc}"
    print(f"[bench] {name}: {len(results)} results in {time.perf_counter() - t0:.0f}s", flush=True)
    return results, None


def projection(per_stage: dict[str, float] | None, gpu_hour_usd: float) -> list[str]:
    """NLST hours and cost from the per-stage seconds measured on real stages here.

    CPU stages are taken as measured on this machine's cores; inference as measured by
    bench/gpu_check on a GPU (bench/gpu_results.json), when such a run exists.
    """
    from bench.orchestration import nlst_projection

    lines = [
        f"NLST: {NLST_SERIES:,} series. Cost assumes ${gpu_hour_usd:.2f} per GPU hour (change with --gpu-hour-usd)."
    ]
    if not per_stage:
        return [*lines, "- not computed: the pipeline stage was not measured in this run."]
    cpu_total = sum(per_stage.values())
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(per_stage.items()))
    lines.append(f"- measured here per series (1 worker, classical model on CPU): {stages}.")
    lines.append(f"- CPU only, as here: {NLST_SERIES * cpu_total / 3600:,.0f} worker-hours.")
    gpu_json = REPO / "bench" / "gpu_results.json"
    if not gpu_json.exists():
        return [*lines, "- GPU: not measured (no GPU here); run bench/gpu_check.sh on a GPU host to add it."]
    gpu = json.loads(gpu_json.read_text())
    if gpu.get("tiny") or gpu.get("device") == "cpu":
        return [*lines, f"- GPU: {gpu_json.name} holds a CPU smoke run, not a GPU measurement."]
    mode, infer_s = min(((m, r["s_per_series"]) for m, r in gpu["modes"].items()), key=lambda x: x[1])
    gpu_stages = {**per_stage, "infer": float(infer_s)}
    for n in (1, 8, 64):
        p = nlst_projection(gpu_stages, gpus=n, gpu_hour_usd=gpu_hour_usd)
        lines.append(
            f"- {n} x {gpu['device']} (U-Net inference {infer_s:.2f} s/series, {mode}, by bench/gpu_check; "
            f"8 CPU threads per GPU for the other stages): {p['hours']:,.1f} h wall, ${p['cost_usd']:,.0f}."
        )
    return lines


def write_markdown(path: Path, info: dict, command: str, results: list[Result], missing: dict, proj: list[str]) -> None:
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`). Ratios are measured side by side in one run;",
    ]
    out += ["absolute times on a shared 2-core machine are noisy, so targets are ratios wherever the issue allows.", ""]
    out += ["## Machine", ""] + [f"- {k}: {v}" for k, v in info.items()]
    out += ["", "## Command", "", f"    {command}", "", "## Results", ""]
    out += ["| stage | metric | value | spread | target | met | detail |", "|---|---|---|---|---|---|---|"]
    for r in results:
        met = "" if r.met is None else ("met" if r.met else "**not met**")
        spread = "" if r.spread is None else f"±{r.spread:.0%}"
        out.append(
            f"| {r.stage} | {r.metric} | {r.value:.4g} {r.unit} | {spread} | {r.target or ''} | {met} | {r.detail} |"
        )
    if missing:
        out += ["", "## Not measured", ""] + [f"- {k}: {v}" for k, v in missing.items()]
    out += ["", "## NLST projection", ""] + proj + [""]
    path.write_text("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats (about 3 minutes)")
    p.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    p.add_argument("--only", default="", help="comma-separated stages")
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--gpu-hour-usd", type=float, default=GPU_HOUR_USD)
    args = p.parse_args(argv)
    stages = [s for s in args.only.split(",") if s] or STAGES
    work = Path(args.work or tempfile.mkdtemp(prefix="deepcac2-bench-"))
    ctx = BenchContext(work=work, quick=args.quick, repeats=3 if args.quick else 5)
    results: list[Result] = []
    missing: dict[str, str] = {}
    try:
        for name in stages:
            got, err = run_stage(name, ctx)
            results += got
            if err:
                missing[name] = err
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    proj = projection(ctx.cache.get("per_stage_seconds"), args.gpu_hour_usd)
    write_markdown(Path(args.out), machine(), command.strip(), results, missing, proj)
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
