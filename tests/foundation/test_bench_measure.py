"""The benchmark's ratio estimator: per-round ratios, robust to one slow round."""

from __future__ import annotations

import pytest

from bench.measure import Timing, paired_ratio


def test_paired_ratio_is_the_median_of_per_round_ratios():
    ours = Timing("ours", [1.1, 2.2, 1.2, 1.05, 1.1])
    floor = Timing("floor", [1.0, 2.0, 1.0, 1.0, 1.0])  # round 2: the whole machine was slow
    ratio, spread = paired_ratio(ours, floor)
    assert ratio == pytest.approx(1.1)  # ratios 1.1, 1.1, 1.2, 1.05, 1.1
    assert spread == pytest.approx((1.2 - 1.05) / 2 / 1.1)
    # the ratio of medians would mix rounds: 1.1 / 1.0 here, but not in general
    assert paired_ratio(Timing("a", [3.0]), Timing("b", [2.0])) == (1.5, 0.0)
    with pytest.raises(ValueError):
        paired_ratio(Timing("a", [1.0, 2.0]), Timing("b", [1.0]))
