"""The MLflow tracking server and model registry.

Backend store on PostgreSQL, artifacts proxied through the server (`--serve-artifacts`), so data
scientists need only the tracking URI and a user, never bucket credentials. The command lines and
the auth settings come from `components.platform.mlflow_server`, which the runtime tests run for real.

Own Deployment rather than the community chart (community-charts/mlflow): the chart's pods would
be opaque to `mlops validate` and the policy pack (they judge the objects the program declares,
and a chart's are rendered on the cluster side), the chart keeps basic-auth users in SQLite or a
second PostgreSQL database where this server keeps them in the tracking database, and its
migration init container and its secrets would still need the Pulumi-generated credentials and
workload identity wired in. A Deployment, a Service and an init container are little code.

- Authentication: the `basic-auth` app; the admin password is generated as a Pulumi secret and
  kept in the `mlflow-admin` Secret (also what Prometheus scrapes `/metrics` with). Users get READ
  on what they did not create, NO_PERMISSIONS once teams are declared; `MlflowTeams` gives every
  model's Jobs a machine user and grants.
- Migrations: an init container runs `mlflow db upgrade` before every server start. Two replicas
  starting at once on an empty database may race; the loser's init container fails and is
  restarted by the kubelet, and then finds the schema current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import workloads
from components.interfaces import Database, ObjectStore
from components.namespaces import GATEWAY_NAMESPACE
from components.platform.mlflow_server import (
    ADMIN_USERNAME,
    AUTH_CONFIG_ENV,
    AUTH_CONFIG_FILE,
    DEFAULT_PERMISSION,
    PORT,
    SECRET_KEY_ENV,
    auth_config,
    database_uri,
    in_cluster_hosts,
    server_args,
    upgrade_args,
)

APP = "mlflow"
BACKEND_SECRET = f"{APP}-backend-store"
AUTH_SECRET = f"{APP}-auth"
ADMIN_SECRET = f"{APP}-admin"
AUTH_DIR = "/etc/mlflow/auth"
METRICS_DIR = "/var/run/mlflow-metrics"
RUN_AS_USER = workloads.UNPRIVILEGED_USER
DEFAULT_PERMISSION_ANNOTATION = "mlops.platform/mlflow-default-permission"
SECRETS_AS_ENV_REASON = (
    "mlflow takes its backend store URI and Flask secret key only from flags or the environment, "
    "and a flag would show them in the process table; S3 keys: " + workloads.STATIC_S3_KEYS_REASON
)


@dataclass(frozen=True)
class MlflowServerArgs:
    namespace: str
    image: pulumi.Input[str]
    database: Database
    object_store: ObjectStore
    replicas: int = 1
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # Host name of the server's route on the platform gateway (components.platform.ui_routes), which
    # then reaches the server: the server accepts requests for it.
    hostname: str | None = None
    # Namespaces whose pods call the server (model serving, Prometheus).
    client_namespaces: tuple[str, ...] = ()
    # The Prometheus operator's CRDs: the ServiceMonitor needs them.
    monitoring_crds: list[pulumi.Resource] = field(default_factory=list)
    # What users get on experiments and models nothing grants them (`default_permission_for`).
    default_permission: str = DEFAULT_PERMISSION


def server_container(args: MlflowServerArgs, artifacts_destination: pulumi.Input[str]) -> dict[str, Any]:
    store = args.object_store
    env: list[dict[str, Any]] = [
        workloads.secret_env("MLFLOW_BACKEND_STORE_URI", BACKEND_SECRET, "MLFLOW_BACKEND_STORE_URI"),
        {"name": AUTH_CONFIG_ENV, "value": f"{AUTH_DIR}/{AUTH_CONFIG_FILE}"},
        workloads.secret_env(SECRET_KEY_ENV, AUTH_SECRET, "flask-secret-key"),
        # MLflow and its libraries write caches under $HOME; the root filesystem is read-only.
        {"name": "HOME", "value": "/tmp"},
    ]
    if store.endpoint is not None:
        env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": store.endpoint})
    if store.credentials_secret is not None:
        env += [
            workloads.secret_env("AWS_ACCESS_KEY_ID", store.credentials_secret, "AWS_ACCESS_KEY_ID"),
            workloads.secret_env("AWS_SECRET_ACCESS_KEY", store.credentials_secret, "AWS_SECRET_ACCESS_KEY"),
        ]
    hosts = in_cluster_hosts(APP, args.namespace, PORT, args.hostname)
    return {
        "name": "mlflow",
        "image": args.image,
        "command": ["mlflow"],
        "args": pulumi.Output.from_input(artifacts_destination).apply(
            lambda destination: server_args(
                # Kubernetes expands $(VAR) from the container's env: the URI never appears in the spec.
                backend_store_uri="$(MLFLOW_BACKEND_STORE_URI)",
                artifacts_destination=destination,
                allowed_hosts=hosts,
                metrics_dir=METRICS_DIR,
            )
        ),
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "startupProbe": {**workloads.http_probe("/health", "http", initial_delay=5, period=5), "failureThreshold": 60},
        "readinessProbe": workloads.http_probe("/health", "http"),
        "livenessProbe": workloads.http_probe("/health", "http", initial_delay=30),
        "resources": workloads.resources("250m", "1Gi", cpu_limit="1"),
        "securityContext": workloads.restricted_container_security(run_as_user=RUN_AS_USER),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "metrics", "mountPath": METRICS_DIR},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
    }


def migration_container(image: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "name": "db-upgrade",
        "image": image,
        "command": ["mlflow"],
        "args": upgrade_args("$(MLFLOW_BACKEND_STORE_URI)"),
        "env": [
            workloads.secret_env("MLFLOW_BACKEND_STORE_URI", BACKEND_SECRET, "MLFLOW_BACKEND_STORE_URI"),
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": workloads.resources("100m", "512Mi", cpu_limit="1"),
        "securityContext": workloads.restricted_container_security(run_as_user=RUN_AS_USER),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def client_peers(client_namespaces: tuple[str, ...], public: bool) -> list[dict[str, Any]]:
    """Who may open connections to the server: its own namespace, the clients, and (with a route on
    the platform gateway) the gateway's Envoy proxies."""
    peers = [{"podSelector": {}}, *[workloads.namespace_pods(namespace) for namespace in client_namespaces]]
    return [*peers, workloads.namespace_pods(GATEWAY_NAMESPACE)] if public else peers


