"""Call the retraining webhook: a signed JSON POST, retried with exponential backoff, a bounded number of times.

The body is signed with HMAC-SHA256 under the configured secret and the hex digest sent as
`X-Mlops-Signature-256: sha256=<hex>` (GitHub's webhook convention, so receivers can reuse their
verification code); a receiver recomputes it over the raw body and refuses a mismatch. Every call
carries an idempotency key (model, version, window) in the body and the `Idempotency-Key` header:
the retries of one run, and a rerun of the same window, carry the same key.

With an event type configured the body is GitHub's `repository_dispatch` envelope
(`{"event_type": ..., "client_payload": {...}}`) and the token goes in `Authorization: Bearer`, so
the webhook can be `https://api.github.com/repos/<owner>/<repo>/dispatches` directly.

Retried: connection failures, timeouts, 429 and 5xx (the receiver may be restarting). Not retried:
other 4xx, which mean the request itself is wrong (or its signature refused) and would fail again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from monitoring.drift_job.config import DriftJobConfig, RetrainPolicy
from monitoring.drift_job.results import DriftResult

LOG = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Mlops-Signature-256"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookFailed(Exception):
    """The webhook did not accept the call; the message lists every attempt's outcome."""


def should_retrain(policy: RetrainPolicy, result: DriftResult) -> bool:
    if policy is RetrainPolicy.ON_DRIFT:
        return result.any_drift
    if policy is RetrainPolicy.ON_DATASET_DRIFT:
        return result.dataset_drifted
    return False


def idempotency_key(result: DriftResult) -> str:
    """Same model, version and window -> same key, whichever run or retry sends it."""
    return f"{result.model}/{result.version}/{result.window.start:%Y-%m-%dT%H:%M:%SZ}/{result.window.end:%Y-%m-%dT%H:%M:%SZ}"


def retrain_payload(config: DriftJobConfig, result: DriftResult, report_uri: str | None) -> dict[str, Any]:
    return {
        "model": result.model,
        "version": result.version,
        "policy": config.retrain_policy.value,
        "window": {"start": result.window.start.isoformat(), "end": result.window.end.isoformat()},
        "idempotencyKey": idempotency_key(result),
        "drift": result.summary(),
        "report": report_uri,
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, secret: str, header: str | None) -> bool:
    """For receivers written in Python: constant-time check of the signature header over the raw body."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def request_body(payload: dict[str, Any], event_type: str | None) -> bytes:
    envelope = {"event_type": event_type, "client_payload": payload} if event_type else payload
    return json.dumps(envelope, sort_keys=True).encode()


def call_webhook(
    url: str,
    payload: dict[str, Any],
    attempts: int,
    backoff_seconds: float,
    secret: str | None = None,
    event_type: str | None = None,
    token: str | None = None,
) -> int:
    """POST `payload` until a 2xx answer (returned) or `attempts` are used up (WebhookFailed)."""
    body = request_body(payload, event_type)
    headers = {"Content-Type": "application/json"}
    if "idempotencyKey" in payload:
        headers[IDEMPOTENCY_HEADER] = payload["idempotencyKey"]
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    if token:
        headers["Authorization"] = f"Bearer {token}"
        headers["Accept"] = "application/vnd.github+json"
    outcomes: list[str] = []
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.status
        except urllib.error.HTTPError as error:
            outcomes.append(f"attempt {attempt}: HTTP {error.code}")
            if error.code != 429 and error.code < 500:
                break
        except (urllib.error.URLError, OSError) as error:
            outcomes.append(f"attempt {attempt}: {getattr(error, 'reason', error)}")
        if attempt < attempts:
            delay = backoff_seconds * 2 ** (attempt - 1)
            LOG.warning("retraining webhook %s failed (%s); retrying in %.1f s", url, outcomes[-1], delay)
            time.sleep(delay)
    raise WebhookFailed(f"retraining webhook {url} failed: {'; '.join(outcomes)}")
