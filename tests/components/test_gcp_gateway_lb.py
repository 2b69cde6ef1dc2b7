"""The gateway's load balancer on GCP: a static address the stack declares for GKE's LoadBalancer
Service, its Cloud DNS records, cert-manager's Cloud DNS identity, and its cost."""

from __future__ import annotations

import json

import pytest

from components.interfaces import Foundation
from mlops.offline.cost import ENVOY_PROXY_TYPE, PriceTable, estimate
from mlops.offline.render import RenderedResource, Rendering, render
from mlops.offline.validate import ReferenceData, validate_rendering
from stacks.config import ConfigError
from tests.conftest import PROJECT_DIR, REFERENCE_DIR, prod_section_without
from tests.render_monitors import record_monitors, render_with_foundation
from tests.exposure import ISSUER, JWKS_URI, LOGIN

ACME = {"issuer": "acme", "acme": {"email": "ops@example.com"}}
PROVIDED = {"issuer": "provided", "provided": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "-----BEGIN PRIVATE KEY-----"}}
# Prod's token issuer and UI login (its public model and UI hosts need them), whichever way the load balancer faces.
AUTH = {"jwt": {"issuer": ISSUER, "audiences": ["ml-api"], "jwksUri": JWKS_URI}, "oidc": LOGIN}
PUBLIC = {**AUTH, "enabled": True, "domain": "ml.example.com", "loadBalancer": "internet-facing", "sourceCidrs": ["198.51.100.0/24"], "tls": ACME}
INTERNAL = {**AUTH, "enabled": True, "domain": "ml.example.com", "loadBalancer": "internal", "tls": PROVIDED}


def render_on_gcp(gateway: dict) -> tuple[Rendering, Foundation]:
    """Prod on GCP with `mlops:gateway` set, and the Foundation the program handed the platform."""
    return render_with_foundation("prod", {"mlops:cloud": "gcp", "mlops:gateway": json.dumps(gateway), "mlops:gcp.dnsZone": "mlops-prod"})


@pytest.fixture(scope="module")
def public() -> tuple[Rendering, Foundation]:
    return render_on_gcp(PUBLIC)


@pytest.fixture(scope="module")
def internal() -> tuple[Rendering, Foundation]:
    return render_on_gcp(INTERNAL)


def one(rendering: Rendering, type_: str, name: str) -> RenderedResource:
    (found,) = [r for r in rendering.by_type(type_) if r.name == name]
    return found


def test_internet_facing_gateway_gets_an_external_regional_address_and_a_plain_loadbalancer_service(public):
    rendering, foundation = public
    address = one(rendering, "gcp:compute/address:Address", "gateway-address-ip").inputs
    assert (address["addressType"], address["region"], address["networkTier"]) == ("EXTERNAL", "us-central1", "PREMIUM")
    assert "subnetwork" not in address
    exposure = foundation.gateway_exposure
    assert exposure.service_type == "LoadBalancer" and exposure.service_annotations == {}
    # GKE turns loadBalancerSourceRanges into the firewall rule in front of the nodes.
    assert exposure.source_cidrs == ("198.51.100.0/24",)


def test_internal_gateway_takes_its_address_from_the_cluster_subnet_and_asks_gke_for_an_internal_lb(internal):
    rendering, foundation = internal
    address = one(rendering, "gcp:compute/address:Address", "gateway-address-ip").inputs
    assert (address["addressType"], address["subnetwork"]) == ("INTERNAL", "network-nodes-id")
    assert foundation.gateway_exposure.service_annotations == {"networking.gke.io/load-balancer-type": "Internal"}


def test_domain_and_wildcard_are_a_records_to_the_address_in_the_managed_zone(public):
    rendering, _ = public
    ip = [r for r in rendering.by_type("gcp:compute/address:Address")]
    assert len(ip) == 1
    records = {r.inputs["name"]: r.inputs for r in rendering.by_type("gcp:dns/recordSet:RecordSet")}
    assert sorted(records) == ["*.ml.example.com.", "ml.example.com."]
    for record in records.values():
        assert (record["managedZone"], record["type"], record["ttl"]) == ("mlops-prod", "A", 300)
        (value,) = record["rrdatas"]
        assert value.startswith("203.0.113.")  # the mock's external address


