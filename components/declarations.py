"""The declarations components consume: node pools and model deployments, as typed, validated sections.

They are pydantic models so the stack config (`stacks.config.schema`) can embed them as sections of
`Pulumi.<stack>.yaml` with their per-key errors, while components below the composition layer take
them as typed arguments without reaching up into `stacks`. Keys are camelCase, as Pulumi users write
them; unknown keys are rejected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import formats
from components.catalog import Accelerator, SizeClass

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
Quantity = Annotated[str, AfterValidator(formats.positive_quantity)]
# Durations that end up in PromQL ranges, `for:` clauses or Prometheus flags.
PrometheusDuration = Annotated[str, AfterValidator(formats.positive_prometheus_duration)]
CronSchedule = Annotated[str, AfterValidator(formats.cron_schedule)]
LabelValue = Annotated[str, AfterValidator(formats.label_value)]
# What reads each location: KServe's storage initializer (kserve_storage.py, v0.21; file:// for a mounted path)
# for model artifacts; the drift job (monitoring/drift_job: pyarrow filesystems, MLflow URIs)
# for reference data and labels. A path on the laptop means nothing inside the cluster.
ARTIFACT_SCHEMES = ("s3://", "gs://", "pvc://", "hdfs://", "webhdfs://", "https://", "http://", "hf://", "file://")
DATASET_SCHEMES = ("s3://", "gs://", "runs:/", "models:/")
ArtifactUri = Annotated[
    str, AfterValidator(lambda uri: formats.uri_with_scheme(uri, ARTIFACT_SCHEMES, "KServe's storage initializer"))
]
DatasetUri = Annotated[str, AfterValidator(lambda uri: formats.uri_with_scheme(uri, DATASET_SCHEMES, "the drift job"))]
WebhookUrl = Annotated[str, Field(pattern=r"^https?://"), AfterValidator(formats.no_whitespace)]

# Names the platform derives from a model's name, with the limit the API server (or the
# controller that creates them) enforces. The longest decides how long a model name may be.
DERIVED_NAME_LIMITS: tuple[tuple[str, str, int], ...] = (
    # The CronJob controller names each Job <cronjob>-<11 characters>; Kubernetes caps CronJob names at 52.
    ("CronJob", "{name}-drift", 52),
    # KServe names the Knative Service <isvc>-predictor; tag routing adds latest-/prev- hosts, each a DNS label.
    ("Knative tag host", "latest-{name}-predictor", 63),
    # Knative labels pods with their revision, <service>-00001, a label value.
    ("Knative revision label", "{name}-predictor-00001", 63),
)
MODEL_NAME_MAX = min(limit - len(template.replace("{name}", "")) for _, template, limit in DERIVED_NAME_LIMITS)
# A container image with an explicit tag or digest (no implicit `latest`).
IMAGE = r"^[^\s]+(:[^\s/]+|@sha256:[0-9a-f]{64})$"


class Section(BaseModel):
    """Base of every config section: camelCase keys, unknown keys rejected, immutable.

    Numbers are taken where text is expected (`postgresVersion: 17`, `--config
    mlops:database.postgresVersion=17`): Pulumi itself stores such a value as a number (YAML, and
    `config set --path` turns integer text into an integer), so refusing it would refuse what
    Pulumi accepted. Infinite and NaN numbers (`1e999` decodes to infinity) are refused.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
        coerce_numbers_to_str=True,
        allow_inf_nan=False,
    )


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
    alias: LabelValue | None = Field(None, description="Registered model alias (e.g. champion); labels pods while unresolved.")
    resolved_version: str | None = Field(
        None, pattern=r"^[0-9]+$", description="Version the alias pointed at when resolved (written by `mlops models resolve`)."
    )
    artifact_uri: ArtifactUri | None = Field(
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

    @model_validator(mode="after")
    def _gpu_needs_pool(self) -> "ModelResources":
        if self.gpus > 0 and self.gpu_pool is None:
            raise ValueError(f"gpus is {self.gpus} but gpuPool is not set")
        if self.gpus == 0 and self.gpu_pool is not None:
            raise ValueError("gpuPool is set but gpus is 0")
        return self


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
    window: PrometheusDuration = Field("10m", description="PromQL range the gates are evaluated over.")


class Canary(Section):
    traffic_percent: int = Field(ge=0, le=100, description="Share of traffic sent to the new model version.")
    previous_artifact_uri: ArtifactUri | None = Field(
        None, description="Artifact URI of the stable version serving the rest of the traffic."
    )
    previous_version: LabelValue | None = Field(
        None,
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
    drift_schedule: CronSchedule = Field("0 * * * *", description="Cron schedule of the drift job.")
    drift_window_hours: int = Field(24, ge=1, le=24 * 30, description="Hours of payloads each drift run reads.")
    feature_drift_threshold: float | None = Field(None, gt=0, description="Override of the per-feature threshold.")
    drift_share_threshold: float = Field(0.5, gt=0, le=1, description="Share of drifted features = dataset drift.")
    reference_data_uri: DatasetUri = Field( description="Reference (training) sample the drift job compares to.")
    labels_uri: DatasetUri | None = Field(
        None,
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


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# The metrics the training Job can decide by (training.evaluation.METRICS), by task.
TRAINING_METRICS = {"classification": ("accuracy", "f1"), "regression": ("rmse", "mae", "r2")}


class SecretKey(Section):
    """A key of a Kubernetes Secret in the model's namespace."""

    secret: DnsLabel = Field(description="Secret name.")
    key: str = Field(min_length=1, description="Key in the Secret.")


class SecretEnv(SecretKey):
    """An environment variable filled from a key of a Kubernetes Secret."""

    name: str = Field(pattern=ENV_NAME, description="Variable name.")


class TrainingJob(Section):
    """The training Job: run on `retraining.schedule` (scheduled) or created by the drift job (drift policies)."""

    image: str | None = Field(None, pattern=IMAGE, description="Training image; default: the platform's runtime image.")
    command: list[str] = Field(
        default_factory=lambda: ["python", "-m", "training"],
        min_length=1,
        description="Container command; default: the reference trainer (`python -m training`).",
    )
    args: list[str] = Field(default_factory=list, description="Container arguments.")
    resources: ModelResources = Field(
        default_factory=lambda: ModelResources(cpu="1", memory="4Gi"), description="Resources of the training pod (GPUs: gpus + gpuPool)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables (e.g. TRAINING_TRAINER).")
    secret_env: list[SecretEnv] = Field(default_factory=list, description="Variables from Secrets (e.g. MLflow credentials).")
    data_uri: DatasetUri | None = Field(
        None, description="Labelled training rows (Parquet file or prefix); with monitoring.labelsUri the payloads join in."
    )
    metric: str | None = Field(None, description="Metric deciding candidate vs champion; default accuracy (classification) or rmse.")
    margin: float = Field(0.0, ge=0, description="How much worse than the champion the candidate may score and still become challenger.")
    timeout_minutes: int = Field(120, ge=1, le=7 * 24 * 60, description="activeDeadlineSeconds of the Job, in minutes.")
    backoff_limit: int = Field(1, ge=0, le=10, description="Retries after a failure that retrying can fix.")

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.match(ENV_NAME, name)]
        if bad:
            raise ValueError(f"env names {bad} are not valid variable names (letters, digits, '_', not starting with a digit)")
        return value


class Retraining(Section):
    webhook: WebhookUrl | None = Field(None, description="URL called when the policy triggers.")
    webhook_secret: SecretKey | None = Field(None, description="Secret key whose value signs the webhook body (HMAC-SHA256).")
    webhook_event_type: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$", description="Send GitHub's repository_dispatch envelope with this event_type (e.g. mlops-retrain)."
    )
    webhook_token: SecretKey | None = Field(None, description="Secret key holding the webhook's bearer token (e.g. a GitHub token).")
    schedule: CronSchedule | None = Field(None, description="Cron schedule of periodic retraining.")
    policy: Literal["on_drift", "on_dataset_drift", "scheduled"] = Field(
        "on_dataset_drift", description="When retraining is triggered."
    )
    job: TrainingJob | None = Field(
        None, description="Training Job the platform runs: a CronJob (scheduled) or a template the drift job instantiates."
    )

    @model_validator(mode="after")
    def _has_a_trigger(self) -> "Retraining":
        if self.policy == "scheduled":
            if self.schedule is None or self.job is None:
                raise ValueError("policy 'scheduled' needs a schedule and the job it runs")
            if self.webhook is not None:
                raise ValueError("policy 'scheduled' runs its job; a webhook would never be called")
        elif (self.webhook is None) == (self.job is None):
            raise ValueError(f"policy {self.policy!r} needs exactly one trigger: a webhook to call or a job to run")
        webhook_settings = [key for key, value in (("webhookSecret", self.webhook_secret), ("webhookEventType", self.webhook_event_type),
                                                   ("webhookToken", self.webhook_token)) if value is not None]  # fmt: skip
        if webhook_settings and self.webhook is None:
            raise ValueError(f"{', '.join(webhook_settings)} configure webhook calls; they need a webhook")
        return self


class BatchScoring(Section):
    """Nightly (or any cron) scoring of Parquet partitions by the version the InferenceService serves."""

    schedule: CronSchedule = Field(description="Cron schedule of the batch scoring CronJob.")
    input_prefix: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._=/-]*$", description="Parquet prefix in the payload bucket; its partitions are scored.")
    output_prefix: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._=/-]*$", description="Where scored partitions go, under batch-output/ in the payload bucket."
    )
    chunk_rows: int = Field(50_000, ge=100, le=5_000_000, description="Rows scored at a time; memory follows it.")
    resources: ModelResources = Field(default_factory=lambda: ModelResources(cpu="1", memory="2Gi"), description="Resources of the scoring pod.")
    timeout_minutes: int = Field(240, ge=1, le=24 * 60, description="activeDeadlineSeconds of each run, in minutes.")


