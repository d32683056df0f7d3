"""What each ``deepcac2 run`` flag may be, checked when the command line is parsed.

A wrong value is a usage error (exit 2, one line naming the flag) before the lock, the
state folder or a cluster is touched, so the corrected command starts clean.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Sequence

#: Dask's comm schemes a scheduler can be reached with (``tls://`` for a secured cluster)
SCHEDULER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
#: torch device types a model may be put on (``cuda:1`` picks a GPU)
_DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu)(:\d+)?)$")
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:(\d{1,5}))?$")


def scheduler_address(text: str) -> str:
    """``tcp://host:8786``, ``tls://host:8786`` (or ``host:8786``, taken as tcp) -- never the dashboard's http URL."""
    value = text.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "tcp", value
    if scheme in ("http", "https"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a web address (the dashboard's); the scheduler listens on tcp://HOST:8786 (or tls://)"
        )
    if scheme not in SCHEDULER_SCHEMES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: unknown scheme {scheme!r}; use one of {', '.join(s + '://' for s in SCHEDULER_SCHEMES)}"
        )
    if scheme != "inproc":
        _host_port(rest.rstrip("/"), text)
    return f"{scheme}://{rest}"


def _host_port(text: str, original: str) -> None:
    match = _HOST_PORT.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{original!r} does not name a host (and port), e.g. tcp://node1:8786")
    port = match.group(3)
    if port is not None and not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{original!r}: port {port} is out of range (1-65535)")


def listen_address(text: str) -> str:
    """``HOST:PORT`` (or ``:PORT``, taken as loopback) for the dashboard."""
    value = text.strip()
    if value.startswith(":"):
        value = "127.0.0.1" + value
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8787)")
    return value


def memory_limit(text: str) -> str:
    """``auto``, ``0`` (no limit), a fraction of the machine's memory (``0.5``) or a size (``4GiB``, ``2e9``)."""
    value = text.strip()
    if value.lower() in ("auto", "0"):
        return value.lower()
    try:
        fraction = float(value)
    except ValueError:
        fraction = None
    if fraction is not None:  # as Dask reads it: up to 1 a fraction of the memory, above it bytes
        if fraction > 0:
            return value
        raise argparse.ArgumentTypeError(f"{text!r}: a fraction of the memory must lie in (0, 1], or give a size")
    from dask.utils import parse_bytes

    try:
        size = parse_bytes(value)
    except (ValueError, TypeError):
        size = None
    if not size or size <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a memory size: use auto, 0 (no limit), a fraction such as 0.5, or e.g. 4GiB"
        )
    return value


def device(text: str) -> str:
    """A torch device: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu`` (an unknown one is refused, not ignored)."""
    value = text.strip().lower()
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda, cuda:N, mps or xpu")
    return value


def cap_workers(workers: int | None, force: bool, cpus: int | None = None) -> tuple[int | None, str | None]:
    """``--workers`` capped at the CPU count unless forced; returns the count and a note when capped."""
    cpus = cpus or os.cpu_count() or 1
    if workers is None or workers <= cpus or force:
        return workers, None
    return cpus, (
        f"--workers {workers} is more than this machine's {cpus} CPUs: starting {cpus} "
        "(--oversubscribe starts them all anyway)"
    )


def conflicts(args: argparse.Namespace) -> str | None:
    """Flags that contradict each other, as the message of a usage error."""
    if args.overwrite and args.retry_failed:
        return "--overwrite forgets every result, --retry-failed runs some of them again: choose one"
    if args.oversubscribe and args.workers is None:
        return "--oversubscribe only applies with --workers N"
    if args.dashboard and args.scheduler:
        return "--dashboard starts the local cluster's dashboard; an existing scheduler (--scheduler) serves its own"
    return None


def resume_command(argv: Sequence[str]) -> str:
    """The exact command that continues a stopped run: the same flags, --overwrite dropped, --resume added."""
    words = [w for w in argv if w != "--overwrite"]
    if "--resume" not in words and "--retry-failed" not in words:
        words.append("--resume")
    return shlex.join(["deepcac2", *words])
