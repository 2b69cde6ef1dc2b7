"""Pure builders for the pod-level pieces every platform workload shares.

Every container the platform renders runs under the `restricted` Pod Security Standard, with
requests and limits set, so the namespaces can enforce `restricted` and the policy pack finds
nothing to excuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# The user images/runtime.Dockerfile creates; also the UID given to third-party images that run
# as any user. Above 10000, so it cannot collide with a host account.
UNPRIVILEGED_USER = 10001

# Why the S3 clients of the in-cluster object store take secrets as environment variables.
STATIC_S3_KEYS_REASON = (
    "boto3 and SeaweedFS read static S3 keys only from the environment; only the in-cluster object "
    "store issues them, cloud stacks use workload identity and render no keys"
)

# Why MLflow's clients take a user's credentials as environment variables.
MLFLOW_CREDENTIALS_REASON = "MLflow's clients take a user's credentials only from MLFLOW_TRACKING_USERNAME/PASSWORD"

# The non-root uid the serving runtimes' containers run as; the runtime and each predictor declare it
# alike, since KServe merges the predictor's container over the runtime's.
MODEL_SERVER_USER = 1000

RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_container_security(*, read_only_root: bool = True, run_as_user: int | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if run_as_user is not None:
        context["runAsUser"] = run_as_user
        context["runAsGroup"] = run_as_user
    return context


def resources(cpu: str, memory: str, *, cpu_limit: str | None = None) -> dict[str, Any]:
    """Requests equal limits for memory (no OOM surprises); CPU may burst up to `cpu_limit`."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }


def labels(app: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "mlops-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app}


def http_probe(path: str, port: int | str, *, initial_delay: int = 5, period: int = 10) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def allow_ingress_spec(
    server: dict[str, str], port: int, clients: list[dict[str, object]]
) -> dict[str, object]:
    """NetworkPolicy spec letting `clients` (peer dicts) reach pods matching `server` on `port`."""
    return {
        "podSelector": {"matchLabels": server},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": clients, "ports": [{"protocol": "TCP", "port": port}]}],
    }


def pods(app: str) -> dict[str, object]:
    """A NetworkPolicy peer: pods of `app` in the policy's own namespace."""
    return {"podSelector": {"matchLabels": selector(app)}}


def namespace_pods(namespace: str, match_labels: dict[str, str] | None = None) -> dict[str, object]:
    """A NetworkPolicy peer: pods (optionally matching labels) of another namespace."""
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": match_labels or {}},
    }


# Annotation prefix by which an object opts out of one policy-pack rule (policies/rules).
POLICY_EXEMPTION_PREFIX = "policy.mlops.platform/exempt-"


# Why checkov's digest checks are skipped on an object whose images carry tags only.
TAG_PINNED_REASON = (
    "image pinned by tag; the image-pinned policy decides (tags pass in dev, prod needs a digest or "
    "mlops:images.source stackRegistry)"
)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def skip_annotations(
    checkov: dict[str, str] | None = None,
    policies: dict[str, str] | None = None,
    images: Sequence[Any] = (),
) -> dict[str, str]:
    """Annotations recording, on the object itself, why a check does not apply to it.

    `checkov` maps check ids (CKV_K8S_35) to reasons, rendered as checkov's own
    `checkov.io/skip<N>: <id>=<reason>`; `policies` maps policy-pack rule names to reasons.
    `images` are the object's container images: one named by tag only gets checkov's digest
    checks (CKV_K8S_43, and CKV_K8S_15 which follows from it) skipped with TAG_PINNED_REASON;
    images resolved from the stack registry are digests.
    """
    checks = dict(checkov or {})
    if any(isinstance(image, str) and not DIGEST.search(image) for image in images):
        checks.update({"CKV_K8S_43": TAG_PINNED_REASON, "CKV_K8S_15": TAG_PINNED_REASON})
    annotations = {f"checkov.io/skip{n}": f"{check}={reason}" for n, (check, reason) in enumerate(sorted(checks.items()), 1)}
    annotations.update({POLICY_EXEMPTION_PREFIX + rule: reason for rule, reason in sorted((policies or {}).items())})
    return annotations
