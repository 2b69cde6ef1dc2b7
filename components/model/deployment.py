"""One declared model, deployed with everything the platform requires of it.

Per model: the KServe InferenceService (canary split, GPU placement, payload logger, autoscaling;
see `components.model.serving` for the mode), the PodMonitor feeding its request metrics, its
PrometheusRule (SLO burn, latency, canary gates, drift), its Grafana dashboard and its drift
CronJob, and what it declares of its lifecycle: its training Job (a CronJob, or the template the
drift job instantiates, see `components.model.training`) and its batch scoring CronJob. A model
without observability or a retraining strategy never gets here: the config
schema refuses it with the missing piece named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import workloads
from components.interfaces import GpuPlacement, ObjectStore
from components.model.observability import (
    DASHBOARD_LABEL,
    dashboard_data,
    creates_training_jobs,
    drift_cronjob_spec,
    drift_job_labels,
    pod_monitor_spec,
    prometheus_rule_spec,
)
from components.model.serving import MODEL_LABEL, DeploymentMode, inference_service_metadata, inference_service_spec
from components.declarations import ModelDeployment as ModelDeclaration
from components.declarations import ModelResources
from components.model.batch import BATCH_OUTPUT_PREFIX, BatchScoring, BatchScoringArgs
from components.model.training import ModelTraining, ModelTrainingArgs

INFERENCE_SERVICE_API = "serving.kserve.io/v1beta1"
MONITORING_API = "monitoring.coreos.com/v1"
IN_CLUSTER_S3_REGION = "us-east-1"


@dataclass(frozen=True)
class ModelDeploymentArgs:
    model: ModelDeclaration
    deployment_mode: DeploymentMode
    namespace: str
    # Grafana's dashboard sidecar watches this namespace.
    dashboard_namespace: str
    server_account: pulumi.Input[str]
    drift_account: pulumi.Input[str]
    training_account: pulumi.Input[str]
    batch_account: pulumi.Input[str]
    collector_url: pulumi.Input[str]
    # The drift job reads `models:/` and `runs:/` references through the tracking server.
    tracking_uri: pulumi.Input[str]
    pushgateway_url: pulumi.Input[str]
    runtime_image: pulumi.Input[str]
    # Root of the payload store the collector writes (`<root>/<model>/<version>/...`).
    payload_root: pulumi.Input[str]
    # Where the drift job writes its JSON and HTML reports (its identity may create objects there).
    report_root: pulumi.Input[str]
    object_store: ObjectStore
    # How pods land on each GPU pool, by pool name (serving, training and batch pods may use different pools).
    gpu_placements: dict[str, GpuPlacement] = field(default_factory=dict)
    # CRD-installing releases: the custom resources here fail with "no matches for kind" before them.
    crds_ready: list[pulumi.Resource] = field(default_factory=list)
    # Secret (keys `username`, `password`) of the MLflow user the drift, training and batch Jobs act
    # as: the machine user of the model's namespace (`MlflowTeams`); None leaves them without
    # credentials, which MLflow's basic auth refuses (401).
    mlflow_credentials: str | None = None


def drift_job_env(store: ObjectStore, tracking_uri: pulumi.Input[str], mlflow_credentials: str | None = None) -> list[dict[str, Any]]:
    """Registry and object store access of the drift job: endpoint and keys only for an S3 server of our own."""
    env: list[dict[str, Any]] = [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}]
    if mlflow_credentials is not None:
        env += [
            workloads.secret_env("MLFLOW_TRACKING_USERNAME", mlflow_credentials, "username"),
            workloads.secret_env("MLFLOW_TRACKING_PASSWORD", mlflow_credentials, "password"),
        ]
    if store.endpoint is not None:
        # An S3 server of our own ignores regions, but the S3 clients insist on one; on EKS the
        # identity webhook injects the real region, GCS needs none.
        env += [{"name": "AWS_ENDPOINT_URL", "value": store.endpoint}, {"name": "AWS_REGION", "value": IN_CLUSTER_S3_REGION}]
    if store.credentials_secret is not None:
        env += [
            workloads.secret_env("AWS_ACCESS_KEY_ID", store.credentials_secret, "AWS_ACCESS_KEY_ID"),
            workloads.secret_env("AWS_SECRET_ACCESS_KEY", store.credentials_secret, "AWS_SECRET_ACCESS_KEY"),
        ]
    return env


def _secret_env_exemption(args: ModelDeploymentArgs) -> dict[str, str]:
    reasons = [
        reason
        for reason, present in (
            (workloads.MLFLOW_CREDENTIALS_REASON, args.mlflow_credentials is not None),
            (workloads.STATIC_S3_KEYS_REASON, args.object_store.credentials_secret is not None),
        )
        if present
    ]
    return {"CKV_K8S_35": "; ".join(reasons)} if reasons else {}


def _drift_job_exemptions(args: ModelDeploymentArgs) -> dict[str, str]:
    exemptions = _secret_env_exemption(args)
    if creates_training_jobs(args.model):
        exemptions["CKV_K8S_38"] = "the drift job creates the model's training Job through the API server; its Role allows only that"
    return exemptions


def _job_exemptions(args: ModelDeploymentArgs, image: pulumi.Input[str]) -> dict[str, str]:
    return workloads.skip_annotations(checkov=_secret_env_exemption(args), images=[image])


def _placement(args: ModelDeploymentArgs, resources: ModelResources) -> GpuPlacement | None:
    return args.gpu_placements.get(resources.gpu_pool) if resources.gpu_pool else None


class ModelDeployment(pulumi.ComponentResource):
    """`mlops:serving:ModelDeployment`: a model's InferenceService and what watches it."""

    inference_service: k8s.apiextensions.CustomResource
    pod_monitor: k8s.apiextensions.CustomResource
    prometheus_rule: k8s.apiextensions.CustomResource
    dashboard: k8s.core.v1.ConfigMap
    drift_job: k8s.batch.v1.CronJob
    training: ModelTraining | None
    batch: BatchScoring | None
    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelDeployment", name, None, opts)
        model = args.model
        custom = pulumi.ResourceOptions(parent=self, depends_on=args.crds_ready)
        self.inference_service = k8s.apiextensions.CustomResource(
            f"{name}-isvc",
            api_version=INFERENCE_SERVICE_API,
            kind="InferenceService",
            metadata=inference_service_metadata(model, args.deployment_mode, args.namespace),
            spec=inference_service_spec(model, args.deployment_mode, args.server_account, args.collector_url, _placement(args, model.resources)),
            opts=custom,
        )
        self.pod_monitor = self._monitoring_resource(name, "pod-monitor", "PodMonitor", pod_monitor_spec(model, args.deployment_mode, args.namespace), args, custom)
        self.prometheus_rule = self._monitoring_resource(name, "rules", "PrometheusRule", prometheus_rule_spec(model, args.namespace), args, custom)
        self.dashboard = k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"mlops-model-{model.name}-dashboard",
                namespace=args.dashboard_namespace,
                labels={**workloads.labels(model.name, "dashboard"), **DASHBOARD_LABEL, MODEL_LABEL: model.name},
            ),
            data=dashboard_data(model, args.namespace),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.drift_job = k8s.batch.v1.CronJob(
            f"{name}-drift",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{model.name}-drift",
                namespace=args.namespace,
                labels=drift_job_labels(model),
                annotations=workloads.skip_annotations(checkov=_drift_job_exemptions(args), images=[args.runtime_image]),
            ),
            spec=drift_cronjob_spec(
                model,
                image=args.runtime_image,
                account=args.drift_account,
                payload_root=args.payload_root,
                report_root=args.report_root,
                pushgateway_url=args.pushgateway_url,
                env=drift_job_env(args.object_store, args.tracking_uri, args.mlflow_credentials),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.training = self._create_training(name, args)
        self.batch = self._create_batch(name, args)
        self.url = pulumi.Output.from_input(f"http://{model.name}.{args.namespace}.svc.cluster.local")
        self.register_outputs({"url": self.url, "version": model.model.deployed_version})

    def _create_training(self, name: str, args: ModelDeploymentArgs) -> ModelTraining | None:
        job = args.model.retraining.job if args.model.retraining is not None else None
        if job is None:
            return None
        return ModelTraining(
            f"{name}-training",
            ModelTrainingArgs(
                model=args.model,
                namespace=args.namespace,
                runtime_image=args.runtime_image,
                training_account=args.training_account,
                drift_account=args.drift_account,
                payload_root=args.payload_root,
                # Credentials the job declares itself (`secretEnv`) win over the team's.
                store_env=[
                    variable
                    for variable in drift_job_env(args.object_store, args.tracking_uri, args.mlflow_credentials)
                    if variable["name"] not in {declared.name for declared in job.secret_env}
                ],
                gpu_placement=_placement(args, job.resources),
                annotations=_job_exemptions(args, job.image or args.runtime_image),
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _create_batch(self, name: str, args: ModelDeploymentArgs) -> BatchScoring | None:
        batch = args.model.batch
        if batch is None:
            return None
        store = args.object_store
        return BatchScoring(
            f"{name}-batch",
            BatchScoringArgs(
                model=args.model,
                namespace=args.namespace,
                runtime_image=args.runtime_image,
                account=args.batch_account,
                input_uri=store.uri(store.payload_bucket, batch.input_prefix),
                output_uri=store.uri(store.payload_bucket, f"{BATCH_OUTPUT_PREFIX}/{batch.output_prefix}"),
                pushgateway_url=args.pushgateway_url,
                store_env=drift_job_env(store, args.tracking_uri, args.mlflow_credentials),
                gpu_placement=_placement(args, batch.resources),
                annotations=_job_exemptions(args, args.runtime_image),
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _monitoring_resource(
        self, name: str, suffix: str, kind: str, spec: dict[str, Any], args: ModelDeploymentArgs, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{suffix}",
            api_version=MONITORING_API,
            kind=kind,
            metadata={
                "name": f"mlops-model-{args.model.name}",
                "namespace": args.namespace,
                "labels": {**workloads.labels(args.model.name, "monitoring"), MODEL_LABEL: args.model.name},
            },
            spec=spec,
            opts=opts,
        )
