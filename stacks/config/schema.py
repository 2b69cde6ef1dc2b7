"""The typed stack config: every `mlops:` key the program reads, with its default and rules.

Keys are camelCase in `Pulumi.<stack>.yaml` (`mlops:nodePools`, `maxSize`), as Pulumi users write
them; unknown keys anywhere are rejected, so a typo never silently falls back to a default.
Rules that need more than one section (pools against the chosen cloud, models against pools) live
in `stacks.config.rules`, so each can report its own key path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from stacks.config.catalog import Accelerator, SizeClass

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
KUBERNETES_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
DURATION = r"^[0-9]+(s|m|h|d)$"
CRON = r"^(\S+\s+){4}\S+$"

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
Quantity = Annotated[str, Field(pattern=KUBERNETES_QUANTITY)]
# A container image with an explicit tag or digest (no implicit `latest`).
IMAGE = r"^[^\s]+(:[^\s/]+|@sha256:[0-9a-f]{64})$"


class Section(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
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
    kubernetes_version: str = Field("1.33", pattern=r"^1\.[0-9]{2}$", description="Kubernetes minor version.")
    private_endpoint: bool = Field(True, description="Serve the control-plane API on a private endpoint only.")
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public API endpoint; required when privateEndpoint is false.",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field("REGULAR", description="GKE release channel.")

    @model_validator(mode="after")
    def _public_endpoint_needs_allow_list(self) -> "ClusterSettings":
        if not self.private_endpoint and not self.public_access_cidrs:
            raise ValueError(
                "privateEndpoint is false but publicAccessCidrs is empty; "
                "list the CIDRs allowed to reach the API (never 0.0.0.0/0 in prod)"
            )
        return self


class NodePool(Section):
    name: DnsLabel = Field(description="Pool name; becomes part of node group and label names.")
    role: Literal["system", "cpu", "gpu"] = Field(description="system: platform services; cpu/gpu: model serving.")
    size: SizeClass = Field("medium", description="Size class: small=2 vCPU, medium=4, large=8, xlarge=16.")
    accelerator: Accelerator | None = Field(None, description="GPU type; required for role gpu, forbidden otherwise.")
    accelerator_count: int = Field(1, ge=1, le=8, description="GPUs per node.")
    min_size: int = Field(0, ge=0, description="Minimum node count (0 lets GPU pools scale from zero).")
    max_size: int = Field(ge=1, description="Maximum node count.")
    spot: bool = Field(False, description="Use spot/preemptible capacity.")

    @model_validator(mode="after")
    def _consistent(self) -> "NodePool":
        if self.max_size < self.min_size:
            raise ValueError(f"maxSize {self.max_size} is below minSize {self.min_size}; maxSize must be >= minSize")
        if self.role == "gpu" and self.accelerator is None:
            raise ValueError("role 'gpu' needs an accelerator (e.g. nvidia-t4, nvidia-l4)")
        if self.role != "gpu" and self.accelerator is not None:
            raise ValueError(f"accelerator {self.accelerator!r} is only allowed on role 'gpu' pools, not {self.role!r}")
        if self.role == "system" and (self.min_size < 1 or self.spot):
            raise ValueError("the system pool must be on-demand (spot: false) with minSize >= 1")
        return self


def _default_node_pools() -> list[NodePool]:
    return [NodePool(name="system", role="system", size="medium", min_size=2, max_size=4)]


# --- Services --------------------------------------------------------------------------------


class StorageSettings(Section):
    payload_retention_days: int = Field(30, ge=1, le=3650, description="Days inference payload logs are kept.")
    artifact_versioning: bool = Field(True, description="Keep object versions of model artifacts.")
    customer_managed_key: bool = Field(True, description="Encrypt buckets with a platform-managed KMS key (CMEK).")


class DatabaseSettings(Section):
    size: Literal["small", "medium", "large"] = Field("small", description="Instance size class of PostgreSQL.")
    storage_gib: int = Field(20, ge=10, le=16384, description="Allocated storage in GiB.")
    postgres_version: str = Field("16", pattern=r"^1[4-7]$", description="PostgreSQL major version.")
    high_availability: bool = Field(False, description="Multi-AZ (AWS) / regional (GCP) standby.")
    backup_retention_days: int = Field(7, ge=1, le=35, description="Days of automated backups.")
    deletion_protection: bool = Field(False, description="Refuse deletion of the database instance.")


class ObjectStoreSettings(Section):
    """The in-cluster S3 server used on `local` (clouds use their own buckets)."""

    image: str = Field(
        "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z@sha256:"
        "14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e",
        pattern=r"^[^:@\s]+(:[^@\s]+)?@sha256:[0-9a-f]{64}$",
        description="S3-compatible server image, pinned by digest.",
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
    hostname: str | None = Field(None, description="Public host name; an Ingress is rendered when set.")


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
    retention: str = Field("15d", pattern=DURATION, description="Prometheus retention time.")
    storage_gib: int = Field(20, ge=1, description="Prometheus volume size.")
    grafana_hostname: str | None = Field(None, description="Public host name for Grafana; Ingress rendered when set.")


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


# --- Alerting ----------------------------------------------------------------------------------

# kube-prometheus-stack's own sink for its always-firing Watchdog and InfoInhibitor alerts.
NULL_RECEIVER = "null"


class WebhookReceiver(Section):
    url: str = Field(pattern=r"^https?://", description="Endpoint Alertmanager POSTs its JSON payload to.")
    bearer_token: str | None = Field(None, min_length=1, description="Bearer token sent with each POST (a Pulumi secret).")


class SlackReceiver(Section):
    api_url: str = Field(min_length=1, description="Slack incoming-webhook URL (a Pulumi secret: it is the credential).")
    channel: str = Field(pattern=r"^[#@][^\s]+$", description="Channel (#name) or user (@name) to post to.")


class PagerDutyReceiver(Section):
    routing_key: str = Field(min_length=1, description="PagerDuty Events API v2 integration key (a Pulumi secret).")


class EmailReceiver(Section):
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    sender: str = Field(description="From address.")
    smarthost: str = Field(pattern=r"^[^\s:]+:[0-9]+$", description="SMTP server as host:port.")
    auth_username: str | None = Field(None, description="SMTP user, if the server requires authentication.")
    auth_password: str | None = Field(None, min_length=1, description="SMTP password (a Pulumi secret).")
    require_tls: bool = Field(True, description="Refuse to send without STARTTLS.")

    @model_validator(mode="after")
    def _password_needs_user(self) -> "EmailReceiver":
        if self.auth_password is not None and self.auth_username is None:
            raise ValueError("authPassword is set but authUsername is not; give both or neither")
        return self


class AlertReceiver(Section):
    name: DnsLabel = Field(description="Receiver name routes refer to.")
    webhook: WebhookReceiver | None = Field(None, description="POST the alert group as JSON.")
    slack: SlackReceiver | None = Field(None, description="Post to a Slack channel.")
    pagerduty: PagerDutyReceiver | None = Field(None, description="Open a PagerDuty incident.")
    email: EmailReceiver | None = Field(None, description="Send an email.")
    send_resolved: bool = Field(True, description="Also notify when the alert resolves.")

    @model_validator(mode="after")
    def _has_a_channel(self) -> "AlertReceiver":
        if not any((self.webhook, self.slack, self.pagerduty, self.email)):
            raise ValueError(f"receiver {self.name!r} declares no channel; give webhook, slack, pagerduty or email")
        if self.name == NULL_RECEIVER:
            raise ValueError(f"receiver name {NULL_RECEIVER!r} is reserved for the heartbeat sink; choose another")
        return self


class TeamRoute(Section):
    team: DnsLabel = Field(description="Team owning the models.")
    models: list[str] = Field(min_length=1, description="Names of the model deployments the team owns.")
    receiver: str = Field(description="Receiver of the team's alerts.")
    critical_receiver: str | None = Field(
        None, description="Receiver of the team's critical alerts (default: mlops:alerting.criticalReceiver)."
    )


class AlertingSettings(Section):
    receivers: list[AlertReceiver] = Field(default_factory=list, description="Where alerts can be sent.")
    default_receiver: str | None = Field(
        None, description="Receiver of every alert no other route takes (required once receivers are declared)."
    )
    critical_receiver: str | None = Field(
        None, description="Receiver of critical alerts (a pager); required in prod."
    )
    teams: list[TeamRoute] = Field(default_factory=list, description="Routes by model owner: a team's models to its receivers.")
    group_wait: str = Field("30s", pattern=r"^[0-9]+(s|m)$", description="How long a new alert group waits for more alerts before it is sent.")
    repeat_interval: str = Field("4h", pattern=r"^[0-9]+(m|h)$", description="How often a still-firing alert is re-sent.")

    def receiver_names(self) -> list[str]:
        return [receiver.name for receiver in self.receivers]


# --- Model deployments -----------------------------------------------------------------------


class SignatureColumn(Section):
    name: str | None = Field(None, description="Column name; absent for an unnamed tensor.")
    type: str = Field(min_length=1, description="MLflow type (double, long, string, ...) or tensor:<dtype>.")


class ModelSignature(Section):
    """The model's MLflow signature, recorded so a deployment's history says what it accepts."""

    inputs: list[SignatureColumn] = Field(min_length=1, description="Input columns or tensors, in order.")
    outputs: list[SignatureColumn] = Field(default_factory=list, description="Output columns or tensors, in order.")


class ModelReference(Section):
    registered_model: str = Field(min_length=1, description="MLflow registered model name.")
    version: str | None = Field(None, pattern=r"^[0-9]+$", description="Registered model version.")
    alias: str | None = Field(None, description="Registered model alias (e.g. champion).")
    resolved_version: str | None = Field(
        None, pattern=r"^[0-9]+$", description="Version the alias pointed at when resolved (written by `mlops models resolve`)."
    )
    artifact_uri: str | None = Field(
        None, description="Resolved artifact URI (written by `mlops models resolve`); the storageUri served."
    )
    signature: ModelSignature | None = Field(None, description="MLflow signature (written by `mlops models resolve`).")

    @model_validator(mode="after")
    def _version_or_alias(self) -> "ModelReference":
        if (self.version is None) == (self.alias is None):
            raise ValueError("give exactly one of version or alias")
        if self.resolved_version is not None and self.alias is None:
            raise ValueError("resolvedVersion records what an alias pointed at; it is only allowed with alias")
        return self

    @property
    def deployed_version(self) -> str:
        """The version label of the served model: the version, else what the alias resolved to, else the alias."""
        return self.version or self.resolved_version or str(self.alias)


class ModelResources(Section):
    cpu: Quantity = Field("1", description="CPU request (and limit) per replica.")
    memory: Quantity = Field("2Gi", description="Memory request (and limit) per replica.")
    gpus: int = Field(0, ge=0, le=8, description="GPUs per replica.")
    gpu_pool: str | None = Field(None, description="Name of the GPU node pool the model runs on (required with gpus).")


class Autoscaling(Section):
    min_replicas: int = Field(1, ge=0, description="Minimum replicas (0 = scale to zero, Serverless only).")
    max_replicas: int = Field(3, ge=1, description="Maximum replicas.")
    metric: Literal["concurrency", "rps", "cpu", "memory"] = Field(
        "concurrency",
        description="Autoscaling metric: concurrency/rps (Knative, Serverless only) or cpu/memory (HPA, either mode).",
    )
    target: int = Field(10, ge=1, description="Target value of the metric per replica.")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas {self.max_replicas} is below minReplicas {self.min_replicas}")
        return self


class CanaryGates(Section):
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Highest canary 5xx ratio to promote.")
    max_p99_latency_ms: float = Field(500, gt=0, description="Highest canary p99 latency (ms) to promote.")
    min_request_count: int = Field(100, ge=1, description="Requests the canary must serve before a verdict.")
    window: str = Field("10m", pattern=DURATION, description="PromQL range the gates are evaluated over.")


class Canary(Section):
    traffic_percent: int = Field(ge=0, le=100, description="Share of traffic sent to the new model version.")
    previous_artifact_uri: str | None = Field(
        None, description="Artifact URI of the stable version serving the rest of the traffic."
    )
    previous_version: str | None = Field(
        None,
        pattern=r"^[0-9A-Za-z][-0-9A-Za-z_.]*$",
        description="Model version of the stable predictor (names it in RawDeployment mode).",
    )
    steps: list[int] = Field(
        default_factory=lambda: [10, 25, 50],
        description="Traffic percents `mlops canary promote` walks through before promoting fully.",
    )
    gates: CanaryGates = Field(default_factory=CanaryGates, description="Gates `mlops canary analyze` evaluates.")

    @field_validator("steps")
    @classmethod
    def _increasing_steps(cls, value: list[int]) -> list[int]:
        if any(not 0 < step < 100 for step in value) or value != sorted(set(value)):
            raise ValueError(f"steps {value} must be strictly increasing percents between 1 and 99 (100 = promote)")
        return value


class ModelMonitoring(Section):
    payload_sample_rate: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of inferences the payload collector stores, chosen by inference id; the rest are "
        "acknowledged and counted (mlops_collector_events_sampled_out_total).",
    )
    drift_schedule: str = Field("0 * * * *", pattern=CRON, description="Cron schedule of the drift job.")
    drift_window_hours: int = Field(24, ge=1, le=24 * 30, description="Hours of payloads each drift run reads.")
    feature_drift_threshold: float | None = Field(None, gt=0, description="Override of the per-feature threshold.")
    drift_share_threshold: float = Field(0.5, gt=0, le=1, description="Share of drifted features = dataset drift.")
    reference_data_uri: str = Field(min_length=1, description="Reference (training) sample the drift job compares to.")
    labels_uri: str | None = Field(
        None,
        min_length=1,
        description="Ground-truth labels (Parquet/CSV with request_id, label) joined to the payloads: turns on "
        "performance drift (MlopsPerformanceDrop). Needs task.",
    )
    task: Literal["classification", "regression"] | None = Field(
        None, description="The model's task, which picks the performance metrics; required with labelsUri."
    )

    @model_validator(mode="after")
    def _labels_need_a_task(self) -> "ModelMonitoring":
        if self.labels_uri is not None and self.task is None:
            raise ValueError("labelsUri needs task (classification or regression) to choose the performance metrics")
        return self


class Retraining(Section):
    webhook: str | None = Field(None, pattern=r"^https?://", description="URL called when the policy triggers.")
    schedule: str | None = Field(None, pattern=CRON, description="Cron schedule of periodic retraining.")
    policy: Literal["on_drift", "on_dataset_drift", "scheduled"] = Field(
        "on_dataset_drift", description="When retraining is triggered."
    )

    @model_validator(mode="after")
    def _has_a_trigger(self) -> "Retraining":
        if self.webhook is None and self.schedule is None:
            raise ValueError("a retraining strategy needs a webhook or a schedule")
        if self.policy == "scheduled" and self.schedule is None:
            raise ValueError("policy 'scheduled' needs a schedule")
        if self.policy != "scheduled" and self.webhook is None:
            raise ValueError(f"policy {self.policy!r} needs a webhook to call")
        return self


class Slo(Section):
    availability: float = Field(0.995, gt=0, lt=1, description="Target share of non-5xx responses.")
    p99_latency_ms: float = Field(500, gt=0, description="Target p99 latency in milliseconds.")


class ModelDeployment(Section):
    name: DnsLabel = Field(description="Deployment name; the InferenceService name.")
    model: ModelReference
    format: Literal["mlflow", "sklearn", "xgboost"] = Field("mlflow", description="Model format / serving runtime.")
    protocol: Literal["v1", "v2"] = Field("v2", description="Inference protocol.")
    resources: ModelResources = Field(default_factory=ModelResources)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    canary: Canary | None = Field(None, description="Canary rollout of a new version next to the stable one.")
    monitoring: ModelMonitoring | None = Field(None, description="Payload logging and drift detection.")
    retraining: Retraining | None = Field(None, description="What the drift alert triggers.")
    slo: Slo = Field(default_factory=Slo)

    @field_validator("monitoring")
    @classmethod
    def _observability_required(cls, value: ModelMonitoring | None) -> ModelMonitoring:
        if value is None:
            raise ValueError(
                "a model cannot be deployed without observability: add monitoring "
                "(referenceDataUri, driftSchedule)"
            )
        return value

    @field_validator("retraining")
    @classmethod
    def _retraining_required(cls, value: Retraining | None) -> Retraining:
        if value is None:
            raise ValueError("a model cannot be deployed without a retraining strategy: add retraining (webhook or schedule)")
        return value

    @model_validator(mode="after")
    def _gpu_needs_pool(self) -> "ModelDeployment":
        if self.resources.gpus > 0 and self.resources.gpu_pool is None:
            raise ValueError(f"resources.gpus is {self.resources.gpus} but resources.gpuPool is not set")
        if self.resources.gpus == 0 and self.resources.gpu_pool is not None:
            raise ValueError("resources.gpuPool is set but resources.gpus is 0")
        return self


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
    models: list[ModelDeployment] = Field(
        default_factory=list, description="Model deployments, each with canary, monitoring and retraining settings."
    )

    def pool(self, name: str) -> NodePool | None:
        return next((p for p in self.node_pools if p.name == name), None)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def platform_images(self) -> list[str]:
        """The configured images the in-cluster platform runs (the local object store and
        database are not among them: they exist only on `local`)."""
        return [
            self.mlflow.image,
            self.images.runtime,
            self.kserve.mlserver_image,
            self.kserve.sklearn_image,
            self.kserve.xgboost_image,
        ]


TOP_LEVEL_KEYS: tuple[str, ...] = tuple(
    (f.alias or to_camel(n)) for n, f in StackConfig.model_fields.items()
)
