"""Timing and memory measurement helpers shared by the stage benchmarks.

Ratios are what we report: a stage and its floor/peer are timed alternately in the
same process and run, so machine noise hits both alike.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.context import Result


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Half the range, relative to the median: a plain, honest noise figure."""
        if len(self.seconds) < 2:
            return 0.0
        return (max(self.seconds) - min(self.seconds)) / 2 / self.median


def paired_ratio(a: Timing, b: Timing) -> tuple[float, float]:
    """Median of the per-round ratios a_i / b_i, and their half range relative to it.

    ``time_alternating`` runs a and b back to back in each round, so a round's ratio sees
    one state of the machine; the median over rounds shrugs off a slow round that the ratio
    of two medians would not.
    """
    ratios = [x / y for x, y in zip(a.seconds, b.seconds, strict=True)]
    mid = statistics.median(ratios)
    return mid, (max(ratios) - min(ratios)) / 2 / mid if len(ratios) > 1 else 0.0


def time_alternating(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, Timing]:
    """Run each function ``repeats`` times, interleaved (a b a b ...), after one warm-up each."""
    for fn in fns.values():
        fn()
    out = {name: Timing(name) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].seconds.append(time.perf_counter() - t0)
    return out


def _vm_hwm() -> int:
    """Peak RSS of this process image in bytes.

    Not ``ru_maxrss``: Linux carries that across fork and exec, so a spawned child
    would start with its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: best effort


def _child(fn: Callable[..., Any], args: tuple, queue: mp.Queue) -> None:
    before = _vm_hwm()
    t0 = time.perf_counter()
    fn(*args)
    elapsed = time.perf_counter() - t0
    queue.put((before, _vm_hwm(), elapsed))


def peak_rss(fn: Callable[..., Any], *args: Any) -> dict[str, float]:
    """Run ``fn(*args)`` in a fresh process; return its baseline and peak RSS in bytes.

    ``fn`` must be importable (a module-level function). The baseline is the RSS after
    imports, so ``peak - baseline`` is what the call itself added.
    """
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    before, peak, elapsed = q.get()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"benchmark child for {fn.__name__} failed with exit code {p.exitcode}")
    return {"baseline_bytes": before, "peak_bytes": peak, "added_bytes": peak - before, "seconds": elapsed}


class TreeRSS:
    """Peak resident memory of this process and all its children (Dask workers), sampled every 0.2 s."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue  # a worker that just exited
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_rss_result(stage: str, metric: str, volume_bytes: int, fn: Callable[..., Any], *args: Any) -> Result:
    """Run ``fn(*args)`` in a fresh process; report its peak RSS relative to the HU volume it works on.

    Imports are part of the peak: this is what one worker process holds for the stage.
    """
    mem = peak_rss(fn, *args)
    return Result(
        stage, f"{metric}: peak RSS / HU volume", mem["peak_bytes"] / volume_bytes, "x",
        detail=f"peak {mem['peak_bytes'] / 2**20:.0f} MiB (imports included) for a {volume_bytes / 2**20:.0f} MiB volume",
    )  # fmt: skip
