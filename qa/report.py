"""The QA report: one self-contained HTML file (figures embedded), failures first."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepcac2.qa.links import DASHBOARD_ROW, OVERLAY, viewer_url  # noqa: E402
from deepcac2.qa.result import CheckResult, Severity  # noqa: E402
from deepcac2.qa.stats import GROUPINGS  # noqa: E402

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}.fail{background:#fde2e2}.warn{background:#fff4d6}.ok{color:#276227}
.badge{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:600}
.bad{background:#b3261e}.good{background:#2e7d32}img{max-width:100%}
"""


class _Parts:
    """Writes parts to ``f`` separated by newlines (a part may come in pieces)."""

    def __init__(self, f: TextIO) -> None:
        self._f, self._first = f, True

    def add_pieces(self, pieces: Iterable[str]) -> None:
        if not self._first:
            self._f.write("\n")
        self._first = False
        for piece in pieces:
            self._f.write(piece)

    def add(self, text: str) -> None:
        self.add_pieces((text,))


#: boxes per panel at most: a box per distinct value of a near-unique column (a scanner's free-text name)
#: cost seconds and MiB per series to draw, and no one can read them
MAX_BOXES = 60


def _figure_b64(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def shown_groups(by_key: dict[str, list[float]], cap: int = MAX_BOXES) -> list[str]:
    """The groups a panel draws, sorted: all of them, or the ``cap`` largest (ties by name) beyond ``cap``."""
    if len(by_key) <= cap:
        return sorted(by_key)
    return sorted(sorted(by_key, key=lambda k: (-len(by_key[k]), k))[:cap])


def distribution_figure(rows: list[dict[str, Any]], convention: str) -> str | None:
    """Box plots of log10(1 + Agatston) per acquisition group, as a base64 PNG."""
    column = f"agatston_{convention}"
    usable = [r for r in rows if r.get(column) is not None]
    if not usable:
        return None
    fig, axes = plt.subplots(1, len(GROUPINGS), figsize=(4 * len(GROUPINGS), 3.4))
    for ax, group in zip(axes, GROUPINGS, strict=True):
        by_key: dict[str, list[float]] = {}
        for r in usable:  # one pass: a pass per group was O(series x groups)
            by_key.setdefault(str(r.get(group)), []).append(np.log10(1 + r[column]))
        keys = shown_groups(by_key)
        data = [by_key[k] for k in keys]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(keys) + 1), keys, rotation=45, ha="right", fontsize=8)
        more = f" ({len(keys)} largest of {len(by_key)} groups)" if len(keys) < len(by_key) else ""
        ax.set_title(f"by {group}{more}", fontsize=10)
        ax.set_ylabel("log10(1 + Agatston)", fontsize=8)
    fig.suptitle(f"Agatston ({convention}) by acquisition", fontsize=11)
    return _figure_b64(fig)


def series_links(uid: str, row: dict[str, Any] | None) -> str:
    """Overlay picture, dashboard row and IDC viewer (on our SEG and SR) of one series, as HTML links."""
    if row is None:
        return ""
    esc = html.escape(uid, quote=True)
    links = [
        f"<a class='overlay' href='{OVERLAY.format(uid=esc)}'>overlay</a>",
        f"<a class='dashboard' href='{DASHBOARD_ROW.format(uid=esc)}'>dashboard</a>",
    ]
    study = row.get("StudyInstanceUID")
    for label, column in (("SEG", "seg_series_uid"), ("SR", "sr_series_uid")):
        if study and row.get(column):
            url = html.escape(viewer_url(study, row[column]), quote=True)
            links.append(f"<a class='viewer' href='{url}' target='_blank' rel='noopener'>IDC viewer ({label})</a>")
    return " ".join(links)


def _rows_html(results: list[CheckResult], css: str, by_uid: dict[str, dict[str, Any]]) -> Iterator[str]:
    """The table of ``results``, a piece at a time (an NLST report lists ~10^5 of them: never one string)."""
    yield "<table><tr><th>check</th><th>subject</th><th>message</th><th>look at it</th></tr>"
    for r in results:
        yield (
            f"<tr class='{css}'><td>{html.escape(r.check)}</td><td>{html.escape(r.subject)}</td>"
            f"<td>{html.escape(r.message)}</td><td>{series_links(r.subject, by_uid.get(r.subject))}</td></tr>"
        )
    yield "</table>"


#: flags every NLST series carries (no calibration): not a reason to look at a series
ROUTINE_FLAGS = frozenset({"mass_unknown"})
#: the report lists at most this many flagged series (the rest are in cac_series.qa_flags)
MAX_FLAGGED = 500


