"""The Kubernetes Cluster Autoscaler: grows and shrinks the EKS node groups between their bounds.

It finds the node groups by the tags EKS puts on their Auto Scaling groups
(`k8s.io/cluster-autoscaler/enabled`, `k8s.io/cluster-autoscaler/<cluster>: owned`), and may
change the size of those groups only: its IAM policy conditions every mutating call on the
cluster's ownership tag. A group at zero nodes is described to it by node-template tags
(`components/foundation/aws/node_groups.py`).

Rendered as the platform's own manifests rather than upstream's chart, so every object is checked
against the strict Kubernetes schemas. RBAC follows upstream's AWS example
(`cluster-autoscaler/cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.foundation.aws.addons import UnsupportedKubernetesVersion
from components.foundation.aws.identity import service_account_annotations

APP = "cluster-autoscaler"
NAMESPACE = "kube-system"
METRICS_PORT = 8085
IMAGE_REPOSITORY = "registry.k8s.io/autoscaling/cluster-autoscaler"
# Upstream supports each autoscaler minor only with the same Kubernetes minor; newest patch
# release of each (tags `cluster-autoscaler-<version>` of kubernetes/autoscaler).
VERSIONS: dict[str, str] = {
    "1.33": "v1.33.6",
    "1.35": "v1.35.2",
}
OWNED_TAG_PREFIX = "k8s.io/cluster-autoscaler/"
API_TOKEN_REASON = "the autoscaler watches pods and nodes and evicts pods through the Kubernetes API with its own token"

# Reads the autoscaler needs to discover groups, their instance types and managed node groups.
_DESCRIBE_ACTIONS = [
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
]
_SCALING_ACTIONS = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]

_READ = ["get", "list", "watch"]
# (api groups, resources, verbs, resource names): what the autoscaler reads to simulate
# scheduling, evicts and annotates while draining, and the lease it elects its leader with.
# Upstream also lists the `extensions` group, which no API server since 1.16 serves these from.
_CLUSTER_RULES: list[tuple[list[str], list[str], list[str], list[str]]] = [
    ([""], ["events", "endpoints"], ["create", "patch"], []),
    ([""], ["pods/eviction"], ["create"], []),
    ([""], ["pods/status"], ["update"], []),
    ([""], ["endpoints"], ["get", "update"], [APP]),
    ([""], ["nodes"], [*_READ, "update"], []),
    ([""], ["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims", "persistentvolumes"], _READ, []),
    (["policy"], ["poddisruptionbudgets"], ["list", "watch"], []),
    (["apps"], ["statefulsets", "replicasets", "daemonsets"], _READ, []),
    (["batch"], ["jobs"], [*_READ, "patch"], []),
    (["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"], _READ, []),
    (["resource.k8s.io"], ["deviceclasses", "resourceslices", "resourceclaims"], _READ, []),
    (["coordination.k8s.io"], ["leases"], ["create"], []),
    (["coordination.k8s.io"], ["leases"], ["get", "update"], [APP]),
]
# Its status and priority-expander ConfigMaps, in its own namespace only.
_NAMESPACE_RULES: list[tuple[list[str], list[str], list[str], list[str]]] = [
    ([""], ["configmaps"], ["create", "list", "watch"], []),
    ([""], ["configmaps"], ["delete", "get", "update", "watch"], ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"]),
]


def cluster_autoscaler_image(kubernetes_version: str) -> str:
    """The upstream image whose minor matches the cluster's Kubernetes minor."""
    if kubernetes_version not in VERSIONS:
        raise UnsupportedKubernetesVersion(
            f"no pinned cluster-autoscaler version for Kubernetes {kubernetes_version!r}; "
            f"supported versions: {', '.join(sorted(VERSIONS))}"
        )
    return f"{IMAGE_REPOSITORY}:{VERSIONS[kubernetes_version]}"


