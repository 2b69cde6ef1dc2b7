"""The identities every model's Jobs share in the serving namespace.

The `drift-job`, `training-job` and `batch-job` service accounts are named as the cloud
foundations' workload identities expect them: the drift job reads artifacts and payloads and writes
reports; the training Job reads reference data and payloads (MLflow writes go through its server);
batch scoring reads input partitions and writes under batch-output/. The model servers' own account
(`model-server`, read-only artifact access) comes with KServe (`components.platform.kserve`), and
the serving namespace's network flows (Prometheus scrapes, platform services, Pushgateway, cloud
APIs) with `components.namespaces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.model.batch import BATCH_COMPONENT
from components.model.observability import DRIFT_JOB_COMPONENT
from components.model.training import TRAINING_COMPONENT

DRIFT_JOB_ACCOUNT = "drift-job"
TRAINING_JOB_ACCOUNT = "training-job"
BATCH_JOB_ACCOUNT = "batch-job"


@dataclass(frozen=True)
class ModelServingAccessArgs:
    namespace: str
    # Bind each account to its cloud identity (IRSA role, GKE service account), by workload name; empty on local.
    identity_annotations: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=dict)


class ModelServingAccess(pulumi.ComponentResource):
    drift_account: k8s.core.v1.ServiceAccount
    drift_account_name: pulumi.Output[str]
    training_account_name: pulumi.Output[str]
    batch_account_name: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServingAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelServingAccess", name, None, opts)
        self.drift_account = self._account(name, DRIFT_JOB_ACCOUNT, DRIFT_JOB_COMPONENT, args)
        self.drift_account_name = self.drift_account.metadata.name
        self.training_account_name = self._account(name, TRAINING_JOB_ACCOUNT, TRAINING_COMPONENT, args).metadata.name
        self.batch_account_name = self._account(name, BATCH_JOB_ACCOUNT, BATCH_COMPONENT, args).metadata.name
        self.register_outputs(
            {"drift_account": self.drift_account_name, "training_account": self.training_account_name, "batch_account": self.batch_account_name}
        )

    def _account(self, name: str, account: str, component: str, args: ModelServingAccessArgs) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(
            f"{name}-{account}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=account,
                namespace=args.namespace,
                labels=workloads.labels(account, component),
                annotations=dict(args.identity_annotations.get(account, {})) or None,
            ),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
