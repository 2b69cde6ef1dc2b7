"""Call the retraining webhook: a JSON POST, retried with exponential backoff, a bounded number of times.

Retried: connection failures, timeouts, 429 and 5xx (the receiver may be restarting). Not retried:
other 4xx, which mean the request itself is wrong and would fail again.
"""

from __future__ import annotations

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


class WebhookFailed(Exception):
    """The webhook did not accept the call; the message lists every attempt's outcome."""


def should_retrain(policy: RetrainPolicy, result: DriftResult) -> bool:
    if policy is RetrainPolicy.ON_DRIFT:
        return result.any_drift
    if policy is RetrainPolicy.ON_DATASET_DRIFT:
        return result.dataset_drifted
    return False


def retrain_payload(config: DriftJobConfig, result: DriftResult, report_uri: str | None) -> dict[str, Any]:
    return {
        "model": result.model,
        "version": result.version,
        "policy": config.retrain_policy.value,
        "window": {"start": result.window.start.isoformat(), "end": result.window.end.isoformat()},
        "drift": result.summary(),
        "report": report_uri,
    }


def call_webhook(url: str, payload: dict[str, Any], attempts: int, backoff_seconds: float) -> int:
    """POST `payload` until a 2xx answer (returned) or `attempts` are used up (WebhookFailed)."""
    body = json.dumps(payload).encode()
    outcomes: list[str] = []
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
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
