"""The gateway's address on GCP: a regional static IP the stack declares, and its DNS records.

GKE's own service controller builds the passthrough Network Load Balancer (forwarding rule, backend,
firewall rule from `loadBalancerSourceRanges`) for Envoy's Service of type LoadBalancer, pinned to
this address: EXTERNAL for internet-facing, INTERNAL in the cluster's subnet for internal (the
Service then carries `networking.gke.io/load-balancer-type: Internal`). Reserving the address here
keeps it, and the DNS records pointing at it, stable across Service re-creations and visible to
previews and cost. With a Cloud DNS managed zone (the ACME zone), `<domain>` and `*.<domain>` are
A records to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_gcp as gcp

# GKE's annotation for an internal passthrough load balancer (GKE docs, "LoadBalancer Service parameters").
INTERNAL_LOAD_BALANCER_ANNOTATION = "networking.gke.io/load-balancer-type"
RECORD_TTL_SECONDS = 300


def service_annotations(scheme: Literal["internal", "internet-facing"]) -> dict[str, str]:
    """What Envoy's Service carries for GKE to build the right kind of load balancer."""
    return {INTERNAL_LOAD_BALANCER_ANNOTATION: "Internal"} if scheme == "internal" else {}


def record_names(domain: str) -> list[str]:
    """Cloud DNS names are absolute: the domain and every host under it, with the trailing dot."""
    return [f"{domain}.", f"*.{domain}."]


@dataclass(frozen=True)
class GatewayAddressArgs:
    region: str
    scheme: Literal["internal", "internet-facing"]
    # The cluster's subnet: an internal address must come from the subnet of the load balancer.
    subnetwork_id: pulumi.Input[str]
    domain: str
    # Cloud DNS managed zone name of the domain; None: the records are left to whoever owns the zone.
    managed_zone: str | None


class GatewayAddress(pulumi.ComponentResource):
    address: gcp.compute.Address
    records: list[gcp.dns.RecordSet]

    def __init__(self, name: str, args: GatewayAddressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:GatewayAddress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        internal = args.scheme == "internal"
        self.address = gcp.compute.Address(
            f"{name}-ip",
            region=args.region,
            address_type="INTERNAL" if internal else "EXTERNAL",
            subnetwork=args.subnetwork_id if internal else None,
            # GKE's regional external passthrough load balancer takes a Premium-tier address.
            network_tier=None if internal else "PREMIUM",
            description=f"The platform gateway's {args.scheme} load balancer (Envoy's Service)",
            opts=child,
        )
        self.records = [
            gcp.dns.RecordSet(
                f"{name}-{'wildcard' if record.startswith('*.') else 'apex'}",
                managed_zone=args.managed_zone,
                name=record,
                type="A",
                ttl=RECORD_TTL_SECONDS,
                rrdatas=[self.address.address],
                opts=child,
            )
            for record in (record_names(args.domain) if args.managed_zone else [])
        ]
        self.register_outputs({"address": self.address.address})
