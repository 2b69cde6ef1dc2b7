"""How the VPC is carved into subnets, without Pulumi: the network component builds from this plan
and the config rules check a VPC CIDR against it before any resource exists."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ZoneSubnets:
    zone: str
    public_cidr: str
    private_cidr: str


def plan_subnets(vpc_cidr: str, zones: Sequence[str]) -> list[ZoneSubnets]:
    """Carve the VPC into a large private subnet per zone (pods take VPC IPs) and a small public one.

    The VPC is split in eight; zone i gets private block i, and the last block is split in
    eight again for the public subnets, so the plan stays stable when a zone is added.
    """
    network = ipaddress.ip_network(vpc_cidr)
    if network.prefixlen > 20:
        raise ValueError(f"vpcCidr {vpc_cidr!r} is too small for EKS subnets; use a /20 or larger (e.g. 10.40.0.0/16)")
    blocks = list(network.subnets(prefixlen_diff=3))
    public_blocks = list(blocks[-1].subnets(prefixlen_diff=3))
    if len(zones) >= len(blocks):
        raise ValueError(f"{len(zones)} zones do not fit in vpcCidr {vpc_cidr!r}; at most {len(blocks) - 1}")
    return [ZoneSubnets(zone, str(public_blocks[i]), str(blocks[i])) for i, zone in enumerate(zones)]
