"""Byte ranges of one object: a local file (seek/read) or an S3 object (anonymous HTTP Range GET).

Both count the bytes they deliver, so the provider can report how little of a SEG it read.
A short read (the object ends before the range) is E_ANATOMY_READ; a network failure that a
retry may cure is E_FETCH_TRANSIENT (the task retries it); an HTTP error is E_ANATOMY_READ.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Protocol

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.identifiers import validate_bucket, validate_crdc_uuid

#: IDC's public endpoint (as idc-index and s5cmd use it)
DEFAULT_ENDPOINT = "https://s3.amazonaws.com"
_S3_URL = re.compile(r"s3://([^/]+)/([^*]*)")


class ByteSource(Protocol):
    """An object read by byte ranges."""

    name: str
    #: bytes delivered so far (every range, header included)
    bytes_read: int

    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset``; E_ANATOMY_READ when the object ends earlier."""
        ...


def _delivered(source: LocalFile | S3Object, data: bytes, offset: int, length: int) -> bytes:
    """Count what a read delivered; a short read means the object ends before the range."""
    with source._lock:
        source.bytes_read += len(data)
    if len(data) != length:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_READ,
            f"{source.name} is truncated: {length} bytes wanted at {offset}, {len(data)} there",
        )
    return data


class LocalFile:
    """A local file read with seek/read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.bytes_read = 0
        self._lock = threading.Lock()
        try:
            self._size = self.path.stat().st_size
        except OSError as exc:
            raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"cannot open SEG {self.path}: {exc}") from exc

    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read(length)
        except OSError as exc:
            raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"read of {self.name} failed: {exc}") from exc
        return _delivered(self, data, offset, length)


class S3Object:
    """One object of a public bucket, read anonymously by HTTP Range GET (path-style URLs)."""

    def __init__(self, endpoint_url: str, bucket: str, key: str, size: int | None = None, timeout_s: float = 60.0):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.bucket = validate_bucket(bucket)
        self.key = key
        self.name = f"s3://{self.bucket}/{key}"
        self.timeout_s = timeout_s
        self.bytes_read = 0
        self._size = size
        self._lock = threading.Lock()

    def _url(self) -> str:
        return f"{self.endpoint_url}/{self.bucket}/{urllib.parse.quote(self.key)}"

    def _open(self, request: urllib.request.Request):  # noqa: ANN202 - an http.client response
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            code = ErrorCode.E_FETCH_TRANSIENT if exc.code >= 500 or exc.code == 429 else ErrorCode.E_ANATOMY_READ
            raise DeepCACError(code, f"{request.get_method()} {self.name}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise DeepCACError(ErrorCode.E_FETCH_TRANSIENT, f"{self.name}: {exc}", endpoint=self.endpoint_url) from exc

    def size(self) -> int:
        if self._size is None:
            with self._open(urllib.request.Request(self._url(), method="HEAD")) as r:
                self._size = int(r.headers["Content-Length"])
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        request = urllib.request.Request(self._url(), headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        try:
            with self._open(request) as r:
                if r.status != 206 and offset:  # a server ignoring Range would send the whole object
                    raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"{self.name}: range request answered {r.status}")
                data = r.read(length)
        except (OSError, TimeoutError) as exc:  # the connection broke mid-body
            raise DeepCACError(ErrorCode.E_FETCH_TRANSIENT, f"{self.name}: {exc}") from exc
        return _delivered(self, data, offset, length)


def s3_series_object(
    series_aws_url: str,
    endpoint_url: str | None = None,
    crdc_series_uuid: str | None = None,
    bucket: str | None = None,
) -> S3Object:
    """The one object of a single-instance series under ``s3://bucket/<crdc_series_uuid>/``.

    IDC's index names series, not instances: the object's key is found by listing the
    series prefix (ListObjectsV2, anonymous). A SEG series has exactly one instance.
    """
    m = _S3_URL.match(series_aws_url or "")
    if not m:
        raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"not an s3:// series URL: {series_aws_url!r}")
    bucket, prefix = bucket or m.group(1), m.group(2)
    if crdc_series_uuid:
        prefix = f"{validate_crdc_uuid(crdc_series_uuid)}/"
    endpoint = (endpoint_url or DEFAULT_ENDPOINT).rstrip("/")
    query = urllib.parse.urlencode({"list-type": "2", "prefix": prefix})
    lister = S3Object(endpoint, bucket, "")
    with lister._open(urllib.request.Request(f"{endpoint}/{validate_bucket(bucket)}?{query}")) as r:
        body = r.read()
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise DeepCACError(ErrorCode.E_ANATOMY_READ, f"cannot list {series_aws_url}: {exc}") from exc
    ns = {"s3": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    tag = "s3:Contents" if ns else "Contents"
    found = [
        (c.findtext("s3:Key" if ns else "Key", namespaces=ns), c.findtext("s3:Size" if ns else "Size", namespaces=ns))
        for c in root.findall(tag, ns)
    ]
    found = [(k, int(s)) for k, s in found if k and s is not None]
    if len(found) != 1:
        raise DeepCACError(
            ErrorCode.E_ANATOMY_READ,
            f"{series_aws_url}: expected one SEG object, found {len(found)}",
            objects=len(found),
        )
    key, size = found[0]
    return S3Object(endpoint, bucket, key, size)
