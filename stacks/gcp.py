"""The GCP foundation: VPC, GKE and its node pools, GCS buckets, Cloud SQL, Workload Identity, registry.

Composition only: each piece is a component under `components/foundation/gcp`. Config the components cannot
honour (a zonal cluster in prod, a GPU pool in zones without its accelerator) stops the program
before any resource is declared. Dependencies let one `pulumi destroy` remove in-cluster objects,
then node pools, then the cluster, then the network.
"""

from __future__ import annotations


import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.foundation.gcp.cluster import GkeCluster, GkeClusterArgs
from components.foundation.gcp.database import PostgresDatabase, PostgresDatabaseArgs
from components.foundation.gcp.gateway_address import GatewayAddress, GatewayAddressArgs, service_annotations
from components.foundation.gcp.identity import (
    OBJECT_ADMIN,
    OBJECT_CREATOR,
    OBJECT_VIEWER,
    BucketGrant,
    ProjectGrant,
    WorkloadAccount,
    WorkloadIdentity,
    WorkloadIdentityArgs,
)
from components.foundation.gcp.network import Network, NetworkArgs
from components.foundation.gcp.project_apis import REQUIRED_APIS, ProjectApis, ProjectApisArgs
from components.foundation.gcp.node_pools import NodePools, NodePoolsArgs, NodePoolSpec, node_pool_spec
from components.foundation.gcp.registry import ImageRegistry, ImageRegistryArgs
from components.foundation.gcp.storage import Buckets, BucketsArgs
from components.images import as_configured, repository_names
from components.namespaces import CERT_MANAGER, GKE_METADATA_FLOWS
from components.interfaces import WORKLOAD_SERVICE_ACCOUNTS, WORKLOADS, Foundation, GatewayExposure, ObjectStore, workload_namespaces
from components.declarations import model_namespaces
from stacks.config import ConfigError, Problem, StackConfig
from stacks.locations import StackStores, external_buckets, stack_stores
from components.catalog import CatalogError

DNS_API = "dns.googleapis.com"
# cert-manager's Cloud DNS solver creates and deletes TXT records (cert-manager docs, "ACME DNS01
# Google CloudDNS"): Cloud DNS grants record changes per project only.
DNS_ADMIN = "roles/dns.admin"
CERT_MANAGER_ACCOUNT = "cert-manager"


