"""The EKS control plane: private endpoint, KMS envelope encryption, logs, access entries, OIDC, add-ons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.foundation.aws.addons import ADDON_VERSIONS, UnsupportedKubernetesVersion, addon_versions
from components.foundation.aws.cluster import CONTROL_PLANE_LOG_TYPES, kubeconfig_document, principal_label
from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ADMIN_ROLE = "arn:aws:iam::123456789012:role/platform-admins"
PUBLIC_ENDPOINT = {
    "mlops:cluster.privateEndpoint": "false",
    "mlops:cluster.publicAccessCidrs": '["203.0.113.0/24"]',
}


def one(rendering: Rendering, type_token: str, name: str) -> RenderedResource:
    (resource,) = [r for r in rendering.by_type(type_token) if r.name == name]
    return resource


def cluster_of(rendering: Rendering) -> RenderedResource:
    (cluster,) = rendering.by_type("aws:eks/cluster:Cluster")
    return cluster


def test_prod_api_endpoint_is_private_only(prod):
    vpc = cluster_of(prod).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc
    assert sorted(vpc["subnetIds"]) == [f"network-private-us-east-1{z}-id" for z in "abc"]


def test_public_endpoint_is_opened_only_to_the_configured_cidrs():
    rendering = render(PROJECT_DIR, "prod", PUBLIC_ENDPOINT)
    vpc = cluster_of(rendering).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_cluster_runs_the_configured_kubernetes_version(prod):
    assert cluster_of(prod).inputs["version"] == "1.35"
    assert cluster_of(prod).inputs["name"] == "mlops-prod"


def test_secrets_are_envelope_encrypted_with_a_rotating_key_kept_in_prod(prod):
    key = one(prod, "aws:kms/key:Key", "eks-secrets")
    encryption = cluster_of(prod).inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert key.inputs["enableKeyRotation"] is True
    assert key.options["protect"] is True and key.options["retainOnDelete"] is True


def test_cluster_role_may_use_the_secrets_key_and_nothing_else(prod):
    policy = json.loads(one(prod, "aws:iam/rolePolicy:RolePolicy", "eks-role-secrets-key").inputs["policy"])
    encryption_key = cluster_of(prod).inputs["encryptionConfig"]["provider"]["keyArn"]
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == encryption_key
    assert all(action.startswith("kms:") for action in statement["Action"])
    trust = json.loads(one(prod, "aws:iam/role:Role", "eks-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}


def test_every_control_plane_log_type_goes_to_a_managed_log_group(prod):
    assert sorted(cluster_of(prod).inputs["enabledClusterLogTypes"]) == sorted(CONTROL_PLANE_LOG_TYPES)
    assert set(CONTROL_PLANE_LOG_TYPES) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    logs = one(prod, "aws:cloudwatch/logGroup:LogGroup", "eks-logs")
    assert logs.inputs["name"] == "/aws/eks/mlops-prod/cluster"
    assert logs.inputs["retentionInDays"] > 0
    assert logs.urn in cluster_of(prod).options["dependsOn"]


def test_admins_come_from_access_entries_not_the_aws_auth_configmap(prod):
    access = cluster_of(prod).inputs["accessConfig"]
    assert access == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    label = f"eks-admin-{principal_label(ADMIN_ROLE)}"
    entry = one(prod, "aws:eks/accessEntry:AccessEntry", label)
    association = one(prod, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", label)
    assert entry.inputs["principalArn"] == ADMIN_ROLE and entry.inputs["type"] == "STANDARD"
    assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert association.inputs["accessScope"] == {"type": "cluster"}
    assert not [m for _, m in prod.manifests() if (m.get("metadata") or {}).get("name") == "aws-auth"]


def test_admin_labels_are_stable_names_from_the_role():
    assert principal_label("arn:aws:iam::123456789012:role/teams/ML_Admins") == "ml-admins"


def test_oidc_provider_registers_the_cluster_issuer_for_sts(prod):
    provider = one(prod, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "eks-oidc")
    assert provider.inputs["url"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert prod.outputs["oidcProviderArn"].endswith(provider.inputs["url"].removeprefix("https://"))


def test_core_addons_are_managed_at_pinned_versions(prod):
    """vpc-cni, kube-proxy, coredns and the EBS CSI driver: exact versions, never "latest"."""
    addons = {a.inputs["addonName"]: a for a in prod.by_type("aws:eks/addon:Addon")}
    assert sorted(addons) == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
    for name, addon in addons.items():
        assert addon.inputs["addonVersion"] == ADDON_VERSIONS["1.35"][name]
        assert addon.inputs["addonVersion"].startswith("v") and "-eksbuild." in addon.inputs["addonVersion"]
        assert addon.inputs["clusterName"] == "mlops-prod"
    assert cluster_of(prod).inputs["bootstrapSelfManagedAddons"] is False


def test_addon_controllers_use_their_own_irsa_roles(prod):
    addons = {a.inputs["addonName"]: a for a in prod.by_type("aws:eks/addon:Addon")}
    assert addons["vpc-cni"].inputs["serviceAccountRoleArn"].endswith(":role/irsa-vpc-cni")
    assert addons["aws-ebs-csi-driver"].inputs["serviceAccountRoleArn"].endswith(":role/irsa-ebs-csi")


def test_networking_addons_precede_nodes_and_pod_addons_follow_them(prod):
    """Nodes need the CNI to become Ready; coredns and the CSI controller need nodes to run on."""
    groups = {g.urn for g in prod.by_type("aws:eks/nodeGroup:NodeGroup")}
    addons = {a.inputs["addonName"]: a for a in prod.by_type("aws:eks/addon:Addon")}
    for group in prod.by_type("aws:eks/nodeGroup:NodeGroup"):
        assert {addons["vpc-cni"].urn, addons["kube-proxy"].urn} <= set(group.options["dependsOn"])
    workload_addons = next(r for r in prod.resources if r.type == "mlops:aws:EksAddons" and r.name == "workload-addons")
    assert groups <= set(workload_addons.options["dependsOn"])
    assert addons["coredns"].parent == workload_addons.urn


def test_an_unpinned_kubernetes_version_is_rejected_with_the_supported_ones():
    with pytest.raises(UnsupportedKubernetesVersion, match=r"'1.20'.*supported versions: 1.33, 1.35"):
        addon_versions("1.20")


def test_kubeconfig_holds_no_token_and_fetches_one_per_call():
    """The provider's kubeconfig is stable across runs: no expiring token, `aws eks get-token` instead."""
    document = kubeconfig_document("mlops-prod", "https://ABC.eks.amazonaws.com", "Q0E=", "us-east-1")
    assert document == kubeconfig_document("mlops-prod", "https://ABC.eks.amazonaws.com", "Q0E=", "us-east-1")
    (user,) = document["users"]
    assert "token" not in user["user"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"] == [
        "eks", "get-token", "--cluster-name", "mlops-prod", "--region", "us-east-1", "--output", "json"
    ]
    (cluster,) = document["clusters"]
    assert cluster["cluster"] == {"server": "https://ABC.eks.amazonaws.com", "certificate-authority-data": "Q0E="}
    assert document["current-context"] == "mlops-prod"


def test_declared_runners_reach_the_private_endpoint_on_443_only(prod):
    """The prod stack's way in: its runner network may open TLS to the API endpoint's ENIs, nothing else."""
    (group,) = [g for g in prod.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "eks-api-access"]
    assert group.inputs["ingress"] == [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.100.0.0/24"], "description": "pulumi runners"}
    ]
    assert cluster_of(prod).inputs["vpcConfig"]["securityGroupIds"] == [f"{group.name}-id"]
    assert cluster_of(prod).inputs["vpcConfig"]["endpointPublicAccess"] is False