class MlflowServer(pulumi.ComponentResource):
    tracking_uri: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    admin_secret_name: str

    def __init__(self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Mlflow", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secrets = self._create_secrets(name, args, child)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP, namespace=args.namespace, annotations=args.service_account_annotations or None
            ),
            opts=child,
        )
        self._deployment(name, args, account, pulumi.ResourceOptions(parent=self, depends_on=secrets))
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "tracking")),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-clients",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{APP}-clients", namespace=args.namespace),
            spec=workloads.allow_ingress_spec(
                workloads.selector(APP), PORT, client_peers(args.client_namespaces, public=args.hostname is not None)
            ),
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "tracking")),
            spec={
                "selector": {"matchLabels": workloads.selector(APP)},
                "endpoints": [
                    {
                        "port": "http",
                        "path": "/metrics",
                        "interval": "30s",
                        # Every MLflow route but /health sits behind basic auth.
                        "basicAuth": {
                            "username": {"name": ADMIN_SECRET, "key": "username"},
                            "password": {"name": ADMIN_SECRET, "key": "password"},
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.monitoring_crds),
        )
        self.tracking_uri = pulumi.Output.concat("http://", service.metadata.name, ".", args.namespace, ".svc:", str(PORT))
        self.admin_secret_name = ADMIN_SECRET
        self.register_outputs({"tracking_uri": self.tracking_uri, "admin_password": self.admin_password})

    def _create_secrets(self, name: str, args: MlflowServerArgs, child: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        db = args.database
        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        secret_key = random.RandomPassword(f"{name}-flask-secret-key", length=48, special=False, opts=child)
        self.admin_password = pulumi.Output.secret(admin_password.result)
        store_uri = pulumi.Output.secret(
            pulumi.Output.all(db.password, db.host, db.port).apply(
                lambda parts: database_uri(username=db.username, password=parts[0], host=parts[1], port=parts[2], database=db.name)
            )
        )
        ini = pulumi.Output.secret(
            pulumi.Output.all(store_uri, admin_password.result).apply(
                lambda parts: auth_config(database_uri=parts[0], admin_password=parts[1], default_permission=args.default_permission)
            )
        )
        return [
            k8s.core.v1.Secret(
                f"{name}-backend-store",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=BACKEND_SECRET, namespace=args.namespace),
                string_data={"MLFLOW_BACKEND_STORE_URI": store_uri},
                opts=child,
            ),
            k8s.core.v1.Secret(
                f"{name}-auth",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=AUTH_SECRET, namespace=args.namespace),
                string_data={AUTH_CONFIG_FILE: ini, "flask-secret-key": pulumi.Output.secret(secret_key.result)},
                opts=child,
            ),
            k8s.core.v1.Secret(
                f"{name}-admin",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ADMIN_SECRET, namespace=args.namespace),
                string_data={"username": ADMIN_USERNAME, "password": self.admin_password},
                opts=child,
            ),
        ]

    def _deployment(
        self, name: str, args: MlflowServerArgs, account: k8s.core.v1.ServiceAccount, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        store = args.object_store
        return k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=args.namespace,
                labels=workloads.labels(APP, "tracking"),
                annotations=workloads.skip_annotations(checkov={"CKV_K8S_35": SECRETS_AS_ENV_REASON}, images=[args.image]),
            ),
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": workloads.selector(APP)},
                "template": {
                    # The server reads its auth INI once at start: a changed default permission rolls the pods.
                    "metadata": {"labels": workloads.labels(APP, "tracking"), "annotations": {DEFAULT_PERMISSION_ANNOTATION: args.default_permission}},
                    "spec": {
                        "serviceAccountName": account.metadata.name,
                        # The server never calls the Kubernetes API; cloud identity webhooks mount their own token.
                        "automountServiceAccountToken": False,
                        "securityContext": workloads.RESTRICTED_POD_SECURITY,
                        "initContainers": [migration_container(args.image)],
                        "containers": [server_container(args, store.uri(store.artifact_bucket))],
                        "volumes": [
                            {"name": "tmp", "emptyDir": {}},
                            {"name": "metrics", "emptyDir": {}},
                            {"name": "auth", "secret": {"secretName": AUTH_SECRET}},
                        ],
                    },
                },
            },
            opts=opts,
        )