def test_cert_manager_gets_a_google_account_with_dns_admin_bound_to_its_kubernetes_account(public):
    rendering, foundation = public
    account = one(rendering, "gcp:serviceaccount/account:Account", "workload-identity-cert-manager").inputs
    assert account["accountId"] == "mlops-prod-cert-manager"
    grant = one(rendering, "gcp:projects/iAMMember:IAMMember", "workload-identity-cert-manager-dns-admin").inputs
    assert (grant["project"], grant["role"]) == ("mlops-platform-prod", "roles/dns.admin")
    binding = one(rendering, "gcp:serviceaccount/iAMMember:IAMMember", "workload-identity-cert-manager-workload-identity").inputs
    assert binding["member"] == "serviceAccount:mlops-platform-prod.svc.id.goog[cert-manager/cert-manager]"
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert "iam.gke.io/gcp-service-account" in foundation.identity_annotations["cert-manager"]
    assert foundation.gateway_exposure.dns01_solver == {"cloudDNS": {"project": "mlops-platform-prod"}}
    assert "dns.googleapis.com" in {r.inputs["service"] for r in rendering.by_type("gcp:projects/service:Service")}


def test_cert_manager_namespace_may_reach_the_gke_metadata_server(public):
    """Workload Identity tokens come from the node's metadata server, which default-deny would block."""
    rendering, _ = public
    policies = {r.inputs["metadata"]["name"] for r in rendering.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if r.inputs["metadata"]["namespace"] == "cert-manager"}
    assert {"allow-gke-metadata-server", "allow-gke-metadata-server-dataplane-v2"} <= policies


def test_provided_certificate_needs_no_dns_identity_but_the_zone_gets_its_records(internal):
    rendering, foundation = internal
    assert {r.inputs["managedZone"] for r in rendering.by_type("gcp:dns/recordSet:RecordSet")} == {"mlops-prod"}
    assert foundation.gateway_exposure.dns01_solver is None
    assert "cert-manager" not in foundation.identity_annotations


def test_without_a_zone_a_provided_certificate_writes_no_records(monkeypatch):
    gateway = {**PUBLIC, "tls": {"issuer": "provided", "provided": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "k"}}}
    without_zone = {"mlops:gcp": json.dumps(prod_section_without("gcp", "dnsZone"))}
    rendering = render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp", "mlops:gateway": json.dumps(gateway), **without_zone}, processes=1)
    assert rendering.by_type("gcp:dns/recordSet:RecordSet") == []
    assert "dns.googleapis.com" not in {r.inputs["service"] for r in rendering.by_type("gcp:projects/service:Service")}


def test_everything_the_gateway_adds_passes_validation(public):
    assert [str(f) for f in validate_rendering(public[0], ReferenceData(REFERENCE_DIR), "1.35")] == []


def test_the_gateways_load_balancer_is_priced_and_its_external_address_listed_unpriced(public):
    """GKE's forwarding rule for Envoy's Service is not a Pulumi resource: it is priced from the rendered
    EnvoyProxy that asks for a LoadBalancer Service (field path from envoyproxy/gateway v1.9.0
    api/v1alpha1/envoyproxy_types.go: spec.provider.kubernetes.envoyService.type)."""
    rendering, _ = public
    (envoy_proxy,) = rendering.by_type(ENVOY_PROXY_TYPE)
    assert envoy_proxy.inputs["spec"]["provider"]["kubernetes"]["envoyService"]["type"] == "LoadBalancer"
    result = estimate(rendering.document(), PriceTable.load())
    (line,) = [line for line in result.lines if line.resource == envoy_proxy.name]
    assert line.monthly_max == round(0.025 * 730, 2)
    (address,) = [u for u in result.unpriced if u.resource == "gateway-address-ip"]
    assert address.item == "static external address" and "bills an external address by what it is attached to" in address.reason


def test_a_zone_that_is_not_a_managed_zone_name_is_refused_naming_the_key(monkeypatch):
    monitors = record_monitors(monkeypatch)
    with pytest.raises(ConfigError, match=r"mlops:gcp\.dnsZone.*Cloud DNS managed zone name"):
        render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp", "mlops:gateway": json.dumps(PUBLIC), "mlops:gcp.dnsZone": "ml.example.com."}, processes=1)
    assert monitors and monitors[0].recorded == []
