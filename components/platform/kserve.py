"""KServe: its CRDs, its controller, the serving runtimes the platform supports, and the service
account model servers (and their storage initializer) run under.

- Charts `kserve-crd` then `kserve-resources`, pinned to the reference version. The chart's
  deployment modes are named `Knative` and `Standard` since KServe 0.16 (`Serverless` and
  `RawDeployment` are the deprecated aliases the stack config keeps).
- Serverless mode runs on Knative Serving with Kourier (`components.platform.knative`): the controller
  waits for it, and creates no Istio VirtualServices (there is no Istio to read them).
- Since 0.16 the `kserve-resources` chart installs no ClusterServingRuntimes (they moved to the
  `kserve-runtime-configs` chart), so the platform declares its own, named `mlops-*` so that
  installing the upstream runtimes later cannot collide with them.
- Storage initializer: on the in-cluster S3 server, KServe reads the endpoint from the credentials
  it finds through the service account's `secrets`; the endpoint itself comes from the chart's
  `kserve.storage.s3` settings. KServe reads `serving.kserve.io/s3-*` annotations from the Secret
  (or, only with IRSA, from the service account), and the credentials Secret is shared with other
  workloads, so chart settings are the one place for the endpoint. On clouds the service account
  carries the workload identity annotations alone: the EKS identity webhook injects the region,
  and GCS needs no endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.interfaces import ObjectStore
from components.namespaces import KSERVE, SERVING
from components.teams import per_namespace_name

CHART_VERSION = "v0.20.0"
CHART_REPOSITORY = "oci://ghcr.io/kserve/charts"
CRD_CHART = "kserve-crd"
CONTROLLER_CHART = "kserve-resources"
SERVICE_ACCOUNT = "model-server"
# The in-cluster S3 server ignores regions but boto3 needs one.
DEFAULT_S3_REGION = "us-east-1"

DeploymentMode = Literal["Serverless", "RawDeployment"]
CHART_DEPLOYMENT_MODES: dict[str, str] = {"Serverless": "Knative", "RawDeployment": "Standard"}
RUNTIME_USER = workloads.MODEL_SERVER_USER


def chart_deployment_mode(mode: DeploymentMode) -> str:
    """The chart's name for a deployment mode of the stack config."""
    try:
        return CHART_DEPLOYMENT_MODES[mode]
    except KeyError as error:
        raise ValueError(f"mlops:kserve.deploymentMode {mode!r} is not one of {sorted(CHART_DEPLOYMENT_MODES)}") from error


@dataclass(frozen=True)
class S3Endpoint:
    """Where the storage initializer finds an S3 server that is not AWS's own."""

    host: str  # host:port, without scheme
    use_https: bool


def parse_s3_endpoint(url: str) -> S3Endpoint:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"object store endpoint {url!r} must be an http:// or https:// URL with a host")
    return S3Endpoint(host=parsed.netloc, use_https=parsed.scheme == "https")


def controller_values(deployment_mode: DeploymentMode, s3_endpoint: pulumi.Input[str] | None) -> dict[str, Any]:
    """Values of the kserve-resources chart."""
    controller: dict[str, Any] = {
        "deploymentMode": chart_deployment_mode(deployment_mode),
        "resources": workloads.resources("100m", "300Mi", cpu_limit="500m"),
        "rbacProxy": {"resources": workloads.resources("50m", "64Mi", cpu_limit="100m")},
    }
    if deployment_mode == "Serverless":
        # Kourier serves Knative's routes; an Istio VirtualService would fail to reconcile.
        controller["gateway"] = {"disableIstioVirtualHost": True}
    kserve: dict[str, Any] = {"controller": controller}
    if s3_endpoint is not None:
        endpoint = pulumi.Output.from_input(s3_endpoint).apply(parse_s3_endpoint)
        kserve["storage"] = {
            "s3": {
                "endpoint": endpoint.apply(lambda e: e.host),
                "useHttps": endpoint.apply(lambda e: "1" if e.use_https else "0"),
                "region": DEFAULT_S3_REGION,
                "verifySSL": "1",
            }
        }
    return {"kserve": kserve}


# One security context for the merged container: KServe strategic-merges the predictor's container
# over the runtime's (pkg/utils/utils.go MergeRuntimeContainers), so both declare the same
# read-only root, and every path a server writes is on an emptyDir the runtime mounts. MLServer
# writes its Prometheus multiprocess files and unpacked model environments under its working
# directory by default (mlserver 1.7.1 settings.py: metrics_dir, environments_dir); Python
# libraries cache under HOME and TMPDIR. All of it goes to /tmp.
SCRATCH_VOLUME = "tmp"
SCRATCH_PATH = "/tmp"
SCRATCH_ENV: tuple[tuple[str, str], ...] = (("HOME", SCRATCH_PATH), ("TMPDIR", SCRATCH_PATH))
MLSERVER_SCRATCH_ENV: tuple[tuple[str, str], ...] = (
    ("MLSERVER_METRICS_DIR", f"{SCRATCH_PATH}/mlserver-metrics"),
    ("MLSERVER_ENVIRONMENTS_DIR", f"{SCRATCH_PATH}/mlserver-envs"),
)


