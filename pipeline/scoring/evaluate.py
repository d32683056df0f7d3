"""Compare two scorings of the same series: correlation, kappa per risk scheme, ICC, Bland-Altman.

Categories are always recomputed from the scores with ``risk_categories.categorize``, so that both
sides are banded by the same rule whatever their tables say.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import spearmanr

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import risk_categories
from deepcac2.pipeline.scoring.agreement import (
    BlandAltman,
    bland_altman,
    confusion_matrix,
    icc_2_1,
    weighted_kappa,
)
from deepcac2.pipeline.scoring.detection import LesionCounts, lesion_counts


@dataclass
class EvaluationResult:
    key: str
    score: str
    #: one row per matched series: key, pred, ref
    pairs: pd.DataFrame
    pred_only: list[str]
    ref_only: list[str]
    spearman_rho: float
    spearman_p: float
    icc_2_1: float
    kappa: dict[str, float]
    #: per scheme: rows = prediction's category, columns = reference's, labels in risk order
    confusion: dict[str, pd.DataFrame]
    bland_altman: BlandAltman | None
    lesions: LesionCounts | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.pairs)

    def metrics(self) -> list[dict[str, object]]:
        """Long-format metric rows (metric, scheme, value) for the Parquet table."""
        rows: list[dict[str, object]] = [
            {"metric": "n_pairs", "scheme": None, "value": float(self.n)},
            {"metric": "n_pred_only", "scheme": None, "value": float(len(self.pred_only))},
            {"metric": "n_ref_only", "scheme": None, "value": float(len(self.ref_only))},
            {"metric": "spearman_rho", "scheme": None, "value": self.spearman_rho},
            {"metric": "spearman_p", "scheme": None, "value": self.spearman_p},
            {"metric": "icc_2_1", "scheme": None, "value": self.icc_2_1},
        ]
        rows += [{"metric": "weighted_kappa", "scheme": s, "value": k} for s, k in self.kappa.items()]
        if self.bland_altman is not None:
            ba = self.bland_altman
            for name in ("mean_difference", "sd_difference", "lower_limit", "upper_limit"):
                rows.append({"metric": f"bland_altman_{name}", "scheme": None, "value": getattr(ba, name)})
        if self.lesions is not None:
            c = self.lesions
            for name in ("ref_lesions", "ref_found", "pred_lesions", "pred_true"):
                rows.append({"metric": f"lesion_{name}", "scheme": None, "value": float(getattr(c, name))})
            for name in ("sensitivity", "ppv", "f1"):
                rows.append({"metric": f"lesion_{name}", "scheme": None, "value": getattr(c, name)})
        return rows


def _one_per_key(df: pd.DataFrame, key: str, score: str, side: str) -> pd.Series:
    for col in (key, score):
        if col not in df.columns:
            raise DeepCACError(ErrorCode.E_SCORING, f"{side} table has no column {col!r} (columns: {list(df.columns)})")
    if df[key].duplicated().any():
        dups = df.loc[df[key].duplicated(), key].astype(str).unique()[:5].tolist()
        raise DeepCACError(
            ErrorCode.E_SCORING, f"{side} table has several rows per {key} (e.g. {dups}); filter one convention first"
        )
    values = pd.to_numeric(df[score], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float)) | (values.to_numpy(dtype=float) < 0)
    if bad.any():
        raise DeepCACError(
            ErrorCode.E_SCORING,
            f"{side} table has missing, negative or non-numeric {score} for {int(bad.sum())} rows "
            f"(e.g. {df.loc[bad, key].astype(str).iloc[0]})",
        )
    return pd.Series(values.to_numpy(dtype=float), index=df[key].astype(str), name=side)


def compare(
    pred_df: pd.DataFrame,
    ref_df: pd.DataFrame,
    key: str = "SeriesInstanceUID",
    *,
    score: str = "agatston",
    convention: str | None = None,
    lesion_masks: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
) -> EvaluationResult:
    """Compare ``score`` of the series both tables hold.

    ``convention`` keeps only rows of that convention in tables with a ``convention`` column.
    ``lesion_masks`` is an optional iterable of (pred, ref) bool lesion masks, one pair per
    series, for lesion-level sensitivity, PPV and F1.
    """
    if convention is not None:
        pred_df = pred_df[pred_df["convention"] == convention] if "convention" in pred_df else pred_df
        ref_df = ref_df[ref_df["convention"] == convention] if "convention" in ref_df else ref_df
    pred, ref = _one_per_key(pred_df, key, score, "pred"), _one_per_key(ref_df, key, score, "ref")
    common = pred.index.intersection(ref.index).sort_values()
    if len(common) == 0:
        raise DeepCACError(ErrorCode.E_SCORING, f"the two tables share no {key}")
    p, r = pred.loc[common].to_numpy(), ref.loc[common].to_numpy()
    pairs = pd.DataFrame({key: common, "pred": p, "ref": r})
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN, which we report
        rho, pval = spearmanr(p, r) if len(common) >= 2 else (math.nan, math.nan)
    kappa, confusion = {}, {}
    for scheme in risk_categories.SCHEME_NAMES:
        names = risk_categories.labels(scheme)
        pi = [risk_categories.category_index(scheme, risk_categories.category(scheme, v)) for v in p]
        ri = [risk_categories.category_index(scheme, risk_categories.category(scheme, v)) for v in r]
        m = confusion_matrix(np.array(pi), np.array(ri), len(names))
        kappa[scheme] = weighted_kappa(m)
        confusion[scheme] = pd.DataFrame(m, index=list(names), columns=list(names))
    if len(common) >= 2:
        icc, ba = icc_2_1(np.column_stack([p, r])), bland_altman(p, r)
    else:
        icc, ba = math.nan, None
        notes.append("fewer than 2 pairs: no ICC, no Bland-Altman")
    lesions = None
    if lesion_masks is not None:
        lesions = LesionCounts(0, 0, 0, 0)
        for pm, rm in lesion_masks:
            lesions = lesions + lesion_counts(pm, rm)
    return EvaluationResult(
        key=key,
        score=score,
        pairs=pairs,
        pred_only=sorted(set(pred.index) - set(common)),
        ref_only=sorted(set(ref.index) - set(common)),
        spearman_rho=float(rho),
        spearman_p=float(pval),
        icc_2_1=icc,
        kappa=kappa,
        confusion=confusion,
        bland_altman=ba,
        lesions=lesions,
        notes=notes,
    )


def format_stat(v: float | None) -> str:
    """A statistic for a report: 4 significant digits, "n/a" when undefined."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def agreement_lines(
    result: EvaluationResult,
    *,
    difference: str = "prediction - reference",
    figure: str | None = None,
    kappa: bool = False,
) -> list[str]:
    """The headline agreement statistics as Markdown bullets: evaluation reports and release notes share them."""
    lines = [
        f"- Spearman rho: {format_stat(result.spearman_rho)} (p = {format_stat(result.spearman_p)})",
        f"- ICC(2,1), absolute agreement: {format_stat(result.icc_2_1)}",
    ]
    if kappa:
        lines += [f"- linearly weighted kappa, `{s}`: {format_stat(k)}" for s, k in result.kappa.items()]
    if result.bland_altman is not None:
        ba = result.bland_altman
        see = f"; see `{figure}`" if figure else ""
        lines.append(
            f"- Bland-Altman ({difference}): bias {format_stat(ba.mean_difference)}, 95 % limits "
            f"[{format_stat(ba.lower_limit)}, {format_stat(ba.upper_limit)}]{see}"
        )
    if result.lesions is not None:
        c = result.lesions
        lines.append(
            f"- lesions: sensitivity {format_stat(c.sensitivity)} ({c.ref_found}/{c.ref_lesions}), "
            f"PPV {format_stat(c.ppv)} ({c.pred_true}/{c.pred_lesions}), F1 {format_stat(c.f1)}"
        )
    return lines + [f"- note: {n}" for n in result.notes]


