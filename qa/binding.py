"""QA bound to what it checked: the SHA-256 of every table and DICOM object, kept in ``checks.parquet``.

QA records one INFO row per input, with the file's SHA-256 in the ``sha256`` column:

* ``qa.input.table``: subject ``tables/<name>.parquet`` (every table of the folder);
* ``qa.input.object``: subject the object's SOPInstanceUID, message its path in the folder
  (every DICOM object outside ``tables/``, ``qa/``, ``state/`` and ``logs/``; a symlink is not an input).

``qa.walk.walk`` makes these rows (``Walked.inputs``) in its one read of each file.

``release build`` compares them with the run it packages (:func:`stale_inputs`) and refuses
QA that checked something else (``E_RELEASE_QA_STALE``): a table edited after QA, a run redone
with ``--overwrite`` or resumed, an object rewritten. ``release verify`` compares them with the
files of the release (objects by SOPInstanceUID, since the release re-lays them out).
"""

from __future__ import annotations

import pandas as pd

TABLE_INPUT = "qa.input.table"
OBJECT_INPUT = "qa.input.object"
INPUTS = (TABLE_INPUT, OBJECT_INPUT)


def is_binding(checks: pd.DataFrame) -> pd.Series:
    """Which rows of a checks table are input bindings (not findings)."""
    return checks["check"].isin(INPUTS)


def recorded(checks: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]] | None:
    """(table path -> SHA-256, SOPInstanceUID -> SHA-256) as QA recorded them; None when QA recorded none."""
    if "sha256" not in checks.columns or not is_binding(checks).any():
        return None
    rows = checks[is_binding(checks)]
    tables = {str(r.subject): str(r.sha256) for r in rows[rows["check"] == TABLE_INPUT].itertuples()}
    objects = {str(r.subject): str(r.sha256) for r in rows[rows["check"] == OBJECT_INPUT].itertuples()}
    return tables, objects


def stale_inputs(checks: pd.DataFrame, tables: dict[str, str], objects: dict[str, str]) -> list[str]:
    """What differs between the inputs QA checked and these (``tables``: path -> SHA-256 of every table
    present; ``objects``: SOPInstanceUID -> SHA-256 of every object that will ship). Empty: QA is current."""
    found = recorded(checks)
    if found is None:
        return ["QA recorded no SHA-256 of the tables and objects it checked (made by an older deepcac2)"]
    qa_tables, qa_objects = found
    problems = [f"{p} changed since QA" for p in sorted(tables) if p in qa_tables and qa_tables[p] != tables[p]]
    problems += [f"{p} was not checked by QA" for p in sorted(tables) if p not in qa_tables]
    problems += [f"{p} was checked by QA and is gone" for p in sorted(qa_tables) if p not in tables]
    problems += [
        f"object {u} changed since QA" for u in sorted(objects) if u in qa_objects and qa_objects[u] != objects[u]
    ]
    problems += [f"object {u} was not checked by QA" for u in sorted(objects) if u not in qa_objects]
    return problems
