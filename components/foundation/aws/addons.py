"""EKS managed add-ons, installed at versions pinned per Kubernetes minor version.

Add-ons come in two phases: the node networking add-ons (vpc-cni, kube-proxy) must exist before
any node joins, because the cluster is created without self-managed add-ons; the workload
add-ons (coredns, the EBS CSI driver) run as pods and only become healthy once nodes exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

NODE_ADDONS: tuple[str, ...] = ("vpc-cni", "kube-proxy")
WORKLOAD_ADDONS: tuple[str, ...] = ("coredns", "aws-ebs-csi-driver")

# Versions listed together by `aws eks describe-addon-versions --kubernetes-version <minor>`; one
# entry per minor of the support calendar (components/foundation/kubernetes_support.py) the
# platform deploys. 1.33 stays for clusters still on it (past standard support since 2026-07-29).
ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.33": {
        "vpc-cni": "v1.19.5-eksbuild.3",
        "kube-proxy": "v1.33.0-eksbuild.2",
        "coredns": "v1.12.1-eksbuild.2",
        "aws-ebs-csi-driver": "v1.46.0-eksbuild.1",
    },
    # vpc-cni >= 1.14 carries the network policy agent the platform turns on.
    "1.35": {
        "vpc-cni": "v1.21.1-eksbuild.3",
        "kube-proxy": "v1.35.0-eksbuild.2",
        "coredns": "v1.13.2-eksbuild.1",
        "aws-ebs-csi-driver": "v1.55.0-eksbuild.1",
    },
}


# Add-on configuration (`aws eks describe-addon-configuration` schema). The VPC CNI accepts and
# ignores NetworkPolicies unless its network policy agent is enabled: with it, the aws-node
# DaemonSet runs the `aws-network-policy-agent` container (eBPF, AL2023 kernels qualify) and EKS
# installs the PolicyEndpoint CRD (VPC CNI >= 1.14, EKS >= 1.25).
ADDON_CONFIGURATION: dict[str, dict[str, object]] = {
    "vpc-cni": {"enableNetworkPolicy": "true"},
}


class UnsupportedKubernetesVersion(ValueError):
    """No pinned add-on versions exist for the requested Kubernetes minor version."""


def addon_versions(kubernetes_version: str) -> dict[str, str]:
    if kubernetes_version not in ADDON_VERSIONS:
        raise UnsupportedKubernetesVersion(
            f"no pinned EKS add-on versions for Kubernetes {kubernetes_version!r}; "
            f"supported versions: {', '.join(sorted(ADDON_VERSIONS))}"
        )
    return dict(ADDON_VERSIONS[kubernetes_version])


@dataclass(frozen=True)
class EksAddonsArgs:
    cluster_name: pulumi.Input[str]
    # add-on name -> pinned version
    versions: Mapping[str, str]
    # add-on name -> IRSA role ARN of its controller's service account
    service_account_roles: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class EksAddons(pulumi.ComponentResource):
    addons: list[aws.eks.Addon]

    def __init__(self, name: str, args: EksAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:EksAddons", name, None, opts)
        self.addons = [
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=args.cluster_name,
                addon_name=addon,
                addon_version=version,
                service_account_role_arn=args.service_account_roles.get(addon),
                configuration_values=json.dumps(ADDON_CONFIGURATION[addon]) if addon in ADDON_CONFIGURATION else None,
                # The add-on owns its objects: take them over from any earlier install, and keep
                # in-cluster edits from blocking upgrades.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for addon, version in sorted(args.versions.items())
        ]
        self.register_outputs({"addons": [a.addon_name for a in self.addons]})