def write_report(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, metrics/pairs/confusion Parquet tables and bland_altman.png into ``out_dir``."""
    from deepcac2.pipeline.scoring.plots import write_bland_altman_png  # matplotlib only when reporting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.parquet",
        "pairs": out / "pairs.parquet",
        "confusion": out / "confusion.parquet",
        "report": out / "report.md",
    }
    metrics = pa.Table.from_pylist(
        result.metrics(), schema=pa.schema([("metric", pa.string()), ("scheme", pa.string()), ("value", pa.float64())])
    )
    pq.write_table(metrics, paths["metrics"])
    pq.write_table(pa.Table.from_pandas(result.pairs, preserve_index=False), paths["pairs"])
    conf_rows = [
        {"scheme": s, "pred_category": i, "ref_category": j, "count": int(m.loc[i, j])}
        for s, m in result.confusion.items()
        for i in m.index
        for j in m.columns
    ]
    pq.write_table(pa.Table.from_pylist(conf_rows), paths["confusion"])
    if result.bland_altman is not None:
        paths["bland_altman"] = write_bland_altman_png(
            result.pairs["pred"], result.pairs["ref"], result.bland_altman, out / "bland_altman.png", result.score
        )
    paths["report"].write_text(_markdown(result, paths))
    return paths


def _markdown(result: EvaluationResult, paths: dict[str, Path]) -> str:
    lines = [
        f"# Agreement of two scorings ({result.score})",
        "",
        f"- matched series: {result.n} (only in prediction: {len(result.pred_only)}, "
        f"only in reference: {len(result.ref_only)})",
        *agreement_lines(result, figure=paths["bland_altman"].name),
    ]
    lines += ["", "## Linearly weighted kappa and confusion matrices (rows: prediction, columns: reference)", ""]
    for scheme, m in result.confusion.items():
        lines += [f"### {scheme}: kappa {format_stat(result.kappa[scheme])}", ""]
        lines.append("| pred \\ ref | " + " | ".join(m.columns) + " |")
        lines.append("|---" * (len(m.columns) + 1) + "|")
        lines += [f"| {i} | " + " | ".join(str(int(v)) for v in m.loc[i]) + " |" for i in m.index]
        lines.append("")
    lines += ["## Files", "", *[f"- `{p.name}`" for p in paths.values()], ""]
    return "\n".join(lines)
