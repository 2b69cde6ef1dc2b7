"""The cluster autoscaler: its manifests, its IAM scope, its image pin, and the scale-from-zero tags."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.foundation.aws import addons
from components.foundation.aws.cluster_autoscaler import VERSIONS, cluster_autoscaler_image
from mlops.offline.render import RenderedResource, Rendering, manifest_of, render
from mlops.offline.validate import ReferenceData, validate_manifest
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR, REFERENCE_DIR

PARENT = "mlops:aws:ClusterAutoscaler::cluster-autoscaler"
TEMPLATE = "k8s.io/cluster-autoscaler/node-template/"
ECR_DIGEST = r"^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/mlops/cluster-autoscaler@sha256:[0-9a-f]{64}$"
DESCRIBE_ACTIONS = {
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
}
SCALING_ACTIONS = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}


def autoscaler_objects(rendering: Rendering) -> dict[str, RenderedResource]:
    """kind -> the autoscaler's Kubernetes object of that kind."""
    objects = [r for r in rendering.resources if r.custom and (r.parent or "").endswith(PARENT)]
    return {manifest_of(r)["kind"]: r for r in objects}


def container(rendering: Rendering) -> dict[str, Any]:
    (only,) = autoscaler_objects(rendering)["Deployment"].inputs["spec"]["template"]["spec"]["containers"]
    return only


def autoscaler_policy(rendering: Rendering) -> dict[str, Any]:
    (policy,) = [p for p in rendering.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "irsa-cluster-autoscaler"]
    return json.loads(policy.inputs["policy"])


def template_tags(rendering: Rendering, pool: str) -> dict[str, dict[str, Any]]:
    """Tag key -> the autoscaling Tag resource's inputs, for one node group."""
    tags = [t for t in rendering.by_type("aws:autoscaling/tag:Tag") if t.name.startswith(f"nodes-{pool}-")]
    return {t.inputs["tag"]["key"]: t.inputs for t in tags}


def test_renders_service_account_rbac_and_deployment_that_pass_strict_validation(prod):
    objects = autoscaler_objects(prod)
    assert sorted(objects) == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "ServiceAccount"]
    reference = ReferenceData(REFERENCE_DIR)
    for resource in objects.values():
        assert validate_manifest(resource, manifest_of(resource), reference, "1.35") == [], resource.name
    for kind in ("Deployment", "Role", "RoleBinding", "ServiceAccount"):
        assert objects[kind].inputs["metadata"]["namespace"] == "kube-system"


def test_service_account_carries_the_irsa_role_and_both_bindings_name_it(prod):
    objects = autoscaler_objects(prod)
    annotations = objects["ServiceAccount"].inputs["metadata"]["annotations"]
    assert annotations == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/irsa-cluster-autoscaler",
        "eks.amazonaws.com/sts-regional-endpoints": "true",
    }
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = objects[kind].inputs
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "cluster-autoscaler", "namespace": "kube-system"}]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": "cluster-autoscaler"}


def test_cluster_role_grants_leader_election_storage_and_eviction_reads_it_needs(prod):
    rules = autoscaler_objects(prod)["ClusterRole"].inputs["rules"]

    def allowed(group: str, resource: str, verb: str, name: str | None = None) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
            and (name is None or "resourceNames" not in r or name in r["resourceNames"])
            for r in rules
        )

    assert allowed("coordination.k8s.io", "leases", "create")
    assert allowed("coordination.k8s.io", "leases", "update", "cluster-autoscaler")
    for resource in ("volumeattachments", "csinodes", "csidrivers", "csistoragecapacities", "storageclasses"):
        assert allowed("storage.k8s.io", resource, "watch"), resource
    assert allowed("", "namespaces", "list") and allowed("", "pods/eviction", "create") and allowed("", "nodes", "update")
    # Updating leases is limited to its own lease; it never deletes anything cluster-wide.
    (lease_update,) = [r for r in rules if "leases" in r["resources"] and "update" in r["verbs"]]
    assert lease_update["resourceNames"] == ["cluster-autoscaler"]
    assert not [r for r in rules if "delete" in r["verbs"] or "*" in r["verbs"] or "*" in r["resources"]]


def test_auto_discovery_names_this_cluster_and_flags_are_set(prod):
    args = container(prod)["args"]
    assert "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/mlops-prod" in args
    assert prod.outputs["clusterName"] == "mlops-prod"
    for flag in ("--cloud-provider=aws", "--skip-nodes-with-system-pods=false", "--expander=least-waste"):
        assert flag in args
    assert container(prod)["env"] == [{"name": "AWS_REGION", "value": "us-east-1"}]