def cluster_autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """IAM policy: read every group, resize or shrink only the groups this cluster owns."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Discover", "Effect": "Allow", "Action": list(_DESCRIBE_ACTIONS), "Resource": "*"},
            {
                "Sid": "ScaleOwnedGroups",
                "Effect": "Allow",
                "Action": list(_SCALING_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:ResourceTag/{OWNED_TAG_PREFIX}{cluster_name}": "owned"}},
            },
        ],
    }


def autoscaler_args(cluster_name: str) -> list[str]:
    return [
        "--cloud-provider=aws",
        f"--node-group-auto-discovery=asg:tag={OWNED_TAG_PREFIX}enabled,{OWNED_TAG_PREFIX}{cluster_name}",
        "--expander=least-waste",
        # kube-system pods (coredns, CSI controllers) move like any other; otherwise a node that
        # ever ran one is never scaled down.
        "--skip-nodes-with-system-pods=false",
        # Platform pods keep only scratch files in emptyDir volumes: nothing to lose on a drain.
        "--skip-nodes-with-local-storage=false",
        f"--address=:{METRICS_PORT}",
    ]


def _rules(rules: list[tuple[list[str], list[str], list[str], list[str]]]) -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [
        k8s.rbac.v1.PolicyRuleArgs(api_groups=groups, resources=resources, verbs=verbs, resource_names=names or None)
        for groups, resources, verbs, names in rules
    ]


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    cluster_name: str
    region: str
    image: pulumi.Input[str]
    # IRSA role allowed `cluster_autoscaler_policy`.
    role_arn: pulumi.Input[str]
    # Labels of the nodes it runs on: a pool it never scales to zero.
    node_selector: Mapping[str, str]
    # The node groups it scales.
    wait_for: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ClusterAutoscaler(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:ClusterAutoscaler", name, None, opts)
        # On destroy everything here goes before the node groups it scales, so the autoscaler
        # neither resizes a group being deleted nor loses its permissions while still running.
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for))
        labels = workloads.labels(APP, "autoscaling")
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP, namespace=NAMESPACE, labels=labels, annotations=service_account_annotations(args.role_arn)
            ),
            opts=child,
        )
        subject = k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name, namespace=NAMESPACE)
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, labels=labels),
            rules=_rules(_CLUSTER_RULES),
            opts=child,
        )
        cluster_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-role-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role.metadata.name),
            subjects=[subject],
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=NAMESPACE, labels=labels),
            rules=_rules(_NAMESPACE_RULES),
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-role-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=NAMESPACE, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
            subjects=[subject],
            opts=child,
        )
        self.deployment = self._deployment(name, args, account, labels, [cluster_binding, binding])
        self.register_outputs({"deployment": self.deployment.metadata.name})

    def _deployment(
        self,
        name: str,
        args: ClusterAutoscalerArgs,
        account: k8s.core.v1.ServiceAccount,
        labels: dict[str, str],
        bindings: list[pulumi.Resource],
    ) -> k8s.apps.v1.Deployment:
        container = k8s.core.v1.ContainerArgs(
            name=APP,
            image=args.image,
            command=["/cluster-autoscaler"],
            args=autoscaler_args(args.cluster_name),
            env=[k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=args.region)],
            ports=[k8s.core.v1.ContainerPortArgs(name="metrics", container_port=METRICS_PORT)],
            # Ready once its loop runs; restarted when the loop stalls.
            readiness_probe=workloads.http_probe("/health-check", "metrics"),
            liveness_probe=workloads.http_probe("/health-check", "metrics", initial_delay=30),
            resources=workloads.resources("100m", "600Mi", cpu_limit="500m"),
            security_context=workloads.restricted_container_security(run_as_user=workloads.UNPRIVILEGED_USER),
        )
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP, namespace=NAMESPACE, labels=labels, annotations=workloads.skip_annotations(checkov={"CKV_K8S_38": API_TOKEN_REASON}, images=[args.image])
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # One active autoscaler per cluster; a second replica would only wait on the lease.
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=workloads.selector(APP)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels,
                        # It never drains the node it runs on from under itself.
                        annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        priority_class_name="system-cluster-critical",
                        node_selector=dict(args.node_selector),
                        # The projected web-identity token of its IAM role is readable by this group.
                        security_context={**workloads.RESTRICTED_POD_SECURITY, "fsGroup": workloads.UNPRIVILEGED_USER},
                        containers=[container],
                    ),
                ),
            ),
            # Started once it may act on the cluster, removed before it loses that right.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*bindings, *args.wait_for]),
        )