def build_gcp_foundation(config: StackConfig) -> Foundation:
    location, pool_zones = _cluster_placement(config)
    managed_zone = config.gateway_dns_zone
    pools = _node_pool_specs(config, pool_zones)
    stores = stack_stores(config)
    settings = config.gcp
    keep = config.is_prod
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    # The APIs are enabled through a provider of their own; the stack's provider is configured only
    # after them, so every GCP resource (and every component's children) waits for its API.
    apis = ProjectApis(
        "project-apis",
        ProjectApisArgs(project=settings.project, apis=(*REQUIRED_APIS, *((DNS_API,) if managed_zone else ()))),
        pulumi.ResourceOptions(provider=gcp.Provider("gcp-apis", project=settings.project, region=settings.region)),
    )
    gcp_provider = gcp.Provider(
        "gcp",
        project=settings.project,
        region=settings.region,
        default_labels={"mlops-platform-stack": cluster_name, "mlops-platform-environment": config.environment},
        opts=pulumi.ResourceOptions(depends_on=apis.services),
    )
    on_gcp = pulumi.ResourceOptions(provider=gcp_provider)
    project = gcp.organizations.get_project_output(
        project_id=settings.project, opts=pulumi.InvokeOutputOptions(provider=gcp_provider)
    )

    network = Network(
        "network",
        NetworkArgs(
            region=settings.region,
            nodes_cidr=settings.network_cidr,
            pods_cidr=settings.pods_cidr,
            services_cidr=settings.services_cidr,
        ),
        on_gcp,
    )
    cluster = GkeCluster(
        "gke",
        GkeClusterArgs(
            cluster_name=cluster_name,
            project=settings.project,
            location=location,
            region=settings.region,
            node_zones=pool_zones,
            kubernetes_version=config.cluster.kubernetes_version,
            release_channel=config.cluster.release_channel,
            network_id=network.network_id,
            subnetwork_id=network.subnetwork_id,
            private_endpoint=config.cluster.private_endpoint,
            control_plane_cidr=settings.control_plane_cidr,
            # Master authorized networks govern the private endpoint too: runners are listed there.
            authorized_cidrs=[*config.cluster.public_access_cidrs, *config.cluster.runner_cidrs],
            encrypt_secrets=config.is_prod,
            keep_stateful=keep,
            project_number=project.number,
            network_ready=network.egress_ready,
        ),
        on_gcp,
    )
    node_pools = NodePools(
        "nodes",
        NodePoolsArgs(
            project=settings.project,
            account_prefix=cluster_name,
            cluster_name=cluster.name,
            location=cluster.location,
            pools=pools,
        ),
        on_gcp,
    )
    buckets = Buckets(
        "buckets",
        BucketsArgs(
            project=settings.project,
            region=settings.region,
            artifact_bucket_name=stores.artifact_bucket,
            payload_bucket_name=stores.payload_bucket,
            payload_retention_days=config.storage.payload_retention_days,
            artifact_versioning=config.storage.artifact_versioning,
            customer_managed_key=config.storage.customer_managed_key,
            keep_stateful=keep,
        ),
        on_gcp,
    )
    database = PostgresDatabase(
        "mlflow-db",
        PostgresDatabaseArgs(
            region=settings.region,
            network_id=network.network_id,
            size=config.database.size,
            storage_gib=config.database.storage_gib,
            postgres_version=config.database.postgres_version,
            high_availability=config.database.high_availability,
            backup_retention_days=config.database.backup_retention_days,
            deletion_protection=config.database.deletion_protection,
            keep_stateful=keep,
            network_ready=[network.service_access],
        ),
        on_gcp,
    )
    identity = WorkloadIdentity(
        "workload-identity",
        WorkloadIdentityArgs(
            account_prefix=cluster_name,
            workload_pool=cluster.workload_pool,
            accounts=[*_workload_accounts(buckets, stores, model_namespaces(config.teams)), *_gateway_accounts(settings.project, config.acme_dns_zone)],
            wait_for=[cluster.cluster],
        ),
        on_gcp,
    )
    registry = ImageRegistry(
        "registry",
        ImageRegistryArgs(
            project=settings.project,
            region=settings.region,
            repository_id=cluster_name,
            images=repository_names(config.platform_images),
            immutable_tags=config.is_prod,
            readers={"nodes": node_pools.service_account_member},
        ),
        on_gcp,
    )
    provider = k8s.Provider("gke-cluster", k8s.ProviderArgs(kubeconfig=cluster.kubeconfig))
    gateway_exposure = _gateway_exposure(config, network, managed_zone, on_gcp) if config.gateway.enabled else None
    return Foundation(
        provider=provider,
        cluster_name=cluster.name,
        object_store=ObjectStore(
            scheme="gs", artifact_bucket=buckets.artifact_bucket, payload_bucket=buckets.payload_bucket, region=settings.region
        ),
        database=database.database,
        identity_annotations=identity.annotations,
        gpu_placements=node_pools.gpu_placements,
        # Pods need nodes to run on and their identity binding to reach the buckets.
        cluster_ready=[*node_pools.node_pools.values(), *identity.bindings],
        namespace_flows=GKE_METADATA_FLOWS,
        resolve_image=registry.resolve if config.images.source == "stackRegistry" else as_configured,
        gateway_exposure=gateway_exposure,
        outputs={
            "clusterName": cluster.name,
            "kubeconfig": cluster.kubeconfig,
            "artifactBucket": buckets.artifact_bucket,
            "payloadBucket": buckets.payload_bucket,
            "databaseEndpoint": database.instance.private_ip_address,
            "databaseConnectionName": database.instance.connection_name,
            "project": settings.project,
            "region": settings.region,
            "workloadIdentityPool": cluster.workload_pool,
            "workloadServiceAccounts": {workload: identity.emails[workload] for workload in WORKLOADS},
            "nodeServiceAccount": node_pools.service_account_email,
            "imageRepositories": registry.image_urls,
        },
    )


