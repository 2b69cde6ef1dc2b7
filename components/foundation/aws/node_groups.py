"""EKS managed node groups, one per configured pool: system, CPU serving and GPU serving.

GPU pools run the NVIDIA AL2023 AMI, carry the `nvidia.com/gpu` NoSchedule taint (only pods that
tolerate it land there) and accelerator labels, and may scale from zero. Spot pools list several
instance types so a single exhausted spot market does not leave the pool empty.

A group that may shrink to zero nodes leaves the cluster autoscaler no node to learn its labels,
taints and GPUs from, so its Auto Scaling group carries them as node-template tags (the AWS
provider's `k8s.io/cluster-autoscaler/node-template/...` convention).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.foundation.aws.cluster import service_trust_policy
from components.interfaces import GpuPlacement
from components.catalog import SIZE_CLASSES, accelerator_offer, cpu_machine_type, gpu_machine_type
from components.declarations import NodePool

GPU_TAINT_KEY = "nvidia.com/gpu"
POOL_LABEL = "mlops.platform/pool"
ROLE_LABEL = "mlops.platform/role"
ACCELERATOR_LABEL = "mlops.platform/accelerator"
# Read by the cluster autoscaler to treat the group as GPU capacity while it is still at zero.
AWS_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
# The label the NVIDIA device plugin chart's node affinity accepts without node-feature-discovery.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# Families with the same vCPU and memory per size as the catalog's m6i, for spot diversity.
SPOT_CPU_FAMILIES: tuple[str, ...] = ("m6i", "m6a", "m7i", "m5")
NODE_ROLE_POLICIES: tuple[str, ...] = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)
GPU_TOLERATION: dict[str, str] = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
GPU_RESOURCE = "nvidia.com/gpu"
NODE_TEMPLATE_TAG_PREFIX = "k8s.io/cluster-autoscaler/node-template/"
# EKS spells taint effects in its API's enum; node-template tags use the Kubernetes names.
KUBERNETES_TAINT_EFFECTS: dict[str, str] = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


@dataclass(frozen=True)
class NodeGroupSpec:
    """A config pool resolved to what EKS needs."""

    name: str
    role: str
    instance_types: list[str]
    ami_type: str
    capacity_type: str
    min_size: int
    max_size: int
    disk_gib: int
    labels: dict[str, str]
    taints: list[aws.eks.NodeGroupTaintArgs] = field(default_factory=list)
    gpus_per_node: int = 0


def instance_types(pool: NodePool, region: str) -> list[str]:
    """The pool's instance type from the catalog first, then (spot only) interchangeable ones."""
    if pool.accelerator is None:
        primary = cpu_machine_type("aws", pool.size)
        if not pool.spot:
            return [primary]
        size_suffix = primary.split(".", 1)[1]
        return [f"{family}.{size_suffix}" for family in SPOT_CPU_FAMILIES]
    primary = gpu_machine_type("aws", pool.accelerator, pool.accelerator_count, pool.size, region)
    if not pool.spot:
        return [primary]
    rank = {size: index for index, size in enumerate(SIZE_CLASSES)}
    shapes = accelerator_offer("aws", pool.accelerator).shapes
    larger = sorted(
        (s for s in shapes if s.count == pool.accelerator_count and rank[s.size] >= rank[pool.size]),
        key=lambda s: rank[s.size],
    )
    return [primary, *(s.machine_type for s in larger if s.machine_type != primary)]


def node_group_spec(pool: NodePool, region: str) -> NodeGroupSpec:
    labels = {POOL_LABEL: pool.name, ROLE_LABEL: pool.role}
    if pool.accelerator is None:
        return NodeGroupSpec(
            name=pool.name,
            role=pool.role,
            instance_types=instance_types(pool, region),
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="SPOT" if pool.spot else "ON_DEMAND",
            min_size=pool.min_size,
            max_size=pool.max_size,
            disk_gib=50,
            labels=labels,
        )
    return NodeGroupSpec(
        name=pool.name,
        role=pool.role,
        instance_types=instance_types(pool, region),
        # Ships the NVIDIA driver and container toolkit; the device plugin is installed separately.
        ami_type="AL2023_x86_64_NVIDIA",
        capacity_type="SPOT" if pool.spot else "ON_DEMAND",
        min_size=pool.min_size,
        max_size=pool.max_size,
        # CUDA images are large.
        disk_gib=200,
        labels={**labels, ACCELERATOR_LABEL: pool.accelerator, AWS_ACCELERATOR_LABEL: pool.accelerator, GPU_PRESENT_LABEL: "true"},
        taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")],
        gpus_per_node=pool.accelerator_count,
    )


