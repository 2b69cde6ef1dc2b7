"""The EKS control plane: KMS envelope encryption, audit logs, access entries and the OIDC provider.

The API endpoint is private unless the stack lists the CIDRs allowed to reach a public one.
Admins get in through EKS access entries (the aws-auth ConfigMap is not used), and the cluster's
OIDC issuer is registered with IAM so workloads assume roles without static keys.

Two consequences for whoever runs `pulumi up`: with a private endpoint the run needs a network
path into the VPC (VPN, peering, a runner inside it), because the Kubernetes provider talks to the
API; and the identity running it gets no implicit admin grant, so it must assume one of the roles
listed in `mlops:aws.adminRoleArns`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.foundation.aws.identity import STS_AUDIENCE
from components.foundation.aws.options import stateful

CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_ROLE_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"


def service_trust_policy(service: str) -> dict[str, Any]:
    """Trust policy letting one AWS service principal assume a role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def secrets_key_policy(key_arn: pulumi.Input[str]) -> dict[str, Any]:
    """What the control plane needs of the secrets key (envelope encryption of Secrets in etcd)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"],
                "Resource": key_arn,
            }
        ],
    }


def principal_label(role_arn: str) -> str:
    """A stable, name-safe label for an IAM principal: its name without the path."""
    return re.sub(r"[^a-z0-9-]", "-", role_arn.rsplit("/", 1)[-1].lower())


def kubeconfig_document(cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> dict[str, Any]:
    """A kubeconfig that stays byte-identical between runs (pulumi-eks #207, #764).

    It holds no token: kubectl and the Kubernetes provider run `aws eks get-token` for a fresh
    one on every call, so the provider's inputs do not change and nothing in the cluster is
    replaced because a token expired.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    region: str
    kubernetes_version: str
    subnet_ids: Sequence[pulumi.Input[str]]
    private_endpoint: bool
    public_access_cidrs: Sequence[str]
    admin_role_arns: Sequence[str]
    vpc_id: pulumi.Input[str]
    # Protect and retain the secrets key (prod).
    keep_stateful: bool
    # The network pieces nodes need to bootstrap (NAT, routes, endpoints); the control plane is
    # created after them and destroyed before them.
    network_ready: Sequence[pulumi.Resource] = ()
    log_retention_days: int = 90
    # In-VPC runners (or tunnel bastions) allowed to the private endpoint on 443.
    runner_cidrs: Sequence[str] = ()


class EksCluster(pulumi.ComponentResource):
    cluster: aws.eks.Cluster
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    # Access policy associations: Kubernetes API calls made as an admin role succeed only after them.
    access_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:EksCluster", name, None, opts)
        self._name = name
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes Secrets in EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=stateful(self, args.keep_stateful),
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{args.cluster_name}-secrets",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role, role_ready = self._cluster_role(key, args)
        # EKS would create this group itself, with no retention and outliving the cluster.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-control-plane",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                security_group_ids=[self._api_access(args).id] if args.runner_cidrs else None,
                endpoint_private_access=True,
                endpoint_public_access=not args.private_endpoint,
                public_access_cidrs=None if args.private_endpoint else list(args.public_access_cidrs),
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # Admins are the explicit access entries below; the identity running `pulumi up`
                # gets no hidden, unremovable admin grant.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # vpc-cni, kube-proxy and coredns are installed as pinned managed add-ons instead.
            bootstrap_self_managed_addons=False,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, *role_ready, *args.network_ready]),
        )
        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.certificate_authority = self.cluster.certificate_authority.apply(lambda ca: ca.data)
        self.oidc_issuer_url = self.cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        self.access_ready = self._admin_access(args)
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer_url,
            client_id_lists=[STS_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.oidc_provider_arn = provider.arn
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.endpoint, self.certificate_authority).apply(
                lambda values: json.dumps(kubeconfig_document(values[0], values[1], values[2], args.region), sort_keys=True)
            )
        )
        self.register_outputs(
            {"name": self.name, "endpoint": self.endpoint, "oidc_provider_arn": self.oidc_provider_arn, "kubeconfig": self.kubeconfig}
        )

    def _api_access(self, args: EksClusterArgs) -> aws.ec2.SecurityGroup:
        """Lets the declared runners reach the private API endpoint (its ENIs carry this group)."""
        return aws.ec2.SecurityGroup(
            f"{self._name}-api-access",
            vpc_id=args.vpc_id,
            description=f"Runners allowed to the private API endpoint of {args.cluster_name}",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=list(args.runner_cidrs), description="pulumi runners"
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cluster_role(self, key: aws.kms.Key, args: EksClusterArgs) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        name = self._name
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(service_trust_policy("eks.amazonaws.com")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-role-cluster-policy", role=role.id, policy_arn=CLUSTER_ROLE_POLICY, opts=pulumi.ResourceOptions(parent=self)
        )
        key_access = aws.iam.RolePolicy(
            f"{name}-role-secrets-key",
            role=role.id,
            policy=pulumi.Output.json_dumps(secrets_key_policy(key.arn)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, [attachment, key_access]

    def _admin_access(self, args: EksClusterArgs) -> list[pulumi.Resource]:
        ready: list[pulumi.Resource] = []
        for role_arn in args.admin_role_arns:
            label = f"{self._name}-admin-{principal_label(role_arn)}"
            entry = aws.eks.AccessEntry(
                label,
                cluster_name=self.cluster.name,
                principal_arn=role_arn,
                type="STANDARD",
                    opts=pulumi.ResourceOptions(parent=self),
            )
            ready.append(
                aws.eks.AccessPolicyAssociation(
                    label,
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=CLUSTER_ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        return ready
