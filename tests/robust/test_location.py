"""``deepcac2/location.py``: bucket URLs through fsspec, against moto in server mode on loopback."""

from __future__ import annotations

import uuid

import pytest

from deepcac2.cli import main
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import Remote, is_url, local_copy, staged

BUCKET = "deepcac2-location"


@pytest.fixture(scope="module")
def bucket(aws_env, s3):
    s3.create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}"


def _prefix(bucket: str) -> Remote:
    return Remote.parse(f"{bucket}/{uuid.uuid4().hex[:8]}/")


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("s3://b/x", True),
        ("gs://b/x", True),
        ("S3://b", True),
        ("out/run", False),
        ("/abs/s3:/x", False),
        (None, False),
    ],
)
def test_is_url(value, url):
    assert is_url(value) is url


def test_parse_normalises_the_prefix_and_refuses_what_it_cannot_serve(bucket):
    remote = Remote.parse(f"{bucket}//a/b/")
    assert remote.uri() == f"{bucket}/a/b" and remote.uri("tables/x.parquet") == f"{bucket}/a/b/tables/x.parquet"
    assert remote.path("state") == f"{BUCKET}/a/b/state"
    with pytest.raises(DeepCACError) as err:
        Remote.parse("azure://x/y", ErrorCode.E_QA_INPUT)
    assert err.value.code is ErrorCode.E_QA_INPUT and "not a supported" in err.value.message


def test_a_conditional_put_creates_once(bucket):
    remote = _prefix(bucket)
    assert remote.create("lock", b"first")
    assert not remote.create("lock", b"second")
    assert remote.read_bytes("lock") == b"first"
    remote.delete("lock")
    remote.delete("lock")  # none there: no error
    assert not remote.exists("lock")
    assert remote.create("lock", b"third")


def test_listing_mirroring_and_copies(bucket, tmp_path):
    remote = _prefix(bucket)
    remote.write_bytes("a/1.txt", b"1")
    remote.write_bytes("a/b/2.txt", b"2")
    remote.write_bytes("old.txt", b"old")
    assert remote.files() == ["a/1.txt", "a/b/2.txt", "old.txt"]
    assert remote.entries("") == ["a", "old.txt"] and remote.entries("a") == ["1.txt", "b"]
    got = staged(remote.uri(), tmp_path / "copy", ErrorCode.E_QA_INPUT, skip=("a/b",))
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == ["a/1.txt", "old.txt"]
    (got / "new.txt").write_bytes(b"new")
    (got / "old.txt").unlink()
    put, gone = remote.mirror(got)
    assert put == ["a/1.txt", "new.txt"] and sorted(gone) == ["a/b/2.txt", "old.txt"]
    assert remote.files() == ["a/1.txt", "new.txt"]
    assert local_copy(remote.uri("new.txt"), tmp_path / "one", ErrorCode.E_QA_INPUT).read_bytes() == b"new"
    assert local_copy(tmp_path / "x", tmp_path, ErrorCode.E_QA_INPUT) == tmp_path / "x"  # a path stays a path
    assert remote.delete_tree("a") and remote.files() == ["new.txt"]


def test_missing_inputs_and_buckets_are_coded_errors(bucket, tmp_path):
    remote = _prefix(bucket)
    with pytest.raises(DeepCACError) as err:
        staged(remote.uri(), tmp_path / "none", ErrorCode.E_RELEASE_VERIFY)
    assert err.value.code is ErrorCode.E_RELEASE_VERIFY and "holds no objects" in err.value.message
    with pytest.raises(DeepCACError) as err:
        local_copy(remote.uri("cohort.parquet"), tmp_path, ErrorCode.E_QA_INPUT)
    assert err.value.code is ErrorCode.E_QA_INPUT and "does not exist" in err.value.message
    with pytest.raises(DeepCACError) as err:
        Remote.parse("s3://no-such-bucket-here/run").write_bytes("x", b"1")
    assert err.value.code is ErrorCode.E_OUTPUT_UNWRITABLE and "s3://no-such-bucket-here/run" in err.value.message


def test_qa_and_release_on_an_empty_prefix_exit_with_their_codes(bucket, capsys):
    empty = _prefix(bucket).uri()
    assert main(["qa", empty]) == 3
    assert "E_QA_INPUT" in capsys.readouterr().err
    assert main(["release", "verify", empty]) == 3
    assert "E_RELEASE_VERIFY" in capsys.readouterr().err
    assert main(["release", "build", empty, "--version", "1.0.0", "--out", f"{empty}-rel"]) == 3
    assert "E_RELEASE_INPUT" in capsys.readouterr().err


def test_errors_of_a_build_from_a_bucket_name_the_bucket_not_the_local_copy(bucket, tmp_path, capsys):
    from tests.release.runfactory import make_run

    remote = _prefix(bucket)
    remote.upload_tree(make_run(tmp_path / "RUN", qa=False))
    assert main(["release", "build", remote.uri(), "--version", "1.0.0", "--out", str(tmp_path / "rel")]) == 3
    err = capsys.readouterr().err
    assert "E_RELEASE_QA_MISSING" in err and f"{remote.uri()}/qa/checks.parquet" in err
    assert "deepcac2-release-" not in err  # the temporary copy is no name to show


def test_review_verdicts_are_imported_into_the_run_in_the_bucket(bucket, tmp_path):
    import csv

    import pyarrow.parquet as pq

    from deepcac2.qa.review import write_review_sheet
    from tests.release.runfactory import make_run

    run = make_run(tmp_path / "RUN")
    remote = _prefix(bucket)
    remote.upload_tree(run)
    rows = pq.read_table(run / "tables" / "cac_series.parquet").to_pylist()
    sheet = write_review_sheet(rows, tmp_path / "sheet.csv", n=3, seed=0)
    lines = list(csv.DictReader(sheet.open()))
    lines[0].update(reviewer="r1", likert="4", corrected="no")
    with sheet.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    assert main(["qa", remote.uri(), "--import-reviews", str(sheet), "--seed", "0"]) == 0
    got = local_copy(remote.uri("tables/reviews.parquet"), tmp_path / "got", ErrorCode.E_QA_INPUT)
    verdicts = pq.read_table(got).to_pylist()
    assert [(v["SeriesInstanceUID"], v["likert"]) for v in verdicts] == [(lines[0]["SeriesInstanceUID"], 4)]


def test_a_release_is_never_put_into_a_run_or_around_it(bucket, tmp_path, capsys):
    from tests.release.runfactory import make_run

    remote = _prefix(bucket)
    remote.upload_tree(make_run(tmp_path / "RUN"))
    other_run = _prefix(bucket)
    other_run.write_bytes("state/run.json", b"{}")
    for out in (remote.uri("release"), other_run.uri()):
        assert main(["release", "build", remote.uri(), "--version", "1.0.0", "--out", out]) == 3
        assert "E_OUTPUT_NOT_OURS" in capsys.readouterr().err
    assert other_run.files() == ["state/run.json"] and not remote.files("release")