def _flagged_html(rows: list[dict[str, Any]]) -> str:
    """Series whose cac_series row raised QA flags worth a look, with their links."""
    flagged = sorted(
        (r for r in rows if set(r.get("qa_flags") or ()) - ROUTINE_FLAGS), key=lambda r: str(r.get("SeriesInstanceUID"))
    )
    if not flagged:
        return ""
    total, flagged = len(flagged), flagged[:MAX_FLAGGED]
    cells = [
        f"<tr><td>{html.escape(str(r.get('PatientID')))}</td><td>{html.escape(str(r['SeriesInstanceUID']))}</td>"
        f"<td>{html.escape(', '.join(r['qa_flags']))}</td><td>{series_links(r['SeriesInstanceUID'], r)}</td></tr>"
        for r in flagged
    ]
    head = "<tr><th>PatientID</th><th>series</th><th>QA flags</th><th>look at it</th></tr>"
    more = f"<p>{total - len(flagged)} more in cac_series.qa_flags.</p>" if total > len(flagged) else ""
    title = f"Series with QA flags ({total}; {', '.join(sorted(ROUTINE_FLAGS))} alone not listed)"
    return f"<h2>{title}</h2><table>{head}{''.join(cells)}</table>{more}"


def _failures_html(failures: list[dict[str, Any]]) -> str:
    """Failed series by error code: the stage and message of each (E_INTERNAL first: a bug, not bad input)."""
    from deepcac2.qa.failure_checks import INTERNAL, by_code

    groups = by_code(failures)
    if not groups:
        return ""
    order = sorted(groups, key=lambda c: (c != INTERNAL, c))
    parts = [f"<h2>Failed series by code ({len({r['SeriesInstanceUID'] for r in failures})})</h2>"]
    for code in order:
        rows = groups[code]
        cells = [
            f"<tr><td>{html.escape(str(r['SeriesInstanceUID']))}</td><td>{html.escape(str(r.get('stage')))}</td>"
            f"<td>{html.escape(str(r.get('message'))[:300])}</td></tr>"
            for r in rows[:MAX_FLAGGED]
        ]
        more = f"<p>{len(rows) - MAX_FLAGGED} more in failures.parquet.</p>" if len(rows) > MAX_FLAGGED else ""
        head = "<tr><th>series</th><th>stage</th><th>message</th></tr>"
        parts.append(f"<h3>{html.escape(code)} ({len(rows)})</h3><table>{head}{''.join(cells)}</table>{more}")
    return "".join(parts)


def write_report(
    results: list[CheckResult],
    rows: list[dict[str, Any]],
    path: str | Path,
    *,
    convention: str,
    failures: list[dict[str, Any]] | None = None,
) -> Path:
    blocking = [r for r in results if r.blocking_failure]
    warnings = [r for r in results if r.severity is Severity.WARNING and not r.passed]
    info = [r for r in results if r.severity is Severity.INFO]
    passed = Counter(r.check for r in results if r.passed and r.severity is not Severity.INFO)
    badge = (
        f"<span class='badge bad'>{len(blocking)} blocking failures</span>"
        if blocking
        else "<span class='badge good'>no blocking failures</span>"
    )
    listed = {r.subject for r in (*blocking, *warnings, *info)}  # links only for the series the report lists
    by_uid = {uid: r for r in rows if (uid := str(r.get("SeriesInstanceUID"))) in listed}
    head = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>deepcac2 QA</title><style>{CSS}</style></head><body>",
        f"<h1>deepcac2 QA report</h1><p>{badge} &nbsp; {len(warnings)} warnings &nbsp; {len(rows)} series</p>",
        f"<p class='convention'>Scores and statistics use the scoring convention <strong>{html.escape(convention)}"
        "</strong> (CONVENTIONS.md). Each series links to its overlay picture, its dashboard row (in a release)"
        " and IDC's viewer on our SEG and SR.</p>",
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written a part at a time, parts joined by newlines: the bytes of "\n".join(parts) without the string
    with path.open("w") as f:
        part = _Parts(f)
        for text in head:
            part.add(text)
        if blocking:
            part.add("<h2>Blocking failures</h2>")
            part.add_pieces(_rows_html(blocking, "fail", by_uid))
        if warnings:
            part.add("<h2>Warnings</h2>")
            part.add_pieces(_rows_html(warnings, "warn", by_uid))
        part.add(_failures_html(failures or []))
        part.add(_flagged_html(rows))
        figure = distribution_figure(rows, convention)
        if figure:
            part.add("<h2>Score distributions</h2>")
            part.add(f"<img alt='distributions' src='data:image/png;base64,{figure}'>")
        if info:
            part.add("<h2>Statistics</h2>")
            part.add_pieces(_rows_html(info, "", by_uid))
        part.add("<h2>Checks passed</h2><table><tr><th>check</th><th>subjects passed</th></tr>")
        for k, v in sorted(passed.items()):
            part.add(f"<tr><td class='ok'>{html.escape(k)}</td><td>{v}</td></tr>")
        part.add("</table></body></html>")
    return path
