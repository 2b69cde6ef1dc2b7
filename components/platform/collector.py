"""The payload collector: the HTTP sink of KServe's inference logger (`serving/collector`).

It pairs each request with its response and writes Parquet rows to the payload bucket. Events are
spooled to a write-ahead log before they are acknowledged, so the spool is a persistent volume:
rows not yet written survive a rescheduled pod, not only a restarted container. One replica with
`Recreate`, because the volume is ReadWriteOnce and the spool has a single writer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.interfaces import ObjectStore

APP = "payload-collector"
PORT = 8080
SPOOL_DIR = "/var/spool/collector"
PAYLOAD_PREFIX = "payloads"
# The collector's own drain after SIGTERM (`shutdownTimeoutSeconds`, 20 s) must fit in the grace period.
TERMINATION_GRACE_SECONDS = 45
# The user images/runtime.Dockerfile creates.
RUN_AS_USER = workloads.UNPRIVILEGED_USER


@dataclass(frozen=True)
class CollectorModel:
    """One InferenceService the collector receives events from (its `models[]` setting)."""

    inference_service: str
    version: str
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    # Share of inferences the collector stores (mlops:models[].monitoring.payloadSampleRate).
    sample_rate: float = 1.0

    def setting(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"inferenceService": self.inference_service, "model": self.inference_service, "version": self.version}
        if self.sample_rate < 1:
            entry["sampleRate"] = self.sample_rate
        if self.input_names:
            entry["inputNames"] = self.input_names
        if self.output_names:
            entry["outputNames"] = self.output_names
        return entry


def collector_env(store: ObjectStore, store_uri: pulumi.Input[str], models: list[CollectorModel]) -> list[dict[str, Any]]:
    """The `COLLECTOR_*` settings (and store credentials) of the container."""
    env: list[dict[str, Any]] = [
        {"name": "COLLECTOR_STORE_URI", "value": store_uri},
        {"name": "COLLECTOR_SPOOL_DIR", "value": SPOOL_DIR},
        {"name": "COLLECTOR_HOST", "value": "0.0.0.0"},
        {"name": "COLLECTOR_PORT", "value": str(PORT)},
        {"name": "COLLECTOR_MODELS", "value": json.dumps([m.setting() for m in models], sort_keys=True)},
    ]
    if store.endpoint is not None:
        # An S3 server of our own ignores regions, but boto3 needs one; on AWS the identity
        # webhook injects the cluster's region.
        env += [
            {"name": "COLLECTOR_S3_ENDPOINT_URL", "value": store.endpoint},
            {"name": "AWS_DEFAULT_REGION", "value": store.region or "us-east-1"},
        ]
    if store.credentials_secret is not None:
        env += [
            workloads.secret_env("AWS_ACCESS_KEY_ID", store.credentials_secret, "AWS_ACCESS_KEY_ID"),
            workloads.secret_env("AWS_SECRET_ACCESS_KEY", store.credentials_secret, "AWS_SECRET_ACCESS_KEY"),
        ]
    return env


@dataclass(frozen=True)
class PayloadCollectorArgs:
    namespace: str
    image: pulumi.Input[str]
    object_store: ObjectStore
    models: list[CollectorModel] = field(default_factory=list)
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    storage_class: str | None = None
    spool_gib: int = 5
    # Namespaces whose pods send events (model serving) or scrape metrics (Prometheus).
    client_namespaces: tuple[str, ...] = ()
    monitoring_crds: list[pulumi.Resource] = field(default_factory=list)


class PayloadCollector(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: PayloadCollectorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:PayloadCollector", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP, namespace=args.namespace, annotations=args.service_account_annotations or None
            ),
            opts=child,
        )
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{args.spool_gib}Gi"}}}
        if args.storage_class is not None:
            claim["storageClassName"] = args.storage_class
        spool = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-spool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-spool", namespace=args.namespace),
            spec=claim,
            opts=child,
        )
        self._deployment(name, args, account, spool, child)
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "monitoring")),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-clients",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{APP}-clients", namespace=args.namespace),
            spec=workloads.allow_ingress_spec(
                workloads.selector(APP), PORT, [workloads.namespace_pods(namespace) for namespace in args.client_namespaces]
            ),
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "monitoring")),
            spec={
                "selector": {"matchLabels": workloads.selector(APP)},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.monitoring_crds),
        )
        self.url = pulumi.Output.concat("http://", service.metadata.name, ".", args.namespace, ".svc:", str(PORT))
        self.register_outputs({"url": self.url})

    def _deployment(
        self,
        name: str,
        args: PayloadCollectorArgs,
        account: k8s.core.v1.ServiceAccount,
        spool: k8s.core.v1.PersistentVolumeClaim,
        child: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        store = args.object_store
        container = {
            "name": "collector",
            "image": args.image,
            "command": ["python", "-m", "serving.collector"],
            "env": collector_env(store, store.uri(store.payload_bucket, PAYLOAD_PREFIX), args.models),
            "ports": [{"name": "http", "containerPort": PORT}],
            # Ready once the spool is replayed and the store answered a probe write.
            "readinessProbe": workloads.http_probe("/ready", "http", period=5),
            "livenessProbe": workloads.http_probe("/healthz", "http", initial_delay=10),
            "resources": workloads.resources("100m", "512Mi", cpu_limit="1"),
            "securityContext": workloads.restricted_container_security(run_as_user=RUN_AS_USER),
            "volumeMounts": [{"name": "spool", "mountPath": SPOOL_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
        }
        secrets_as_env = {"CKV_K8S_35": workloads.STATIC_S3_KEYS_REASON} if store.credentials_secret is not None else {}
        return k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=args.namespace,
                labels=workloads.labels(APP, "monitoring"),
                annotations=workloads.skip_annotations(checkov=secrets_as_env, images=[args.image]),
            ),
            spec={
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": workloads.selector(APP)},
                "template": {
                    "metadata": {"labels": workloads.labels(APP, "monitoring")},
                    "spec": {
                        "serviceAccountName": account.metadata.name,
                        # The collector never calls the Kubernetes API; cloud identity webhooks mount their own token.
                        "automountServiceAccountToken": False,
                        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                        "securityContext": {**workloads.RESTRICTED_POD_SECURITY, "fsGroup": RUN_AS_USER},
                        "containers": [container],
                        "volumes": [
                            {"name": "spool", "persistentVolumeClaim": {"claimName": spool.metadata.name}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
            opts=child,
        )
