"""cluster-api-not-public: the Kubernetes API is never open to 0.0.0.0/0.

EKS: a public endpoint (the AWS default when `endpointPublicAccess` is unset) needs an explicit
`publicAccessCidrs` allow-list without 0.0.0.0/0 (an empty list means 0.0.0.0/0 to AWS). GKE: a
cluster without a private endpoint needs master authorized networks without 0.0.0.0/0.
Advisory in dev (a laptop may need it for a day), mandatory in prod.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .common.guardrail import ADVISORY, MANDATORY, Report, RuleText, resource_guardrail, violation
from .common.kubernetes import dig

OPEN = ("0.0.0.0/0", "::/0")

TEXT = RuleText(
    name="cluster-api-not-public",
    description="The cluster API endpoint is private or restricted to listed CIDRs, never 0.0.0.0/0.",
    remediation="Set mlops:cluster.privateEndpoint: true, or list office/VPN ranges in mlops:cluster.publicAccessCidrs.",
)


def validate(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == "aws:eks/cluster:Cluster":
        vpc = args.props.get("vpcConfig") or {}
        if vpc.get("endpointPublicAccess", True) is False:
            return
        cidrs = list(vpc.get("publicAccessCidrs") or [])
        if not cidrs or any(c in OPEN for c in cidrs):
            report(violation(f"EKS cluster {args.name} serves a public API endpoint open to {cidrs or ['0.0.0.0/0 (AWS default)']}", TEXT.remediation))
    elif args.resource_type == "gcp:container/cluster:Cluster":
        if dig(args.props, "privateClusterConfig", "enablePrivateEndpoint") is True:
            return
        if dig(args.props, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enablePublicEndpoint") is False:
            return
        blocks = dig(args.props, "masterAuthorizedNetworksConfig", "cidrBlocks") or []
        cidrs = [b.get("cidrBlock") for b in blocks]
        if not cidrs or any(c in OPEN for c in cidrs):
            report(violation(f"GKE cluster {args.name} serves a public API endpoint open to {cidrs or ['0.0.0.0/0 (no master authorized networks)']}", TEXT.remediation))


GUARDRAIL = resource_guardrail(TEXT, validate, dev=ADVISORY, prod=MANDATORY)
