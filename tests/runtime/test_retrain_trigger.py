"""The drift job's retraining triggers, against local receivers.

Signed webhook: the receiver (tests/runtime/signed_receiver.py) checks the HMAC-SHA256 of the raw
body with Python's own `hmac`, so the drift job's signature is proven by an independent
implementation; a body changed in transit, or signed with another secret, is refused (401, not
retried) and the outcome is pushed. GitHub's repository_dispatch envelope carries the same payload
with the token as bearer. The Job trigger names each Job after its drift window and creates it once
through the API server (a TLS stand-in answering as the API server does; none runs here).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitoring import catalog
from monitoring.drift_job.retrain import create_job, job_from_template
from monitoring.drift_job.status import EXIT_OK, EXIT_WEBHOOK_FAILED
from monitoring.drift_job.webhook import WebhookFailed
from tests.runtime.payload_samples import window_frame
from tests.runtime.signed_receiver import SignedReceiver
from tests.runtime.test_drift_job import Payloads, gateway, payloads  # noqa: F401 (fixtures)

pytestmark = pytest.mark.server

NOW = datetime.now(timezone.utc)
SECRET = "s3cr3t-shared-with-the-receiver"


@pytest.fixture
def receiver() -> Any:
    hook = SignedReceiver(SECRET)
    yield hook
    hook.close()


def _trigger_args(receiver: SignedReceiver, secret: str = SECRET, *extra: str) -> list[str]:
    return ["--retrain-webhook", receiver.url, "--retrain-policy", "on_dataset_drift", "--retrain-webhook-secret", secret,
            "--retrain-webhook-attempts", "3", "--retrain-webhook-backoff", "0.05", *extra]  # fmt: skip


def test_a_signed_call_is_verified_and_carries_its_idempotency_key(payloads: Payloads, receiver: SignedReceiver):
    """Drift -> one call the receiver verifies; key in body and header; outcome `accepted` pushed."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run(*_trigger_args(receiver)) == EXIT_OK
    (call,) = receiver.accepted
    assert receiver.refused == []
    key = call.payload["idempotencyKey"]
    assert key.startswith(f"{payloads.model}/v1/") and call.headers["Idempotency-Key"] == key
    assert _outcomes(payloads) == {"accepted": 1.0, "created": 0.0, "duplicate": 0.0, "failed": 0.0}


def test_a_tampered_body_is_refused(payloads: Payloads, receiver: SignedReceiver):
    """The genuine call replayed with one changed field but its original signature: 401."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run(*_trigger_args(receiver)) == EXIT_OK
    genuine = receiver.accepted[0]
    tampered = genuine.payload | {"version": "v0"}
    request = urllib.request.Request(
        receiver.url, data=json.dumps(tampered, sort_keys=True).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Mlops-Signature-256": genuine.headers["X-Mlops-Signature-256"]},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401 and len(receiver.refused) == 1 and len(receiver.accepted) == 1


def test_a_call_signed_with_another_secret_fails_the_run_without_retries(payloads: Payloads, receiver: SignedReceiver):
    """Wrong secret: refused once (a 4xx is not retried), exit 7, outcome `failed` pushed."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    assert payloads.run(*_trigger_args(receiver, "not-the-shared-secret")) == EXIT_WEBHOOK_FAILED
    assert len(receiver.refused) == 1 and receiver.accepted == []
    assert _outcomes(payloads)["failed"] == 1.0


def test_github_dispatch_envelope_with_bearer_token(payloads: Payloads, receiver: SignedReceiver):
    """With an event type the body is `{"event_type", "client_payload"}` (what GitHub's dispatches
    API takes), still signed, with the token as bearer."""
    payloads.add_window(window_frame(300, NOW, shifted=True))
    extra = ("--retrain-webhook-event-type", "mlops-retrain", "--retrain-webhook-token", "ghp_example")
    assert payloads.run(*_trigger_args(receiver, SECRET, *extra)) == EXIT_OK
    (call,) = receiver.accepted
    assert call.payload["event_type"] == "mlops-retrain" and call.payload["client_payload"]["model"] == payloads.model
    assert call.headers["Authorization"] == "Bearer ghp_example"


def test_the_job_trigger_names_the_job_after_the_window():
    """The same key gives the same Job name (a rerun meets AlreadyExists); the key reaches the trainer."""
    template = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "fraud-detector-training-", "namespace": "mlops-serving"},
        "spec": {"template": {"spec": {"containers": [{"name": "training", "env": [{"name": "TRAINING_TRIGGER", "value": "drift"}]}]}}},
    }  # fmt: skip
    key = "fraud-detector/7/2026-12-01T00:00:00Z/2026-12-02T00:00:00Z"
    first, again, other = job_from_template(template, key), job_from_template(template, key), job_from_template(template, key + "x")
    assert first["metadata"]["name"] == again["metadata"]["name"] != other["metadata"]["name"]
    assert first["metadata"]["name"] == "fraud-detector-training-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    assert first["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "TRAINING_TRIGGER", "value": key}]
    assert "generateName" not in first["metadata"] and template["metadata"]["generateName"]  # the template is untouched


def _outcomes(payloads: Payloads) -> dict[str, float]:
    """The pushed retraining trigger outcomes of this test's model."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(payloads.gateway.metrics_text())
        if family.name == catalog.RETRAIN_TRIGGER
        for sample in family.samples
        if sample.labels.get("model") == payloads.model
    }


class JobsApi:
    """The one API server call the Job trigger makes, over TLS with a bearer token: POST
    /apis/batch/v1/namespaces/<ns>/jobs answers 201 with the object, 409 with a Status of reason
    AlreadyExists for a name already taken (kubernetes/apimachinery pkg/api/errors/errors.go,
    NewAlreadyExists), 403 for another token. No API server binary runs here (see FACTS.md)."""

    def __init__(self, workdir: Path, token: str):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "ca.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        self.jobs: dict[tuple[str, str], dict] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                namespace = self.path.removeprefix("/apis/batch/v1/namespaces/").removesuffix("/jobs")
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._answer(403, {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403})
                key = (namespace, body["metadata"]["name"])
                if key in api.jobs:
                    return self._answer(409, {"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409})
                api.jobs[key] = body
                self._answer(201, body)

            def _answer(self, code: int, document: dict) -> None:
                data = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(workdir / "ca.crt", workdir / "key.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_job_trigger_creates_the_job_once_per_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """With the pod's service account files: 201 creates the Job in the account's namespace; the
    same window again meets 409 and is a duplicate, not a failure; a refused token fails the trigger."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    api = JobsApi(account, token="pod-token")
    try:
        (account / "token").write_text("pod-token")
        (account / "namespace").write_text("mlops-serving")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT_HTTPS", str(api.port))
        template = {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "churn-classifier-training-"},
            "spec": {"template": {"spec": {"containers": [{"name": "training", "image": "runtime", "env": []}]}}},
        }  # fmt: skip
        job = job_from_template(template, "churn-classifier/1/2026-12-01T00:00:00Z/2026-12-01T06:00:00Z")
        assert create_job(job, account).outcome == "created"
        assert list(api.jobs) == [("mlops-serving", job["metadata"]["name"])]
        assert create_job(job, account).outcome == "duplicate" and len(api.jobs) == 1
        (account / "token").write_text("stale-token")
        with pytest.raises(WebhookFailed, match="HTTP 403"):
            create_job(job_from_template(template, "another-window"), account)
    finally:
        api.close()