@dataclass(frozen=True)
class ServingRuntime:
    """One ClusterServingRuntime: which formats and protocols it serves, and with what image."""

    name: str
    formats: tuple[tuple[str, str], ...]  # (model format, format version)
    protocols: tuple[str, ...]
    image: pulumi.Input[str]
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    def spec(self) -> dict[str, Any]:
        container: dict[str, Any] = {
            "name": "kserve-container",
            "image": self.image,
            # Defaults; an InferenceService's own resources replace them.
            "resources": workloads.resources("500m", "1Gi", cpu_limit="1"),
            "securityContext": workloads.restricted_container_security(run_as_user=RUNTIME_USER),
            "env": [{"name": k, "value": v} for k, v in (*self.env, *SCRATCH_ENV)],
            "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH}],
        }
        if self.args:
            container["args"] = list(self.args)
        return {
            "supportedModelFormats": [
                {"name": name, "version": version, "autoSelect": True, "priority": 1} for name, version in self.formats
            ],
            "protocolVersions": list(self.protocols),
            "containers": [container],
            "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
        }


def serving_runtimes(
    mlserver_image: pulumi.Input[str], sklearn_image: pulumi.Input[str], xgboost_image: pulumi.Input[str]
) -> dict[str, ServingRuntime]:
    """The runtimes the platform supports, by model format (`mlops:models[].format`)."""
    # KServe fills `{{.Name}}` with the InferenceService's name.
    kserve_args = ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080")
    return {
        "mlflow": ServingRuntime(
            name="mlops-mlserver",
            formats=(("mlflow", "1"), ("mlflow", "2"), ("mlflow", "3")),
            protocols=("v2",),
            image=mlserver_image,
            env=(
                ("MLSERVER_MODEL_IMPLEMENTATION", "mlserver_mlflow.MLflowRuntime"),
                ("MLSERVER_MODEL_NAME", "{{.Name}}"),
                ("MLSERVER_MODEL_URI", "/mnt/models"),
                ("MLSERVER_HTTP_PORT", "8080"),
                ("MLSERVER_GRPC_PORT", "9000"),
                ("MODELS_DIR", "/mnt/models"),
                *MLSERVER_SCRATCH_ENV,
            ),
        ),
        "sklearn": ServingRuntime(
            name="mlops-sklearnserver", formats=(("sklearn", "1"),), protocols=("v1", "v2"), image=sklearn_image, args=kserve_args
        ),
        "xgboost": ServingRuntime(
            name="mlops-xgbserver",
            formats=(("xgboost", "1"), ("xgboost", "2")),
            protocols=("v1", "v2"),
            image=xgboost_image,
            args=kserve_args,
        ),
    }


@dataclass(frozen=True)
class KServeArgs:
    deployment_mode: DeploymentMode
    object_store: ObjectStore
    mlserver_image: pulumi.Input[str]
    sklearn_image: pulumi.Input[str]
    xgboost_image: pulumi.Input[str]
    # Workload identity annotations of the storage initializer (empty on local).
    storage_identity: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # cert-manager must issue the webhook certificate before the controller starts.
    cert_manager: Sequence[pulumi.Resource] = ()
    # Serverless: the controller reconciles into Knative Services, so Knative comes first.
    knative: Sequence[pulumi.Resource] = ()
    namespace: str = KSERVE
    # Every namespace that runs models gets the model servers' service account.
    model_namespaces: Sequence[str] = (SERVING,)


class KServe(pulumi.ComponentResource):
    crd_chart: k8s.helm.v4.Chart
    controller_chart: k8s.helm.v4.Chart
    # Model format -> ClusterServingRuntime name.
    runtime_names: dict[str, str]
    service_account_name: str

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:KServe", name, None, opts)
        self.crd_chart = k8s.helm.v4.Chart(
            f"{name}-crds",
            name=CRD_CHART,
            chart=f"{CHART_REPOSITORY}/{CRD_CHART}",
            version=CHART_VERSION,
            namespace=args.namespace,
            opts=pulumi.ResourceOptions(parent=self),
        )
        store = args.object_store
        self.controller_chart = k8s.helm.v4.Chart(
            f"{name}-controller",
            name="kserve",
            chart=f"{CHART_REPOSITORY}/{CONTROLLER_CHART}",
            version=CHART_VERSION,
            namespace=args.namespace,
            values=controller_values(args.deployment_mode, store.endpoint),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crd_chart, *args.cert_manager, *args.knative]),
        )
        runtimes = serving_runtimes(args.mlserver_image, args.sklearn_image, args.xgboost_image)
        for runtime in runtimes.values():
            k8s.apiextensions.CustomResource(
                f"{name}-{runtime.name}",
                api_version="serving.kserve.io/v1alpha1",
                kind="ClusterServingRuntime",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=runtime.name,
                    labels=workloads.labels(runtime.name, "serving-runtime"),
                ),
                spec=runtime.spec(),
                # The CRD comes from the CRD chart and the controller's webhook validates runtimes.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crd_chart, self.controller_chart]),
            )
        self.runtime_names = {model_format: runtime.name for model_format, runtime in runtimes.items()}
        self.service_account_name = SERVICE_ACCOUNT
        identity = dict(args.storage_identity)
        for namespace in args.model_namespaces:
            k8s.core.v1.ServiceAccount(
                per_namespace_name(f"{name}-model-server", namespace),
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=SERVICE_ACCOUNT,
                    namespace=namespace,
                    labels=workloads.labels(SERVICE_ACCOUNT, "serving"),
                    annotations=identity or None,
                ),
                secrets=[k8s.core.v1.ObjectReferenceArgs(name=store.credentials_secret)] if store.credentials_secret else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"runtimeNames": self.runtime_names, "serviceAccount": SERVICE_ACCOUNT})
