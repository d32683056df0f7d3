"""Issue 25, item 2: QA is bound to the bytes it checked.

``checks.parquet`` records the SHA-256 of every table and object; ``release build`` refuses QA
that checked anything else (``E_RELEASE_QA_STALE``). The reproduction of the issue: run QA,
then set ``agatston_deepcac`` to 9999 in ``cac_series``; the build used to succeed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import sha256_file
from deepcac2.qa.binding import OBJECT_INPUT, TABLE_INPUT
from deepcac2.qa.result import results_table
from deepcac2.qa.run import run_qa
from deepcac2.release.build import build_release
from tests.release.runfactory import make_run


def _refused(run: Path, out: Path) -> DeepCACError:
    with pytest.raises(DeepCACError) as exc:
        build_release(run, "1.0.0", out, dashboard_patients=1)
    return exc.value


def test_qa_records_the_sha256_of_every_table_and_object(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, qa=False, images=False)
    outcome = run_qa(run, sample=3, review_sample=0)
    checks = pd.read_parquet(outcome.checks_path)
    tables = checks[checks["check"] == TABLE_INPUT].set_index("subject")["sha256"].to_dict()
    assert tables == {f"tables/{p.name}": sha256_file(str(p)) for p in (run / "tables").glob("*.parquet")}
    objects = checks[checks["check"] == OBJECT_INPUT]
    files = {p.relative_to(run).as_posix(): sha256_file(str(p)) for p in (run / "dicom").glob("*.dcm")}
    assert len(objects) == len(files) == 6
    assert dict(zip(objects["message"], objects["sha256"], strict=True)) == files
    assert "qa.input" not in (outcome.report_path.read_text())  # bindings are records, not findings


def test_a_score_edited_after_qa_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    path = run / "tables" / "cac_series.parquet"
    table = pq.read_table(path)
    i = table.schema.get_field_index("agatston_deepcac")
    pq.write_table(table.set_column(i, table.schema.field(i), pa.array([9999.0] * table.num_rows)), path)
    err = _refused(run, tmp_path / "REL")
    assert err.code is ErrorCode.E_RELEASE_QA_STALE and "tables/cac_series.parquet changed since QA" in err.message
    assert not (tmp_path / "REL").exists() or not any((tmp_path / "REL").iterdir())


def test_an_object_rewritten_or_a_table_added_after_qa_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    sr = sorted((run / "dicom").glob("*.dcm"))[0]
    sr.write_bytes(sr.read_bytes() + b"\0\0")
    err = _refused(run, tmp_path / "REL")
    assert err.code is ErrorCode.E_RELEASE_QA_STALE and "changed since QA" in err.message

    run2 = make_run(tmp_path / "RUN2", n_patients=1, images=False)
    (run2 / "tables" / "reviews.parquet").write_bytes((run2 / "tables" / "runs.parquet").read_bytes())
    err = _refused(run2, tmp_path / "REL2")
    assert err.code is ErrorCode.E_RELEASE_QA_STALE and "tables/reviews.parquet was not checked by QA" in err.message


def test_qa_without_bindings_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    checks = pd.read_parquet(run / "qa" / "checks.parquet")
    old = checks[~checks["check"].str.startswith("qa.input")].drop(columns=["sha256"])
    old.to_parquet(run / "qa" / "checks.parquet", index=False)  # what deepcac2 wrote before the binding
    err = _refused(run, tmp_path / "REL")
    assert err.code is ErrorCode.E_RELEASE_QA_STALE and "recorded no SHA-256" in err.message
    assert results_table([]).schema.field("sha256")  # the column every new checks.parquet has
