"""Trigger retraining after drift: create the model's training Job in the cluster, or call the webhook.

The Job path reads the Job manifest the platform renders into a ConfigMap mounted into the drift
job's pod, names it after the idempotency key (a rerun of the same window meets 409 AlreadyExists
and counts as a duplicate, never a second training), passes the key to the trainer as
TRAINING_TRIGGER, and POSTs it to the API server with the pod's service account, whose Role only
allows creating Jobs in the model's namespace.

Either way the outcome is pushed as `mlops_drift_retrain_trigger{outcome=...}` (1 for the outcome of
the last trigger, 0 for the others) with the time of that trigger.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

from monitoring import catalog
from monitoring.drift_job.config import DriftJobConfig
from monitoring.drift_job.push import PUSH_TIMEOUT_SECONDS, PushFailed
from monitoring.drift_job.results import DriftResult
from monitoring.drift_job.webhook import WebhookFailed, call_webhook, idempotency_key, retrain_payload

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TRIGGER_VARIABLE = "TRAINING_TRIGGER"
JOB_NAME_LIMIT = 63


@dataclass(frozen=True)
class TriggerOutcome:
    outcome: str  # one of catalog.RETRAIN_TRIGGER_OUTCOMES
    detail: str


def job_from_template(template: dict[str, Any], key: str) -> dict[str, Any]:
    """The template with a name derived from `key` and the key in every container's environment."""
    job = copy.deepcopy(template)
    if job.get("apiVersion") != "batch/v1" or job.get("kind") != "Job":
        raise ValueError(f"the retraining Job template is a {job.get('apiVersion')} {job.get('kind')}, not a batch/v1 Job")
    metadata = job.setdefault("metadata", {})
    base = metadata.pop("generateName", None) or metadata.get("name") or "retrain"
    suffix = hashlib.sha256(key.encode()).hexdigest()[:10]
    metadata["name"] = f"{base.rstrip('-')[: JOB_NAME_LIMIT - len(suffix) - 1]}-{suffix}"
    metadata.setdefault("annotations", {})["mlops.platform/retraining-trigger"] = key
    for container in job["spec"]["template"]["spec"]["containers"]:
        env = [item for item in container.get("env", []) if item.get("name") != TRIGGER_VARIABLE]
        container["env"] = [*env, {"name": TRIGGER_VARIABLE, "value": key}]
    return job


def create_job(job: dict[str, Any], service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> TriggerOutcome:
    """POST the Job to the API server the pod runs under; 409 means this window already triggered."""
    namespace = job["metadata"].get("namespace") or (service_account_dir / "namespace").read_text().strip()
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT_HTTPS", "443")
    url = f"https://{host}:{port}/apis/batch/v1/namespaces/{namespace}/jobs"
    token = (service_account_dir / "token").read_text().strip()
    request = urllib.request.Request(
        url, data=json.dumps(job).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(service_account_dir / "ca.crt"))
    name = f"{namespace}/{job['metadata']['name']}"
    try:
        with urllib.request.urlopen(request, timeout=10.0, context=context):
            return TriggerOutcome("created", f"created training Job {name}")
    except urllib.error.HTTPError as error:
        if error.code == 409:
            return TriggerOutcome("duplicate", f"training Job {name} already exists: this window already triggered retraining")
        raise WebhookFailed(f"creating training Job {name} failed: HTTP {error.code} {error.read()[:300]!r}") from error
    except (urllib.error.URLError, OSError) as error:
        raise WebhookFailed(f"creating training Job {name} failed: {getattr(error, 'reason', error)}") from error


def trigger_retraining(config: DriftJobConfig, result: DriftResult, report_uri: str | None) -> TriggerOutcome:
    """Run the configured trigger; WebhookFailed when it did not take the request."""
    if config.retrain_job_template:
        try:
            job = job_from_template(yaml.safe_load(Path(config.retrain_job_template).read_text()), idempotency_key(result))
        except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as error:
            raise WebhookFailed(f"cannot build the training Job from {config.retrain_job_template}: {error!r}") from error
        return create_job(job)
    assert config.retrain_webhook is not None  # load_config requires a trigger for every policy but never
    status = call_webhook(
        config.retrain_webhook,
        retrain_payload(config, result, report_uri),
        config.retrain_webhook_attempts,
        config.retrain_webhook_backoff_seconds,
        secret=config.retrain_webhook_secret,
        event_type=config.retrain_webhook_event_type,
        token=config.retrain_webhook_token,
    )
    return TriggerOutcome("accepted", f"retraining webhook {config.retrain_webhook} answered {status}")


def push_trigger_outcome(gateway: str, result: DriftResult, outcome: str, now: datetime) -> None:
    registry = CollectorRegistry()
    state = Gauge(catalog.RETRAIN_TRIGGER, "1 for the outcome of the last retraining trigger, 0 for the others.",
                  ["model", "version", "outcome"], registry=registry)  # fmt: skip
    for candidate in catalog.RETRAIN_TRIGGER_OUTCOMES:
        state.labels(result.model, result.version, candidate).set(1 if candidate == outcome else 0)
    Gauge(catalog.RETRAIN_TRIGGER_LAST, "Unix time of the last retraining trigger.", ["model", "version"], registry=registry).labels(
        result.model, result.version
    ).set(now.timestamp())
    try:
        pushadd_to_gateway(gateway, job=catalog.RETRAIN_PUSH_JOB, grouping_key={"model": result.model, "version": result.version},
                           registry=registry, timeout=PUSH_TIMEOUT_SECONDS)  # fmt: skip
    except (urllib.error.URLError, OSError) as error:
        raise PushFailed(f"pushing the retraining trigger outcome to {gateway} failed: {error}") from error
