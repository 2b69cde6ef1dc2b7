"""The gateway's load balancer on AWS: an NLB the stack declares, bound to Envoy's pods by IP through
the AWS Load Balancer Controller, its DNS records, cert-manager's Route 53 identity, and its cost."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from components.foundation.aws.gateway_load_balancer import envoy_container_port
from components.foundation.aws.load_balancer_controller import IMAGE, chart_image_parts
from components.foundation.aws.node_groups import ROLE_LABEL
from components.interfaces import Foundation
from mlops.offline.cost import ENVOY_PROXY_TYPE, PriceTable, estimate
from mlops.offline.render import RenderedResource, Rendering, render
from mlops.offline.validate import ReferenceData, validate_rendering
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR, REFERENCE_DIR, prod_section_without
from tests.render_monitors import record_monitors, render_with_foundation
from tests.exposure import ISSUER, JWKS_URI, LOGIN

ZONE = "Z0123456789ABCDEFGHIJ"
VPC_CIDR = "10.40.0.0/16"  # mlops:aws.vpcCidr of the committed prod stack
ACME = {"issuer": "acme", "acme": {"email": "ops@example.com"}}
PROVIDED = {"issuer": "provided", "provided": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "-----BEGIN PRIVATE KEY-----"}}
# Prod's token issuer and UI login (its public model and UI hosts need them), whichever way the load balancer faces.
AUTH = {"jwt": {"issuer": ISSUER, "audiences": ["ml-api"], "jwksUri": JWKS_URI}, "oidc": LOGIN}
PUBLIC = {**AUTH, "enabled": True, "domain": "ml.example.com", "loadBalancer": "internet-facing", "tls": ACME}
INTERNAL = {
    **AUTH,
    "enabled": True,
    "domain": "ml.example.com",
    "loadBalancer": "internal",
    "sourceCidrs": ["192.168.0.0/16", "10.100.0.0/24"],
    "tls": PROVIDED,
}


@dataclass
class GatewayRender:
    rendering: Rendering
    foundation: Foundation

    def one(self, type_: str, name: str) -> RenderedResource:
        (found,) = [r for r in self.rendering.by_type(type_) if r.name == name]
        return found


def render_with_gateway(gateway: dict) -> GatewayRender:
    """Prod on AWS with `mlops:gateway` set, and the Foundation the program handed the platform."""
    return GatewayRender(*render_with_foundation("prod", {"mlops:gateway": json.dumps(gateway), "mlops:aws.hostedZoneId": ZONE}))


@pytest.fixture(scope="module")
def public() -> GatewayRender:
    return render_with_gateway(PUBLIC)


@pytest.fixture(scope="module")
def internal() -> GatewayRender:
    return render_with_gateway(INTERNAL)


def test_envoy_listens_on_the_gateway_port_moved_above_1024():
    """Envoy Gateway v1.9.0 adds 10000 to privileged listener ports (internal/gatewayapi/listener.go)."""
    assert envoy_container_port(443) == 10443
    assert envoy_container_port(8443) == 8443


def test_internet_facing_nlb_in_public_subnets_admits_anyone_on_443_and_reaches_only_envoys_port(public):
    nlb = public.one("aws:lb/loadBalancer:LoadBalancer", "gateway-lb-nlb").inputs
    assert nlb["loadBalancerType"] == "network" and nlb["internal"] is False
    assert sorted(nlb["subnets"]) == [f"network-public-us-east-1{z}-id" for z in "abc"]
    assert nlb["securityGroups"] == ["gateway-lb-nlb-id"]
    group = public.one("aws:ec2/securityGroup:SecurityGroup", "gateway-lb-nlb").inputs
    assert group["ingress"] == [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"], "description": "HTTPS clients of the gateway"}
    ]
    assert [(r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in group["egress"]] == [(10443, 10443, [VPC_CIDR])]


def test_internal_nlb_in_private_subnets_admits_only_the_configured_ranges(internal):
    nlb = internal.one("aws:lb/loadBalancer:LoadBalancer", "gateway-lb-nlb").inputs
    assert nlb["internal"] is True
    assert sorted(nlb["subnets"]) == [f"network-private-us-east-1{z}-id" for z in "abc"]
    (rule,) = internal.one("aws:ec2/securityGroup:SecurityGroup", "gateway-lb-nlb").inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (443, 443, ["10.100.0.0/24", "192.168.0.0/16"])


def test_listener_passes_443_through_to_an_ip_target_group_on_envoys_container_port(public):
    group = public.one("aws:lb/targetGroup:TargetGroup", "gateway-lb-envoy").inputs
    assert (group["targetType"], group["protocol"], group["port"]) == ("ip", "TCP", 10443)
    assert group["healthCheck"]["protocol"] == "TCP" and group["healthCheck"]["port"] == "traffic-port"
    listener = public.one("aws:lb/listener:Listener", "gateway-lb-https").inputs
    assert (listener["port"], listener["protocol"]) == (443, "TCP")
    assert listener["loadBalancerArn"].endswith("loadbalancer/net/gateway-lb-nlb/" + listener["loadBalancerArn"].rsplit("/", 1)[-1])
    assert listener["defaultActions"] == [{"type": "forward", "targetGroupArn": "arn:aws:lb:us-east-1:123456789012:gateway-lb-envoy"}]


def test_target_group_binding_registers_envoys_pods_from_the_nlb_security_group_after_the_controller(public):
    binding = public.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "gateway-targets-binding")
    assert binding.inputs["metadata"]["namespace"] == "envoy-gateway-system"
    assert binding.inputs["spec"] == {
        "targetGroupARN": "arn:aws:lb:us-east-1:123456789012:gateway-lb-envoy",
        "targetType": "ip",
        "serviceRef": {"name": "mlops-gateway", "port": 443},
        "networking": {"ingress": [{"from": [{"securityGroup": {"groupID": "gateway-lb-nlb-id"}}], "ports": [{"protocol": "TCP", "port": 10443}]}]},
    }
    release = public.one("kubernetes:helm.sh/v3:Release", "aws-load-balancer-controller-release")
    target_group = public.one("aws:lb/targetGroup:TargetGroup", "gateway-lb-envoy")
    assert {release.urn, target_group.urn} <= set(binding.options["dependsOn"])
    # Its namespace is one of the platform namespaces, which exist only once the foundation does:
    # the binding waits for all of them (a dependency on a component is one on its children).
    namespaces = public.one("mlops:platform:Namespaces", "namespaces")
    created = {r.urn for r in public.rendering.resources if r.parent == namespaces.urn and r.type == "kubernetes:core/v1:Namespace"}
    assert created and created <= set(binding.options["dependsOn"])


def test_everything_the_gateway_adds_passes_validation(public):
    """The binding against the controller's v3.5.0 CRD, the chart values against its v3.5.0 defaults."""
    assert [str(f) for f in validate_rendering(public.rendering, ReferenceData(REFERENCE_DIR), "1.35")] == []