class Slo(Section):
    availability: float = Field(0.995, gt=0, lt=1, description="Target share of non-5xx responses.")
    p99_latency_ms: float = Field(500, gt=0, description="Target p99 latency in milliseconds.")


# --- External endpoints and teams ----------------------------------------------------------------

# Marks a field holding a credential: it must be a Pulumi secret (`secure:`) in the stack file, which
# `mlops validate` checks offline.
CREDENTIAL = {"credential": True}
# A host name as HTTPRoute.spec.hostnames and a TLS certificate take it: lowercase DNS labels joined by dots.
DNS_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$"
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/[^\s]*)?$")]
# Who a consumer is: for JWT the value of the gateway's consumer claim (a subject or client id), for API
# keys the client id the key is issued to.
CONSUMER = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


class AcmeTls(Section):
    """Certificates from an ACME CA (Let's Encrypt) with the DNS-01 challenge, answered in the cloud's DNS
    zone (mlops:aws.hostedZoneId / mlops:gcp.dnsZone) by cert-manager under the cloud's workload
    identity (no static credentials)."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Account e-mail the CA sends expiry notices to.")
    server: Literal["production", "staging"] = Field(
        "production", description="Let's Encrypt production (trusted) or staging (untrusted; for trying the set-up)."
    )



class ProvidedTls(Section):
    """A certificate issued elsewhere (a corporate CA), for the domain and its wildcard."""

    certificate: str = Field(min_length=1, description="PEM certificate chain, leaf first.")
    private_key: str = Field(min_length=1, description="PEM private key (a Pulumi secret).", json_schema_extra=CREDENTIAL)


class GatewayTls(Section):
    issuer: Literal["acme", "provided"] = Field(description="acme: cert-manager with DNS-01; provided: a certificate in config.")
    acme: AcmeTls | None = Field(None, description="ACME account and DNS zone (issuer: acme).")
    provided: ProvidedTls | None = Field(None, description="The certificate and key (issuer: provided).")

    @model_validator(mode="after")
    def _one_source(self) -> "GatewayTls":
        chosen, other = (self.acme, self.provided) if self.issuer == "acme" else (self.provided, self.acme)
        if chosen is None:
            raise ValueError(f"issuer is {self.issuer!r} but tls.{self.issuer} is missing; add it")
        if other is not None:
            unused = "provided" if self.issuer == "acme" else "acme"
            raise ValueError(f"issuer is {self.issuer!r} but tls.{unused} is also set; remove tls.{unused}")
        return self


class JwtSettings(Section):
    """The identity provider whose tokens callers of JWT-authenticated models present."""

    issuer: HttpsUrl = Field(description="Token issuer (`iss`), as the provider writes it.")
    audiences: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="Accepted `aud` values: the API the provider issues tokens for."
    )
    jwks_uri: HttpsUrl = Field(description="Where the provider publishes its signing keys (the discovery document's jwks_uri).")
    consumer_claim: str = Field(
        "sub",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
        description="Claim naming the caller, matched against a model's endpoint.consumers (`sub`, `azp`, `client_id`).",
    )


class OidcLogin(Section):
    """Browser login (authorization-code flow) in front of MLflow and Grafana, run by the gateway."""

    issuer: HttpsUrl = Field(description="OpenID provider issuer URL.")
    client_id: str = Field(min_length=1, description="OAuth client id registered for the platform's UIs.")
    client_secret: str = Field(min_length=1, description="OAuth client secret (a Pulumi secret).", json_schema_extra=CREDENTIAL)
    allowed_groups: list[str] = Field(
        default_factory=list, description="Values of the `groups` claim allowed in; empty: any user the provider signs in."
    )


class GatewaySettings(Section):
    """The platform's one external entry point: a Gateway API gateway (Envoy Gateway) behind a load
    balancer the stack declares, serving model endpoints, MLflow and Grafana over TLS."""

    enabled: bool = Field(False, description="Render the gateway; without it nothing is reachable from outside the cluster.")
    domain: Annotated[str, Field(pattern=DNS_NAME, max_length=253)] | None = Field(
        None, description="Parent domain of every external host (`<model>.<domain>`, `mlflow.<domain>`); required when enabled."
    )
    load_balancer: Literal["internal", "internet-facing"] = Field(
        "internal", description="internal: reachable from the VPC and networks routed to it; internet-facing: from anywhere allowed by sourceCidrs."
    )
    source_cidrs: list[str] = Field(
        default_factory=list, description="Client ranges the load balancer admits (empty: any address that can route to it)."
    )
    tls: GatewayTls | None = Field(None, description="Where the gateway's certificate comes from; required when enabled.")
    jwt: JwtSettings | None = Field(None, description="Token issuer for models with endpoint.auth jwt.")
    oidc: OidcLogin | None = Field(None, description="Browser login for MLflow and Grafana (required in prod when they have hosts).")
    controller_image: str = Field(
        "docker.io/envoyproxy/gateway:v1.9.0",
        pattern=IMAGE,
        description="Envoy Gateway controller image (also its proxies' shutdown manager); the release the chart pins.",
    )
    proxy_image: str = Field(
        "docker.io/envoyproxy/envoy:distroless-v1.39.0",
        pattern=IMAGE,
        description="Envoy proxy image of the gateway's data plane (Envoy Gateway v1.9.0's default).",
    )

    @model_validator(mode="after")
    def _enabled_needs_domain_and_tls(self) -> "GatewaySettings":
        if self.enabled and self.domain is None:
            raise ValueError("enabled is true but domain is missing; set the parent domain of the external hosts")
        if self.enabled and self.tls is None:
            raise ValueError("enabled is true but tls is missing; set tls.issuer (acme or provided)")
        return self


class Consumer(Section):
    name: Annotated[str, Field(pattern=CONSUMER)] = Field(
        description="JWT: the value of the gateway's consumerClaim; API key: the client id the key is issued to."
    )
    key_version: int = Field(1, ge=1, description="API keys: bump to issue the consumer a new key (the old one stops working).")


class RateLimit(Section):
    requests: int = Field(ge=1, description="Requests allowed per unit, per gateway replica's view of the route.")
    unit: Literal["Second", "Minute", "Hour"] = Field("Second", description="The window requests are counted in.")


class ModelEndpoint(Section):
    public: bool = Field(False, description="Serve the model on the stack's gateway; private models are reachable in the cluster only.")
    host: Annotated[str, Field(pattern=DNS_NAME, max_length=253)] | None = Field(
        None, description="External host name (default `<model>.<gateway domain>`)."
    )
    auth: Literal["jwt", "apiKey"] | None = Field(None, description="How callers authenticate; required for a public model.")
    consumers: list[Consumer] = Field(default_factory=list, description="Who may call the model: every other caller is refused.")
    rate_limit: RateLimit | None = Field(None, description="Requests per unit across all consumers; more are answered 429.")

    @model_validator(mode="after")
    def _public_needs_auth(self) -> "ModelEndpoint":
        if self.public and self.auth is None:
            raise ValueError("public is true but auth is missing: no model is public without authentication; set auth to jwt or apiKey")
        if self.auth is not None and not self.consumers:
            raise ValueError(f"auth is {self.auth!r} but consumers is empty; list who may call the model")
        names = [consumer.name for consumer in self.consumers]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"consumers {duplicated} are listed twice; each consumer once")
        if not self.public and (self.host is not None or self.auth is not None or self.rate_limit is not None):
            raise ValueError("host, auth and rateLimit apply to a public endpoint; set public: true or remove them")
        return self


class TeamQuota(Section):
    """What the team's namespace may request in total (a ResourceQuota)."""

    cpu: Quantity = Field(description="Total CPU requests.")
    memory: Quantity = Field(description="Total memory requests.")
    gpus: int = Field(ge=0, description="Total `nvidia.com/gpu` requests (0: the team may not use GPUs).")
    pods: int = Field(100, ge=1, description="Pods at once.")


