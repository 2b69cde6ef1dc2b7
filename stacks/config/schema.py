"""The typed stack config: every `mlops:` key the program reads, with its default and rules.

Keys are camelCase in `Pulumi.<stack>.yaml` (`mlops:nodePools`, `maxSize`), as Pulumi users write
them; unknown keys anywhere are rejected, so a typo never silently falls back to a default.
Rules that need more than one section (pools against the chosen cloud, models against pools) live
in `stacks.config.rules`, so each can report its own key path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from components.catalog import Accelerator
from components.declarations import (
    IMAGE,
    AlertingSettings,
    CanaryGates,
    GatewaySettings,
    ModelDeployment,
    NodePool,
    PrometheusDuration,
    Section,
    Team,
)

# --- Cloud targets ---------------------------------------------------------------------------


class AwsSettings(Section):
    region: str = Field("us-east-1", description="AWS region of the stack.")
    zones: list[str] = Field(
        default_factory=lambda: ["us-east-1a", "us-east-1b", "us-east-1c"],
        min_length=2,
        max_length=3,
        description="Availability zones the VPC and node groups span (3 in prod, 2 allowed in dev).",
    )
    vpc_cidr: str = Field("10.40.0.0/16", description="CIDR of the VPC.")
    nat_gateways: Literal["single", "perZone"] | None = Field(
        None,
        description="One NAT gateway shared by all zones (cheap) or one per zone (zone-resilient); "
        "default: single in dev, perZone in prod.",
    )
    admin_role_arns: list[str] = Field(
        default_factory=list, description="IAM role ARNs given cluster-admin through EKS access entries."
    )
    hosted_zone_id: str | None = Field(
        None,
        description="Route 53 hosted zone of mlops:gateway.domain: the stack writes the gateway's records there and "
        "cert-manager its ACME DNS-01 challenges (required with tls.issuer acme).",
    )

    @model_validator(mode="after")
    def _zones_in_region(self) -> "AwsSettings":
        foreign = [z for z in self.zones if not z.startswith(self.region)]
        if foreign:
            raise ValueError(f"zones {foreign} are not in region {self.region!r}; use zones named {self.region}<letter>")
        return self


class GcpSettings(Section):
    project: str = Field("mlops-platform-prod", description="GCP project id.")
    region: str = Field("us-central1", description="GCP region of the stack.")
    zones: list[str] = Field(
        default_factory=lambda: ["us-central1-a", "us-central1-b", "us-central1-c"],
        min_length=1,
        max_length=4,
        description="Zones for node locations (regional cluster in prod, one zone allowed in dev).",
    )
    network_cidr: str = Field("10.50.0.0/20", description="Primary range of the GKE subnet.")
    pods_cidr: str = Field("10.64.0.0/14", description="Secondary range for pods.")
    services_cidr: str = Field("10.68.0.0/20", description="Secondary range for services.")
    control_plane_cidr: str = Field(
        "172.16.0.0/28", description="/28 range of the GKE control plane's private endpoint (must not overlap the VPC)."
    )
    cluster_location: Literal["regional", "zonal"] = Field(
        "regional",
        description="regional: control plane replicated across the region's zones (required in prod); "
        "zonal: control plane in the first of `zones` (cheaper, dev only).",
    )
    dns_zone: str | None = Field(
        None,
        description="Cloud DNS managed zone of mlops:gateway.domain: the stack writes the gateway's records there and "
        "cert-manager its ACME DNS-01 challenges (required with tls.issuer acme).",
    )
    accelerator_zones: dict[Accelerator, list[str]] = Field(
        default_factory=dict,
        description="Zones of the region offering each accelerator, as `gcloud compute accelerator-types list` "
        "reports them; GPU pools get node locations only in those of `zones` (default: every zone in `zones`).",
    )

    @model_validator(mode="after")
    def _zones_in_region(self) -> "GcpSettings":
        foreign = [z for z in self.zones if not z.startswith(self.region + "-")]
        if foreign:
            raise ValueError(f"zones {foreign} are not in region {self.region!r}; use zones named {self.region}-<letter>")
        for accelerator, offered in self.accelerator_zones.items():
            foreign = [z for z in offered if not z.startswith(self.region + "-")]
            if foreign:
                raise ValueError(
                    f"acceleratorZones.{accelerator} lists zones {foreign} outside region {self.region!r}; "
                    f"use zones named {self.region}-<letter>"
                )
            if not set(offered) & set(self.zones):
                raise ValueError(
                    f"accelerator {accelerator!r} is offered in {sorted(offered)}, none of which is in zones {self.zones}; "
                    f"add one of {sorted(offered)} to mlops:gcp.zones"
                )
        return self


class LocalSettings(Section):
    kube_context: str = Field(
        "kind-mlops", description="kubeconfig context of the existing cluster (kind, minikube, k3d)."
    )
    storage_class: str = Field("standard", description="StorageClass for persistent volumes.")


class ClusterSettings(Section):
    kubernetes_version: str = Field("1.35", pattern=r"^1\.[0-9]{2}$", description="Kubernetes minor version.")
    private_endpoint: bool = Field(True, description="Serve the control-plane API on a private endpoint only.")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public API endpoint; required when privateEndpoint is false.",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field("REGULAR", description="GKE release channel.")
    runner_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs, inside the VPC or routed to it (peering, transit gateway, VPN), of the machines that run "
        "`pulumi up` and the preview against a private API endpoint: a self-hosted CI runner or Pulumi Deployments "
        "agent, or the bastion an SSM/IAP tunnel ends on. Allowed to reach the API on 443.",
    )

    @model_validator(mode="after")
    def _public_endpoint_needs_allow_list(self) -> "ClusterSettings":
        if not self.private_endpoint and not self.public_access_cidrs:
            raise ValueError(
                "privateEndpoint is false but publicAccessCidrs is empty; "
                "list the CIDRs allowed to reach the API (never 0.0.0.0/0 in prod)"
            )
        return self


def _default_node_pools() -> list[NodePool]:
    return [NodePool(name="system", role="system", size="medium", min_size=2, max_size=4)]


# --- Services --------------------------------------------------------------------------------


class StorageSettings(Section):
    payload_retention_days: int = Field(30, ge=1, le=3650, description="Days inference payload logs are kept.")
    artifact_versioning: bool = Field(True, description="Keep object versions of model artifacts.")
    customer_managed_key: bool = Field(True, description="Encrypt buckets with a platform-managed KMS key (CMEK).")
    bucket_prefix: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{1,51}[a-z0-9]$",
        description="Names the stack's buckets `<bucketPrefix>-artifacts` and `<bucketPrefix>-payloads` (exported as "
        "artifactBucket / payloadBucket); bucket names are global, so pick one nobody else holds. "
        "Default: `<project>-<stack>`.",
    )
    external_read_locations: list[
        Annotated[str, Field(pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\s]*/)?$")]
    ] = Field(
        default_factory=list,
        description="URI prefixes outside the stack's buckets (ending in /) that model artifacts, reference data or "
        "labels may come from; the storage initializer and the drift job are granted read on each. Cloud targets only.",
    )


class DatabaseSettings(Section):
    size: Literal["small", "medium", "large"] = Field("small", description="Instance size class of PostgreSQL.")
    storage_gib: int = Field(20, ge=10, le=16384, description="Allocated storage in GiB.")
    postgres_version: str = Field("16", pattern=r"^1[4-7]$", description="PostgreSQL major version.")
    high_availability: bool = Field(False, description="Multi-AZ (AWS) / regional (GCP) standby.")
    backup_retention_days: int = Field(7, ge=1, le=35, description="Days of automated backups.")
    deletion_protection: bool = Field(False, description="Refuse deletion of the database instance.")


class ObjectStoreSettings(Section):
    """The in-cluster S3 server used on `local` (clouds use their own buckets): SeaweedFS (docs/object-store.md)."""

    image: str = Field(
        "docker.io/chrislusf/seaweedfs:4.48@sha256:4e61d15fd35994cb1e43e1e553dff106794841fd9a99ade2fc8c8bfce4d7872d",
        pattern=r"^[^:@\s]+(:[^@\s]+)?@sha256:[0-9a-f]{64}$",
        description="SeaweedFS image (runs `weed mini`: master, volume, filer and S3 gateway in one process), pinned by digest.",
    )
    storage_gib: int = Field(20, ge=1, description="Persistent volume size.")


class MlflowSettings(Section):
    image: str = Field(
        "docker.io/burakince/mlflow:3.15.1",
        pattern=r"^[^\s]+:[^\s]+$",
        description="MLflow server image (tag or digest). It must bring psycopg2, boto3/google-cloud-storage, Flask-WTF "
        "(basic auth) and prometheus-flask-exporter, which the official ghcr.io/mlflow/mlflow image lacks.",
    )
    replicas: int = Field(1, ge=1, le=10, description="Tracking server replicas.")
    hostname: str | None = Field(None, description="External host name on the platform gateway (<name>.<gateway domain>; needs mlops:gateway), behind its OIDC login.")


class KServeSettings(Section):
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        "Serverless",
        description="KServe mode. Serverless (Knative) is the mode in which canaryTrafficPercent splits traffic.",
    )
    mlserver_image: str = Field(
        "docker.io/seldonio/mlserver:1.7.1",
        pattern=IMAGE,
        description="MLServer image of the V2 runtime serving MLflow (pyfunc), scikit-learn and XGBoost models.",
    )
    sklearn_image: str = Field(
        "docker.io/kserve/sklearnserver:v0.20.0", pattern=IMAGE, description="KServe scikit-learn server image (V1 and V2)."
    )
    xgboost_image: str = Field(
        "docker.io/kserve/xgbserver:v0.20.0", pattern=IMAGE, description="KServe XGBoost server image (V1 and V2)."
    )


class MonitoringSettings(Section):
    retention: PrometheusDuration = Field("15d", description="Prometheus retention time.")
    storage_gib: int = Field(20, ge=1, description="Prometheus volume size.")
    grafana_hostname: str | None = Field(None, description="External host name for Grafana on the platform gateway (needs mlops:gateway), behind its OIDC login.")


class ImagesSettings(Section):
    """Images built from this repository, and where the cluster pulls the platform's images from."""

    source: Literal["reference", "stackRegistry"] = Field(
        "reference",
        description="reference: pull every platform image (MLflow, runtime, KServe serving runtimes) as configured. "
        "stackRegistry (aws/gcp): pull each from the stack's own registry (ECR / Artifact Registry, tags immutable "
        "in prod) under its short name and tag, pinned to the digest the registry reports at deploy time; push or "
        "mirror the images there first.",
    )
    runtime: str = Field(
        "ghcr.io/mlops-platform/mlops-runtime:0.1.0",
        pattern=IMAGE,
        description="Runtime image (serving/ and monitoring/ code): runs the payload collector and the drift jobs.",
    )


class Limits(Section):
    """Cost guardrails enforced by the policy pack and the config rules."""

    max_gpu_pool_size: int = Field(4, ge=0, description="Largest maxSize a GPU pool may declare.")
    max_gpus_per_model: int = Field(2, ge=0, description="Most GPUs one model replica may request.")


# --- The whole stack -------------------------------------------------------------------------


class StackConfig(Section):
    cloud: Literal["aws", "gcp", "local"] = Field(
        "local", description="Where the stack runs: aws (EKS), gcp (GKE) or local (an existing kubeconfig context)."
    )
    environment: Literal["dev", "prod"] = Field("dev", description="Environment class; prod turns on the safe defaults.")
    aws: AwsSettings = Field(default_factory=AwsSettings, description="AWS region, zones, VPC and admin roles.")
    gcp: GcpSettings = Field(default_factory=GcpSettings, description="GCP project, region, zones and IP ranges.")
    local: LocalSettings = Field(default_factory=LocalSettings, description="kubeconfig context and StorageClass of a local cluster.")
    cluster: ClusterSettings = Field(default_factory=ClusterSettings, description="Kubernetes version and API endpoint access.")
    node_pools: list[NodePool] = Field(
        default_factory=_default_node_pools,
        min_length=1,
        description="Node pools by role, size class and accelerator; mapped per cloud to instance/machine types.",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Artifact and payload buckets.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="PostgreSQL for the MLflow backend store.")
    object_store: ObjectStoreSettings = Field(
        default_factory=ObjectStoreSettings, description="In-cluster S3 server used on local."
    )
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="MLflow tracking server and registry.")
    kserve: KServeSettings = Field(default_factory=KServeSettings, description="KServe deployment mode and serving runtime images.")
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings, description="Prometheus and Grafana sizing.")
    images: ImagesSettings = Field(
        default_factory=ImagesSettings, description="Images built from this repository, and where images are pulled from."
    )
    limits: Limits = Field(default_factory=Limits, description="Cost guardrails: GPU pool size and GPUs per model.")
    alerting: AlertingSettings = Field(
        default_factory=AlertingSettings, description="Alertmanager receivers, routes by severity and team, and the default receiver."
    )
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="The external entry point: domain, TLS, load balancer, JWT issuer, UI login."
    )
    teams: list[Team] = Field(
        default_factory=list, description="Teams: a namespace each with quota, RBAC, MLflow permissions and isolation from other teams."
    )
    models: list[ModelDeployment] = Field(
        default_factory=list, description="Model deployments, each with canary, monitoring and retraining settings."
    )

    def pool(self, name: str) -> NodePool | None:
        return next((p for p in self.node_pools if p.name == name), None)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def gateway_dns_zone(self) -> str | None:
        """The cloud DNS zone of the gateway's domain: its records go there (None: no gateway, or no zone given)."""
        if not self.gateway.enabled:
            return None
        return {"aws": self.aws.hosted_zone_id, "gcp": self.gcp.dns_zone}.get(self.cloud)

    @property
    def acme_dns_zone(self) -> str | None:
        """The zone cert-manager answers ACME DNS-01 challenges in: only when the certificate comes from ACME."""
        tls = self.gateway.tls
        return self.gateway_dns_zone if tls is not None and tls.issuer == "acme" else None

    @property
    def platform_images(self) -> list[str]:
        """The configured images the in-cluster platform runs (the local object store and
        database are not among them: they exist only on `local`)."""
        gateway = [self.gateway.controller_image, self.gateway.proxy_image] if self.gateway.enabled else []
        return [
            self.mlflow.image,
            self.images.runtime,
            self.kserve.mlserver_image,
            self.kserve.sklearn_image,
            self.kserve.xgboost_image,
            *gateway,
        ]


TOP_LEVEL_KEYS: tuple[str, ...] = tuple(
    (f.alias or to_camel(n)) for n, f in StackConfig.model_fields.items()
)
