"""The object stores the collector writes to: a local directory, S3 (a real moto server), GCS (a fake)."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from serving.collector.store import PROBE_FOLDER, GcsStore, LocalStore, S3Store, open_store, probe
from tests.runtime.servers import MotoServer


def test_store_uri_selects_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    """s3://, gs://, file:// and plain paths map to their stores with bucket and prefix split out."""
    for name, value in MotoServer.AWS_ENV.items():
        monkeypatch.setenv(name, value)
    s3 = open_store("s3://payloads/team/a/", "http://127.0.0.1:1")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix, s3.uri) == ("payloads", "team/a", "s3://payloads/team/a")
    assert isinstance(open_store("file:///data/payloads"), LocalStore)
    assert open_store("/data/payloads").uri == "/data/payloads"
    with pytest.raises(ValueError, match="scheme 'ftp'"):
        open_store("ftp://host/x")


def test_local_store_writes_whole_files_only(tmp_path: Path) -> None:
    """A put creates the parent folders and leaves no temporary file behind."""
    store = LocalStore(tmp_path)
    store.put("iris/1/date=2026-01-01/hour=00/a.parquet", b"PAR1")
    assert (tmp_path / "iris/1/date=2026-01-01/hour=00/a.parquet").read_bytes() == b"PAR1"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a.parquet"]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer.start(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.mark.server
def test_s3_store_puts_objects_under_the_prefix_of_a_real_s3_server(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against moto's S3 server: objects land under the prefix with the Parquet content type; the probe too."""
    for name, value in MotoServer.AWS_ENV.items():
        monkeypatch.setenv(name, value)
    client = moto.s3_client()
    client.create_bucket(Bucket="store-test")
    store = S3Store("store-test", "payloads", moto.url)
    store.put("iris/1/x.parquet", b"PAR1")
    probe(store)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="store-test")["Contents"]]
    assert "payloads/iris/1/x.parquet" in keys
    assert any(k.startswith(f"payloads/{PROBE_FOLDER}/") for k in keys)
    head = client.head_object(Bucket="store-test", Key="payloads/iris/1/x.parquet")
    assert head["ContentType"] == "application/vnd.apache.parquet"


@pytest.mark.server
def test_s3_store_reports_a_missing_bucket_as_a_store_error(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A put to a bucket that does not exist raises the client error (the collector retries it)."""
    from botocore.exceptions import ClientError

    for name, value in MotoServer.AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        S3Store("no-such-bucket", "", moto.url).put("x", b"")


class FakeGcs(BaseHTTPRequestHandler):
    """The two calls of the GCS JSON API the store makes: a multipart upload and a bucket lookup."""

    objects: dict[str, tuple[bytes, str, dict[str, list[str]]]] = {}

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers["content-length"]))
        message = email.message_from_bytes(
            b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
        )
        metadata_part, data_part = message.iter_parts()
        metadata = json.loads(metadata_part.get_content())
        bucket = url.path.split("/")[5]
        self.objects[f"{bucket}/{metadata['name']}"] = (
            data_part.get_payload(decode=True),
            data_part.get_content_type(),
            parse_qs(url.query),
        )
        self._reply(200, {"bucket": bucket, "name": metadata["name"], "generation": "1", "size": "0"})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(403, {"error": {"code": 403, "message": "objectCreator may not read bucket metadata"}})

    def _reply(self, status: int, document: dict) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass


def test_gcs_store_creates_objects_only_through_the_json_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a fake GCS JSON API (no GCS server runs here): a create-only multipart upload under the
    prefix, with credentials that may not read bucket metadata."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGcs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    try:
        store = open_store("gs://payloads/prod")
        assert isinstance(store, GcsStore)
        store.put("iris/2/date=2026-01-01/hour=03/f.parquet", b"PAR1 bytes")
    finally:
        server.shutdown()
    data, content_type, query = FakeGcs.objects["payloads/prod/iris/2/date=2026-01-01/hour=03/f.parquet"]
    assert (data, content_type) == (b"PAR1 bytes", "application/vnd.apache.parquet")
    assert query["ifGenerationMatch"] == ["0"]