class Team(Section):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)] = Field(
        description="Team name; its models run in namespace `team-<name>`."
    )
    groups: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="Kubernetes RBAC groups of the team's people (EKS access-entry groups, Google Groups for RBAC); "
        "given `edit` in the team's namespace.",
    )
    quota: TeamQuota
    mlflow_users: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]] = Field(
        default_factory=list,
        description="MLflow users given the team's permissions: MANAGE on its registered models and experiments, none on other teams'.",
    )


def team_namespace(team: str) -> str:
    return f"team-{team}"


# Models without a team run in the shared serving namespace.
SHARED_MODEL_NAMESPACE = "mlops-serving"


class ModelDeployment(Section):
    name: DnsLabel = Field(description=f"Deployment name; the InferenceService name (at most {MODEL_NAME_MAX} characters).")
    model: ModelReference
    format: Literal["mlflow", "sklearn", "xgboost"] = Field("mlflow", description="Model format / serving runtime.")
    protocol: Literal["v1", "v2"] = Field("v2", description="Inference protocol.")
    resources: ModelResources = Field(default_factory=ModelResources)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    canary: Canary | None = Field(None, description="Canary rollout of a new version next to the stable one.")
    monitoring: ModelMonitoring | None = Field(None, description="Payload logging and drift detection.")
    retraining: Retraining | None = Field(None, description="What the drift alert triggers.")
    batch: BatchScoring | None = Field(None, description="Batch scoring of Parquet partitions with the served version.")
    slo: Slo = Field(default_factory=Slo)
    team: DnsLabel | None = Field(None, description="Owning team (one of mlops:teams): the model runs in namespace `team-<name>`.")
    endpoint: ModelEndpoint = Field(default_factory=ModelEndpoint, description="Exposure outside the cluster (default: private).")

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

    @field_validator("name")
    @classmethod
    def _derived_names_fit(cls, name: str) -> str:
        for kind, template, limit in DERIVED_NAME_LIMITS:
            derived = template.format(name=name)
            if len(derived) > limit:
                raise ValueError(
                    f"{kind} {derived!r} would be {len(derived)} characters, above Kubernetes' {limit}; "
                    f"model names are at most {MODEL_NAME_MAX} characters"
                )
        return name

    @model_validator(mode="after")
    def _training_can_run(self) -> "ModelDeployment":
        job = self.retraining.job if self.retraining is not None else None
        if job is None or self.monitoring is None:
            return self
        if self.monitoring.task is None:
            raise ValueError("retraining.job needs monitoring.task (classification or regression): the trainer and its metric depend on it")
        if job.data_uri is None and self.monitoring.labels_uri is None:
            raise ValueError("retraining.job has nothing to train on: set retraining.job.dataUri, or monitoring.labelsUri to train on labelled payloads")
        allowed = TRAINING_METRICS[self.monitoring.task]
        if job.metric is not None and job.metric not in allowed:
            raise ValueError(f"retraining.job.metric {job.metric!r} is not a {self.monitoring.task} metric; choose one of {', '.join(allowed)}")
        return self

    @model_validator(mode="after")
    def _batch_needs_pyfunc(self) -> "ModelDeployment":
        if self.batch is not None and self.model.version is None and self.model.resolved_version is None:
            raise ValueError("batch scoring loads a registered version: resolve the alias first (mlops models resolve), which records resolvedVersion")
        if self.batch is not None and self.format != "mlflow":
            raise ValueError(
                f"batch scoring loads the registered version with MLflow's pyfunc, which needs format 'mlflow'; "
                f"format {self.format!r} is served by its own runtime only: drop batch or register the model as an MLflow model"
            )
        return self

    @property
    def training_metric(self) -> str:
        job = self.retraining.job if self.retraining is not None else None
        task = self.monitoring.task if self.monitoring is not None else None
        return (job.metric if job is not None else None) or TRAINING_METRICS[task or "classification"][0]


