"""The canary guard (monitoring/canary/guard.py): one Deployment judging every model in canary.

One Deployment for all models rather than a CronJob per canary: it reacts within its interval
(30 s) instead of a cron minute plus a pod start on the runtime image; one identity, one Role and one
metrics target whatever the number of canaries; and a canary coming or going is a ConfigMap change,
not a CronJob created or deleted. It runs in the monitoring namespace beside Prometheus.

RBAC: in each namespace that runs models (the shared one and every team's) it may read and patch InferenceServices (read to know the current
traffic and resourceVersion it patches against) and create the Events that say why; nothing else,
nowhere else. Its /metrics (mlops_canary_verdict) is scraped through a Service and a ServiceMonitor (job "canary-guard").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.declarations import ModelDeployment
from components.model.serving import DeploymentMode, predictor_name
from components.namespaces import MONITORING, SERVING
from components.declarations import model_namespace
from components.teams import per_namespace_name

APP = "canary-guard"
METRICS_PORT = 9090
CONFIG_DIR = "/etc/canary-guard"
CONFIG_FILE = "guard.json"
INTERVAL_SECONDS = 30
API_TOKEN_REASON = "the guard reads and patches InferenceServices and creates Events through the API server with its own service account token"
# kube-prometheus-stack's Prometheus Service (release "kube-prometheus-stack").
PROMETHEUS_URL = f"http://kube-prometheus-stack-prometheus.{MONITORING}.svc:9090"


def in_canary(model: ModelDeployment) -> bool:
    """A new version shares the traffic: what the guard judges (0 = already rolled back, 100 = promoted)."""
    return model.canary is not None and 0 < model.canary.traffic_percent < 100


def guard_config(models: list[ModelDeployment], mode: DeploymentMode) -> dict[str, Any]:
    """The guard's config file: Prometheus and every canary with its declared gates."""
    canaries = []
    for model in filter(in_canary, models):
        assert model.canary is not None
        entry: dict[str, Any] = {
            "namespace": model_namespace(model),
            "inferenceService": model.name,
            "model": model.name,
            "canaryVersion": model.model.deployed_version,
            "mode": mode,
            "gates": model.canary.gates.model_dump(by_alias=True, mode="json"),
        }
        if mode == "RawDeployment":
            entry["canaryPredictor"] = predictor_name(model.model.deployed_version)
        canaries.append(entry)
    return {"prometheusUrl": PROMETHEUS_URL, "canaries": canaries}


def guard_role_rules() -> list[dict[str, Any]]:
    return [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def guard_deployment_spec(image: pulumi.Input[str], account: pulumi.Input[str], config_map: pulumi.Input[str], config_hash: str) -> dict[str, Any]:
    labels = workloads.labels(APP, "canary-guard")
    return {
        "replicas": 1,
        # Two guards would race on the same patch (the resourceVersion test makes one fail, harmlessly).
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": workloads.selector(APP)},
        "template": {
            # A changed canary list rolls the pod, which reads the file once at start.
            "metadata": {"labels": labels, "annotations": {"mlops.platform/config-hash": config_hash}},
            "spec": {
                "serviceAccountName": account,
                "securityContext": workloads.RESTRICTED_POD_SECURITY,
                "containers": [
                    {
                        "name": "guard",
                        "image": image,
                        "command": ["python", "-m", "monitoring.canary.guard"],
                        "args": [
                            "--config", f"{CONFIG_DIR}/{CONFIG_FILE}",
                            "--interval", str(INTERVAL_SECONDS),
                            "--metrics-port", str(METRICS_PORT),
                        ],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "readinessProbe": workloads.http_probe("/metrics", "metrics", period=10),
                        "livenessProbe": workloads.http_probe("/metrics", "metrics", initial_delay=10, period=30),
                        "resources": workloads.resources("50m", "128Mi", cpu_limit="250m"),
                        "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
                        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "config", "configMap": {"name": config_map}}],
            },
        },
    }


@dataclass(frozen=True)
class CanaryGuardArgs:
    image: pulumi.Input[str]
    models: list[ModelDeployment]
    mode: DeploymentMode
    # The Prometheus operator's CRDs (ServiceMonitor).
    monitoring_crds: list[pulumi.Resource]
    namespace: str = MONITORING
    # Where the guard may patch InferenceServices: every namespace that runs models.
    model_namespaces: Sequence[str] = (SERVING,)


class CanaryGuard(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(self, name: str, args: CanaryGuardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:CanaryGuard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = workloads.labels(APP, "canary-guard")
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels), opts=child
        )
        for namespace in args.model_namespaces:
            role = k8s.rbac.v1.Role(
                per_namespace_name(f"{name}-role", namespace),
                metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=namespace, labels=labels),
                rules=guard_role_rules(),
                opts=child,
            )
            k8s.rbac.v1.RoleBinding(
                per_namespace_name(f"{name}-binding", namespace),
                metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=namespace, labels=labels),
                role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
                subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name, namespace=args.namespace)],
                opts=child,
            )
        config_text = json.dumps(guard_config(args.models, args.mode), indent=2, sort_keys=True)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            data={CONFIG_FILE: config_text},
            opts=child,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=args.namespace,
                labels=labels,
                annotations=workloads.skip_annotations(checkov={"CKV_K8S_38": API_TOKEN_REASON}, images=[args.image]),
            ),
            spec=guard_deployment_spec(args.image, account.metadata.name, config.metadata.name, hashlib.sha256(config_text.encode()).hexdigest()[:16]),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]},
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            spec={
                "selector": {"matchLabels": workloads.selector(APP)},
                # The verdict carries the canary's own namespace label; the target's (monitoring) must not replace it.
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service, *args.monitoring_crds]),
        )
        self.register_outputs({})
