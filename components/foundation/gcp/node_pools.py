"""GKE node pools, one per configured pool: system, CPU serving and GPU serving.

GPU pools carry guest accelerators whose driver GKE installs and keeps matched to the node
version, the `nvidia.com/gpu` NoSchedule taint (only pods that tolerate it land there), and node
locations only in zones that offer the accelerator. Every pool autoscales between the configured
totals (GPU pools from zero) and may run on spot capacity. Nodes run as a dedicated service
account holding only the node role, with Workload Identity's metadata server, Shielded VM
secure boot and no legacy metadata endpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.foundation.gcp.identity import service_account_id
from components.interfaces import GpuPlacement
from components.catalog import CatalogError, accelerator_offer, cpu_machine_type, gpu_machine_type
from components.declarations import NodePool

GPU_TAINT_KEY = "nvidia.com/gpu"
# The taint GKE itself puts on GPU nodes; declaring the same one keeps it visible in the program.
GPU_TAINT_VALUE = "present"
# Same labels as the EKS node groups, so the in-cluster layer selects pools the same way on both clouds.
POOL_LABEL = "mlops.platform/pool"
ROLE_LABEL = "mlops.platform/role"
ACCELERATOR_LABEL = "mlops.platform/accelerator"
GPU_TOLERATION: dict[str, str] = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
# GKE's own role for node service accounts: write logs and metrics, read node metadata.
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
# The driver version GKE pairs with the node version (upgraded with the node image).
GPU_DRIVER_VERSION = "DEFAULT"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class Accelerators:
    type: str
    count: int


@dataclass(frozen=True)
class NodePoolSpec:
    """A config pool resolved to what GKE needs."""

    name: str
    role: str
    machine_type: str
    node_locations: list[str]
    spot: bool
    min_size: int
    max_size: int
    disk_gib: int
    labels: dict[str, str]
    accelerators: Accelerators | None = None
    taints: list[gcp.container.NodePoolNodeConfigTaintArgs] = field(default_factory=list)


def gpu_node_locations(accelerator: str, pool_zones: Sequence[str], accelerator_zones: Mapping[str, Sequence[str]]) -> list[str]:
    """The pool's zones that offer `accelerator` (all of them when the stack lists no zones for it)."""
    offered = accelerator_zones.get(accelerator)
    if offered is None:
        return list(pool_zones)
    located = [zone for zone in pool_zones if zone in offered]
    if not located:
        raise CatalogError(
            f"accelerator {accelerator!r} is offered in zones {sorted(offered)} (mlops:gcp.acceleratorZones), "
            f"none of which the pool can use {list(pool_zones)}; allowed zones for it: {', '.join(sorted(offered))}"
        )
    return located


def node_pool_spec(
    pool: NodePool, region: str, pool_zones: Sequence[str], accelerator_zones: Mapping[str, Sequence[str]]
) -> NodePoolSpec:
    """Machine type, zones, labels and taints of one configured pool; CatalogError if GCP cannot provide it."""
    labels = {POOL_LABEL: pool.name, ROLE_LABEL: pool.role}
    if pool.accelerator is None:
        return NodePoolSpec(
            name=pool.name,
            role=pool.role,
            machine_type=cpu_machine_type("gcp", pool.size),
            node_locations=list(pool_zones),
            spot=pool.spot,
            min_size=pool.min_size,
            max_size=pool.max_size,
            disk_gib=100,
            labels=labels,
        )
    return NodePoolSpec(
        name=pool.name,
        role=pool.role,
        machine_type=gpu_machine_type("gcp", pool.accelerator, pool.accelerator_count, pool.size, region),
        node_locations=gpu_node_locations(pool.accelerator, pool_zones, accelerator_zones),
        spot=pool.spot,
        min_size=pool.min_size,
        max_size=pool.max_size,
        # CUDA images are large.
        disk_gib=200,
        labels={**labels, ACCELERATOR_LABEL: pool.accelerator},
        accelerators=Accelerators(accelerator_offer("gcp", pool.accelerator).cloud_name, pool.accelerator_count),
        taints=[gcp.container.NodePoolNodeConfigTaintArgs(key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE")],
    )


def gpu_placement(spec: NodePoolSpec) -> GpuPlacement:
    """Node selector and toleration that put a pod on this GPU pool and nowhere else."""
    return GpuPlacement(node_selector={POOL_LABEL: spec.name}, tolerations=[dict(GPU_TOLERATION)])


def guest_accelerators(spec: NodePoolSpec) -> list[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs] | None:
    if spec.accelerators is None:
        return None
    return [
        gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=spec.accelerators.type,
            count=spec.accelerators.count,
            # GKE installs the NVIDIA driver and device plugin: no DaemonSet of our own.
            gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                gpu_driver_version=GPU_DRIVER_VERSION
            ),
        )
    ]


