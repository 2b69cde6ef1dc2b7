"""The GCP network: custom-mode VPC, subnet with pod/service ranges, Cloud NAT, Private Service Access."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.offline.render import RenderedResource, Rendering, render

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


def one(rendering: Rendering, type_token: str) -> RenderedResource:
    (resource,) = rendering.by_type(type_token)
    return resource


def test_vpc_is_custom_mode_so_no_subnet_appears_in_every_region(prod):
    vpc = one(prod, "gcp:compute/network:Network")
    assert vpc.name == "network-vpc"
    assert vpc.inputs["autoCreateSubnetworks"] is False
    assert vpc.inputs["routingMode"] == "REGIONAL"


def test_subnet_carries_the_configured_node_pod_and_service_ranges(prod):
    subnet = one(prod, "gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["network"] == "network-vpc-id"
    assert subnet.inputs["region"] == "us-central1"
    assert subnet.inputs["ipCidrRange"] == "10.50.0.0/20"
    assert subnet.inputs["secondaryIpRanges"] == [
        {"rangeName": "pods", "ipCidrRange": "10.64.0.0/14"},
        {"rangeName": "services", "ipCidrRange": "10.68.0.0/20"},
    ]
    assert subnet.inputs["privateIpGoogleAccess"] is True


def test_cluster_uses_the_subnet_and_its_secondary_ranges(prod):
    """The pod/service range names the cluster asks for are the ones the subnet declares."""
    cluster = one(prod, "gcp:container/cluster:Cluster").inputs
    subnet = one(prod, "gcp:compute/subnetwork:Subnetwork").inputs
    assert cluster["network"] == "network-vpc-id" and cluster["subnetwork"] == "network-nodes-id"
    declared = {r["rangeName"] for r in subnet["secondaryIpRanges"]}
    policy = cluster["ipAllocationPolicy"]
    assert {policy["clusterSecondaryRangeName"], policy["servicesSecondaryRangeName"]} == declared
    assert cluster["networkingMode"] == "VPC_NATIVE"


def test_cloud_nat_gives_the_cluster_subnet_egress_through_the_router(prod):
    router = one(prod, "gcp:compute/router:Router")
    nat = one(prod, "gcp:compute/routerNat:RouterNat")
    assert router.inputs["network"] == "network-vpc-id" and router.inputs["region"] == "us-central1"
    assert nat.inputs["router"].startswith("network-router-")
    assert router.urn in nat.options["dependsOn"]
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat.inputs["subnetworks"] == [{"name": "network-nodes-id", "sourceIpRangesToNats": ["ALL_IP_RANGES"]}]
    assert nat.inputs["natIpAllocateOption"] == "AUTO_ONLY"


def test_private_service_access_peers_a_reserved_range_with_service_networking(prod):
    address = one(prod, "gcp:compute/globalAddress:GlobalAddress")
    connection = one(prod, "gcp:servicenetworking/connection:Connection")
    assert address.inputs["purpose"] == "VPC_PEERING"
    assert address.inputs["addressType"] == "INTERNAL"
    assert address.inputs["network"] == "network-vpc-id"
    assert connection.inputs["service"] == "servicenetworking.googleapis.com"
    assert connection.inputs["network"] == "network-vpc-id"
    # The range is referred to by the address's (auto-generated) name.
    (reserved,) = connection.inputs["reservedPeeringRanges"]
    assert reserved.startswith("network-service-access-")
    assert address.urn in connection.options["dependsOn"]


def test_cluster_is_created_after_nat_and_destroyed_before_it(prod):
    nat = one(prod, "gcp:compute/routerNat:RouterNat")
    assert nat.urn in one(prod, "gcp:container/cluster:Cluster").options["dependsOn"]


def test_every_network_resource_is_a_child_of_the_network_component_on_the_gcp_provider(prod):
    (component,) = [r for r in prod.resources if r.type == "mlops:gcp:Network"]
    children = [r for r in prod.resources if r.parent == component.urn]
    assert sorted(r.type.split(":")[-1] for r in children) == [
        "Connection", "GlobalAddress", "Network", "Router", "RouterNat", "Subnetwork",
    ]
    assert all(r.options["provider"].endswith("pulumi:providers:gcp::gcp") for r in children)
