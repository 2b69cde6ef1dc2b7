"""The GKE control plane: regional/zonal, private, Workload Identity, Shielded Nodes, Dataplane V2, KMS secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.foundation.gcp.cluster import kubeconfig_document
from mlops.offline.render import RenderedResource, Rendering, render
from stacks.config import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[2]
ON_GCP = {"mlops:cloud": "gcp"}
DEV_ON_GCP = {
    **ON_GCP,
    "mlops:environment": "dev",
    "mlops:gcp.clusterLocation": "zonal",
    "mlops:cluster.privateEndpoint": "false",
    "mlops:cluster.publicAccessCidrs": '["203.0.113.0/24"]',
    "mlops:cluster.releaseChannel": "RAPID",
}


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(PROJECT_DIR, "prod", ON_GCP)


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(PROJECT_DIR, "prod", DEV_ON_GCP)


def cluster(rendering: Rendering) -> RenderedResource:
    (resource,) = rendering.by_type("gcp:container/cluster:Cluster")
    return resource


def test_prod_cluster_is_regional_across_the_configured_zones(prod):
    inputs = cluster(prod).inputs
    assert inputs["name"] == "mlops-prod"
    assert inputs["location"] == "us-central1"
    assert inputs["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]


def test_dev_cluster_may_be_zonal_in_the_first_zone(dev):
    inputs = cluster(dev).inputs
    assert inputs["location"] == "us-central1-a"
    assert "nodeLocations" not in inputs


def test_release_channel_and_minimum_version_come_from_config(prod, dev):
    assert cluster(prod).inputs["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster(dev).inputs["releaseChannel"] == {"channel": "RAPID"}
    assert cluster(prod).inputs["minMasterVersion"] == "1.35"


def test_prod_nodes_are_private_and_the_api_is_served_on_a_private_endpoint_only(prod):
    inputs = cluster(prod).inputs
    assert inputs["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": True,
        "masterIpv4CidrBlock": "172.16.0.0/28",
    }
    # No Google Cloud public IP may reach the endpoint either.
    assert inputs["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False


def test_dev_public_endpoint_is_limited_to_the_configured_authorized_networks(dev):
    inputs = cluster(dev).inputs
    assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert inputs["privateClusterConfig"]["enablePrivateEndpoint"] is False
    # The public CIDRs configured, then the prod stack file's runner network (private endpoint access).
    assert inputs["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [
            {"cidrBlock": "203.0.113.0/24", "displayName": "allowed-0"},
            {"cidrBlock": "10.100.0.0/24", "displayName": "allowed-1"},
        ],
        "gcpPublicCidrsAccessEnabled": False,
    }


def test_workload_identity_shielded_nodes_and_dataplane_v2_are_on(prod, dev):
    for rendering in (prod, dev):
        inputs = cluster(rendering).inputs
        assert inputs["workloadIdentityConfig"] == {"workloadPool": "mlops-platform-prod.svc.id.goog"}
        assert inputs["enableShieldedNodes"] is True
        assert inputs["datapathProvider"] == "ADVANCED_DATAPATH"
        # Dataplane V2 enforces NetworkPolicy itself; the legacy Calico setting must stay unset.
        assert "networkPolicy" not in inputs


def test_default_node_pool_is_removed(prod):
    inputs = cluster(prod).inputs
    assert inputs["removeDefaultNodePool"] is True
    assert "nodeConfig" not in inputs and "nodePools" not in inputs


def test_prod_secrets_are_encrypted_with_a_rotated_protected_kms_key_the_gke_agent_may_use(prod):
    inputs = cluster(prod).inputs
    (key,) = [k for k in prod.by_type("gcp:kms/cryptoKey:CryptoKey") if k.name == "gke-secrets"]
    (ring,) = [k for k in prod.by_type("gcp:kms/keyRing:KeyRing") if k.name == "gke-secrets"]
    (grant,) = [g for g in prod.by_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember") if g.name == "gke-secrets-gke-agent"]
    assert inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": "gke-secrets-id"}
    assert ring.inputs["location"] == "us-central1"
    assert key.inputs["keyRing"] == "gke-secrets-id"
    assert key.inputs["rotationPeriod"] == "7776000s"
    assert grant.inputs == {
        "cryptoKeyId": "gke-secrets-id",
        "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        "member": "serviceAccount:service-000000000000@container-engine-robot.iam.gserviceaccount.com",
    }
    # GKE checks the key is usable at creation: the grant comes first.
    assert grant.urn in cluster(prod).options["dependsOn"]
    for resource in (key, ring):
        assert resource.options["protect"] is True and resource.options["retainOnDelete"] is True


def test_dev_has_no_secrets_key_and_no_deletion_protection(dev, prod):
    assert "databaseEncryption" not in cluster(dev).inputs
    assert [k for k in dev.by_type("gcp:kms/cryptoKey:CryptoKey") if k.name.startswith("gke-")] == []
    assert cluster(dev).inputs["deletionProtection"] is False
    assert cluster(prod).inputs["deletionProtection"] is True


def test_zonal_cluster_in_prod_is_a_config_error():
    with pytest.raises(ConfigError, match=r"mlops:gcp\.clusterLocation: prod clusters are regional.*\(got 'zonal'\)"):
        render(PROJECT_DIR, "prod", {**ON_GCP, "mlops:gcp.clusterLocation": "zonal"})


def test_kubeconfig_authenticates_through_the_gke_auth_plugin_and_holds_no_token():
    """The provider's kubeconfig is stable between runs: endpoint, CA and an exec plugin, no credential."""
    document = kubeconfig_document("mlops-prod", "10.0.0.2", "Q0E=")
    (entry,) = document["clusters"]
    assert entry["cluster"] == {"server": "https://10.0.0.2", "certificate-authority-data": "Q0E="}
    (user,) = document["users"]
    assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert user["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert "token" not in json.dumps(document)
    assert document["current-context"] == "mlops-prod"


def test_control_plane_reaches_the_admission_webhooks_and_pods_reach_the_metadata_server():
    """Private GKE opens only 443/10250 from the control plane; Workload Identity tokens come from
    the node's metadata server, which the default-deny namespaces must let pods reach."""
    rendering = render(PROJECT_DIR, "prod", {"mlops:cloud": "gcp"})
    (firewall,) = rendering.by_type("gcp:compute/firewall:Firewall")
    (cluster,) = rendering.by_type("gcp:container/cluster:Cluster")
    assert firewall.inputs["direction"] == "INGRESS"
    assert firewall.inputs["sourceRanges"] == [cluster.inputs["privateClusterConfig"]["masterIpv4CidrBlock"]]
    assert firewall.inputs["allows"] == [{"protocol": "tcp", "ports": ["8443", "9443"]}]
    egress = {
        (r.inputs["metadata"]["namespace"], peer["ipBlock"]["cidr"], port["port"])
        for r in rendering.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["name"].startswith("allow-gke-metadata-server")
        for rule in r.inputs["spec"]["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }
    # cert-manager takes its Google identity from the metadata server to answer prod's ACME DNS-01 challenges.
    assert egress == {
        (namespace, cidr, port)
        for namespace in ("cert-manager", "mlops-platform", "mlops-serving")
        for cidr, port in (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))
    }
    aws = render(PROJECT_DIR, "prod")
    assert not [r for r in aws.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") if "gke-metadata" in r.name]


def test_project_apis_are_declared_and_never_disabled_on_destroy(prod):
    """Enabled by the stack itself (not a README step); destroying the stack leaves them on for the project."""
    services = prod.by_type("gcp:projects/service:Service")
    assert {s.inputs["service"] for s in services} >= {"container.googleapis.com", "sqladmin.googleapis.com", "compute.googleapis.com"}
    assert all(s.inputs["disableOnDestroy"] is False and s.inputs["project"] == "mlops-platform-prod" for s in services)
    # Every other GCP resource goes through the provider that is configured after the APIs.
    (provider,) = [p for p in prod.by_type("pulumi:providers:gcp") if p.name == "gcp"]
    assert sorted(provider.options["dependsOn"]) == sorted(s.urn for s in services)
