"""``deepcac2 run``: process a cohort end to end on a local or remote Dask cluster."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from deepcac2.argtypes import non_negative_float, non_negative_int, positive_float, positive_int
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.anatomy.registry import AUTO, parse_name
from deepcac2.pipeline.anatomy.registry import HELP as ANATOMY_HELP
from deepcac2.pipeline.conventions import DEFAULT_CONVENTIONS
from deepcac2.pipeline.orchestrate import defaults, flags

if TYPE_CHECKING:
    from deepcac2.pipeline.orchestrate.run import RunConfig


def _error_code(text: str) -> str:
    try:
        return ErrorCode(text.strip().upper()).value
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an error code (see deepcac2/errors.py)") from None


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", required=True, help="cohort Parquet written by `deepcac2 cohort`")
    parser.add_argument(
        "--out",
        required=True,
        help="output directory (tables/, dicom/, logs/, state/), or a bucket URL: s3://bucket/prefix, gs://bucket/prefix",
    )
    parser.add_argument("--model", default=None, help="registered model name (default: by --weights)")
    parser.add_argument("--weights", default=None, help="model weights file")
    parser.add_argument(
        "--device",
        type=flags.device,
        default=None,
        help="torch device for the model: cpu, cuda, cuda:N, mps (default: the model's choice)",
    )
    parser.add_argument("--anatomy", default=AUTO, type=parse_name, help=ANATOMY_HELP)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        type=flags.scheduler_address,
        default=None,
        help="address of an existing Dask scheduler, tcp://host:8786 or tls://host:8786 (not the dashboard's http)",
    )
    where.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="local cluster: worker processes (default: CPUs; more than the CPUs only with --oversubscribe)",
    )
    parser.add_argument(
        "--oversubscribe", action="store_true", help="local cluster: start --workers N even when N exceeds the CPUs"
    )
    parser.add_argument(
        "--dashboard",
        nargs="?",
        type=flags.listen_address,
        const="127.0.0.1:8787",
        default=None,
        metavar="HOST:PORT",
        help="local cluster: serve the Dask dashboard (default off; the bare flag listens on 127.0.0.1:8787)",
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="local cluster: threads per worker")
    parser.add_argument(
        "--memory-limit",
        type=flags.memory_limit,
        default=defaults.MEMORY_LIMIT,
        help="local cluster: memory per worker: auto, 0 (no limit), a fraction such as 0.5, or a size such as 4GiB",
    )
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", dest="gpu", action="store_true", default=None, help="require GPU workers")
    gpu.add_argument("--no-gpu", dest="gpu", action="store_false", help="never ask for the GPU resource")
    parser.add_argument(
        "--max-in-flight", type=positive_int, default=None, help="series submitted at once (default 2x threads+2)"
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=defaults.RETRIES,
        help=f"retries of transient errors and lost workers (default {defaults.RETRIES})",
    )
    parser.add_argument(
        "--conventions",
        default=None,
        help=f"comma-separated scoring conventions (default: {','.join(DEFAULT_CONVENTIONS)})",
    )
    state = parser.add_mutually_exclusive_group()
    state.add_argument(
        "--resume",
        action="store_true",
        help="continue in --out: skip committed series, run again those that failed with a transient code",
    )
    state.add_argument("--overwrite", action="store_true", help="forget earlier results in --out and start again")
    parser.add_argument(
        "--retry-failed",
        nargs="+",
        type=_error_code,
        default=(),
        metavar="CODE",
        help="also run again the series that failed with these codes (e.g. E_INTERNAL); implies --resume",
    )
    parser.add_argument(
        "--rescan",
        action="store_true",
        help="load local series whose files changed since the cohort was made (default: E_INPUT_CHANGED)",
    )
    parser.add_argument(
        "--verify-inputs",
        action="store_true",
        help="take a SHA-256 of every byte of each local series when it is loaded and check it again on --resume "
        "(the cohort's fingerprint is file names, sizes and times only); series without a fingerprint are refused",
    )
    parser.add_argument("--cache-dir", default=None, help="worker cache for remote (IDC) series")
    parser.add_argument(
        "--cache-gb", type=positive_float, default=defaults.CACHE_GIB, help="bytes each worker's cache may hold, in GiB"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    parser.add_argument(
        "--allowed-failures",
        type=non_negative_int,
        default=defaults.ALLOWED_FAILURES,
        help="local cluster: worker deaths per task",
    )
    parser.add_argument(
        "--worker-ttl",
        type=non_negative_float,
        default=defaults.WORKER_TTL_S,
        help="seconds without a heartbeat after which a worker holding a series' task is removed from the "
        f"scheduler, so the task runs elsewhere (0: leave it to the scheduler; default {defaults.WORKER_TTL_S:g})",
    )
    parser.add_argument(
        "--series-timeout",
        type=non_negative_float,
        default=defaults.SERIES_TIMEOUT_S,
        help="seconds a task of a series may run on a worker (time queued does not count) before the series "
        f"is recorded as E_TIMEOUT and its worker restarted (0: no limit; default {defaults.SERIES_TIMEOUT_S:g})",
    )
    # test and benchmark hook: module:attribute of a Stages object (e.g. the fake stages)
    parser.add_argument("--stages", default=None, help=argparse.SUPPRESS)


def _stages(spec: str | None):  # noqa: ANN202 - a Stages or None
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr or "STAGES")
    except (ImportError, AttributeError) as exc:
        raise DeepCACError(ErrorCode.E_INTERNAL, f"cannot import stages {spec!r}: {exc}") from exc


def run_config(args: argparse.Namespace, workers: int | None) -> RunConfig:
    """The one RunConfig of ``deepcac2 run``'s flags (``workers``: --workers once capped to the CPUs)."""
    from deepcac2.pipeline.models.base import ModelSpec
    from deepcac2.pipeline.orchestrate.cluster import ClusterSpec
    from deepcac2.pipeline.orchestrate.plugin import CacheSpec
    from deepcac2.pipeline.orchestrate.run import RunConfig

    cluster = ClusterSpec(
        scheduler=args.scheduler,
        workers=workers,
        threads=args.threads,
        memory_limit=args.memory_limit,
        gpu=args.gpu,
        allowed_failures=args.allowed_failures,
        dashboard_address=args.dashboard,
    )
    optional = {"conventions": tuple(c.strip() for c in args.conventions.split(","))} if args.conventions else {}
    return RunConfig(
        model=ModelSpec(args.model, args.weights, args.device),
        anatomy=args.anatomy,
        cluster=cluster,
        max_in_flight=args.max_in_flight,
        resume=args.resume or bool(args.retry_failed),
        overwrite=args.overwrite,
        retries=args.retries,
        cache=CacheSpec(args.cache_dir, int(args.cache_gb * 2**30)) if args.cache_dir else None,
        progress=not args.no_progress,
        series_timeout_s=args.series_timeout or None,
        worker_ttl_s=args.worker_ttl or None,
        retry_codes=frozenset(args.retry_failed),
        rescan=args.rescan,
        verify_inputs=args.verify_inputs,
        **optional,
    )


