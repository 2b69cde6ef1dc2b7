"""The identity every model's drift job shares in the serving namespace.

The `drift-job` service account is named as the cloud foundations' workload identities expect it
(it reads artifacts and payloads and pushes metrics); the model servers' own account
(`model-server`, read-only artifact access) comes with KServe (`components.platform.kserve`), and the
serving namespace's network flows (Prometheus scrapes, platform services, Pushgateway, cloud
APIs) with `components.namespaces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.model.observability import DRIFT_JOB_COMPONENT

DRIFT_JOB_ACCOUNT = "drift-job"


@dataclass(frozen=True)
class ModelServingAccessArgs:
    namespace: str
    # Binds the account to the cloud identity (IRSA role, GKE service account); empty on local.
    drift_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class ModelServingAccess(pulumi.ComponentResource):
    drift_account: k8s.core.v1.ServiceAccount
    drift_account_name: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServingAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelServingAccess", name, None, opts)
        self.drift_account = k8s.core.v1.ServiceAccount(
            f"{name}-drift-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DRIFT_JOB_ACCOUNT,
                namespace=args.namespace,
                labels=workloads.labels(DRIFT_JOB_ACCOUNT, DRIFT_JOB_COMPONENT),
                annotations=dict(args.drift_account_annotations) or None,
            ),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.drift_account_name = self.drift_account.metadata.name
        self.register_outputs({"drift_account": self.drift_account_name})
