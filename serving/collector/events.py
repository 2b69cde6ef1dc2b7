"""Read one KServe inference-logger CloudEvent from an HTTP request into an `InferenceEvent`.

KServe's logger (`pkg/logger/worker.go`) sends binary-mode CloudEvents: attributes as `ce-*`
headers (`ce-id`, `ce-type`, `ce-source`, `ce-time`, `ce-specversion`) plus the extensions
`ce-inferenceservicename`, `ce-namespace`, `ce-component`, `ce-endpoint`, `ce-metadata` (JSON of
the headers listed in `logger.metadataHeaders`) and, when `logger.metadataAnnotations` is set,
`ce-annotations` (JSON of those pod annotations); the body is the inference request or response
as the model server saw it. Structured mode (`application/cloudevents+json`) carries the same
attributes as JSON members and the body in `data` (or `data_base64`).

KServe sends no model version. The platform annotates each predictor with
`mlops.platform/model-version` and lists it in `logger.metadataAnnotations`, so every Knative
revision (stable and canary) reports its own version; without it the collector falls back to the
version configured for the InferenceService, then to "unknown".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import unquote

import numpy as np

from serving.collector.config import CollectorConfig
from serving.collector.payloads import PayloadError, Row, request_rows, response_rows

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
EVENT_KINDS: dict[str, Literal["request", "response"]] = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
VERSION_ANNOTATION = "mlops.platform/model-version"
MODEL_ANNOTATION = "mlops.platform/model"
UNKNOWN_VERSION = "unknown"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Model payloads nest a few levels (a batch of tensors of a few dimensions). Deeper JSON is refused
# before Python's recursive parser and encoders (the spool, Parquet) meet it: 1000 levels of "["
# fit in 1000 bytes and would otherwise end in a RecursionError, a 500.
MAX_JSON_DEPTH = 64
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)
# Go's RFC 3339 times carry up to nine fraction digits; Python's parser takes at most six.
_EXCESS_FRACTION = re.compile(r"(\.\d{6})\d+")

DropReason = Literal[
    "malformed", "missing_id", "unknown_type", "oversized", "unsupported_media_type", "overloaded", "spool_unavailable"
]


class EventRejected(Exception):
    """The event cannot be accepted; `status` is the HTTP status and `reason` the drop-counter label."""

    def __init__(self, status: int, reason: DropReason, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class InferenceEvent:
    """One half (request or response) of one inference, with the rows its body holds."""

    event_id: str
    kind: Literal["request", "response"]
    model: str
    version: str
    inference_service: str
    namespace: str
    time: datetime
    rows: tuple[Row, ...]
    # Given on receipt and kept in the spool, so a replayed event keeps it (see correlator.py).
    received_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "receivedId": self.received_id,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "inferenceService": self.inference_service,
            "namespace": self.namespace,
            "time": self.time.isoformat(),
            "rows": list(self.rows),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "InferenceEvent":
        return cls(
            event_id=document["id"],
            kind=document["kind"],
            model=document["model"],
            version=document["version"],
            inference_service=document["inferenceService"],
            namespace=document["namespace"],
            time=datetime.fromisoformat(document["time"]),
            rows=tuple(document["rows"]),
            # Lines spooled by a collector older than the inference id get a new one.
            received_id=document.get("receivedId") or uuid.uuid4().hex,
        )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_http_event(
    headers: Mapping[str, str], body: bytes, config: CollectorConfig, now: Callable[[], datetime]
) -> InferenceEvent:
    """The event in a POST to the sink; raises `EventRejected` saying what is wrong with it."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == BATCH_CONTENT_TYPE:
        raise EventRejected(415, "unsupported_media_type", "batched CloudEvents are not accepted; send one event per request")
    if content_type == STRUCTURED_CONTENT_TYPE:
        attributes, data = _structured(body)
    else:
        attributes = {k[3:].lower(): unquote(v) for k, v in headers.items() if k.lower().startswith("ce-")}
        data = _json(body, "event body")
    return _event(attributes, data, config, now)