def node_template_tags(spec: NodeGroupSpec) -> dict[str, str]:
    """ASG tags telling the cluster autoscaler what a new node of this group would look like."""
    tags = {f"{NODE_TEMPLATE_TAG_PREFIX}label/{key}": value for key, value in spec.labels.items()}
    for taint in spec.taints:
        tags[f"{NODE_TEMPLATE_TAG_PREFIX}taint/{taint.key}"] = f"{taint.value}:{KUBERNETES_TAINT_EFFECTS[taint.effect]}"
    if spec.gpus_per_node:
        tags[f"{NODE_TEMPLATE_TAG_PREFIX}resources/{GPU_RESOURCE}"] = str(spec.gpus_per_node)
    return tags


def gpu_placement(spec: NodeGroupSpec) -> GpuPlacement:
    """Node selector and toleration that put a pod on this GPU pool and nowhere else."""
    return GpuPlacement(node_selector={POOL_LABEL: spec.name}, tolerations=[dict(GPU_TOLERATION)])


@dataclass(frozen=True)
class NodeGroupsArgs:
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    subnet_ids: Sequence[pulumi.Input[str]]
    pools: Sequence[NodeGroupSpec]
    # Add-ons a node needs to become Ready (vpc-cni, kube-proxy): node groups wait for them.
    wait_for: Sequence[pulumi.Resource] = ()


class NodeGroups(pulumi.ComponentResource):
    node_groups: dict[str, aws.eks.NodeGroup]
    gpu_placements: dict[str, GpuPlacement]

    def __init__(self, name: str, args: NodeGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:NodeGroups", name, None, opts)
        role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(service_trust_policy("ec2.amazonaws.com")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-role-{policy.rsplit('/', 1)[-1]}",
                role=role.id,
                policy_arn=policy,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy in NODE_ROLE_POLICIES
        ]
        self.node_groups = {}
        self.gpu_placements = {}
        for spec in args.pools:
            self.node_groups[spec.name] = aws.eks.NodeGroup(
                f"{name}-{spec.name}",
                cluster_name=args.cluster_name,
                version=args.kubernetes_version,
                node_role_arn=role.arn,
                subnet_ids=list(args.subnet_ids),
                instance_types=spec.instance_types,
                ami_type=spec.ami_type,
                capacity_type=spec.capacity_type,
                disk_size=spec.disk_gib,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=spec.min_size, max_size=spec.max_size, desired_size=spec.min_size
                ),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
                labels=spec.labels,
                taints=spec.taints or None,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Without the role's policies and the CNI a node never joins the cluster.
                    depends_on=[*attachments, *args.wait_for],
                    # The cluster autoscaler owns the current size; Pulumi owns only the bounds.
                    ignore_changes=["scalingConfig.desiredSize"],
                ),
            )
            if spec.min_size == 0:
                self._tag_for_scale_from_zero(name, spec, self.node_groups[spec.name])
            if spec.role == "gpu":
                self.gpu_placements[spec.name] = gpu_placement(spec)
        self.register_outputs({"node_groups": sorted(self.node_groups)})

    def _tag_for_scale_from_zero(self, name: str, spec: NodeGroupSpec, group: aws.eks.NodeGroup) -> None:
        # EKS creates the group's Auto Scaling group; tags not propagated to instances describe
        # the group to the autoscaler and nothing else.
        asg_name = group.resources.apply(lambda resources: resources[0].autoscaling_groups[0].name)
        for key, value in sorted(node_template_tags(spec).items()):
            aws.autoscaling.Tag(
                f"{name}-{spec.name}-{key.removeprefix(NODE_TEMPLATE_TAG_PREFIX)}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(parent=self),
            )
