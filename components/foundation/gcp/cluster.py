"""The GKE control plane: private, Workload Identity, Shielded Nodes, Dataplane V2, KMS-encrypted Secrets.

Nodes never get public IPs. In prod the API is served on a private endpoint only; otherwise it is
public but limited to the master authorized networks the stack lists. Dataplane V2 (eBPF)
enforces the platform's NetworkPolicies. In prod, Secrets are encrypted at the application layer
with a Cloud KMS key held by the platform. The default node pool is removed: every pool is
declared (and sized) by `components.foundation.gcp.node_pools`.

With a private endpoint, `pulumi up` needs a network path into the VPC (VPN, Interconnect, a
runner inside it), because the Kubernetes provider talks to the API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from components.foundation.gcp.network import PODS_RANGE, SERVICES_RANGE
from components.foundation.gcp.options import stateful

DATAPLANE_V2 = "ADVANCED_DATAPATH"
KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# Cloud KMS rotates the secrets key every 90 days (old versions keep decrypting).
KEY_ROTATION_PERIOD = "7776000s"
AUTH_PLUGIN = "gke-gcloud-auth-plugin"


def workload_pool(project: str) -> str:
    """The project's Workload Identity pool: Kubernetes service accounts appear in IAM under it."""
    return f"{project}.svc.id.goog"


def gke_service_agent(project_number: str) -> str:
    """The GKE service agent, which encrypts and decrypts Secrets with the cluster's KMS key."""
    return f"serviceAccount:service-{project_number}@container-engine-robot.iam.gserviceaccount.com"


def kubeconfig_document(cluster_name: str, endpoint: str, certificate_authority: str) -> dict[str, Any]:
    """A kubeconfig that stays byte-identical between runs.

    It holds no token: kubectl and the Kubernetes provider run `gke-gcloud-auth-plugin` for a
    fresh one on every call, so the provider's inputs never change and nothing in the cluster is
    replaced because a token expired.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": certificate_authority}}
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": AUTH_PLUGIN,
                        "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
                        "provideClusterInfo": True,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


@dataclass(frozen=True)
class GkeClusterArgs:
    cluster_name: str
    project: str
    # A region (regional cluster, control plane in every zone) or a zone (zonal cluster).
    location: str
    region: str
    # Zones the node pools spread over by default.
    node_zones: Sequence[str]
    kubernetes_version: str
    release_channel: str
    network_id: pulumi.Input[str]
    subnetwork_id: pulumi.Input[str]
    private_endpoint: bool
    control_plane_cidr: str
    authorized_cidrs: Sequence[str]
    # Encrypt Secrets at the application layer with a platform KMS key.
    encrypt_secrets: bool
    # Protect and retain that key, and refuse to delete the cluster (prod).
    keep_stateful: bool
    project_number: pulumi.Input[str]
    # Egress (Cloud NAT): the cluster is created after it and destroyed before it.
    network_ready: Sequence[pulumi.Resource] = ()


WEBHOOK_PORTS = (8443, 9443)


class GkeCluster(pulumi.ComponentResource):
    cluster: gcp.container.Cluster
    name: pulumi.Output[str]
    location: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    workload_pool: str
    # The KMS key encrypting Secrets; None outside prod.
    secrets_key: gcp.kms.CryptoKey | None

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:gcp:GkeCluster", name, None, opts)
        self._name = name
        self.workload_pool = workload_pool(args.project)
        self.secrets_key, key_ready = self._secrets_key(args) if args.encrypt_secrets else (None, [])
        self.cluster = gcp.container.Cluster(
            f"{name}-control-plane",
            name=args.cluster_name,
            location=args.location,
            node_locations=list(args.node_zones) if args.location == args.region else None,
            min_master_version=args.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=args.release_channel),
            network=args.network_id,
            subnetwork=args.subnetwork_id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=PODS_RANGE, services_secondary_range_name=SERVICES_RANGE
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=args.private_endpoint,
                master_ipv4_cidr_block=args.control_plane_cidr,
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=cidr, display_name=f"allowed-{index}")
                    for index, cidr in enumerate(args.authorized_cidrs)
                ],
                # Only the listed networks: not every Google Cloud public IP.
                gcp_public_cidrs_access_enabled=False,
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=self.workload_pool),
            enable_shielded_nodes=True,
            # Dataplane V2 enforces NetworkPolicy itself; the Calico add-on must stay off with it.
            datapath_provider=DATAPLANE_V2,
            database_encryption=(
                gcp.container.ClusterDatabaseEncryptionArgs(state="ENCRYPTED", key_name=self.secrets_key.id)
                if self.secrets_key is not None
                else None
            ),
            # GKE cannot create a cluster without a node pool; this one is deleted right away.
            remove_default_node_pool=True,
            initial_node_count=1,
            maintenance_policy=gcp.container.ClusterMaintenancePolicyArgs(
                daily_maintenance_window=gcp.container.ClusterMaintenancePolicyDailyMaintenanceWindowArgs(start_time="03:00")
            ),
            deletion_protection=args.keep_stateful,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*key_ready, *args.network_ready]),
        )
        self.name = self.cluster.name
        self.location = self.cluster.location
        self.endpoint = self.cluster.endpoint
        self.certificate_authority = self.cluster.master_auth.apply(lambda auth: auth.cluster_ca_certificate)
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.endpoint, self.certificate_authority).apply(
                lambda values: json.dumps(kubeconfig_document(values[0], values[1], values[2]), sort_keys=True)
            )
        )
        # A private cluster's control plane reaches nodes only on 443 and 10250 by default; the
        # admission webhooks the platform installs listen on 9443 (KServe) and 8443 (Knative).
        gcp.compute.Firewall(
            f"{name}-control-plane-webhooks",
            network=args.network_id,
            direction="INGRESS",
            source_ranges=[args.control_plane_cidr],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(port) for port in WEBHOOK_PORTS])],
            description="GKE control plane to admission webhooks on the nodes",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig})

    def _secrets_key(self, args: GkeClusterArgs) -> tuple[gcp.kms.CryptoKey, list[pulumi.Resource]]:
        name = self._name
        # The key must live where the cluster's region is; key rings cannot be deleted, so the
        # ring is retained with the key.
        ring = gcp.kms.KeyRing(f"{name}-secrets", location=args.region, opts=stateful(self, args.keep_stateful))
        key = gcp.kms.CryptoKey(
            f"{name}-secrets",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KEY_ROTATION_PERIOD,
            opts=stateful(self, args.keep_stateful),
        )
        grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-secrets-gke-agent",
            crypto_key_id=key.id,
            role=KMS_ENCRYPTER_DECRYPTER,
            member=pulumi.Output.from_input(args.project_number).apply(gke_service_agent),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return key, [grant]