def _structured(body: bytes) -> tuple[dict[str, str], Any]:
    envelope = _json(body, "structured CloudEvent")
    if not isinstance(envelope, dict):
        raise EventRejected(400, "malformed", "a structured CloudEvent must be a JSON object")
    attributes = {k.lower(): v for k, v in envelope.items() if k not in ("data", "data_base64") and isinstance(v, str)}
    if "data_base64" in envelope:
        try:
            raw = base64.b64decode(envelope["data_base64"], validate=True)
        except (binascii.Error, TypeError) as error:
            raise EventRejected(400, "malformed", f"data_base64 is not valid base64: {error}") from error
        return attributes, _json(raw, "data_base64")
    if "data" not in envelope:
        raise EventRejected(400, "malformed", "the structured CloudEvent has no data or data_base64")
    data = envelope["data"]
    # A JSON body may arrive as JSON text inside `data` when the sender did not mark it as JSON.
    return attributes, _json(data.encode(), "data") if isinstance(data, str) else data


def _json(raw: bytes, what: str) -> Any:
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as error:
        raise EventRejected(400, "malformed", f"{what} is not UTF-8 text: {error.reason} at byte {error.start}") from error
    except json.JSONDecodeError as error:
        raise EventRejected(400, "malformed", f"{what} is not JSON: {error.msg} at position {error.pos}") from error
    except RecursionError:
        raise EventRejected(400, "malformed", f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    # Counting brackets (strings included) can only overestimate: walk the document only then.
    if _bracket_depth(raw) > MAX_JSON_DEPTH and _depth(document) > MAX_JSON_DEPTH:
        raise EventRejected(400, "malformed", f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return document


def _bracket_depth(raw: bytes) -> int:
    codes = np.frombuffer(raw, dtype=np.uint8)
    steps = np.isin(codes, _OPENERS).astype(np.int32) - np.isin(codes, _CLOSERS).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def _depth(document: Any) -> int:
    """Nesting depth of a parsed JSON document, without recursion."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _event(
    attributes: Mapping[str, str], data: Any, config: CollectorConfig, now: Callable[[], datetime]
) -> InferenceEvent:
    event_id = attributes.get("id", "").strip()
    if not event_id:
        raise EventRejected(400, "missing_id", "the event has no id (ce-id); request and response are paired by it")
    event_type = attributes.get("type", "")
    kind = EVENT_KINDS.get(event_type)
    if kind is None:
        raise EventRejected(400, "unknown_type", f"ce-type {event_type!r} is not one of {sorted(EVENT_KINDS)}")
    service = attributes.get("inferenceservicename", "").strip()
    if not service:
        raise EventRejected(400, "malformed", "the event has no ce-inferenceservicename extension naming its model")
    annotations = _annotations(attributes.get("annotations"))
    settings = config.model_for(service)
    model = _segment("model", annotations.get(MODEL_ANNOTATION) or (settings.store_name if settings else service))
    version = _segment(
        "version", annotations.get(VERSION_ANNOTATION) or (settings.version if settings else None) or UNKNOWN_VERSION
    )
    try:
        if kind == "request":
            rows = request_rows(data, settings.input_names if settings else None)
        else:
            rows = response_rows(data, settings.output_names if settings else None)
    except PayloadError as error:
        raise EventRejected(400, "malformed", str(error)) from error
    return InferenceEvent(
        event_id=event_id,
        kind=kind,
        model=model,
        version=version,
        inference_service=service,
        namespace=attributes.get("namespace", ""),
        time=_time(attributes.get("time"), now),
        rows=tuple(rows),
    )


def _annotations(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        annotations = json.loads(text)
    except json.JSONDecodeError as error:
        raise EventRejected(400, "malformed", f"ce-annotations is not a JSON object: {error.msg}") from error
    if not isinstance(annotations, dict):
        raise EventRejected(400, "malformed", "ce-annotations must be a JSON object of annotation -> value")
    return {str(k): str(v) for k, v in annotations.items()}


def _segment(what: str, value: str) -> str:
    """Model and version become directory names in the store, so they must be plain path segments."""
    if not _SAFE_SEGMENT.match(value):
        raise EventRejected(
            400, "malformed", f"{what} {value!r} cannot name a store directory; use letters, digits, '.', '_' or '-'"
        )
    return value


def _time(text: str | None, now: Callable[[], datetime]) -> datetime:
    if not text:
        return now()
    try:
        parsed = datetime.fromisoformat(_EXCESS_FRACTION.sub(r"\1", text))
    except ValueError as error:
        raise EventRejected(400, "malformed", f"ce-time {text!r} is not an RFC 3339 timestamp") from error
    if parsed.tzinfo is None:
        raise EventRejected(400, "malformed", f"ce-time {text!r} has no UTC offset")
    return parsed.astimezone(timezone.utc)
