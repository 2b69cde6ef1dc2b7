"""The MLflow tracking server and model registry.

Backend store on PostgreSQL, artifacts proxied through the server (`--serve-artifacts`), so data
scientists need only the tracking URI, never bucket credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.interfaces import Database, ObjectStore

APP = "mlflow"
PORT = 5000


@dataclass(frozen=True)
class MlflowServerArgs:
    namespace: pulumi.Input[str]
    image: str
    database: Database
    object_store: ObjectStore
    replicas: int = 1
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class MlflowServer(pulumi.ComponentResource):
    tracking_uri: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Mlflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        db = args.database
        backend_uri = pulumi.Output.secret(
            pulumi.Output.format("postgresql://{0}:{1}@{2}:{3}/{4}", db.username, db.password, db.host, db.port, db.name)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-backend-store",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-backend-store", namespace=args.namespace),
            string_data={"MLFLOW_BACKEND_STORE_URI": backend_uri},
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP, namespace=args.namespace, annotations=args.service_account_annotations or None
            ),
            opts=child,
        )
        self._deployment(name, args, secret, account, child)
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "tracking")),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
            opts=child,
        )
        self.tracking_uri = pulumi.Output.concat("http://", service.metadata.name, ".", args.namespace, ".svc:", str(PORT))
        self.register_outputs({"tracking_uri": self.tracking_uri})

    def _deployment(
        self,
        name: str,
        args: MlflowServerArgs,
        secret: k8s.core.v1.Secret,
        account: k8s.core.v1.ServiceAccount,
        child: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        store = args.object_store
        env: list[dict[str, object]] = [workloads.secret_env("MLFLOW_BACKEND_STORE_URI", APP + "-backend-store", "MLFLOW_BACKEND_STORE_URI")]
        if store.endpoint is not None:
            env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": store.endpoint})
        if store.credentials_secret is not None:
            env += [
                workloads.secret_env("AWS_ACCESS_KEY_ID", store.credentials_secret, "AWS_ACCESS_KEY_ID"),
                workloads.secret_env("AWS_SECRET_ACCESS_KEY", store.credentials_secret, "AWS_SECRET_ACCESS_KEY"),
            ]
        return k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "tracking")),
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": workloads.selector(APP)},
                "template": {
                    "metadata": {"labels": workloads.labels(APP, "tracking")},
                    "spec": {
                        "serviceAccountName": account.metadata.name,
                        "securityContext": workloads.RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "mlflow",
                                "image": args.image,
                                "command": ["mlflow", "server"],
                                "args": [
                                    "--backend-store-uri", "$(MLFLOW_BACKEND_STORE_URI)",
                                    "--artifacts-destination", store.uri(store.artifact_bucket),
                                    "--serve-artifacts",
                                    "--host", "0.0.0.0",
                                    "--port", str(PORT),
                                ],
                                "env": env,
                                "ports": [{"name": "http", "containerPort": PORT}],
                                "readinessProbe": workloads.http_probe("/health", "http"),
                                "livenessProbe": workloads.http_probe("/health", "http", initial_delay=30),
                                "resources": workloads.resources("250m", "1Gi", cpu_limit="1"),
                                "securityContext": workloads.restricted_container_security(run_as_user=1000),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )
