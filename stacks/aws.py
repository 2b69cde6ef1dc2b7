"""The AWS foundation: network, EKS and its node groups, buckets, database, identities, registries.

Composition only: each piece is a component under `components/foundation/aws`. Dependencies are declared so
that one `pulumi destroy` removes in-cluster objects (the cluster autoscaler among them), then node
groups, then the control plane, then the network (nothing is left holding an ENI or a load
balancer in a deleted subnet).
"""

from __future__ import annotations

import json


import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.foundation.aws.addons import (
    NODE_ADDONS,
    WORKLOAD_ADDONS,
    EksAddons,
    EksAddonsArgs,
    UnsupportedKubernetesVersion,
    addon_versions,
)
from components.foundation.aws.cluster import EksCluster, EksClusterArgs
from components.foundation.aws.cluster_autoscaler import (
    ClusterAutoscaler,
    ClusterAutoscalerArgs,
    cluster_autoscaler_image,
    cluster_autoscaler_policy,
)
from components.foundation.aws.database import PostgresDatabase, PostgresDatabaseArgs
from components.foundation.aws.device_plugin import NvidiaDevicePlugin, NvidiaDevicePluginArgs
from components.foundation.aws.gateway_load_balancer import (
    ENVOY_HTTPS_CONTAINER_PORT,
    GatewayLoadBalancer,
    GatewayLoadBalancerArgs,
    cert_manager_route53_policy,
)
from components.foundation.aws.identity import (
    BucketGrant,
    ServiceAccountRole,
    WorkloadIdentity,
    WorkloadIdentityArgs,
    bucket_access_policy,
    irsa_trust_policy,
    service_account_annotations,
)
from components.foundation.aws.load_balancer_controller import (
    IMAGE as LOAD_BALANCER_CONTROLLER_IMAGE,
    SERVICE_ACCOUNT as LOAD_BALANCER_CONTROLLER_ACCOUNT,
    GatewayTargetBinding,
    LoadBalancerController,
    LoadBalancerControllerArgs,
    TargetGroupBindingArgs,
    load_balancer_controller_policy,
)
from components.foundation.aws.network import Network, NetworkArgs
from components.foundation.aws.node_groups import (
    GPU_PRESENT_LABEL,
    GPU_TOLERATION,
    ROLE_LABEL,
    NodeGroups,
    NodeGroupsArgs,
    node_group_spec,
)
from components.foundation.aws.registry import ImageRegistries, ImageRegistriesArgs
from components.foundation.aws.storage_class import DefaultStorageClass, DefaultStorageClassArgs
from components.foundation.aws.storage import Buckets, BucketsArgs
from components.images import ImageResolver, as_configured, repository_names
from components.model.observability import DRIFT_REPORT_PREFIX
from components.model.batch import BATCH_OUTPUT_PREFIX
from components.interfaces import (
    GATEWAY_HTTPS_PORT,
    GATEWAY_NAMESPACE,
    GATEWAY_SERVICE,
    WORKLOAD_SERVICE_ACCOUNTS,
    WORKLOADS,
    Foundation,
    MODEL_WORKLOADS,
    GatewayExposure,
    ObjectStore,
    workload_namespaces,
)
from components.namespaces import CERT_MANAGER
from components.declarations import model_namespaces
from stacks.config import ConfigError, Problem, StackConfig
from stacks.locations import StackStores, external_buckets, stack_stores

VPC_CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
# cert-manager's chart names its controller's service account after the release.
CERT_MANAGER_ACCOUNT = "cert-manager"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def build_aws_foundation(config: StackConfig) -> Foundation:
    _trust_policies_fit(config)
    versions, autoscaler_image = _pinned_versions(config)
    hosted_zone = config.gateway_dns_zone
    stores = stack_stores(config)
    keep = config.is_prod
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    aws_provider = aws.Provider(
        "aws",
        region=config.aws.region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags={"mlops.platform/stack": cluster_name, "mlops.platform/environment": config.environment}
        ),
    )
    on_aws = pulumi.ResourceOptions(provider=aws_provider)

    network = Network(
        "network",
        NetworkArgs(
            cluster_name=cluster_name,
            region=config.aws.region,
            vpc_cidr=config.aws.vpc_cidr,
            zones=list(config.aws.zones),
            nat_gateways=config.aws.nat_gateways or ("perZone" if config.is_prod else "single"),
        ),
        on_aws,
    )
    cluster = EksCluster(
        "eks",
        EksClusterArgs(
            cluster_name=cluster_name,
            region=config.aws.region,
            kubernetes_version=config.cluster.kubernetes_version,
            subnet_ids=network.private_subnet_ids,
            private_endpoint=config.cluster.private_endpoint,
            public_access_cidrs=config.cluster.public_access_cidrs,
            admin_role_arns=config.aws.admin_role_arns,
            vpc_id=network.vpc_id,
            runner_cidrs=config.cluster.runner_cidrs,
            keep_stateful=keep,
            network_ready=network.egress_ready,
        ),
        on_aws,
    )
    buckets = Buckets(
        "buckets",
        BucketsArgs(
            artifact_bucket_name=stores.artifact_bucket,
            payload_bucket_name=stores.payload_bucket,
            payload_retention_days=config.storage.payload_retention_days,
            artifact_versioning=config.storage.artifact_versioning,
            customer_managed_key=config.storage.customer_managed_key,
            keep_stateful=keep,
        ),
        on_aws,
    )
    database = PostgresDatabase(
        "mlflow-db",
        PostgresDatabaseArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_cidrs=network.private_cidrs,
            size=config.database.size,
            storage_gib=config.database.storage_gib,
            postgres_version=config.database.postgres_version,
            multi_az=config.database.high_availability,
            backup_retention_days=config.database.backup_retention_days,
            deletion_protection=config.database.deletion_protection,
            keep_stateful=keep,
        ),
        on_aws,
    )
    identity = WorkloadIdentity(
        "irsa",
        WorkloadIdentityArgs(
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            roles=[*_platform_roles(buckets, stores, model_namespaces(config.teams)), *_addon_roles(cluster_name), *_gateway_roles(config, config.acme_dns_zone)],
        ),
        on_aws,
    )
    node_addons = EksAddons(
        "node-addons",
        EksAddonsArgs(
            cluster_name=cluster.name,
            versions={a: versions[a] for a in NODE_ADDONS},
            service_account_roles={"vpc-cni": identity.role_arns["vpc-cni"]},
        ),
        on_aws,
    )
    node_groups = NodeGroups(
        "nodes",
        NodeGroupsArgs(
            cluster_name=cluster.name,
            kubernetes_version=config.cluster.kubernetes_version,
            subnet_ids=network.private_subnet_ids,
            pools=[node_group_spec(pool, config.aws.region) for pool in config.node_pools],
            wait_for=node_addons.addons,
        ),
        on_aws,
    )
    workload_addons = EksAddons(
        "workload-addons",
        EksAddonsArgs(
            cluster_name=cluster.name,
            versions={a: versions[a] for a in WORKLOAD_ADDONS},
            service_account_roles={"aws-ebs-csi-driver": identity.role_arns["ebs-csi"]},
        ),
        # coredns and the EBS CSI controller are pods: they need nodes to become healthy.
        pulumi.ResourceOptions(provider=aws_provider, depends_on=list(node_groups.node_groups.values())),
    )
    registries = ImageRegistries(
        "registries",
        ImageRegistriesArgs(
            repositories=repository_names([*config.platform_images, autoscaler_image, *_gateway_images(config)]),
            immutable_tags=config.is_prod,
        ),
        on_aws,
    )
    resolve_image = registries.resolve if config.images.source == "stackRegistry" else as_configured
    provider = k8s.Provider("eks-cluster", k8s.ProviderArgs(kubeconfig=cluster.kubeconfig))
    autoscaler = ClusterAutoscaler(
        "cluster-autoscaler",
        ClusterAutoscalerArgs(
            cluster_name=cluster_name,
            region=config.aws.region,
            image=resolve_image(autoscaler_image),
            role_arn=identity.role_arns["cluster-autoscaler"],
            node_selector={ROLE_LABEL: "system"},
            wait_for=list(node_groups.node_groups.values()),
        ),
        pulumi.ResourceOptions(provider=provider),
    )
    storage_class = DefaultStorageClass(
        "default-storage-class", DefaultStorageClassArgs(wait_for=workload_addons.addons), pulumi.ResourceOptions(provider=provider)
    )
    cluster_ready: list[pulumi.Resource] = [
        *node_groups.node_groups.values(),
        *workload_addons.addons,
        *cluster.access_ready,
        storage_class.storage_class,
        autoscaler.deployment,
    ]
    if node_groups.gpu_placements:
        gpu_groups = [node_groups.node_groups[pool] for pool in sorted(node_groups.gpu_placements)]
        device_plugin = NvidiaDevicePlugin(
            "nvidia-device-plugin",
            NvidiaDevicePluginArgs(
                gpu_node_labels={GPU_PRESENT_LABEL: "true"}, gpu_tolerations=[GPU_TOLERATION], wait_for=gpu_groups
            ),
            pulumi.ResourceOptions(provider=provider),
        )
        cluster_ready.append(device_plugin.chart)
    gateway_exposure = (
        _gateway_exposure(config, cluster_name, network, identity, hosted_zone, resolve_image, node_groups, on_aws, provider)
        if config.gateway.enabled
        else None
    )
    return Foundation(
        provider=provider,
        cluster_name=cluster.name,
        object_store=ObjectStore(
            scheme="s3", artifact_bucket=buckets.artifact_bucket, payload_bucket=buckets.payload_bucket, region=config.aws.region
        ),
        database=database.database,
        identity_annotations={
            workload: service_account_annotations(identity.role_arns[workload]) for workload in (*WORKLOADS, *_gateway_identities(config.acme_dns_zone))
        },
        gpu_placements=node_groups.gpu_placements,
        cluster_ready=cluster_ready,
        resolve_image=resolve_image,
        gateway_exposure=gateway_exposure,
        outputs={
            "clusterName": cluster.name,
            "kubeconfig": cluster.kubeconfig,
            "artifactBucket": buckets.artifact_bucket,
            "payloadBucket": buckets.payload_bucket,
            "databaseEndpoint": database.instance.address,
            "region": config.aws.region,
            "oidcProviderArn": cluster.oidc_provider_arn,
            "workloadRoleArns": {workload: identity.role_arns[workload] for workload in WORKLOADS},
            "imageRepositories": registries.repository_urls,
        },
    )


def _pinned_versions(config: StackConfig) -> tuple[dict[str, str], str]:
    """EKS add-on versions and the cluster autoscaler image pinned for the cluster's minor."""
    try:
        return addon_versions(config.cluster.kubernetes_version), cluster_autoscaler_image(config.cluster.kubernetes_version)
    except UnsupportedKubernetesVersion as error:
        raise ConfigError([Problem("mlops:cluster.kubernetesVersion", config.cluster.kubernetes_version, str(error))]) from error


def _platform_roles(buckets: Buckets, stores: StackStores, model_homes: tuple[str, ...]) -> list[ServiceAccountRole]:
    artifacts, payloads = buckets.artifact_bucket_arn, buckets.payload_bucket_arn
    # Declared external model locations: their readers get read on exactly those prefixes.
    external = [BucketGrant(f"arn:aws:s3:::{bucket}", "read", prefix) for bucket, prefix in external_buckets(stores)]
    grants = {
        "mlflow": [BucketGrant(artifacts, "read-write")],
        "storage-initializer": [BucketGrant(artifacts, "read"), *external],
        "payload-collector": [BucketGrant(payloads, "write")],
        # Reads payload windows; writes its reports under drift-reports/ in the same bucket.
        "drift-job": [
            BucketGrant(artifacts, "read"),
            BucketGrant(payloads, "read"),
            BucketGrant(payloads, "write", f"{DRIFT_REPORT_PREFIX}/"),
            *external,
        ],
        # Reads reference data and payloads; runs, artifacts and versions go through MLflow's server.
        "training-job": [BucketGrant(artifacts, "read"), BucketGrant(payloads, "read"), *external],
        # Reads input partitions; writes scored partitions under batch-output/.
        "batch-job": [BucketGrant(payloads, "read"), BucketGrant(payloads, "write", f"{BATCH_OUTPUT_PREFIX}/")],
    }
    return [
        ServiceAccountRole(
            workload=workload,
            namespaces=workload_namespaces(workload, model_homes),
            service_account=WORKLOAD_SERVICE_ACCOUNTS[workload][1],
            policy=bucket_access_policy(grants[workload], buckets.kms_key_arn),
        )
        for workload in WORKLOADS
    ]


# IAM counts a role's trust policy without whitespace and refuses one over 2,048 characters unless
# the account's quota was raised (IAM and AWS STS quotas: "Role trust policy length", at most 4,096).
TRUST_POLICY_LIMIT = 2048


def _trust_policies_fit(config: StackConfig) -> None:
    """The model workloads' roles trust their service account in every model namespace: each team adds
    a subject, and IAM would refuse the role at `pulumi up`. Measured on the policy the stack renders,
    with an EKS issuer of the region (its id is always 32 characters)."""
    namespaces = model_namespaces(config.teams)
    issuer = f"https://oidc.eks.{config.aws.region}.amazonaws.com/id/{'0' * 32}"
    provider = f"arn:aws:iam::{'0' * 12}:oidc-provider/{issuer.removeprefix('https://')}"
    for workload in sorted(MODEL_WORKLOADS):
        document = irsa_trust_policy(provider, issuer, namespaces, WORKLOAD_SERVICE_ACCOUNTS[workload][1])
        size = len(json.dumps(document, separators=(",", ":")))
        if size > TRUST_POLICY_LIMIT:
            raise ConfigError(
                [
                    Problem(
                        "mlops:teams",
                        f"{len(config.teams)} teams",
                        f"the {workload} role would trust {len(namespaces)} namespaces in a {size}-character trust policy; "
                        f"IAM accepts {TRUST_POLICY_LIMIT}: fewer or shorter team names",
                    )
                ]
            )


