"""An S3-compatible object store inside the cluster, for the `local` target.

SeaweedFS (`weed mini`: master, volume server, filer and S3 gateway in one process, Apache-2.0)
replaced MinIO, whose community edition went into maintenance mode (kserve #4767); docs/object-store.md
compares the candidates. The image is an input pinned by digest and the rest of the platform only
sees the `ObjectStore` interface (endpoint, buckets, credentials secret). `weed mini` turns
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY into its admin S3 identity (weed/command/mini.go).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import workloads
from components.interfaces import ObjectStore

APP = "object-store"
PORT = 9000
CREDENTIALS_SECRET = "object-store-credentials"
# (artifacts, payloads): the in-cluster store's buckets, fixed names the stack's locations resolve against.
LOCAL_BUCKETS: tuple[str, str] = ("mlflow-artifacts", "inference-payloads")


@dataclass(frozen=True)
class InClusterObjectStoreArgs:
    namespace: pulumi.Input[str]
    image: str
    storage_gib: int
    storage_class: str
    # An image with python and boto3 (the MLflow image) runs the bucket-creation Job.
    tools_image: str
    buckets: tuple[str, ...] = LOCAL_BUCKETS
    # Namespaces whose workloads read/write the buckets; each gets a copy of the credentials.
    client_namespaces: tuple[str, ...] = ()


class InClusterObjectStore(pulumi.ComponentResource):
    object_store: ObjectStore

    def __init__(self, name: str, args: InClusterObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:InClusterObjectStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        access_key = random.RandomPassword(f"{name}-access-key", length=20, special=False, opts=child)
        secret_key = random.RandomPassword(f"{name}-secret-key", length=40, special=False, opts=child)
        credentials = {
            "AWS_ACCESS_KEY_ID": access_key.result,
            "AWS_SECRET_ACCESS_KEY": secret_key.result,
        }
        for namespace in (args.namespace, *args.client_namespaces):
            k8s.core.v1.Secret(
                f"{name}-credentials-{namespace}" if namespace != args.namespace else f"{name}-credentials",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CREDENTIALS_SECRET, namespace=namespace),
                string_data=credentials,
                opts=child,
            )
        volume = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{APP}-data", namespace=args.namespace),
            spec={
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": args.storage_class,
                "resources": {"requests": {"storage": f"{args.storage_gib}Gi"}},
            },
            opts=child,
        )
        server = self._server(name, args, volume, child)
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=workloads.labels(APP, "storage")),
            spec={"selector": workloads.selector(APP), "ports": [{"name": "s3", "port": PORT, "targetPort": "s3"}]},
            opts=child,
        )
        endpoint = pulumi.Output.concat("http://", service.metadata.name, ".", args.namespace, ".svc:", str(PORT))
        self._create_buckets(name, args, endpoint, pulumi.ResourceOptions(parent=self, depends_on=[server, service]))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-clients",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"allow-{APP}-clients", namespace=args.namespace),
            spec=workloads.allow_ingress_spec(
                workloads.selector(APP),
                PORT,
                [{"podSelector": {}}, *[workloads.namespace_pods(ns) for ns in args.client_namespaces]],
            ),
            opts=child,
        )
        self.object_store = ObjectStore(
            scheme="s3",
            artifact_bucket=args.buckets[0],
            payload_bucket=args.buckets[1],
            endpoint=endpoint,
            credentials_secret=CREDENTIALS_SECRET,
        )
        self.register_outputs({"endpoint": endpoint, "buckets": list(args.buckets)})

    def _server(
        self, name: str, args: InClusterObjectStoreArgs, volume: k8s.core.v1.PersistentVolumeClaim, child: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        return k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=args.namespace,
                labels=workloads.labels(APP, "storage"),
                annotations=workloads.skip_annotations(checkov={"CKV_K8S_35": workloads.STATIC_S3_KEYS_REASON}, images=[args.image]),
            ),
            spec={
                "replicas": 1,
                # One writer on a ReadWriteOnce volume: the old pod must stop before the new starts.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": workloads.selector(APP)},
                "template": {
                    "metadata": {"labels": workloads.labels(APP, "storage")},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {**workloads.RESTRICTED_POD_SECURITY, "fsGroup": workloads.UNPRIVILEGED_USER},
                        "containers": [
                            {
                                "name": "server",
                                "image": args.image,
                                "command": ["/usr/bin/weed"],
                                # S3 on the platform's object-store port; no WebDAV, admin UI or
                                # Iceberg catalog listening besides it.
                                "args": ["mini", "-dir=/data", f"-s3.port={PORT}", "-s3.port.iceberg=0", "-webdav=false", "-admin.ui=false"],
                                "envFrom": [{"secretRef": {"name": CREDENTIALS_SECRET}}],
                                "ports": [{"name": "s3", "containerPort": PORT}],
                                "readinessProbe": {"tcpSocket": {"port": "s3"}, "periodSeconds": 10},
                                "livenessProbe": {"tcpSocket": {"port": "s3"}, "initialDelaySeconds": 15, "periodSeconds": 20},
                                "resources": workloads.resources("250m", "512Mi", cpu_limit="1"),
                                "securityContext": workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [
                            {"name": "data", "persistentVolumeClaim": {"claimName": volume.metadata.name}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
            opts=child,
        )

    def _create_buckets(
        self, name: str, args: InClusterObjectStoreArgs, endpoint: pulumi.Output[str], opts: pulumi.ResourceOptions
    ) -> None:
        # Buckets are made through the S3 API itself, so the same Job works on any S3 server.
        script = "\n".join(
            ["set -eu"]
            + [
                "python -c \"import boto3,os; s3=boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT']); "
                f"b='{bucket}'; "
                "names=[x['Name'] for x in s3.list_buckets().get('Buckets', [])]; "
                "b in names or s3.create_bucket(Bucket=b)\""
                for bucket in args.buckets
            ]
        )
        k8s.batch.v1.Job(
            f"{name}-create-buckets",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{APP}-create-buckets",
                namespace=args.namespace,
                annotations=workloads.skip_annotations(checkov={"CKV_K8S_35": workloads.STATIC_S3_KEYS_REASON}, images=[args.tools_image]),
            ),
            spec={
                "backoffLimit": 10,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": workloads.labels(f"{APP}-create-buckets", "storage")},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": workloads.RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "create-buckets",
                                "image": args.tools_image,
                                "command": ["sh", "-c", script],
                                "env": [
                                    {"name": "S3_ENDPOINT", "value": endpoint},
                                    workloads.secret_env("AWS_ACCESS_KEY_ID", CREDENTIALS_SECRET, "AWS_ACCESS_KEY_ID"),
                                    workloads.secret_env("AWS_SECRET_ACCESS_KEY", CREDENTIALS_SECRET, "AWS_SECRET_ACCESS_KEY"),
                                    {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
                                ],
                                "resources": workloads.resources("50m", "128Mi"),
                                "securityContext": workloads.restricted_container_security(run_as_user=65532),
                            }
                        ],
                    },
                },
            },
            opts=opts,
        )