def test_controller_release_binds_only_what_it_is_given(public):
    release = public.one("kubernetes:helm.sh/v3:Release", "aws-load-balancer-controller-release").inputs
    assert (release["chart"], release["version"], release["namespace"]) == ("aws-load-balancer-controller", "3.5.0", "kube-system")
    values = release["values"]
    assert (values["clusterName"], values["region"], values["vpcId"]) == ("mlops-prod", "us-east-1", "network-vpc-id")
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/irsa-aws-load-balancer-controller"
    assert values["nodeSelector"] == {ROLE_LABEL: "system"}
    assert values["enableServiceMutatorWebhook"] is False and values["createIngressClassResource"] is False
    assert values["controllerConfig"]["featureGates"] == {"ALBGatewayAPI": False, "NLBGatewayAPI": False}
    # Prod pulls from the stack's registry by digest, behind the pinned tag the chart needs.
    assert values["image"]["repository"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops/aws-load-balancer-controller"
    assert values["image"]["tag"].startswith("v3.5.0@sha256:")


def test_chart_image_takes_the_configured_reference_or_the_registry_digest_behind_the_pinned_tag():
    """The chart writes `<repository>:<tag>`: a digest rides in the tag, after the pinned version."""
    assert chart_image_parts(IMAGE) == ("public.ecr.aws/eks/aws-load-balancer-controller", "v3.5.0")
    digest = "sha256:" + "a" * 64
    assert chart_image_parts(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops/aws-load-balancer-controller@{digest}") == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops/aws-load-balancer-controller",
        f"v3.5.0@{digest}",
    )
    assert chart_image_parts(f"registry.example:5000/lbc:v3.5.0@{digest}") == ("registry.example:5000/lbc", f"v3.5.0@{digest}")


def test_controller_role_is_upstreams_iam_policy_unchanged_for_its_service_account_only(public):
    upstream = json.loads((REFERENCE_DIR / "iam" / "aws-load-balancer-controller.iam_policy.json").read_text())
    assert json.loads(public.one("aws:iam/rolePolicy:RolePolicy", "irsa-aws-load-balancer-controller").inputs["policy"]) == upstream
    trust = json.loads(public.one("aws:iam/role:Role", "irsa-aws-load-balancer-controller").inputs["assumeRolePolicy"])
    (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
    assert "system:serviceaccount:kube-system:aws-load-balancer-controller" in condition.values()


def test_domain_and_wildcard_are_alias_records_to_the_nlb(public):
    for name, record in (("gateway-lb-apex", "ml.example.com"), ("gateway-lb-wildcard", "*.ml.example.com")):
        inputs = public.one("aws:route53/record:Record", name).inputs
        assert (inputs["zoneId"], inputs["name"], inputs["type"]) == (ZONE, record, "A")
        (alias,) = inputs["aliases"]
        assert alias["name"].startswith("gateway-lb-nlb-") and alias["name"].endswith(".elb.us-east-1.amazonaws.com")
        assert alias["zoneId"] == "Z26RNL4JYFTOTI" and alias["evaluateTargetHealth"] is True


def test_cert_manager_may_write_txt_records_in_the_zone_only_with_its_own_role(public):
    policy = json.loads(public.one("aws:iam/rolePolicy:RolePolicy", "irsa-cert-manager").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["PollChanges"]["Action"] == "route53:GetChange" and by_sid["PollChanges"]["Resource"] == "arn:aws:route53:::change/*"
    challenge = by_sid["ChallengeRecords"]
    assert challenge["Resource"] == f"arn:aws:route53:::hostedzone/{ZONE}"
    assert challenge["Condition"] == {"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]}}
    trust = json.loads(public.one("aws:iam/role:Role", "irsa-cert-manager").inputs["assumeRolePolicy"])
    assert "system:serviceaccount:cert-manager:cert-manager" in trust["Statement"][0]["Condition"]["StringEquals"].values()


def test_exposure_handed_to_the_gateway(public, internal):
    """ClusterIP Service (the NLB binds pods), Route 53 DNS-01 with the zone, cert-manager's role annotation."""
    exposure = public.foundation.gateway_exposure
    assert exposure.service_type == "ClusterIP" and exposure.source_cidrs == ()
    assert exposure.dns01_solver == {"route53": {"region": "us-east-1", "hostedZoneID": ZONE}}
    assert "eks.amazonaws.com/role-arn" in public.foundation.identity_annotations["cert-manager"]
    # A provided certificate needs no solver and no cert-manager role; the zone still gets the records.
    assert internal.foundation.gateway_exposure.dns01_solver is None
    assert "cert-manager" not in internal.foundation.identity_annotations
    assert {r.inputs["zoneId"] for r in internal.rendering.by_type("aws:route53/record:Record")} == {ZONE}


def test_the_nlb_and_its_public_addresses_are_in_the_cost_estimate(public, internal):
    prices = PriceTable.load()
    lines = {line.item: line for line in estimate(public.rendering.document(), prices).lines if line.resource == "gateway-lb-nlb"}
    assert lines["network load balancer (hourly; NLCUs, billed by traffic, not priced)"].monthly_max == round(0.0225 * 730, 2)
    assert lines["public IPv4 addresses"].monthly_max == round(3 * 0.005 * 730, 2)
    internal_items = {line.item for line in estimate(internal.rendering.document(), prices).lines if line.resource == "gateway-lb-nlb"}
    assert internal_items == {"network load balancer (hourly; NLCUs, billed by traffic, not priced)"}
    # Envoy's Service is ClusterIP on AWS (the NLB binds its pods): the EnvoyProxy is not a second load balancer.
    (envoy_proxy,) = public.rendering.by_type(ENVOY_PROXY_TYPE)
    assert envoy_proxy.inputs["spec"]["provider"]["kubernetes"]["envoyService"]["type"] == "ClusterIP"
    assert not [line for line in estimate(public.rendering.document(), prices).lines if line.resource == envoy_proxy.name]


def test_acme_without_a_hosted_zone_is_refused_naming_the_key(monkeypatch):
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:aws\.hostedZoneId.*tls\.issuer acme"):
        render(PROJECT_DIR, "prod", {"mlops:gateway": json.dumps(PUBLIC), "mlops:aws": json.dumps(prod_section_without("aws", "hostedZoneId"))}, processes=1)
    assert monitors and monitors[0].recorded == []


def test_a_zone_that_is_not_a_hosted_zone_id_is_refused_naming_the_key(monkeypatch):
    """A domain name where Route 53 wants a zone id: refused before any resource is declared."""
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:aws\.hostedZoneId.*Route 53 hosted zone id"):
        render(PROJECT_DIR, "prod", {"mlops:gateway": json.dumps(PUBLIC), "mlops:aws.hostedZoneId": "example.com"}, processes=1)
    assert monitors and monitors[0].recorded == []



def test_an_ipv6_source_range_is_refused_naming_the_key():
    """The NLB is IPv4-only and EC2 takes IPv6 ranges in another field: an IPv6 range would never admit anyone."""
    gateway = {**PUBLIC, "sourceCidrs": ["203.0.113.0/24", "2001:db8::/32"]}
    with pytest.raises(ConfigError, match=r"mlops:gateway\.sourceCidrs\[1\].*IPv4 range"):
        render(PROJECT_DIR, "prod", {"mlops:gateway": json.dumps(gateway)}, processes=1)