def _cluster_placement(config: StackConfig) -> tuple[str, list[str]]:
    """Where the control plane lives (region or zone) and the zones node pools may use."""
    settings = config.gcp
    if settings.cluster_location == "regional":
        return settings.region, list(settings.zones)
    if config.is_prod:
        raise ConfigError(
            [
                Problem(
                    "mlops:gcp.clusterLocation",
                    settings.cluster_location,
                    "prod clusters are regional (a control plane replica in every zone); zonal is allowed in dev only",
                )
            ]
        )
    return settings.zones[0], [settings.zones[0]]


def _node_pool_specs(config: StackConfig, pool_zones: list[str]) -> list[NodePoolSpec]:
    specs: list[NodePoolSpec] = []
    problems: list[Problem] = []
    for index, pool in enumerate(config.node_pools):
        try:
            specs.append(node_pool_spec(pool, config.gcp.region, pool_zones, config.gcp.accelerator_zones))
        except CatalogError as error:
            problems.append(Problem(f"mlops:nodePools[{index}].accelerator", pool.accelerator, str(error)))
    if problems:
        raise ConfigError(problems)
    return specs


def _workload_accounts(buckets: Buckets, stores: StackStores, model_homes: tuple[str, ...]) -> list[WorkloadAccount]:
    artifacts = ("artifacts", buckets.artifact_bucket)
    payloads = ("payloads", buckets.payload_bucket)
    # Declared external model locations: bucket-level viewer (GCS IAM grants whole buckets).
    external = [((f"external-{bucket}", bucket), OBJECT_VIEWER) for bucket in dict.fromkeys(b for b, _ in external_buckets(stores))]
    grants = {
        "mlflow": [(artifacts, OBJECT_ADMIN)],
        "storage-initializer": [(artifacts, OBJECT_VIEWER), *external],
        "payload-collector": [(payloads, OBJECT_CREATOR)],
        # Reads payload windows; creates its reports under drift-reports/ in the same bucket.
        "drift-job": [
            (artifacts, OBJECT_VIEWER),
            (payloads, OBJECT_VIEWER),
            (("payload-reports", buckets.payload_bucket), OBJECT_CREATOR),
            *external,
        ],
        # Reads reference data and payloads; runs, artifacts and versions go through MLflow's server.
        "training-job": [(artifacts, OBJECT_VIEWER), (payloads, OBJECT_VIEWER), *external],
        # Reads input partitions; creates scored partitions (GCS roles do not narrow to a prefix).
        "batch-job": [(payloads, OBJECT_VIEWER), (("batch-output", buckets.payload_bucket), OBJECT_CREATOR)],
    }
    return [
        WorkloadAccount(
            workload=workload,
            namespaces=workload_namespaces(workload, model_homes),
            service_account=WORKLOAD_SERVICE_ACCOUNTS[workload][1],
            grants=tuple(BucketGrant(label, bucket, role) for (label, bucket), role in grants[workload]),
        )
        for workload in WORKLOADS
    ]


def _gateway_accounts(project: str, managed_zone: str | None) -> list[WorkloadAccount]:
    if managed_zone is None:
        return []
    return [WorkloadAccount("cert-manager", (CERT_MANAGER,), CERT_MANAGER_ACCOUNT, grants=(), project_grants=(ProjectGrant(project, DNS_ADMIN),))]


def _gateway_exposure(config: StackConfig, network: Network, managed_zone: str | None, on_gcp: pulumi.ResourceOptions) -> GatewayExposure:
    """A static address the stack declares; GKE's service controller puts Envoy's Service behind it."""
    gateway = config.gateway
    address = GatewayAddress(
        "gateway-address",
        GatewayAddressArgs(
            region=config.gcp.region,
            scheme=gateway.load_balancer,
            subnetwork_id=network.subnetwork_id,
            domain=str(gateway.domain),
            managed_zone=managed_zone,
        ),
        on_gcp,
    )
    return GatewayExposure(
        service_type="LoadBalancer",
        service_annotations=dict(service_annotations(gateway.load_balancer)),
        load_balancer_ip=address.address.address,
        source_cidrs=tuple(gateway.source_cidrs),
        dns01_solver={"cloudDNS": {"project": config.gcp.project}} if config.acme_dns_zone else None,
        address=address.address.address,
    )
