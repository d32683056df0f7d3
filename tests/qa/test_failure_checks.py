"""Failed series by code in QA (checks, report) and the dataset card; E_INTERNAL warns."""

from __future__ import annotations

import json

import pandas as pd

from deepcac2.qa.failure_checks import check_failures
from deepcac2.qa.report import write_report
from deepcac2.qa.result import Severity
from deepcac2.release.card import counts_markdown

FAILURES = [
    {"SeriesInstanceUID": "1.2.1", "stage": "load", "error_code": "E_GEOMETRY_GAP", "message": "gap of 7.5 mm",
     "detail_json": None},
    {"SeriesInstanceUID": "1.2.2", "stage": "convert", "error_code": "E_INTERNAL", "message": "ValueError: boom",
     "detail_json": json.dumps({"traceback": "Traceback (most recent call last): ..."})},
]  # fmt: skip


def test_e_internal_warns_and_every_code_is_counted():
    results = check_failures(FAILURES)
    internal = [r for r in results if r.check == "failures.internal"]
    assert [(r.subject, r.passed, r.severity) for r in internal] == [("1.2.2", False, Severity.WARNING)]
    assert "convert" in internal[0].message and "traceback in failures.detail_json" in internal[0].message
    counted = {r.subject: r.value for r in results if r.check == "failures.by_code"}
    assert counted == {"E_GEOMETRY_GAP": 1.0, "E_INTERNAL": 1.0}


def test_no_internal_failure_no_warning():
    assert not [r for r in check_failures(FAILURES[:1]) if not r.passed]


def test_report_and_card_list_failed_series_by_code(tmp_path):
    path = write_report(check_failures(FAILURES), [], tmp_path / "report.html", convention="deepcac", failures=FAILURES)
    text = path.read_text()
    assert "Failed series by code" in text and "1.2.2" in text and "E_GEOMETRY_GAP" in text
    assert text.index("E_INTERNAL (1)") < text.index("E_GEOMETRY_GAP (1)")  # the bug first
    card = counts_markdown({"series": 3}, pd.DataFrame(FAILURES))
    assert "| `E_INTERNAL` | 1 | convert | `1.2.2` |" in card and "`E_GEOMETRY_GAP` | 1 | load" in card


def test_qa_command_warns_on_e_internal(tmp_path, capsys):
    import pyarrow.parquet as pq
    from release.runfactory import conform, make_run

    from deepcac2.cli import main

    run = make_run(tmp_path / "run", n_patients=1, qa=False, images=False)
    rows = [{**r, "attempts": 1, "transient": False, "toolkit_version": "0.1.0"} for r in FAILURES]
    pq.write_table(conform(rows, "failures"), run / "tables" / "failures.parquet")
    main(["qa", str(run), "--sample", "1"])  # exit code: the minimal objects of the factory may block
    err = capsys.readouterr().err
    assert "1 series failed with E_INTERNAL" in err and "detail_json" in err


def test_distribution_panels_draw_all_groups_up_to_the_cap_then_the_largest():
    from deepcac2.qa.report import shown_groups

    few = {"b": [1.0], "a": [1.0, 2.0]}
    assert shown_groups(few, cap=2) == ["a", "b"]
    many = {f"g{i:03d}": [0.0] * (1 + i % 7) for i in range(100)}
    shown = shown_groups(many, cap=10)
    assert len(shown) == 10 and shown == sorted(shown)
    assert min(len(many[k]) for k in shown) >= max(len(many[k]) for k in many if k not in shown)
