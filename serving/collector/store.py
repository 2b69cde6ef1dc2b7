"""Where payload files go: one small `ObjectStore` interface over S3, GCS and a local directory.

The collector only ever creates new objects (its cloud identity may put objects, nothing else:
no listing, reading, overwriting or deleting), so the interface is `put` plus a `probe` that
proves a write works by creating a small marker under `<root>/_collector/probes/`, a folder
Parquet dataset readers skip (leading underscore).
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage as gcs

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
PROBE_FOLDER = "_collector/probes"
# What a failed `put` raises: network and disk errors (requests' errors are OSErrors too), and
# each client's service errors.
STORE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError, GoogleAPIError, GoogleAuthError)


class ObjectStore(Protocol):
    uri: str

    def put(self, key: str, data: bytes) -> None:
        """Durably create the object `key` (relative to the root) holding `data`."""
        ...


def probe(store: ObjectStore) -> None:
    """Create a marker object, proving the store is reachable and writable with these credentials."""
    store.put(f"{PROBE_FOLDER}/{socket.gethostname()}-{uuid.uuid4()}", b"")


class LocalStore:
    def __init__(self, root: Path):
        self.root = root
        self.uri = str(root)

    def put(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target under a dot-name readers ignore, then rename: a reader never
        # sees half a file, and a crash leaves at worst a stray temporary file.
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class S3Store:
    """S3 or any S3-compatible server; credentials from the standard AWS chain (IRSA in EKS)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix
        self.uri = f"s3://{bucket}/{prefix}".rstrip("/")
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=BotoConfig(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}),
        )

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(
            Bucket=self.bucket, Key=_join(self.prefix, key), Body=data, ContentType=PARQUET_CONTENT_TYPE
        )


class GcsStore:
    """Google Cloud Storage; credentials from Application Default Credentials (Workload Identity in
    GKE). `STORAGE_EMULATOR_HOST` points the client at an emulator."""

    def __init__(self, bucket: str, prefix: str):
        self.prefix = prefix
        self.uri = f"gs://{bucket}/{prefix}".rstrip("/")
        self._bucket = gcs.Client().bucket(bucket)

    def put(self, key: str, data: bytes) -> None:
        # Generation 0 = create only: the objectCreator role may not overwrite.
        self._bucket.blob(_join(self.prefix, key)).upload_from_string(
            data, content_type=PARQUET_CONTENT_TYPE, if_generation_match=0
        )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def open_store(uri: str, s3_endpoint_url: str | None = None) -> ObjectStore:
    """The store for a root URI: `s3://bucket/prefix`, `gs://bucket/prefix`, `file:///path` or `/path`."""
    parsed = urlparse(uri)
    prefix = parsed.path.strip("/")
    if parsed.scheme == "s3":
        return S3Store(parsed.netloc, prefix, s3_endpoint_url)
    if parsed.scheme == "gs":
        return GcsStore(parsed.netloc, prefix)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path))
    raise ValueError(f"store URI {uri!r} has scheme {parsed.scheme!r}; use s3://, gs://, file:// or a local path")
