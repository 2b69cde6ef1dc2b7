"""Workload Identity: one Google service account per workload, least privilege, no keys.

Each Google service account may be impersonated by exactly one Kubernetes service account
(`roles/iam.workloadIdentityUser` granted to `<project>.svc.id.goog[<namespace>/<name>]`), or for the
workloads beside the models by that service account in each namespace that runs models (one binding
per namespace: the shared one and every team's), and
holds only object roles on the specific buckets its workload uses. No JSON key is ever created:
pods get short-lived tokens from the GKE metadata server.

With customer-managed keys on the buckets, workloads need no KMS role: the Cloud Storage service
agent encrypts and decrypts on their behalf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.interfaces import service_accounts_text

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
SERVICE_ACCOUNT_ANNOTATION = "iam.gke.io/gcp-service-account"
# Read objects (and list them); create objects only; full control of objects (no bucket settings).
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_CREATOR = "roles/storage.objectCreator"
OBJECT_ADMIN = "roles/storage.objectAdmin"
ACCOUNT_ID_MAX = 30


def service_account_id(prefix: str, purpose: str) -> str:
    """`<prefix>-<purpose>`, shortened with a stable digest to fit IAM's 30-character limit."""
    account_id = f"{prefix}-{purpose}"
    if len(account_id) <= ACCOUNT_ID_MAX:
        return account_id
    digest = hashlib.sha256(account_id.encode()).hexdigest()[:6]
    room = ACCOUNT_ID_MAX - len(purpose) - len(digest) - 2
    return f"{prefix[:room].rstrip('-')}-{digest}-{purpose}"


def kubernetes_member(pool: str, namespace: str, service_account: str) -> str:
    """The IAM principal of one Kubernetes service account in a Workload Identity pool."""
    return f"serviceAccount:{pool}[{namespace}/{service_account}]"


@dataclass(frozen=True)
class BucketGrant:
    # Names the grant's resource (the bucket name itself is only known once created).
    label: str
    bucket: pulumi.Input[str]
    role: str


@dataclass(frozen=True)
class WorkloadAccount:
    workload: str
    namespaces: tuple[str, ...]
    service_account: str
    grants: tuple[BucketGrant, ...]


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    account_prefix: str
    workload_pool: str
    accounts: Sequence[WorkloadAccount]
    # The project's Workload Identity pool exists only once a cluster using it does: bindings to
    # it are created after the cluster.
    wait_for: Sequence[pulumi.Resource] = ()


class WorkloadIdentity(pulumi.ComponentResource):
    emails: dict[str, pulumi.Output[str]]
    annotations: dict[str, dict[str, pulumi.Input[str]]]
    # Workload Identity bindings: pods of a workload can authenticate only after its binding.
    bindings: list[gcp.serviceaccount.IAMMember]

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:WorkloadIdentity", name, None, opts)
        self.emails = {}
        self.annotations = {}
        self.bindings = []
        for spec in args.accounts:
            account = self._account(f"{name}-{spec.workload}", spec, args)
            self.emails[spec.workload] = account.email
            self.annotations[spec.workload] = {SERVICE_ACCOUNT_ANNOTATION: account.email}
        self.register_outputs({"emails": self.emails})

    def _account(self, name: str, spec: WorkloadAccount, args: WorkloadIdentityArgs) -> gcp.serviceaccount.Account:
        child = pulumi.ResourceOptions(parent=self)
        accounts_text = service_accounts_text(spec.namespaces, spec.service_account)
        account = gcp.serviceaccount.Account(
            name,
            account_id=service_account_id(args.account_prefix, spec.workload),
            display_name=f"{spec.workload} ({accounts_text})",
            description=f"Workload Identity of Kubernetes service account {accounts_text}",
            opts=child,
        )
        for position, namespace in enumerate(spec.namespaces):
            # The first namespace's binding keeps the name it had before teams existed.
            suffix = "" if position == 0 else f"-{namespace}"
            self.bindings.append(
                gcp.serviceaccount.IAMMember(
                    f"{name}-workload-identity{suffix}",
                    service_account_id=account.name,
                    role=WORKLOAD_IDENTITY_USER,
                    member=kubernetes_member(args.workload_pool, namespace, spec.service_account),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
                )
            )
        for grant in spec.grants:
            gcp.storage.BucketIAMMember(
                f"{name}-{grant.label}",
                bucket=grant.bucket,
                role=grant.role,
                member=account.member,
                opts=child,
            )
        return account
