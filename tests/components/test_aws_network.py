"""The AWS network: subnets per zone with ELB tags, NAT per config, private endpoints to AWS APIs."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from components.foundation.aws.network import plan_subnets
from mlops.offline.render import RenderedResource, Rendering, render
from tests.conftest import prod_section_without

PROJECT_DIR = Path(__file__).resolve().parents[2]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
DEV_ON_AWS = {
    "mlops:environment": "dev",
    "mlops:aws.zones": '["us-east-1a", "us-east-1b"]',
    "mlops:aws.natGateways": "single",
}


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "prod", DEV_ON_AWS)


def named(rendering: Rendering, type_token: str) -> dict[str, RenderedResource]:
    return {r.name: r for r in rendering.by_type(type_token)}


def test_subnet_plan_gives_each_zone_disjoint_private_and_public_ranges_inside_the_vpc():
    """Every subnet lies in the VPC, none overlap, and private ranges are the larger ones (pods take VPC IPs)."""
    plan = plan_subnets("10.40.0.0/16", ZONES)
    vpc = ipaddress.ip_network("10.40.0.0/16")
    networks = [ipaddress.ip_network(c) for z in plan for c in (z.public_cidr, z.private_cidr)]
    assert [z.zone for z in plan] == ZONES
    assert all(n.subnet_of(vpc) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    assert all(ipaddress.ip_network(z.private_cidr).num_addresses >= 8192 for z in plan)


def test_subnet_plan_keeps_existing_zones_when_a_zone_is_added():
    """Adding a zone must not renumber (and so replace) the subnets of the existing ones."""
    assert plan_subnets("10.40.0.0/16", ZONES[:2]) == plan_subnets("10.40.0.0/16", ZONES)[:2]


def test_subnet_plan_rejects_a_vpc_too_small_for_eks():
    with pytest.raises(ValueError, match=r"vpcCidr '10.40.0.0/24' is too small .* /20 or larger"):
        plan_subnets("10.40.0.0/24", ZONES)


def test_vpc_resolves_dns_for_private_endpoints(prod):
    (vpc,) = prod.by_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True


def test_subnets_span_three_zones_with_the_kubernetes_load_balancer_tags(prod):
    """Public subnets carry `kubernetes.io/role/elb`, private ones `internal-elb`; both name the cluster."""
    subnets = named(prod, "aws:ec2/subnet:Subnet")
    for zone in ZONES:
        public, private = subnets[f"network-public-{zone}"], subnets[f"network-private-{zone}"]
        assert public.inputs["availabilityZone"] == private.inputs["availabilityZone"] == zone
        assert public.inputs["tags"]["kubernetes.io/role/elb"] == "1"
        assert "kubernetes.io/role/internal-elb" not in public.inputs["tags"]
        assert private.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert "kubernetes.io/role/elb" not in private.inputs["tags"]
        for subnet in (public, private):
            assert subnet.inputs["tags"]["kubernetes.io/cluster/mlops-prod"] == "shared"
        assert public.inputs["mapPublicIpOnLaunch"] is False


def test_prod_has_one_nat_gateway_per_zone_each_serving_its_own_zone(prod):
    nats = named(prod, "aws:ec2/natGateway:NatGateway")
    assert sorted(nats) == [f"network-nat-{zone}" for zone in ZONES]
    for zone in ZONES:
        assert nats[f"network-nat-{zone}"].inputs["subnetId"] == f"network-public-{zone}-id"
        route = named(prod, "aws:ec2/route:Route")[f"network-private-{zone}-default"]
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        assert route.inputs["natGatewayId"] == f"network-nat-{zone}-id"
        assert route.inputs["routeTableId"] == f"network-private-{zone}-id"


def test_dev_on_aws_shares_one_nat_gateway_across_two_zones(dev):
    """natGateways: single is the cheap choice: one NAT, every private route goes through it."""
    nats = dev.by_type("aws:ec2/natGateway:NatGateway")
    assert [n.name for n in nats] == ["network-nat-us-east-1a"]
    assert len(dev.by_type("aws:ec2/eip:Eip")) == 1
    private_routes = [r for r in dev.by_type("aws:ec2/route:Route") if r.name.startswith("network-private-")]
    assert len(private_routes) == 2
    assert {r.inputs["natGatewayId"] for r in private_routes} == {"network-nat-us-east-1a-id"}
    assert len(dev.by_type("aws:ec2/subnet:Subnet")) == 4


def test_nodes_reach_s3_through_a_gateway_endpoint_on_every_private_route_table(prod):
    endpoints = named(prod, "aws:ec2/vpcEndpoint:VpcEndpoint")
    s3 = endpoints["network-s3"]
    assert s3.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert sorted(s3.inputs["routeTableIds"]) == [f"network-private-{zone}-id" for zone in ZONES]


@pytest.mark.parametrize("service", ["ecr.api", "ecr.dkr", "sts"])
def test_ecr_and_sts_are_private_interface_endpoints_in_the_private_subnets(prod, service):
    endpoint = named(prod, "aws:ec2/vpcEndpoint:VpcEndpoint")[f"network-{service.replace('.', '-')}"]
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.us-east-1.{service}"
    assert endpoint.inputs["vpcEndpointType"] == "Interface"
    assert endpoint.inputs["privateDnsEnabled"] is True
    assert sorted(endpoint.inputs["subnetIds"]) == [f"network-private-{zone}-id" for zone in ZONES]
    assert endpoint.inputs["securityGroupIds"] == ["network-endpoints-id"]


def test_endpoint_security_group_admits_only_https_from_the_vpc(prod):
    group = named(prod, "aws:ec2/securityGroup:SecurityGroup")["network-endpoints"]
    (rule,) = group.inputs["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)
    assert rule["cidrBlocks"] == ["10.40.0.0/16"]


@pytest.mark.parametrize(("environment", "nat_count"), [("dev", 1), ("prod", 3)])
def test_nat_gateways_default_to_one_in_dev_and_one_per_zone_in_prod(environment, nat_count):
    """Without mlops:aws.natGateways, dev shares one NAT gateway and prod has one per zone."""
    rendering = render(
        PROJECT_DIR,
        "prod",
        {
            "mlops:environment": environment,
            "mlops:aws": json.dumps(prod_section_without("aws", "natGateways")),
            "mlops:database.highAvailability": "false",
            "mlops:database.deletionProtection": "false",
        },
    )
    assert len(rendering.by_type("aws:ec2/natGateway:NatGateway")) == nat_count
