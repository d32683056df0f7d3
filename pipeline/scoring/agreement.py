"""Agreement statistics between two scorings, from their textbook formulas.

* Linearly weighted Cohen's kappa (Cohen 1968) with agreement weights
  ``w_ij = 1 - |i - j| / (k - 1)``: ``kappa = (p_o - p_e) / (1 - p_e)``, where ``p_o`` and
  ``p_e`` are the weighted observed and chance agreement.
* ICC(2,1), two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979;
  McGraw & Wong 1996 "ICC(A,1)"):
  ``(MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)``.
* Bland-Altman: mean difference (pred - ref) and 95% limits ``mean +- 1.96 SD`` (SD with n-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.errors import DeepCACError, ErrorCode


def confusion_matrix(pred: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """Counts ``m[i, j]`` of items the prediction puts in category i and the reference in j."""
    pred, ref = np.asarray(pred, dtype=int), np.asarray(ref, dtype=int)
    if pred.shape != ref.shape or (pred.size and (min(pred.min(), ref.min()) < 0 or max(pred.max(), ref.max()) >= k)):
        raise DeepCACError(ErrorCode.E_SCORING, f"category indices must be paired and in 0..{k - 1}")
    return np.bincount(pred * k + ref, minlength=k * k).reshape(k, k)


def weighted_kappa(matrix: np.ndarray) -> float:
    """Linearly weighted kappa of a k x k confusion matrix; NaN when chance agreement is 1."""
    m = np.asarray(matrix, dtype=float)
    k = m.shape[0]
    n = m.sum()
    if n == 0 or k < 2:
        return float("nan")
    i, j = np.indices((k, k))
    w = 1.0 - np.abs(i - j) / (k - 1)
    p = m / n
    expected = np.outer(p.sum(axis=1), p.sum(axis=0))
    po, pe = float((w * p).sum()), float((w * expected).sum())
    if np.isclose(pe, 1.0):
        return float("nan")
    return (po - pe) / (1.0 - pe)


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1) of an n-subjects x k-raters matrix (absolute agreement, single rater)."""
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise DeepCACError(ErrorCode.E_SCORING, f"ICC needs at least 2 subjects and 2 raters, got shape {x.shape}")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    return float("nan") if denom == 0 else float((msr - mse) / denom)


@dataclass(frozen=True)
class BlandAltman:
    mean_difference: float
    sd_difference: float
    lower_limit: float
    upper_limit: float


def bland_altman(pred: np.ndarray, ref: np.ndarray) -> BlandAltman:
    """Bias and 95% limits of agreement of pred - ref."""
    d = np.asarray(pred, dtype=float) - np.asarray(ref, dtype=float)
    if d.size < 2:
        raise DeepCACError(ErrorCode.E_SCORING, "Bland-Altman needs at least 2 pairs")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(mean, sd, mean - 1.96 * sd, mean + 1.96 * sd)
