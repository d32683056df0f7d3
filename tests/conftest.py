"""Shared fixtures: the real CT in ../shared/data, tool lookups, small helpers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("DEEPCAC2_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _require_shared() -> bool:
    return os.environ.get("DEEPCAC2_REQUIRE_SHARED_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CT folder. Skips when absent, fails instead when CI requires it."""
    d = _shared_data_dir()
    if not (d / "README.md").exists():
        msg = f"real CT data not found at {d} (set DEEPCAC2_SHARED_DATA)"
        if _require_shared():
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def dciodvfy() -> str:
    """Path of dciodvfy; fails in CI (which installs it), skips elsewhere."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        if _require_shared():
            pytest.fail("dciodvfy not on PATH; apt-get install dicom3tools")
        pytest.skip("dciodvfy not on PATH; apt-get install dicom3tools")
    return exe


# -- a real S3-compatible server (moto in server mode) on loopback, with IDC's bucket layout --------
MOTO = Path(sys.executable).parent / "moto_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto server started for this test session."""
    if not MOTO.exists():
        pytest.skip("moto_server not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def aws_env(s3_endpoint):
    """The standard AWS variables naming the moto server, for one test module: the bucket tests'
    ``run --out s3://`` clients and the Dask workers they start (which inherit them) reach moto."""
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield env


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    """A boto3 client with a public-read ``idc-open-data`` bucket, like IDC's."""
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    client.create_bucket(Bucket="idc-open-data")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::idc-open-data", "arn:aws:s3:::idc-open-data/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket="idc-open-data", Policy=json.dumps(policy))
    return client
