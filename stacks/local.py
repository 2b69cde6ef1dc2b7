"""The `local` foundation: an existing cluster from a kubeconfig context (kind, minikube, k3d).

The cluster brings no object store or database, so both run inside it.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.interfaces import Foundation, GatewayExposure
from components.namespaces import PLATFORM, PlatformNamespaces
from components.declarations import model_namespaces
from components.foundation.local.object_store import InClusterObjectStore, InClusterObjectStoreArgs
from components.foundation.local.postgres import InClusterPostgres, InClusterPostgresArgs
from stacks.config import StackConfig

POSTGRES_IMAGE = "postgres:16.10-bookworm"


def build_local_foundation(config: StackConfig, namespaces: PlatformNamespaces, provider: k8s.Provider) -> Foundation:
    opts = pulumi.ResourceOptions(provider=provider, depends_on=[namespaces])
    store = InClusterObjectStore(
        "object-store",
        InClusterObjectStoreArgs(
            namespace=PLATFORM,
            image=config.object_store.image,
            storage_gib=config.object_store.storage_gib,
            storage_class=config.local.storage_class,
            tools_image=config.mlflow.image,
            client_namespaces=model_namespaces(config.teams),
        ),
        opts,
    )
    database = InClusterPostgres(
        "mlflow-db",
        InClusterPostgresArgs(
            namespace=PLATFORM,
            image=POSTGRES_IMAGE,
            storage_gib=config.database.storage_gib,
            storage_class=config.local.storage_class,
        ),
        opts,
    )
    return Foundation(
        provider=provider,
        cluster_name=config.local.kube_context,
        object_store=store.object_store,
        database=database.database,
        # No load balancer: reach the gateway with `kubectl port-forward` (docs/gateway.md).
        gateway_exposure=GatewayExposure(service_type="ClusterIP") if config.gateway.enabled else None,
        outputs={"kubeContext": config.local.kube_context},
    )


def local_provider(config: StackConfig) -> k8s.Provider:
    return k8s.Provider("local-cluster", k8s.ProviderArgs(context=config.local.kube_context))
