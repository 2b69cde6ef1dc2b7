"""PostgreSQL inside the cluster, the MLflow backend store on the `local` target.

Clouds use RDS / Cloud SQL; both produce the same `Database` interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import workloads
from components.interfaces import Database

APP = "postgres"
PORT = 5432
CREDENTIALS_DIR = "/run/secrets/postgres"
# The official image reads each of these from the file named by <VAR>_FILE.
CREDENTIAL_VARIABLES = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
WRITABLE_ROOT_REASON = (
    "the official postgres image writes its socket and lock files under /var/run/postgresql "
    "and its entrypoint generates passwd entries at start"
)


@dataclass(frozen=True)
class InClusterPostgresArgs:
    namespace: pulumi.Input[str]
    image: str
    storage_gib: int
    storage_class: str
    database: str = "mlflow"
    username: str = "mlflow"
    client_app: str = "mlflow"


class InClusterPostgres(pulumi.ComponentResource):
    database: Database

    def __init__(self, name: str, args: InClusterPostgresArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:database:InClusterPostgres", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-credentials", namespace=args.namespace),
            string_data={"POSTGRES_USER": args.username, "POSTGRES_PASSWORD": password.result, "POSTGRES_DB": args.database},
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "database")),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "postgres", "port": PORT, "targetPort": "postgres"}]},
            opts=child,
        )
        pg_isready = {"exec": {"command": ["pg_isready", "-U", args.username, "-d", args.database]}}
        k8s.apps.v1.StatefulSet(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=args.namespace,
                labels=workloads.labels(APP, "database"),
                annotations=workloads.skip_annotations(
                    checkov={"CKV_K8S_22": WRITABLE_ROOT_REASON},
                    policies={"container-read-only-root-filesystem": WRITABLE_ROOT_REASON},
                    images=[args.image],
                ),
            ),
            spec={
                "serviceName": service.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": workloads.selector(APP)},
                "template": {
                    "metadata": {"labels": workloads.labels(APP, "database")},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {**workloads.RESTRICTED_POD_SECURITY, "fsGroup": workloads.UNPRIVILEGED_USER},
                        "containers": [
                            {
                                "name": "postgres",
                                "image": args.image,
                                "env": [
                                    {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                                    *[
                                        {"name": f"{variable}_FILE", "value": f"{CREDENTIALS_DIR}/{variable}"}
                                        for variable in CREDENTIAL_VARIABLES
                                    ],
                                ],
                                "ports": [{"name": "postgres", "containerPort": PORT}],
                                "readinessProbe": {**pg_isready, "periodSeconds": 10},
                                "livenessProbe": {**pg_isready, "initialDelaySeconds": 30, "periodSeconds": 20, "failureThreshold": 6},
                                "resources": workloads.resources("250m", "512Mi", cpu_limit="1"),
                                "securityContext": workloads.restricted_container_security(
                                    read_only_root=False, run_as_user=workloads.UNPRIVILEGED_USER
                                ),
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                    {"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True},
                                ],
                            }
                        ],
                        # Group-readable: the server runs as an arbitrary user in the pod's fsGroup.
                        "volumes": [{"name": "credentials", "secret": {"secretName": secret.metadata.name, "defaultMode": 0o440}}],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": args.storage_class,
                            "resources": {"requests": {"storage": f"{args.storage_gib}Gi"}},
                        },
                    }
                ],
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-clients",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{APP}-clients", namespace=args.namespace),
            spec=workloads.allow_ingress_spec(workloads.selector(APP), PORT, [workloads.pods(args.client_app)]),
            opts=child,
        )
        host = pulumi.Output.concat(service.metadata.name, ".", args.namespace, ".svc")
        self.database = Database(
            host=host, port=PORT, name=args.database, username=args.username, password=pulumi.Output.secret(password.result)
        )
        self.register_outputs({"host": host})
