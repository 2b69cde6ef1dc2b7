"""The VPC an EKS cluster lives in: public and private subnets per zone, NAT, private AWS endpoints.

Nodes and the database sit in private subnets; public subnets hold only the NAT gateways and the
internet-facing load balancers Kubernetes creates. Nodes reach S3, ECR and STS through VPC
endpoints, so image pulls and IRSA token exchanges never cross the NAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.foundation.aws.subnet_plan import ZoneSubnets, plan_subnets

# Interface endpoints nodes need to pull images (ECR API + registry) and to exchange IRSA tokens.
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("ecr.api", "ecr.dkr", "sts")


@dataclass(frozen=True)
class NetworkArgs:
    cluster_name: str
    region: str
    vpc_cidr: str
    zones: list[str]
    nat_gateways: Literal["single", "perZone"]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    # Where nodes and pods get their addresses (vpc-cni gives pods VPC IPs).
    private_cidrs: list[str]
    # What nodes need to bootstrap (egress routes, NAT, endpoints): the cluster depends on these,
    # so `pulumi destroy` removes them only after every node is gone.
    egress_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:Network", name, None, opts)
        self._name = name
        self._args = args
        plan = plan_subnets(args.vpc_cidr, args.zones)
        self.private_cidrs = [z.private_cidr for z in plan]
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # Interface endpoints with private DNS and EKS private endpoints need both.
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._tags(f"{name}-vpc"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vpc_id = vpc.id
        self.egress_ready = []
        public_subnets = self._public_subnets(vpc, plan)
        private_subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{z.zone}",
                vpc_id=vpc.id,
                cidr_block=z.private_cidr,
                availability_zone=z.zone,
                tags=self._subnet_tags(f"{name}-private-{z.zone}", "kubernetes.io/role/internal-elb"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for z in plan
        ]
        private_route_tables = self._private_routes(vpc, plan, public_subnets, private_subnets)
        self._endpoints(vpc, private_subnets, private_route_tables)
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.register_outputs(
            {"vpc_id": self.vpc_id, "public_subnet_ids": self.public_subnet_ids, "private_subnet_ids": self.private_subnet_ids}
        )

    def _tags(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Name": name, **(extra or {})}

    def _subnet_tags(self, name: str, role_tag: str) -> dict[str, str]:
        return self._tags(name, {role_tag: "1", f"kubernetes.io/cluster/{self._args.cluster_name}": "shared"})

    def _public_subnets(self, vpc: aws.ec2.Vpc, plan: list[ZoneSubnets]) -> list[aws.ec2.Subnet]:
        name = self._name
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self._tags(f"{name}-igw"), opts=pulumi.ResourceOptions(parent=self)
        )
        table = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags=self._tags(f"{name}-public"), opts=pulumi.ResourceOptions(parent=self)
        )
        route = aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.egress_ready.append(route)
        self._internet_route = route
        subnets = []
        for z in plan:
            subnet = aws.ec2.Subnet(
                f"{name}-public-{z.zone}",
                vpc_id=vpc.id,
                cidr_block=z.public_cidr,
                availability_zone=z.zone,
                # Nothing launched here needs a public IP of its own: NAT gateways get an EIP,
                # load balancers get theirs from AWS.
                map_public_ip_on_launch=False,
                tags=self._subnet_tags(f"{name}-public-{z.zone}", "kubernetes.io/role/elb"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-public-{z.zone}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.egress_ready.append(association)
            subnets.append(subnet)
        return subnets

    def _private_routes(
        self,
        vpc: aws.ec2.Vpc,
        plan: list[ZoneSubnets],
        public_subnets: list[aws.ec2.Subnet],
        private_subnets: list[aws.ec2.Subnet],
    ) -> list[aws.ec2.RouteTable]:
        name = self._name
        nat_zones = plan if self._args.nat_gateways == "perZone" else plan[:1]
        nats = []
        for index, z in enumerate(nat_zones):
            address = aws.ec2.Eip(
                f"{name}-nat-{z.zone}", domain="vpc", tags=self._tags(f"{name}-nat-{z.zone}"), opts=pulumi.ResourceOptions(parent=self)
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{z.zone}",
                allocation_id=address.id,
                subnet_id=public_subnets[index].id,
                tags=self._tags(f"{name}-nat-{z.zone}"),
                # A NAT gateway only forwards once its subnet routes to the internet gateway.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self._internet_route]),
            )
            nats.append(nat)
            self.egress_ready.append(nat)
        tables = []
        for index, (z, subnet) in enumerate(zip(plan, private_subnets, strict=True)):
            table = aws.ec2.RouteTable(
                f"{name}-private-{z.zone}",
                vpc_id=vpc.id,
                tags=self._tags(f"{name}-private-{z.zone}"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            route = aws.ec2.Route(
                f"{name}-private-{z.zone}-default",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[index if len(nats) > 1 else 0].id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-private-{z.zone}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.egress_ready += [route, association]
            tables.append(table)
        return tables

    def _endpoints(
        self, vpc: aws.ec2.Vpc, private_subnets: list[aws.ec2.Subnet], private_route_tables: list[aws.ec2.RouteTable]
    ) -> None:
        name, region = self._name, self._args.region
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in private_route_tables],
            tags=self._tags(f"{name}-s3"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from inside the VPC to the AWS interface endpoints",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[self._args.vpc_cidr], description="HTTPS from the VPC"
                )
            ],
            tags=self._tags(f"{name}-endpoints"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.egress_ready.append(s3)
        for service in INTERFACE_ENDPOINT_SERVICES:
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[security_group.id],
                tags=self._tags(f"{name}-{service}"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.egress_ready.append(endpoint)
