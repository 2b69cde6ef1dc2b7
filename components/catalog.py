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
