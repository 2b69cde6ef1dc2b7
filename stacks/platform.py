"""The cloud-agnostic in-cluster layer, composed on whatever foundation the cloud produced."""

from __future__ import annotations

import pulumi

from components.interfaces import Foundation
from components.mlflow import MlflowServer, MlflowServerArgs
from components.namespaces import PLATFORM, PlatformNamespaces
from stacks.config import StackConfig


def build_platform(config: StackConfig, foundation: Foundation, namespaces: PlatformNamespaces) -> dict[str, pulumi.Input[object]]:
    opts = pulumi.ResourceOptions(provider=foundation.provider, depends_on=[namespaces, *foundation.cluster_ready])
    mlflow = MlflowServer(
        "mlflow",
        MlflowServerArgs(
            namespace=PLATFORM,
            image=config.mlflow.image,
            database=foundation.database,
            object_store=foundation.object_store,
            replicas=config.mlflow.replicas,
            service_account_annotations=foundation.identity_annotations.get("mlflow", {}),
        ),
        opts,
    )
    return {"mlflowTrackingUri": mlflow.tracking_uri}
