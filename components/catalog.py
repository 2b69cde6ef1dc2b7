"""Cloud-neutral node shapes mapped to AWS instance types and GCP machine types.

Stack config describes a node pool by what a workload needs (a size class and, for GPU pools,
an accelerator and its count); this catalog turns that into the instance or machine type of the
chosen cloud, so flipping `mlops:cloud` between `aws` and `gcp` keeps the same capacity. The
region lists record where each accelerator is offered, so a pool that asks for an accelerator the
chosen region lacks is a config error instead of a failed `pulumi up`.

Sources: AWS EC2 instance type pages (G4dn, G5, G6, P4d, P5) and "Amazon EC2 instance types by
Region"; Google Cloud "GPU platforms" and "GPU regions and zones" pages, as of 2026-11.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cloud = Literal["aws", "gcp", "local"]
SizeClass = Literal["small", "medium", "large", "xlarge"]
Accelerator = Literal["nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-a100-40gb", "nvidia-h100-80gb"]

SIZE_CLASSES: tuple[SizeClass, ...] = ("small", "medium", "large", "xlarge")
ACCELERATORS: tuple[Accelerator, ...] = (
    "nvidia-t4",
    "nvidia-l4",
    "nvidia-a10g",
    "nvidia-a100-40gb",
    "nvidia-h100-80gb",
)

CPU_MACHINE_TYPES: dict[str, dict[SizeClass, str]] = {
    "aws": {"small": "m6i.large", "medium": "m6i.xlarge", "large": "m6i.2xlarge", "xlarge": "m6i.4xlarge"},
    "gcp": {"small": "n2-standard-2", "medium": "n2-standard-4", "large": "n2-standard-8", "xlarge": "n2-standard-16"},
}


@dataclass(frozen=True)
class GpuShape:
    """One machine shape carrying `count` accelerators of one kind."""

    machine_type: str
    count: int
    size: SizeClass


@dataclass(frozen=True)
class AcceleratorOffer:
    """Where and how one cloud offers an accelerator."""

    cloud_name: str  # the cloud's own name for the accelerator (GKE guest accelerator type)
    shapes: tuple[GpuShape, ...]
    regions: frozenset[str]


GPU_OFFERS: dict[str, dict[Accelerator, AcceleratorOffer]] = {
    "aws": {
        "nvidia-t4": AcceleratorOffer(
            "t4",
            (
                GpuShape("g4dn.xlarge", 1, "medium"),
                GpuShape("g4dn.2xlarge", 1, "large"),
                GpuShape("g4dn.4xlarge", 1, "xlarge"),
                GpuShape("g4dn.12xlarge", 4, "xlarge"),
            ),
            frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-1"}),
        ),
        "nvidia-a10g": AcceleratorOffer(
            "a10g",
            (
                GpuShape("g5.xlarge", 1, "medium"),
                GpuShape("g5.2xlarge", 1, "large"),
                GpuShape("g5.4xlarge", 1, "xlarge"),
                GpuShape("g5.12xlarge", 4, "xlarge"),
            ),
            frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}),
        ),
        "nvidia-l4": AcceleratorOffer(
            "l4",
            (
                GpuShape("g6.xlarge", 1, "medium"),
                GpuShape("g6.2xlarge", 1, "large"),
                GpuShape("g6.4xlarge", 1, "xlarge"),
                GpuShape("g6.12xlarge", 4, "xlarge"),
            ),
            frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-2", "eu-central-1"}),
        ),
        "nvidia-a100-40gb": AcceleratorOffer(
            "a100",
            (GpuShape("p4d.24xlarge", 8, "xlarge"),),
            frozenset({"us-east-1", "us-west-2", "eu-west-1"}),
        ),
        "nvidia-h100-80gb": AcceleratorOffer(
            "h100",
            (GpuShape("p5.48xlarge", 8, "xlarge"),),
            frozenset({"us-east-1", "us-east-2", "us-west-2"}),
        ),
    },
    "gcp": {
        "nvidia-t4": AcceleratorOffer(
            "nvidia-tesla-t4",
            (
                GpuShape("n1-standard-4", 1, "medium"),
                GpuShape("n1-standard-8", 1, "large"),
                GpuShape("n1-standard-16", 1, "xlarge"),
                GpuShape("n1-standard-32", 4, "xlarge"),
            ),
            frozenset({"us-central1", "us-east1", "us-west1", "europe-west1", "europe-west4", "asia-east1"}),
        ),
        "nvidia-l4": AcceleratorOffer(
            "nvidia-l4",
            (
                GpuShape("g2-standard-4", 1, "medium"),
                GpuShape("g2-standard-8", 1, "large"),
                GpuShape("g2-standard-16", 1, "xlarge"),
                GpuShape("g2-standard-48", 4, "xlarge"),
            ),
            frozenset({"us-central1", "us-east1", "us-east4", "us-west1", "europe-west1", "europe-west4", "asia-east1"}),
        ),
        "nvidia-a100-40gb": AcceleratorOffer(
            "nvidia-tesla-a100",
            (
                GpuShape("a2-highgpu-1g", 1, "xlarge"),
                GpuShape("a2-highgpu-2g", 2, "xlarge"),
                GpuShape("a2-highgpu-4g", 4, "xlarge"),
                GpuShape("a2-highgpu-8g", 8, "xlarge"),
            ),
            frozenset({"us-central1", "us-east1", "us-west1", "europe-west4", "asia-northeast1"}),
        ),
        "nvidia-h100-80gb": AcceleratorOffer(
            "nvidia-h100-80gb",
            (GpuShape("a3-highgpu-8g", 8, "xlarge"),),
            frozenset({"us-central1", "us-east4", "us-east5", "europe-west4"}),
        ),
    },
}


class CatalogError(ValueError):
    """A node shape that the chosen cloud or region cannot provide."""


def cpu_machine_type(cloud: str, size: SizeClass) -> str:
    return CPU_MACHINE_TYPES[cloud][size]


def accelerator_offer(cloud: str, accelerator: str) -> AcceleratorOffer:
    offers = GPU_OFFERS.get(cloud, {})
    if accelerator not in offers:
        raise CatalogError(
            f"accelerator {accelerator!r} is not offered on {cloud}; "
            f"allowed on {cloud}: {', '.join(sorted(offers))}"
        )
    return offers[accelerator]


def gpu_machine_type(cloud: str, accelerator: str, count: int, size: SizeClass, region: str) -> str:
    """The machine type carrying `count` x `accelerator`, at least `size`, offered in `region`."""
    offer = accelerator_offer(cloud, accelerator)
    if region not in offer.regions:
        raise CatalogError(
            f"accelerator {accelerator!r} is not offered in {cloud} region {region!r}; "
            f"regions offering it: {', '.join(sorted(offer.regions))}"
        )
    order = {name: rank for rank, name in enumerate(SIZE_CLASSES)}
    fitting = [s for s in offer.shapes if s.count == count and order[s.size] >= order[size]]
    if not fitting:
        shapes = ", ".join(f"{s.count} GPU(s) at size {s.size} ({s.machine_type})" for s in offer.shapes)
        raise CatalogError(
            f"no {cloud} machine carries {count} x {accelerator} at size {size!r} or larger; offered: {shapes}"
        )
    return min(fitting, key=lambda s: order[s.size]).machine_type


# --- Node capacity and allocatable ------------------------------------------------------------

# vCPUs and GiB of memory of each machine type the catalog picks, from the AWS EC2 instance type
# pages (M6i, G4dn, G5, G6, P4d, P5) and Google Cloud's machine family pages (N1, N2, G2, A2, A3).
MACHINE_CAPACITY: dict[str, tuple[int, float]] = {
    "m6i.large": (2, 8), "m6i.xlarge": (4, 16), "m6i.2xlarge": (8, 32), "m6i.4xlarge": (16, 64),
    "g4dn.xlarge": (4, 16), "g4dn.2xlarge": (8, 32), "g4dn.4xlarge": (16, 64), "g4dn.12xlarge": (48, 192),
    "g5.xlarge": (4, 16), "g5.2xlarge": (8, 32), "g5.4xlarge": (16, 64), "g5.12xlarge": (48, 192),
    "g6.xlarge": (4, 16), "g6.2xlarge": (8, 32), "g6.4xlarge": (16, 64), "g6.12xlarge": (48, 192),
    "p4d.24xlarge": (96, 1152), "p5.48xlarge": (192, 2048),
    "n2-standard-2": (2, 8), "n2-standard-4": (4, 16), "n2-standard-8": (8, 32), "n2-standard-16": (16, 64),
    "n1-standard-4": (4, 15), "n1-standard-8": (8, 30), "n1-standard-16": (16, 60), "n1-standard-32": (32, 120),
    "g2-standard-4": (4, 16), "g2-standard-8": (8, 32), "g2-standard-16": (16, 64), "g2-standard-48": (48, 192),
    "a2-highgpu-1g": (12, 85), "a2-highgpu-2g": (24, 170), "a2-highgpu-4g": (48, 340), "a2-highgpu-8g": (96, 680),
    "a3-highgpu-8g": (208, 1872),
}

# Pods per node the EKS AMI configures for each instance type (its ENI limit), from
# awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt; the AMI's kube-reserved
# memory grows with it.
EKS_MAX_PODS: dict[str, int] = {
    "m6i.large": 29, "m6i.xlarge": 58, "m6i.2xlarge": 58, "m6i.4xlarge": 234,
    "g4dn.xlarge": 29, "g4dn.2xlarge": 29, "g4dn.4xlarge": 29, "g4dn.12xlarge": 234,
    "g5.xlarge": 58, "g5.2xlarge": 58, "g5.4xlarge": 234, "g5.12xlarge": 737,
    "g6.xlarge": 58, "g6.2xlarge": 58, "g6.4xlarge": 234, "g6.12xlarge": 234,
    "p4d.24xlarge": 737, "p5.48xlarge": 100,
}

EVICTION_HARD_MIB = 100  # kubelet `memory.available<100Mi` on both EKS AMIs and GKE nodes


@dataclass(frozen=True)
class Allocatable:
    """What the scheduler can place on one node: capacity minus kube-reserved and eviction."""

    machine_type: str
    millicpu: int
    memory_mib: int


def _reserved_millicpu(vcpus: int) -> float:
    """kube-reserved CPU, the same tiers on GKE ("Node allocatable resources") and the EKS AMI:
    6 % of the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % of the rest."""
    tiers = ((1, 0.06), (1, 0.01), (2, 0.005), (max(vcpus - 4, 0), 0.0025))
    reserved, left = 0.0, vcpus
    for cores, share in tiers:
        taken = min(cores, left)
        reserved += taken * 1000 * share
        left -= taken
    return reserved


def _gke_reserved_memory_mib(memory_mib: float) -> float:
    """GKE kube-reserved memory: 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next 8,
    6 % of the next 112 and 2 % above 128 GiB (GKE docs, "Standard cluster architecture")."""
    tiers = ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06), (float("inf"), 0.02))
    reserved, left = 0.0, memory_mib
    for size, share in tiers:
        taken = min(size, left)
        reserved += taken * share
        left -= taken
    return reserved


def node_allocatable(cloud: str, machine_type: str) -> Allocatable:
    vcpus, memory_gib = MACHINE_CAPACITY[machine_type]
    memory_mib = memory_gib * 1024
    if cloud == "aws":
        # EKS AMI (nodeadm) kube-reserved memory: 255 MiB + 11 MiB per pod the node may run.
        reserved_memory = 255 + 11 * EKS_MAX_PODS[machine_type]
    else:
        reserved_memory = _gke_reserved_memory_mib(memory_mib)
    return Allocatable(
        machine_type,
        millicpu=int(vcpus * 1000 - _reserved_millicpu(vcpus)),
        memory_mib=int(memory_mib - reserved_memory - EVICTION_HARD_MIB),
    )


def pool_machine_type(cloud: str, size: SizeClass, accelerator: str | None, count: int, region: str) -> str:
    if accelerator is None:
        return cpu_machine_type(cloud, size)
    return gpu_machine_type(cloud, accelerator, count, size, region)


# --- Regions and pool size limits --------------------------------------------------------------

# Regions each cloud offers (AWS "Regions and Availability Zones", Google Cloud "Regions and
# zones", as of 2026-11); an unknown region is a config error, not a failed `pulumi up`.
REGIONS: dict[str, frozenset[str]] = {
    "aws": frozenset({
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-east-2",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
        "ap-southeast-5", "ap-southeast-7", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "eu-south-1", "eu-south-2", "eu-north-1", "il-central-1", "me-south-1", "me-central-1",
        "mx-central-1", "sa-east-1",
    }),
    "gcp": frozenset({
        "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3",
        "us-west4", "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
        "southamerica-east1", "southamerica-west1", "europe-central2", "europe-north1", "europe-north2",
        "europe-southwest1", "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6",
        "europe-west8", "europe-west9", "europe-west10", "europe-west12", "me-central1", "me-central2",
        "me-west1", "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
        "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
        "australia-southeast1", "australia-southeast2",
    }),
}

# Largest node count one pool may declare: EKS "Nodes per managed node group" (450, Amazon EKS
# service quotas) and GKE "Nodes per node pool zone" (1,000 per zone, GKE quotas and limits).
MAX_POOL_NODES: dict[str, int] = {"aws": 450, "gcp": 1000}
