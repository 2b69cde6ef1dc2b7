"""The gateway's network load balancer on AWS: declared by the stack, bound to Envoy's pods by IP.

A Network Load Balancer in the public subnets (internet-facing) or the private ones (internal),
with a security group admitting the configured client ranges on 443 only, a TCP listener on 443
(TLS is terminated by Envoy, which holds the certificate) and an IP target group on the port
Envoy's container listens on. The AWS Load Balancer Controller registers Envoy's pod IPs in that
target group through a TargetGroupBinding (`load_balancer_controller.py`), so the Kubernetes
Service stays ClusterIP and no load balancer exists that the stack does not declare.

With a Route 53 hosted zone (the ACME zone), `<domain>` and `*.<domain>` are alias A records to
the load balancer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.interfaces import GATEWAY_HTTPS_PORT

ANYWHERE = "0.0.0.0/0"
# Envoy Gateway moves a listener on a privileged port (< 1024) to port + 10000 in Envoy's container,
# so Envoy needs no NET_BIND_SERVICE (envoyproxy/gateway v1.9.0, internal/gatewayapi/listener.go
# servicePortToContainerPort; wellKnownPortShift in internal/gatewayapi/translator.go).
PRIVILEGED_PORT_LIMIT = 1024
WELL_KNOWN_PORT_SHIFT = 10000
Scheme = Literal["internal", "internet-facing"]


def envoy_container_port(listener_port: int) -> int:
    """The port Envoy's pod listens on for a Gateway listener port."""
    return listener_port + WELL_KNOWN_PORT_SHIFT if listener_port < PRIVILEGED_PORT_LIMIT else listener_port


ENVOY_HTTPS_CONTAINER_PORT = envoy_container_port(GATEWAY_HTTPS_PORT)


def admitted_cidrs(scheme: Scheme, source_cidrs: Sequence[str], vpc_cidr: str) -> list[str]:
    """Client ranges the load balancer admits: the configured ones, else anyone who can reach it
    (the internet for internet-facing, the VPC for internal)."""
    if source_cidrs:
        return sorted(dict.fromkeys(source_cidrs))
    return [ANYWHERE if scheme == "internet-facing" else vpc_cidr]


def record_names(domain: str) -> list[str]:
    """The names the gateway answers: the domain itself and every host under it."""
    return [domain, f"*.{domain}"]


@dataclass(frozen=True)
class GatewayLoadBalancerArgs:
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    scheme: Scheme
    # Public subnets for internet-facing, private ones for internal (`Network`).
    subnet_ids: Sequence[pulumi.Input[str]]
    source_cidrs: Sequence[str]
    domain: str
    # Route 53 hosted zone id of the domain; None: the records are left to whoever owns the zone.
    hosted_zone_id: str | None
    target_port: int = ENVOY_HTTPS_CONTAINER_PORT


class GatewayLoadBalancer(pulumi.ComponentResource):
    load_balancer: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    security_group: aws.ec2.SecurityGroup
    listener: aws.lb.Listener
    records: list[aws.route53.Record]

    def __init__(self, name: str, args: GatewayLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:aws:GatewayLoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.security_group = self._security_group(name, args)
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=args.scheme == "internal",
            subnets=list(args.subnet_ids),
            security_groups=[self.security_group.id],
            # One target per zone would otherwise take only its own zone's share of clients.
            enable_cross_zone_load_balancing=True,
            tags={"Name": f"{name}-nlb"},
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-envoy",
            target_type="ip",
            protocol="TCP",
            port=args.target_port,
            vpc_id=args.vpc_id,
            # Envoy sees the load balancer's private address, so the gateway namespace's
            # NetworkPolicy and the node security group deal with VPC addresses only.
            preserve_client_ip="false",
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="TCP", port="traffic-port", healthy_threshold=2, unhealthy_threshold=2, interval=10
            ),
            tags={"Name": f"{name}-envoy"},
            opts=child,
        )
        self.listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=GATEWAY_HTTPS_PORT,
            # TCP pass-through: Envoy terminates TLS with the gateway's certificate.
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)],
            tags={"Name": f"{name}-https"},
            opts=child,
        )
        self.records = [
            aws.route53.Record(
                f"{name}-{'wildcard' if record.startswith('*.') else 'apex'}",
                zone_id=args.hosted_zone_id,
                name=record,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=self.load_balancer.dns_name, zone_id=self.load_balancer.zone_id, evaluate_target_health=True
                    )
                ],
                opts=child,
            )
            for record in (record_names(args.domain) if args.hosted_zone_id else [])
        ]
        self.register_outputs(
            {
                "dns_name": self.load_balancer.dns_name,
                "target_group_arn": self.target_group.arn,
                "security_group_id": self.security_group.id,
            }
        )

    def _security_group(self, name: str, args: GatewayLoadBalancerArgs) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{name}-nlb",
            vpc_id=args.vpc_id,
            description=f"HTTPS to the gateway's {args.scheme} load balancer; on to Envoy's pods only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=GATEWAY_HTTPS_PORT,
                    to_port=GATEWAY_HTTPS_PORT,
                    cidr_blocks=admitted_cidrs(args.scheme, args.source_cidrs, args.vpc_cidr),
                    description="HTTPS clients of the gateway",
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=args.target_port,
                    to_port=args.target_port,
                    cidr_blocks=[args.vpc_cidr],
                    description="Envoy's pods (traffic and health checks)",
                )
            ],
            tags={"Name": f"{name}-nlb"},
            opts=pulumi.ResourceOptions(parent=self),
        )


def cert_manager_route53_policy(hosted_zone_id: str) -> dict[str, Any]:
    """What cert-manager's DNS-01 solver needs in Route 53 (cert-manager docs, "ACME DNS01 Route53"),
    narrowed to the one zone and to TXT records. The solver is given the zone id, so the docs'
    `route53:ListHostedZonesByName` (zone discovery by name) is not granted."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PollChanges", "Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
            {
                "Sid": "ChallengeRecords",
                "Effect": "Allow",
                "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"],
                "Resource": f"arn:aws:route53:::hostedzone/{hosted_zone_id}",
                "Condition": {"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}},
            },
        ],
    }