def test_runs_restricted_and_critical_on_the_system_pool_with_probes(prod):
    pod = autoscaler_objects(prod)["Deployment"].inputs["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"mlops.platform/role": "system"}
    (system_group,) = [g for g in prod.by_type("aws:eks/nodeGroup:NodeGroup") if g.inputs["labels"]["mlops.platform/role"] == "system"]
    assert system_group.inputs["scalingConfig"]["minSize"] >= 1
    main = container(prod)
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert main["resources"]["requests"] and main["resources"]["limits"]
    assert main["livenessProbe"]["httpGet"] == {"path": "/health-check", "port": "metrics"}
    assert main["ports"] == [{"name": "metrics", "containerPort": 8085}]


def test_prod_image_is_the_pinned_release_by_digest_from_the_stack_registry(prod):
    assert re.match(ECR_DIGEST, container(prod)["image"]), container(prod)["image"]
    repositories = {r.inputs["name"] for r in prod.by_type("aws:ecr/repository:Repository")}
    assert "mlops/cluster-autoscaler" in repositories


def test_image_pulled_as_configured_matches_the_cluster_minor():
    rendering = render(PROJECT_DIR, "prod", {"mlops:images.source": "reference", "mlops:environment": "dev"})
    assert container(rendering)["image"] == f"registry.k8s.io/autoscaling/cluster-autoscaler:{VERSIONS['1.35']}"
    assert VERSIONS["1.35"].startswith("v1.35.")


def test_every_kubernetes_minor_with_pinned_addons_has_a_matching_autoscaler():
    for minor in addons.ADDON_VERSIONS:
        assert cluster_autoscaler_image(minor).rsplit(":v", 1)[1].rsplit(".", 1)[0] == minor


def test_kubernetes_minor_without_a_pinned_autoscaler_is_a_config_error(monkeypatch):
    monkeypatch.setitem(addons.ADDON_VERSIONS, "1.99", addons.ADDON_VERSIONS["1.35"])
    with pytest.raises(ConfigError, match=r"mlops:cluster.kubernetesVersion: no pinned cluster-autoscaler version for Kubernetes '1.99'"):
        render(PROJECT_DIR, "prod", {"mlops:cluster.kubernetesVersion": "1.99"})


def test_policy_reads_everything_but_scales_only_groups_this_cluster_owns(prod):
    statements = autoscaler_policy(prod)["Statement"]
    unconditioned = [s for s in statements if "Condition" not in s]
    conditioned = [s for s in statements if "Condition" in s]
    assert {a for s in unconditioned for a in s["Action"]} == DESCRIBE_ACTIONS
    (scaling,) = conditioned
    assert set(scaling["Action"]) == SCALING_ACTIONS
    assert scaling["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/mlops-prod": "owned"}}
    assert all(s["Effect"] == "Allow" for s in statements)


def test_gpu_group_at_zero_describes_its_labels_taint_and_gpus(prod):
    (gpu_group,) = [g for g in prod.by_type("aws:eks/nodeGroup:NodeGroup") if g.name == "nodes-gpu-l4"]
    tags = template_tags(prod, "gpu-l4")
    values = {key: inputs["tag"]["value"] for key, inputs in tags.items()}
    for label, value in gpu_group.inputs["labels"].items():
        assert values.pop(f"{TEMPLATE}label/{label}") == value
    assert values == {f"{TEMPLATE}taint/nvidia.com/gpu": "true:NoSchedule", f"{TEMPLATE}resources/nvidia.com/gpu": "1"}
    for inputs in tags.values():
        assert inputs["autoscalingGroupName"].startswith("eks-nodes-gpu-l4-")
        assert inputs["tag"]["propagateAtLaunch"] is False


def test_groups_that_never_reach_zero_need_no_template_tags(prod):
    assert template_tags(prod, "system") == {} and template_tags(prod, "cpu-serving") == {}


def test_cpu_group_at_zero_gets_label_tags_only():
    rendering = render(PROJECT_DIR, "prod", {"mlops:nodePools[1].minSize": "0"})
    keys = set(template_tags(rendering, "cpu-serving"))
    assert keys == {f"{TEMPLATE}label/mlops.platform/pool", f"{TEMPLATE}label/mlops.platform/role"}


def test_gpu_count_follows_the_pool():
    rendering = render(PROJECT_DIR, "prod", {"mlops:nodePools[2].acceleratorCount": "4", "mlops:nodePools[2].size": "xlarge"})
    tag = template_tags(rendering, "gpu-l4")[f"{TEMPLATE}resources/nvidia.com/gpu"]
    assert tag["tag"]["value"] == "4"
