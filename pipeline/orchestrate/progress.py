"""The progress bar: series done and failed, rate and ETA (tqdm computes the last two)."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Counts finished series; ``skipped`` are those a --resume found already committed."""

    def __init__(self, total: int, skipped: int = 0, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.done = 0
        self.failed = 0
        self._bar = tqdm(
            total=total,
            initial=skipped,
            unit="series",
            desc="deepcac2 run",
            disable=not enabled,
            file=stream or sys.stderr,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._bar.set_postfix(done=0, failed=0, refresh=False)

    def update(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        self._bar.set_postfix(done=self.done, failed=self.failed, refresh=False)
        self._bar.update(1)

    def write(self, message: str) -> None:
        """Print a line above the bar without breaking it."""
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
