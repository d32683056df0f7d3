"""Argument types that check ranges at parse time, so ``--workers 0`` is a usage error, not a run that waits.

argparse turns the ``ArgumentTypeError`` into ``deepcac2 CMD: error: argument --workers:
...`` and exit status 2, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, low: float | None, high: float | None, what: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range: {what}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


#: an integer >= 1 (workers, threads, counts of things to make)
positive_int = _number(int, 1, None, "an integer >= 1")
#: an integer >= 0 (retries, allowed failures, seeds)
non_negative_int = _number(int, 0, None, "an integer >= 0")
#: a number > 0 is checked as >= the smallest positive float
positive_float = _number(float, math.ulp(0.0), None, "a number > 0")
#: a number >= 0 (timeouts where 0 means none)
non_negative_float = _number(float, 0.0, None, "a number >= 0")