# --- Alerting ----------------------------------------------------------------------------------

# kube-prometheus-stack's own sink for its always-firing Watchdog and InfoInhibitor alerts.
NULL_RECEIVER = "null"


class WebhookReceiver(Section):
    url: str = Field(pattern=r"^https?://", description="Endpoint Alertmanager POSTs its JSON payload to.")
    bearer_token: str | None = Field(
        None, min_length=1, description="Bearer token sent with each POST (a Pulumi secret).", json_schema_extra=CREDENTIAL
    )


class SlackReceiver(Section):
    api_url: str = Field(
        min_length=1, description="Slack incoming-webhook URL (a Pulumi secret: it is the credential).", json_schema_extra=CREDENTIAL
    )
    channel: str = Field(pattern=r"^[#@][^\s]+$", description="Channel (#name) or user (@name) to post to.")


class PagerDutyReceiver(Section):
    routing_key: str = Field(
        min_length=1, description="PagerDuty Events API v2 integration key (a Pulumi secret).", json_schema_extra=CREDENTIAL
    )


class EmailReceiver(Section):
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    sender: str = Field(description="From address.")
    smarthost: str = Field(pattern=r"^[^\s:]+:[0-9]+$", description="SMTP server as host:port.")
    auth_username: str | None = Field(None, description="SMTP user, if the server requires authentication.")
    auth_password: str | None = Field(None, min_length=1, description="SMTP password (a Pulumi secret).", json_schema_extra=CREDENTIAL)
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
    models: list[str] = Field(min_length=1, description="Names of the model deployments the team owns (the `model` label of their alerts).")
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


def model_namespace(model: ModelDeployment) -> str:
    """Where a model runs: its team's namespace, or the shared serving namespace."""
    return team_namespace(model.team) if model.team else SHARED_MODEL_NAMESPACE


def model_namespaces(teams: Sequence[Team]) -> tuple[str, ...]:
    """Every namespace that may run models: the shared one first, then each declared team's."""
    return (SHARED_MODEL_NAMESPACE, *(team_namespace(team.name) for team in teams))
