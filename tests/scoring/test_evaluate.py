"""Agreement statistics on examples worked out by hand, and the report files."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.scoring.agreement import bland_altman, confusion_matrix, icc_2_1, weighted_kappa
from deepcac2.pipeline.scoring.detection import lesion_counts
from deepcac2.pipeline.scoring.evaluate import compare, write_report
from deepcac2.release.evaluate_cli import read_scores


def test_weighted_kappa_hand_example():
    m = np.array([[10, 2, 0], [3, 8, 1], [0, 2, 4]])
    # disagreement form: 1 - sum(v*o) / sum(v*e), v = |i-j|/2.
    # sum(v*o) = 0.5*(2+3+1+2) = 4 of 30. marginals rows 12,12,6; columns 13,12,5 (n = 30):
    # sum(v*e) * 900 = 0.5*(12*12 + 12*13 + 12*5 + 6*12) + (12*5 + 6*13) = 354.
    expected = 1 - Fraction(4, 30) / Fraction(354, 900)
    assert weighted_kappa(m) == pytest.approx(float(expected), abs=1e-12)


def _kappa_by_pairs(a: list[int], b: list[int], k: int) -> float:
    """A second computation: mean disagreement over actual pairs vs over all cross pairs."""
    observed = sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
    chance = sum(abs(x - y) for x in a for y in b) / (len(a) * len(b))
    return 1 - observed / chance


def test_weighted_kappa_agrees_with_pairwise_form():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 0, 4)
    m = confusion_matrix(a, b, 5)
    assert weighted_kappa(m) == pytest.approx(_kappa_by_pairs(a.tolist(), b.tolist(), 5), abs=1e-12)
    assert weighted_kappa(confusion_matrix(a, a, 5)) == pytest.approx(1.0)


SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)


def _icc21_loops(x: list[list[float]]) -> float:
    n, k = len(x), len(x[0])
    grand = sum(sum(r) for r in x) / (n * k)
    rows = [sum(r) / k for r in x]
    cols = [sum(x[i][j] for i in range(n)) / n for j in range(k)]
    ssr = k * sum((m - grand) ** 2 for m in rows)
    ssc = n * sum((m - grand) ** 2 for m in cols)
    sse = sum((x[i][j] - rows[i] - cols[j] + grand) ** 2 for i in range(n) for j in range(k))
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), sse / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def test_icc_shrout_fleiss_table():
    # Shrout & Fleiss (1979), table 2 data: ICC(2,1) = 0.29 in their table 4
    assert round(icc_2_1(SHROUT_FLEISS), 2) == 0.29
    assert icc_2_1(SHROUT_FLEISS) == pytest.approx(_icc21_loops(SHROUT_FLEISS.tolist()), abs=1e-12)


def test_icc_penalises_bias():
    ref = np.array([0.0, 10, 50, 120, 400])
    assert icc_2_1(np.column_stack([ref, ref])) == pytest.approx(1.0)
    biased = icc_2_1(np.column_stack([ref + 50, ref]))
    assert biased < 1.0
    assert biased == pytest.approx(_icc21_loops(np.column_stack([ref + 50, ref]).tolist()))


def test_bland_altman_by_hand():
    ba = bland_altman([1, 5, 3, 10, 20], [2, 4, 6, 8, 10])
    d = [-1, 1, -3, 2, 10]
    mean = sum(d) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 4)
    assert (ba.mean_difference, ba.sd_difference) == pytest.approx((mean, sd))
    assert (ba.lower_limit, ba.upper_limit) == pytest.approx((mean - 1.96 * sd, mean + 1.96 * sd))


def test_compare_and_report(tmp_path):
    pred = pd.DataFrame({"SeriesInstanceUID": ["a", "b", "c", "d", "e", "x"], "agatston": [1, 5, 3, 10, 20, 7]})
    ref = pd.DataFrame({"SeriesInstanceUID": ["a", "b", "c", "d", "e", "y"], "agatston": [2, 4, 6, 8, 10, 0]})
    r = compare(pred, ref)
    assert r.n == 5 and r.pred_only == ["x"] and r.ref_only == ["y"]
    # ranks pred 1,3,2,4,5 vs ref 1..5: sum d^2 = 2 -> rho = 1 - 6*2/(5*24)
    assert r.spearman_rho == pytest.approx(0.9)
    # classic bands: pred 1-10,1-10,1-10,1-10,11-100; ref 1-10 x4, 1-10 (10) -> one disagreement of 1 step
    assert r.confusion["classic"].loc["11-100", "1-10"] == 1
    assert int(r.confusion["classic"].to_numpy().sum()) == 5
    assert set(r.kappa) == {"deepcac", "classic", "cac_drs"}
    paths = write_report(r, tmp_path)
    assert paths["bland_altman"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = pq.read_table(paths["metrics"]).to_pandas()
    assert metrics.loc[metrics.metric == "spearman_rho", "value"].item() == pytest.approx(0.9)
    assert pq.read_table(paths["pairs"]).num_rows == 5
    text = paths["report"].read_text()
    assert "Spearman" in text and "ICC(2,1)" in text and "cac_drs" in text


def test_compare_rejects_duplicates_and_bad_values():
    ok = pd.DataFrame({"SeriesInstanceUID": ["a", "b"], "agatston": [1.0, 2.0]})
    dup = pd.DataFrame({"SeriesInstanceUID": ["a", "a"], "agatston": [1.0, 2.0]})
    with pytest.raises(DeepCACError) as e:
        compare(dup, ok)
    assert e.value.code is ErrorCode.E_SCORING
    neg = pd.DataFrame({"SeriesInstanceUID": ["a", "b"], "agatston": [1.0, -2.0]})
    with pytest.raises(DeepCACError):
        compare(ok, neg)
    with pytest.raises(DeepCACError):
        compare(ok, pd.DataFrame({"SeriesInstanceUID": ["z"], "agatston": [1.0]}))


def test_compare_filters_one_convention():
    pred = pd.DataFrame(
        {"SeriesInstanceUID": ["a", "a", "b", "b"], "convention": ["deepcac", "canon"] * 2, "agatston": [1, 9, 2, 9]}
    )
    ref = pd.DataFrame({"SeriesInstanceUID": ["a", "b"], "agatston": [1.0, 2.0]})
    r = compare(pred, ref, convention="deepcac")
    assert r.pairs["pred"].tolist() == [1.0, 2.0]


def test_lesion_level_detection():
    ref = np.zeros((5, 20, 20), dtype=bool)
    pred = np.zeros_like(ref)
    ref[1, 1:3, 1:3] = True  # found
    ref[1, 10:12, 10:12] = True  # found
    ref[3, 15:17, 2:4] = True  # missed
    pred[1, 2:4, 2:4] = True  # overlaps the first
    pred[1, 11, 11] = True  # overlaps the second
    pred[4, 18, 18] = True  # false positive
    c = lesion_counts(pred, ref)
    assert (c.ref_lesions, c.ref_found, c.pred_lesions, c.pred_true) == (3, 2, 3, 2)
    assert (c.sensitivity, c.ppv) == pytest.approx((2 / 3, 2 / 3))
    assert c.f1 == pytest.approx(2 / 3)
    r = compare(
        pd.DataFrame({"SeriesInstanceUID": ["a", "b"], "agatston": [1.0, 2.0]}),
        pd.DataFrame({"SeriesInstanceUID": ["a", "b"], "agatston": [1.0, 3.0]}),
        lesion_masks=[(pred, ref), (ref, ref)],
    )
    assert (r.lesions.ref_lesions, r.lesions.ref_found) == (6, 5)


def test_cli_takes_a_synth_cohort_folder_and_a_convention(tmp_path):
    """One command: a run's cac_series-like table against synth's long truth table (one convention's rows)."""
    from deepcac2.cli import main as cli_main

    cohort = tmp_path / "dicom"
    cohort.mkdir()
    truth = pd.DataFrame(
        {
            "SeriesInstanceUID": ["a", "a", "b", "b", "c", "c"],
            "convention": ["deepcac", "canon"] * 3,
            "agatston": [0.0, 99.0, 150.0, 1.0, 500.0, 2.0],
            # what the image shows: the default reference (--truth image)
            "agatston_in_image": [0.0, 98.0, 140.0, 1.0, 480.0, 2.0],
        }  # fmt: skip
    )
    truth.to_parquet(cohort / "truth.parquet")
    pred = pd.DataFrame(
        {
            "SeriesInstanceUID": ["a", "b", "c"],
            "agatston_deepcac": [0.0, 140.0, 480.0],
            "agatston_canon": [99.0, 1.0, 2.0],
        }
    )
    pred.to_parquet(tmp_path / "pred.parquet")
    expected = {
        ("deepcac", "image"): ([0.0, 140.0, 480.0], [0.0, 140.0, 480.0]),
        ("deepcac", "nominal"): ([0.0, 140.0, 480.0], [0.0, 150.0, 500.0]),
        ("canon", "image"): ([99.0, 1.0, 2.0], [98.0, 1.0, 2.0]),
    }
    for (convention, reference), (p, r) in expected.items():
        out = tmp_path / f"{convention}-{reference}"
        argv = ["evaluate", "--pred", str(tmp_path / "pred.parquet"), "--ref", str(cohort), "--out", str(out)]
        if reference == "nominal":
            argv += ["--truth", "nominal"]
        assert cli_main([*argv, "--convention", convention]) == 0
        pairs = pq.read_table(out / "pairs.parquet").to_pandas().sort_values("SeriesInstanceUID")
        assert pairs["pred"].tolist() == p and pairs["ref"].tolist() == r
    # without --convention: deepcac, and the other convention's truth rows never mix in
    argv = ["evaluate", "--pred", str(tmp_path / "pred.parquet"), "--ref", str(cohort), "--out", str(tmp_path / "d")]
    assert cli_main(argv) == 0
    pairs = pq.read_table(tmp_path / "d" / "pairs.parquet").to_pandas().sort_values("SeriesInstanceUID")
    assert pairs["ref"].tolist() == [0.0, 140.0, 480.0]


def test_a_truth_table_without_the_image_reference_is_refused_clearly(tmp_path):
    from deepcac2.cli import main as cli_main

    cohort = tmp_path / "dicom"
    cohort.mkdir()
    keys = ["a", "b", "c"]
    pd.DataFrame({"SeriesInstanceUID": keys, "convention": ["deepcac"] * 3, "agatston": [1.0, 50.0, 500.0]}).to_parquet(
        cohort / "truth.parquet"
    )
    pd.DataFrame({"SeriesInstanceUID": keys, "agatston_deepcac": [1.0, 40.0, 400.0]}).to_parquet(
        tmp_path / "pred.parquet"
    )
    argv = ["evaluate", "--pred", str(tmp_path / "pred.parquet"), "--ref", str(cohort), "--out", str(tmp_path / "o")]
    with pytest.raises(DeepCACError) as err:
        read_scores(str(cohort), "agatston", None)
    assert err.value.code == ErrorCode.E_SCORING and "--truth nominal" in str(err.value)
    assert cli_main([*argv, "--truth", "nominal"]) == 0
