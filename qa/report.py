"""The QA report: one self-contained HTML file (figures embedded), failures first."""

from __future__ import annotations

import base64
import heapq
import html
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
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
    from deepcac2.qa.stats import summarize

    return distribution_figure_of(summarize([rows], convention).groups, convention)


def distribution_figure_of(groups: dict[str, dict[str, Any]], convention: str) -> str | None:
    """:func:`distribution_figure` of the scores by grouping and group (``stats.Summary.groups``)."""
    if not any(groups[g] for g in GROUPINGS):
        return None
    fig, axes = plt.subplots(1, len(GROUPINGS), figsize=(4 * len(GROUPINGS), 3.4))
    for ax, group in zip(axes, GROUPINGS, strict=True):
        by_key = groups[group]
        keys = shown_groups(by_key)
        data = [np.log10(1 + np.asarray(by_key[k], float)) for k in keys]
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


#: the rows of one series a link needs, by series UID (see ``series_links``), for a set of subjects
RowsOf = Callable[[set[str]], dict[str, dict[str, Any]]]


def _rows_html(chunks: Iterable[list[CheckResult]], css: str, rows_of: RowsOf) -> Iterator[str]:
    """The table of the results in ``chunks``, a piece at a time (an NLST report lists ~10^5 of them: never one
    string); the series rows for the links are looked up a chunk at a time (``rows_of``)."""
    yield "<table><tr><th>check</th><th>subject</th><th>message</th><th>look at it</th></tr>"
    for chunk in chunks:
        by_uid = rows_of({r.subject for r in chunk})
        for r in chunk:
            yield (
                f"<tr class='{css}'><td>{html.escape(r.check)}</td><td>{html.escape(r.subject)}</td>"
                f"<td>{html.escape(r.message)}</td><td>{series_links(r.subject, by_uid.get(r.subject))}</td></tr>"
            )
    yield "</table>"


#: flags every NLST series carries (no calibration): not a reason to look at a series
ROUTINE_FLAGS = frozenset({"mass_unknown"})
#: the report lists at most this many flagged series (the rest are in cac_series.qa_flags)
MAX_FLAGGED = 500


def is_flagged(row: dict[str, Any]) -> bool:
    """A row with QA flags worth a look (not only the routine ones)."""
    return bool(set(row.get("qa_flags") or ()) - ROUTINE_FLAGS)


def _flagged_html(rows: Iterable[dict[str, Any]]) -> str:
    """Series whose cac_series row raised QA flags worth a look, with their links (``rows``: any rows; the
    first ``MAX_FLAGGED`` flagged by series UID, in a stable sort, are kept)."""
    total = 0

    def flagged_rows() -> Iterator[tuple[str, int, dict[str, Any]]]:
        nonlocal total
        for i, r in enumerate(rows):
            if is_flagged(r):
                total += 1
                yield str(r.get("SeriesInstanceUID")), i, r

    flagged = [r for _, _, r in heapq.nsmallest(MAX_FLAGGED, flagged_rows(), key=lambda t: (t[0], t[1]))]
    if not flagged:
        return ""
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
    """The report of ``results`` (in memory) on the ``cac_series`` ``rows``."""
    lists: dict[str, list[CheckResult]] = {
        "blocking": [r for r in results if r.blocking_failure],
        "warnings": [r for r in results if r.severity is Severity.WARNING and not r.passed],
        "info": [r for r in results if r.severity is Severity.INFO],
    }
    passed = Counter(r.check for r in results if r.passed and r.severity is not Severity.INFO)
    by_uid = {str(r.get("SeriesInstanceUID")): r for r in rows}
    return write_report_parts(
        path,
        lists={name: (lambda v=v: iter([v] if v else [])) for name, v in lists.items()},
        counts={name: len(v) for name, v in lists.items()},
        passed=passed,
        n_series=len(rows),
        rows_of=lambda subjects: by_uid,
        convention=convention,
        failures_html=_failures_html(failures or []),
        flagged_html=_flagged_html(rows),
        figure=lambda: distribution_figure(rows, convention),
    )


def write_report_parts(
    path: str | Path,
    *,
    lists: dict[str, Callable[[], Iterable[list[CheckResult]]]],
    counts: dict[str, int],
    passed: Counter[str],
    n_series: int,
    rows_of: RowsOf,
    convention: str,
    failures_html: str,
    flagged_html: str,
    figure: Callable[[], str | None],
) -> Path:
    """The report from its parts: ``lists`` (``blocking``, ``warnings``, ``info``: the results in the order QA
    made them, a chunk at a time) and their ``counts``, the checks ``passed`` (not INFO) by check."""
    n_blocking, n_warnings = counts.get("blocking", 0), counts.get("warnings", 0)
    badge = (
        f"<span class='badge bad'>{n_blocking} blocking failures</span>"
        if n_blocking
        else "<span class='badge good'>no blocking failures</span>"
    )
    head = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>deepcac2 QA</title><style>{CSS}</style></head><body>",
        f"<h1>deepcac2 QA report</h1><p>{badge} &nbsp; {n_warnings} warnings &nbsp; {n_series} series</p>",
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
        if n_blocking:
            part.add("<h2>Blocking failures</h2>")
            part.add_pieces(_rows_html(lists["blocking"](), "fail", rows_of))
        if n_warnings:
            part.add("<h2>Warnings</h2>")
            part.add_pieces(_rows_html(lists["warnings"](), "warn", rows_of))
        part.add(failures_html)
        part.add(flagged_html)
        picture = figure()
        if picture:
            part.add("<h2>Score distributions</h2>")
            part.add(f"<img alt='distributions' src='data:image/png;base64,{picture}'>")
        if counts.get("info", 0):
            part.add("<h2>Statistics</h2>")
            part.add_pieces(_rows_html(lists["info"](), "", rows_of))
        part.add("<h2>Checks passed</h2><table><tr><th>check</th><th>subjects passed</th></tr>")
        for k, v in sorted(passed.items()):
            part.add(f"<tr><td class='ok'>{html.escape(k)}</td><td>{v}</td></tr>")
        part.add("</table></body></html>")
    return path