def main(args: argparse.Namespace) -> int:
    from deepcac2.pipeline.orchestrate.run import run_cohort

    # the rest of the flags' checks, still before anything is written (exit 2, as argparse's own)
    clash = flags.conflicts(args)
    if clash:
        print(f"deepcac2 run: error: {clash}", file=sys.stderr)
        return 2
    workers, note = flags.cap_workers(args.workers, args.oversubscribe)
    if note:
        print(f"deepcac2 run: {note}", file=sys.stderr)
    argv = getattr(args, "command_argv", None) or ["run", "--cohort", args.cohort, "--out", args.out]
    try:
        summary = run_cohort(args.cohort, args.out, run_config(args, workers), stages=_stages(args.stages))
    except DeepCACError as exc:
        if exc.code in RESUMABLE_STOPS:  # the committed series are kept: say exactly how to go on
            raise DeepCACError(exc.code, f"{exc.message}\n  continue with: {flags.resume_command(argv)}") from exc
        raise
    print(summary.format(), file=sys.stderr)
    if summary.interrupted:
        print(f"deepcac2 run: interrupted; continue with: {flags.resume_command(argv)}", file=sys.stderr)
        return 130
    return 0


#: errors that stop a run whose committed series stay valid: ``--resume`` continues it
RESUMABLE_STOPS = frozenset({ErrorCode.E_SCHEDULER_LOST, ErrorCode.E_DISK_FULL})
