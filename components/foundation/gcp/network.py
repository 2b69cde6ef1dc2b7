"""The VPC the cluster and the database live in.

Custom-mode VPC (no automatic subnet in every region) with one regional subnet whose secondary
ranges carry pod and service IPs (VPC-native GKE). Nodes have no public IPs, so Cloud NAT behind
a Cloud Router gives them egress (image pulls from outside Google); Google APIs are reached
through Private Google Access. Cloud SQL gets a private IP through Private Service Access: a
reserved range peered to Google's service producer network.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

PODS_RANGE = "pods"
SERVICES_RANGE = "services"
SERVICE_NETWORKING = "servicenetworking.googleapis.com"
# Size of the range Google's managed services (Cloud SQL) take their addresses from.
SERVICE_ACCESS_PREFIX_LENGTH = 20


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    nodes_cidr: str
    pods_cidr: str
    services_cidr: str


class Network(pulumi.ComponentResource):
    network: gcp.compute.Network
    subnetwork: gcp.compute.Subnetwork
    network_id: pulumi.Output[str]
    subnetwork_id: pulumi.Output[str]
    # Created before, destroyed after, whatever needs egress (nodes) or a private IP (Cloud SQL).
    egress_ready: list[pulumi.Resource]
    service_access: gcp.servicenetworking.Connection

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = gcp.compute.Network(
            f"{name}-vpc",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description="MLOps platform VPC",
            opts=child,
        )
        self.subnetwork = gcp.compute.Subnetwork(
            f"{name}-nodes",
            network=self.network.id,
            region=args.region,
            ip_cidr_range=args.nodes_cidr,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=args.pods_cidr),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICES_RANGE, ip_cidr_range=args.services_cidr),
            ],
            # Nodes without public IPs still reach Google APIs (GCS, Artifact Registry, IAM).
            private_ip_google_access=True,
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_SEC", flow_sampling=0.5, metadata="INCLUDE_ALL_METADATA"
            ),
            opts=child,
        )
        router = gcp.compute.Router(f"{name}-router", network=self.network.id, region=args.region, opts=child)
        nat = gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            # Only the cluster subnet (nodes and pods) gets egress, nothing added to the VPC later.
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(name=self.subnetwork.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"])
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )
        service_range = gcp.compute.GlobalAddress(
            f"{name}-service-access",
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=SERVICE_ACCESS_PREFIX_LENGTH,
            network=self.network.id,
            description="Private Service Access range (Cloud SQL private IPs)",
            opts=child,
        )
        self.service_access = gcp.servicenetworking.Connection(
            f"{name}-service-access",
            network=self.network.id,
            service=SERVICE_NETWORKING,
            reserved_peering_ranges=[service_range.name],
            # Deleting the peering fails while Cloud SQL still uses it; abandoning it lets
            # `pulumi destroy` finish once the instance is gone (the VPC deletion removes it).
            deletion_policy="ABANDON",
            opts=child,
        )
        self.network_id = self.network.id
        self.subnetwork_id = self.subnetwork.id
        self.egress_ready = [nat]
        self.register_outputs({"network_id": self.network_id, "subnetwork_id": self.subnetwork_id})