def _addon_roles(cluster_name: str) -> list[ServiceAccountRole]:
    return [
        ServiceAccountRole("vpc-cni", ("kube-system",), "aws-node", managed_policy_arns=(VPC_CNI_POLICY,)),
        ServiceAccountRole("ebs-csi", ("kube-system",), "ebs-csi-controller-sa", managed_policy_arns=(EBS_CSI_POLICY,)),
        ServiceAccountRole(
            "cluster-autoscaler", ("kube-system",), "cluster-autoscaler", policy=cluster_autoscaler_policy(cluster_name)
        ),
    ]


def _gateway_identities(hosted_zone: str | None) -> tuple[str, ...]:
    """Workloads outside WORKLOADS with a role of their own: cert-manager answers DNS-01 in the zone."""
    return ("cert-manager",) if hosted_zone is not None else ()


def _gateway_roles(config: StackConfig, hosted_zone: str | None) -> list[ServiceAccountRole]:
    if not config.gateway.enabled:
        return []
    roles = [
        ServiceAccountRole(
            "aws-load-balancer-controller", ("kube-system",), LOAD_BALANCER_CONTROLLER_ACCOUNT, policy=load_balancer_controller_policy()
        )
    ]
    if hosted_zone is not None:
        roles.append(ServiceAccountRole("cert-manager", (CERT_MANAGER,), CERT_MANAGER_ACCOUNT, policy=cert_manager_route53_policy(hosted_zone)))
    return roles


def _gateway_images(config: StackConfig) -> list[str]:
    return [LOAD_BALANCER_CONTROLLER_IMAGE] if config.gateway.enabled else []


def _gateway_exposure(
    config: StackConfig,
    cluster_name: str,
    network: Network,
    identity: WorkloadIdentity,
    hosted_zone: str | None,
    resolve_image: ImageResolver,
    node_groups: NodeGroups,
    on_aws: pulumi.ResourceOptions,
    provider: k8s.Provider,
) -> GatewayExposure:
    """An NLB the stack declares in front of Envoy's pods, which the load balancer controller binds by IP."""
    gateway = config.gateway
    internet_facing = gateway.load_balancer == "internet-facing"
    load_balancer = GatewayLoadBalancer(
        "gateway-lb",
        GatewayLoadBalancerArgs(
            vpc_id=network.vpc_id,
            vpc_cidr=config.aws.vpc_cidr,
            scheme=gateway.load_balancer,
            subnet_ids=network.public_subnet_ids if internet_facing else network.private_subnet_ids,
            source_cidrs=gateway.source_cidrs,
            domain=str(gateway.domain),
            hosted_zone_id=hosted_zone,
        ),
        on_aws,
    )
    controller = LoadBalancerController(
        "aws-load-balancer-controller",
        LoadBalancerControllerArgs(
            cluster_name=cluster_name,
            region=config.aws.region,
            vpc_id=network.vpc_id,
            role_arn=identity.role_arns["aws-load-balancer-controller"],
            image=resolve_image(LOAD_BALANCER_CONTROLLER_IMAGE),
            node_selector={ROLE_LABEL: "system"},
            wait_for=list(node_groups.node_groups.values()),
        ),
        pulumi.ResourceOptions(provider=provider),
    )

    def bind_targets(namespaces: pulumi.Resource) -> pulumi.Resource:
        return GatewayTargetBinding(
            "gateway-targets",
            TargetGroupBindingArgs(
                namespace=GATEWAY_NAMESPACE,
                service=GATEWAY_SERVICE,
                service_port=GATEWAY_HTTPS_PORT,
                pod_port=ENVOY_HTTPS_CONTAINER_PORT,
                target_group_arn=load_balancer.target_group.arn,
                security_group_id=load_balancer.security_group.id,
                # Removed before the target group it deregisters from and the controller that does it.
                wait_for=[controller.release, load_balancer.target_group, namespaces],
            ),
            pulumi.ResourceOptions(provider=provider),
        )

    return GatewayExposure(
        service_type="ClusterIP",
        dns01_solver={"route53": {"region": config.aws.region, "hostedZoneID": config.acme_dns_zone}} if config.acme_dns_zone else None,
        address=load_balancer.load_balancer.dns_name,
        ready=[controller.release],
        bind_targets=bind_targets,
    )