@dataclass(frozen=True)
class NodePoolsArgs:
    project: str
    # Prefix of the node service account id (the cluster name).
    account_prefix: str
    cluster_name: pulumi.Input[str]
    location: pulumi.Input[str]
    pools: Sequence[NodePoolSpec]


class NodePools(pulumi.ComponentResource):
    node_pools: dict[str, gcp.container.NodePool]
    gpu_placements: dict[str, GpuPlacement]
    service_account_email: pulumi.Output[str]
    service_account_member: pulumi.Output[str]

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:NodePools", name, None, opts)
        account = gcp.serviceaccount.Account(
            f"{name}-account",
            account_id=service_account_id(args.account_prefix, "nodes"),
            display_name="GKE nodes of the MLOps platform",
            opts=pulumi.ResourceOptions(parent=self),
        )
        node_role = gcp.projects.IAMMember(
            f"{name}-account-node-role",
            project=args.project,
            role=NODE_ROLE,
            member=account.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_account_email = account.email
        self.service_account_member = account.member
        self.node_pools = {}
        self.gpu_placements = {}
        for spec in args.pools:
            self.node_pools[spec.name] = self._node_pool(f"{name}-{spec.name}", spec, args, account, node_role)
            if spec.accelerators is not None:
                self.gpu_placements[spec.name] = gpu_placement(spec)
        self.register_outputs({"node_pools": sorted(self.node_pools), "service_account_email": self.service_account_email})

    def _node_pool(
        self,
        name: str,
        spec: NodePoolSpec,
        args: NodePoolsArgs,
        account: gcp.serviceaccount.Account,
        node_role: gcp.projects.IAMMember,
    ) -> gcp.container.NodePool:
        return gcp.container.NodePool(
            name,
            cluster=args.cluster_name,
            location=args.location,
            node_locations=spec.node_locations,
            # Per zone; the autoscaler owns the count afterwards.
            initial_node_count=math.ceil(spec.min_size / len(spec.node_locations)),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=spec.min_size,
                total_max_node_count=spec.max_size,
                # Spot and GPU capacity is scarce: take it in whichever zone has it.
                location_policy="ANY" if spec.spot or spec.accelerators is not None else "BALANCED",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(strategy="SURGE", max_surge=1, max_unavailable=0),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=spec.machine_type,
                image_type="COS_CONTAINERD",
                disk_type="pd-balanced",
                disk_size_gb=spec.disk_gib,
                spot=spec.spot,
                service_account=account.email,
                # Access is decided by IAM roles, not by legacy scopes.
                oauth_scopes=[CLOUD_PLATFORM_SCOPE],
                labels=spec.labels,
                taints=spec.taints or None,
                guest_accelerators=guest_accelerators(spec),
                # Pods see the Workload Identity metadata server, never the node's credentials.
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                metadata={"disable-legacy-endpoints": "true"},
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Without its role a node cannot report in, and the pool never becomes healthy.
                depends_on=[node_role],
                # Changing it would replace the pool; the autoscaler owns the current size.
                ignore_changes=["initialNodeCount"],
            ),
        )
