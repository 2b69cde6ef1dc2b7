"""IAM roles for service accounts (IRSA): one least-privilege role per workload, no static keys.

Each role trusts only the cluster's OIDC provider, only for tokens issued to exact
`system:serviceaccount:<namespace>:<name>` subjects with the STS audience: one service account, or
for the workloads beside the models the same service account in each namespace that runs models
(the shared one and every team's). No other pod, namespace or cluster can assume it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.interfaces import service_accounts_text

STS_AUDIENCE = "sts.amazonaws.com"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
STS_REGIONAL_ENDPOINTS_ANNOTATION = "eks.amazonaws.com/sts-regional-endpoints"

BucketAccess = Literal["read", "write", "read-write"]

_LIST_BUCKET = ["s3:GetBucketLocation", "s3:ListBucket"]
_READ_OBJECTS = ["s3:GetObject", "s3:GetObjectVersion"]
# The payload collector only adds new objects: no listing, reading or deleting.
_WRITE_OBJECTS = ["s3:AbortMultipartUpload", "s3:PutObject"]
_DELETE_OBJECTS = ["s3:DeleteObject"]


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespaces: Sequence[str], service_account: str) -> dict[str, Any]:
    """Trust policy letting exactly the service account `service_account` of each of `namespaces` assume the role."""
    issuer = issuer_url.removeprefix("https://")
    subjects = [f"system:serviceaccount:{namespace}:{service_account}" for namespace in namespaces]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        # A list in StringEquals matches any one of its values.
                        f"{issuer}:sub": subjects[0] if len(subjects) == 1 else subjects,
                        f"{issuer}:aud": STS_AUDIENCE,
                    }
                },
            }
        ],
    }


def service_account_annotations(role_arn: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """What a service account carries to run its pods as `role_arn`."""
    return {
        ROLE_ARN_ANNOTATION: role_arn,
        # Token exchanges go to the regional STS (reached through the VPC endpoint).
        STS_REGIONAL_ENDPOINTS_ANNOTATION: "true",
    }


@dataclass(frozen=True)
class BucketGrant:
    bucket_arn: pulumi.Input[str]
    access: BucketAccess
    # Limits the object actions to keys under this prefix ("" = the whole bucket).
    prefix: str = ""


def bucket_access_policy(grants: Sequence[BucketGrant], kms_key_arn: pulumi.Input[str] | None) -> dict[str, Any]:
    """Identity policy for `grants` (and the bucket key, when customer-managed), nothing more."""
    statements: list[dict[str, Any]] = []
    for index, grant in enumerate(grants):
        objects = pulumi.Output.concat(grant.bucket_arn, "/", grant.prefix, "*")
        object_actions = {
            "read": _READ_OBJECTS,
            "write": _WRITE_OBJECTS,
            "read-write": _READ_OBJECTS + _WRITE_OBJECTS + _DELETE_OBJECTS,
        }[grant.access]
        if grant.access != "write":
            statements.append({"Sid": f"ListBucket{index}", "Effect": "Allow", "Action": _LIST_BUCKET, "Resource": grant.bucket_arn})
        statements.append({"Sid": f"Objects{index}", "Effect": "Allow", "Action": sorted(object_actions), "Resource": objects})
    if kms_key_arn is not None:
        key_actions = {"kms:Decrypt"}
        if any(g.access != "read" for g in grants):
            # Writing an SSE-KMS object needs a data key; multipart uploads also decrypt it.
            key_actions.add("kms:GenerateDataKey")
        statements.append({"Sid": "BucketKey", "Effect": "Allow", "Action": sorted(key_actions), "Resource": kms_key_arn})
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class ServiceAccountRole:
    """One workload's role: who may assume it and what it may do."""

    workload: str
    namespaces: tuple[str, ...]
    service_account: str
    # An identity policy document (dict, may hold Outputs) granted inline.
    policy: dict[str, Any] | None = None
    managed_policy_arns: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    roles: list[ServiceAccountRole] = field(default_factory=list)


class WorkloadIdentity(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]
    roles: dict[str, aws.iam.Role]

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:WorkloadIdentity", name, None, opts)
        self.roles = {}
        self.role_arns = {}
        for spec in args.roles:
            role = self._role(name, args, spec)
            self.roles[spec.workload] = role
            self.role_arns[spec.workload] = role.arn
        self.register_outputs({"role_arns": self.role_arns})

    def _role(self, name: str, args: WorkloadIdentityArgs, spec: ServiceAccountRole) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer_url).apply(
            lambda values: json.dumps(irsa_trust_policy(values[0], values[1], spec.namespaces, spec.service_account))
        )
        role = aws.iam.Role(
            f"{name}-{spec.workload}",
            assume_role_policy=trust,
            description=f"IRSA role of {service_accounts_text(spec.namespaces, spec.service_account)}",
            opts=child,
        )
        if spec.policy is not None:
            aws.iam.RolePolicy(
                f"{name}-{spec.workload}",
                role=role.id,
                policy=pulumi.Output.json_dumps(spec.policy),
                opts=child,
            )
        for policy_arn in spec.managed_policy_arns:
            aws.iam.RolePolicyAttachment(
                f"{name}-{spec.workload}-{policy_arn.rsplit('/', 1)[-1]}",
                role=role.id,
                policy_arn=policy_arn,
                opts=child,
            )
        return role
